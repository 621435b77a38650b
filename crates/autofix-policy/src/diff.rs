//! The rendered object may change only where the remediation says: `undeclared-path` and
//! `not-applied`.
//!
//! `rendered_before` and `rendered_after` are compared leaf by leaf: objects key by key, lists
//! of uniquely named objects by `name` (as Kubernetes merges containers, env, volumes), other
//! lists by index. Every changed leaf must lie at or under a declared `FieldChange::path`. A
//! whole subtree added or removed with no declared path inside it is reported once, at its root.

use crate::paths::{brief, is_named_list, item_name, name_segment, selects, shown, step};
use autofix_core::path::Segment;
use autofix_core::{FieldPath, Remediation, Violation};
use serde_json::Value;
use std::collections::BTreeSet;

/// Violations of `undeclared-path` and `not-applied`.
pub(crate) fn check(before: &Value, after: &Value, remediation: &Remediation) -> Vec<Violation> {
    let declared: Vec<FieldPath> = remediation
        .changes
        .iter()
        .map(|change| canonical(&change.path, before, after))
        .collect();
    let mut changed = Vec::new();
    walk(
        Some(before),
        Some(after),
        &mut Vec::new(),
        &declared,
        &mut changed,
    );
    let mut out: Vec<Violation> = changed
        .into_iter()
        .map(|path| Violation {
            rule: "undeclared-path".to_string(),
            file: None,
            message: format!(
                "changed from {} to {}, but no declared change covers this path",
                brief(path.get(before)),
                brief(path.get(after)),
            ),
            path: shown(&path),
        })
        .collect();
    for change in &remediation.changes {
        let actual = change.path.get(after).filter(|v| !v.is_null());
        let applied = match actual {
            None => change.to.is_null(),
            Some(value) => *value == change.to,
        };
        if !applied {
            out.push(Violation {
                rule: "not-applied".to_string(),
                file: None,
                path: Some(change.path.to_string()),
                message: format!(
                    "the remediation sets {} but the rendered object has {}",
                    brief(Some(&change.to)),
                    brief(actual),
                ),
            });
        }
    }
    out
}

fn present(value: Option<&Value>) -> Option<&Value> {
    value.filter(|v| !v.is_null())
}

/// True when a list is compared by name: every side present is a named list.
fn by_name(before: Option<&[Value]>, after: Option<&[Value]>) -> bool {
    before.is_none_or(is_named_list) && after.is_none_or(is_named_list)
}

/// Rewrites a declared path into the form the walk reports: in lists compared by name the item
/// is `[name=X]`, in other lists `[N]`. The item is looked up in `before` (the live object the
/// path was written against), then in `after`.
fn canonical(path: &FieldPath, before: &Value, after: &Value) -> FieldPath {
    let (mut b, mut a) = (Some(before), Some(after));
    let mut out = Vec::with_capacity(path.0.len());
    for segment in &path.0 {
        let b_list = b.and_then(Value::as_array).map(Vec::as_slice);
        let a_list = a.and_then(Value::as_array).map(Vec::as_slice);
        let named = by_name(b_list, a_list);
        let rewrite = |list: &[Value]| {
            let index = match segment {
                Segment::Key(_) => None,
                Segment::Index(index) => (*index < list.len()).then_some(*index),
                Segment::Select { key, value } => {
                    list.iter().position(|item| selects(item, key, value))
                }
            }?;
            if named {
                item_name(&list[index]).map(name_segment)
            } else {
                Some(Segment::Index(index))
            }
        };
        let segment = [b_list, a_list]
            .into_iter()
            .flatten()
            .find_map(rewrite)
            .unwrap_or_else(|| segment.clone());
        b = b.and_then(|node| step(node, &segment));
        a = a.and_then(|node| step(node, &segment));
        out.push(segment);
    }
    FieldPath(out)
}

/// A child segment with the value under it before and after the fix.
type Pair<'a> = (Segment, Option<&'a Value>, Option<&'a Value>);

/// The children of two nodes compared side by side, or `None` when they are not both
/// containers of the same shape (objects, or lists), absent counting as either.
fn children<'a>(before: Option<&'a Value>, after: Option<&'a Value>) -> Option<Vec<Pair<'a>>> {
    match (before, after) {
        (None, None) => None,
        _ if before.is_none_or(Value::is_object) && after.is_none_or(Value::is_object) => {
            let keys: BTreeSet<&String> = [before, after]
                .into_iter()
                .flatten()
                .filter_map(Value::as_object)
                .flat_map(|map| map.keys())
                .collect();
            Some(
                keys.into_iter()
                    .map(|k| {
                        (
                            Segment::Key(k.clone()),
                            present(before.and_then(|v| v.get(k))),
                            present(after.and_then(|v| v.get(k))),
                        )
                    })
                    .collect(),
            )
        }
        _ if before.is_none_or(Value::is_array) && after.is_none_or(Value::is_array) => {
            let b = before.and_then(Value::as_array).map(Vec::as_slice);
            let a = after.and_then(Value::as_array).map(Vec::as_slice);
            if by_name(b, a) {
                let mut names: Vec<&str> = Vec::new();
                for list in [b, a].into_iter().flatten() {
                    for name in list.iter().filter_map(item_name) {
                        if !names.contains(&name) {
                            names.push(name);
                        }
                    }
                }
                let find = |list: Option<&'a [Value]>, name: &str| {
                    list.and_then(|l| l.iter().find(|it| item_name(it) == Some(name)))
                };
                Some(
                    names
                        .into_iter()
                        .map(|name| (name_segment(name), find(b, name), find(a, name)))
                        .collect(),
                )
            } else {
                let len = b.map_or(0, <[Value]>::len).max(a.map_or(0, <[Value]>::len));
                Some(
                    (0..len)
                        .map(|i| {
                            (
                                Segment::Index(i),
                                present(b.and_then(|l| l.get(i))),
                                present(a.and_then(|l| l.get(i))),
                            )
                        })
                        .collect(),
                )
            }
        }
        _ => None,
    }
}

