//! RFC 6902 JSON patch operations on `serde_json` values, reporting where each value lands.

use serde_json::Value;

/// Where an `add`, `replace`, `move` or `copy` put its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Landed {
    /// The concrete pointer tokens (`-` resolved to the index used).
    pub tokens: Vec<String>,
    /// The value is the operation's own `value` (false for `move` and `copy`).
    pub own_value: bool,
}

/// `op path` of an operation, for messages.
pub(crate) fn describe(op: &Value) -> String {
    let field = |k: &str| op.get(k).and_then(Value::as_str).unwrap_or("?");
    format!("{} {}", field("op"), field("path"))
}

/// Applies one operation; `Ok(None)` for `remove` and `test`.
pub(crate) fn apply(doc: &mut Value, op: &Value) -> Result<Option<Landed>, String> {
    let field = |k: &str| {
        op.get(k)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("the operation has no `{k}`"))
    };
    let path = tokens(field("path")?)?;
    let value = || {
        op.get("value")
            .cloned()
            .ok_or("the operation has no `value`")
    };
    match field("op")? {
        "add" => Ok(Some(Landed {
            tokens: add(doc, &path, value()?)?,
            own_value: true,
        })),
        "replace" => {
            *get_mut(doc, &path)? = value()?;
            Ok(Some(Landed {
                tokens: path,
                own_value: true,
            }))
        }
        "remove" => remove(doc, &path).map(|_| None),
        "move" => {
            let moved = remove(doc, &tokens(field("from")?)?)?;
            Ok(Some(Landed {
                tokens: add(doc, &path, moved)?,
                own_value: false,
            }))
        }
        "copy" => {
            let copied = get_mut(doc, &tokens(field("from")?)?)?.clone();
            Ok(Some(Landed {
                tokens: add(doc, &path, copied)?,
                own_value: false,
            }))
        }
        "test" => {
            if *get_mut(doc, &path)? == value()? {
                Ok(None)
            } else {
                Err("the test does not hold".into())
            }
        }
        other => Err(format!("unknown operation {other:?}")),
    }
}

fn tokens(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let rest = pointer
        .strip_prefix('/')
        .ok_or_else(|| format!("{pointer:?} is not a JSON pointer"))?;
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn index(token: &str, len: usize) -> Result<usize, String> {
    token
        .parse::<usize>()
        .ok()
        .filter(|i| *i < len)
        .ok_or_else(|| format!("no list item {token:?}"))
}

fn get_mut<'v>(doc: &'v mut Value, tokens: &[String]) -> Result<&'v mut Value, String> {
    tokens.iter().try_fold(doc, |node, token| match node {
        Value::Object(map) => map
            .get_mut(token)
            .ok_or_else(|| format!("no field {token:?}")),
        Value::Array(items) => {
            let i = index(token, items.len())?;
            Ok(&mut items[i])
        }
        _ => Err(format!("{token:?} is below a scalar")),
    })
}

fn add(doc: &mut Value, path: &[String], value: Value) -> Result<Vec<String>, String> {
    let Some((last, parents)) = path.split_last() else {
        *doc = value;
        return Ok(Vec::new());
    };
    let mut landed = parents.to_vec();
    match get_mut(doc, parents)? {
        Value::Object(map) => {
            map.insert(last.clone(), value);
            landed.push(last.clone());
        }
        Value::Array(items) => {
            let i = if last == "-" {
                items.len()
            } else {
                index(last, items.len() + 1)?
            };
            items.insert(i, value);
            landed.push(i.to_string());
        }
        _ => return Err(format!("{last:?} is below a scalar")),
    }
    Ok(landed)
}

fn remove(doc: &mut Value, path: &[String]) -> Result<Value, String> {
    let (last, parents) = path.split_last().ok_or("cannot remove the whole object")?;
    match get_mut(doc, parents)? {
        Value::Object(map) => map.remove(last).ok_or_else(|| format!("no field {last:?}")),
        Value::Array(items) => {
            let i = index(last, items.len())?;
            Ok(items.remove(i))
        }
        _ => Err(format!("{last:?} is below a scalar")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn applies_operations_and_reports_landing() {
        let mut doc = json!({"spec": {"containers": [{"name": "a", "env": []}]}});
        let add = json!({"op": "add", "path": "/spec/containers/0/env/-", "value": {"name": "X"}});
        let landed = apply(&mut doc, &add).unwrap().unwrap();
        assert_eq!(landed.tokens, ["spec", "containers", "0", "env", "0"]);
        let replace = json!({"op": "replace", "path": "/spec/containers/0/name", "value": "b"});
        apply(&mut doc, &replace).unwrap();
        let copy = json!({"op": "copy", "from": "/spec/containers/0/name", "path": "/spec/x"});
        assert!(!apply(&mut doc, &copy).unwrap().unwrap().own_value);
        apply(&mut doc, &json!({"op": "remove", "path": "/spec/x"})).unwrap();
        assert_eq!(
            doc,
            json!({"spec": {"containers": [{"name": "b", "env": [{"name": "X"}]}]}})
        );
        assert!(
            apply(
                &mut doc,
                &json!({"op": "replace", "path": "/nope", "value": 1})
            )
            .is_err()
        );
        assert!(
            apply(
                &mut doc,
                &json!({"op": "test", "path": "/spec/containers/0/name", "value": "a"})
            )
            .is_err()
        );
    }

    #[test]
    fn unescapes_pointer_tokens() {
        let mut doc = json!({"metadata": {"annotations": {}}});
        let op = json!({"op": "add", "path": "/metadata/annotations/a~1b~0c", "value": "v"});
        apply(&mut doc, &op).unwrap();
        assert_eq!(doc["metadata"]["annotations"]["a/b~c"], "v");
    }
}
