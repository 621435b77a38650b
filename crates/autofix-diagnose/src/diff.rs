//! Leaf-by-leaf differences between two JSON values, addressed by [`FieldPath`].

use autofix_core::FieldPath;
use autofix_core::path::Segment;
use serde_json::Value;

/// One differing leaf: the path, the value in `a` and the value in `b` (absent = `None`).
pub type LeafDiff = (FieldPath, Option<Value>, Option<Value>);

/// Collects the leaves where `a` and `b` differ. Lists of objects that all carry a `name` are
/// matched by name (as Kubernetes merges them); other lists of equal length by index; lists of
/// different length are one leaf.
pub fn diff_leaves(a: Option<&Value>, b: Option<&Value>, at: &FieldPath, out: &mut Vec<LeafDiff>) {
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                diff_leaves(x.get(k), y.get(k), &at.key(k), out);
            }
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) if named(x) && named(y) => {
            let mut names: Vec<&str> = x.iter().chain(y).filter_map(name_of).collect();
            names.dedup();
            let mut seen = Vec::new();
            for n in names {
                if seen.contains(&n) {
                    continue;
                }
                seen.push(n);
                let find = |list: &'_ [Value]| list.iter().find(|i| name_of(i) == Some(n)).cloned();
                let (xi, yi) = (find(x), find(y));
                diff_leaves(xi.as_ref(), yi.as_ref(), &at.select("name", n), out);
            }
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) if x.len() == y.len() => {
            for (i, (xi, yi)) in x.iter().zip(y).enumerate() {
                let mut path = at.clone();
                path.0.push(Segment::Index(i));
                diff_leaves(Some(xi), Some(yi), &path, out);
            }
        }
        (a, b) if a != b => out.push((at.clone(), a.cloned(), b.cloned())),
        _ => {}
    }
}

fn name_of(item: &Value) -> Option<&str> {
    item.get("name").and_then(Value::as_str)
}

fn named(list: &[Value]) -> bool {
    !list.is_empty() && list.iter().all(|i| name_of(i).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_leaves_by_name_and_index() {
        let a = json!({"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "x"}], "command": ["a", "b"]});
        let b = json!({"env": [{"name": "B", "value": "y"}, {"name": "A", "value": "1"}], "command": ["a", "c"]});
        let mut out = Vec::new();
        diff_leaves(Some(&a), Some(&b), &FieldPath::must("c"), &mut out);
        let paths: Vec<String> = out.iter().map(|d| d.0.to_string()).collect();
        assert_eq!(paths, ["c.command[1]", "c.env[name=B].value"]);
    }
}