fn walk(
    before: Option<&Value>,
    after: Option<&Value>,
    path: &mut Vec<Segment>,
    declared: &[FieldPath],
    out: &mut Vec<FieldPath>,
) {
    let (before, after) = (present(before), present(after));
    if before == after {
        return;
    }
    let here = FieldPath(path.clone());
    if declared.iter().any(|d| here.starts_with(d)) {
        return;
    }
    // Descend into containers present on both sides; into an added or removed subtree only
    // when a declared path lies inside it, so an undeclared new subtree is reported once.
    let descend =
        before.is_some() && after.is_some() || declared.iter().any(|d| d.starts_with(&here));
    match children(before, after).filter(|_| descend) {
        Some(items) => {
            for (segment, b, a) in items {
                path.push(segment);
                walk(b, a, path, declared, out);
                path.pop();
            }
        }
        None => out.push(here),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use autofix_core::FieldChange;
    use serde_json::json;

    fn remediation(changes: &[(&str, Value)]) -> Remediation {
        Remediation {
            strategy: "test".into(),
            changes: changes
                .iter()
                .map(|(path, to)| FieldChange {
                    path: FieldPath::must(path),
                    from: None,
                    to: to.clone(),
                    reason: "test".into(),
                })
                .collect(),
        }
    }

    fn before() -> Value {
        json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [
            {"name": "sidecar", "image": "envoy:1"},
            {"name": "app", "image": "app:1", "args": ["--a", "--b"],
             "env": [{"name": "A", "value": "1"}],
             "resources": {"limits": {"memory": "128Mi"}}}
        ]}}}})
    }

    fn found(after: &Value, changes: &[(&str, Value)]) -> Vec<(String, String)> {
        check(&before(), after, &remediation(changes))
            .into_iter()
            .map(|v| (v.rule, v.path.unwrap_or_default()))
            .collect()
    }

    const APP: &str = "spec.template.spec.containers[name=app]";

    #[test]
    fn declared_changes_pass() {
        let mut after = before();
        let memory = format!("{APP}.resources.limits.memory");
        FieldPath::must(&memory).set(&mut after, json!("256Mi"));
        assert_eq!(found(&after, &[(&memory, json!("256Mi"))]), vec![]);
        // The same change declared by index, and a parent path covering it.
        let by_index = "spec.template.spec.containers[1].resources.limits.memory";
        assert_eq!(found(&after, &[(by_index, json!("256Mi"))]), vec![]);
        let parent = format!("{APP}.resources");
        let to = json!({"limits": {"memory": "256Mi"}});
        assert_eq!(found(&after, &[(&parent, to)]), vec![]);
    }

    #[test]
    fn undeclared_changes_are_reported_at_their_leaf() {
        let mut after = before();
        let memory = format!("{APP}.resources.limits.memory");
        FieldPath::must(&memory).set(&mut after, json!("256Mi"));
        FieldPath::must(&format!("{APP}.image")).set(&mut after, json!("app:2"));
        FieldPath::must(&format!("{APP}.args[1]")).set(&mut after, json!("--c"));
        FieldPath::must(&format!("{APP}.env[name=A].value")).set(&mut after, json!("2"));
        assert_eq!(
            found(&after, &[(&memory, json!("256Mi"))]),
            [
                ("undeclared-path".to_string(), format!("{APP}.args[1]")),
                (
                    "undeclared-path".to_string(),
                    format!("{APP}.env[name=A].value")
                ),
                ("undeclared-path".to_string(), format!("{APP}.image")),
            ]
        );
    }

    #[test]
    fn added_and_removed_subtrees_are_reported_once() {
        let mut after = before();
        let spec = FieldPath::must("spec.template.spec");
        spec.key("hostNetwork").set(&mut after, json!(true));
        let containers = spec.key("containers");
        containers.select("name", "sidecar").remove(&mut after);
        spec.key("securityContext")
            .set(&mut after, json!({"runAsUser": 0, "fsGroup": 0}));
        assert_eq!(
            found(&after, &[]),
            [
                (
                    "undeclared-path".to_string(),
                    "spec.template.spec.containers[name=sidecar]".to_string()
                ),
                (
                    "undeclared-path".to_string(),
                    "spec.template.spec.hostNetwork".to_string()
                ),
                (
                    "undeclared-path".to_string(),
                    "spec.template.spec.securityContext".to_string()
                ),
            ]
        );
    }

    #[test]
    fn a_declared_leaf_inside_a_new_subtree_covers_only_itself() {
        let mut after = before();
        let probe = format!("{APP}.livenessProbe");
        FieldPath::must(&probe).set(
            &mut after,
            json!({"httpGet": {"port": 8080, "path": "/healthz"}}),
        );
        let port = format!("{probe}.httpGet.port");
        assert_eq!(
            found(&after, &[(&port, json!(8080))]),
            [(
                "undeclared-path".to_string(),
                format!("{probe}.httpGet.path")
            )]
        );
    }

    #[test]
    fn declared_but_unapplied_changes_are_reported() {
        let after = before();
        let memory = format!("{APP}.resources.limits.memory");
        assert_eq!(
            found(&after, &[(&memory, json!("256Mi"))]),
            [("not-applied".to_string(), memory.clone())]
        );
        // Removing a field is declared with `to: null`.
        let mut after = before();
        FieldPath::must(&format!("{APP}.args")).remove(&mut after);
        assert_eq!(
            found(&after, &[(&format!("{APP}.args"), Value::Null)]),
            vec![]
        );
    }
}
