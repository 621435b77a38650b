//! Field paths into JSON objects, addressing items of named lists by name.
//!
//! Kubernetes merges lists such as `containers`, `env`, `volumes` and `ports` by each item's
//! `name`, so a position like `containers.1` is reported as `containers[name=cart]`: stable when
//! items are reordered, and the form remediations use.

use autofix_core::FieldPath;
use autofix_core::path::Segment;
use serde_json::Value;
use std::collections::BTreeSet;

/// One raw step of a position, as serde reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// A mapping key.
    Key(String),
    /// A list index.
    Index(usize),
}

/// The `name` of a list item, when it has a string one.
pub(crate) fn item_name(item: &Value) -> Option<&str> {
    item.get("name")?.as_str()
}

/// True when every item is an object with a distinct string `name` (an empty list counts).
pub(crate) fn is_named_list(items: &[Value]) -> bool {
    let mut seen = BTreeSet::new();
    items
        .iter()
        .all(|item| item_name(item).is_some_and(|name| seen.insert(name)))
}

/// The segment naming item `index` of `items`: `[name=X]` in a named list, `[N]` otherwise.
pub(crate) fn item_segment(items: &[Value], index: usize) -> Segment {
    match items.get(index).and_then(item_name) {
        Some(name) if is_named_list(items) => name_segment(name),
        _ => Segment::Index(index),
    }
}

/// The `[name=X]` segment.
pub(crate) fn name_segment(name: &str) -> Segment {
    Segment::Select {
        key: "name".to_string(),
        value: name.to_string(),
    }
}

/// One step down from `node`, following any kind of segment.
pub(crate) fn step<'a>(node: &'a Value, segment: &Segment) -> Option<&'a Value> {
    match segment {
        Segment::Key(key) => node.as_object()?.get(key),
        Segment::Index(index) => node.as_array()?.get(*index),
        Segment::Select { key, value } => node
            .as_array()?
            .iter()
            .find(|item| selects(item, key, value)),
    }
}

/// True when the list item's field `key` reads `value` (as `[key=value]` selects it).
pub(crate) fn selects(item: &Value, key: &str, value: &str) -> bool {
    match item.get(key) {
        Some(Value::String(text)) => text == value,
        Some(other) => value.parse::<Value>().is_ok_and(|parsed| parsed == *other),
        None => false,
    }
}

/// The field path of the position `steps` in `root`, with named list items selected by name.
pub(crate) fn field_path(steps: &[Step], root: &Value) -> FieldPath {
    let mut node = Some(root);
    let mut segments = Vec::with_capacity(steps.len());
    for step in steps {
        match step {
            Step::Key(key) => {
                segments.push(Segment::Key(key.clone()));
                node = node.and_then(|n| n.get(key));
            }
            Step::Index(index) => {
                let items = node.and_then(Value::as_array);
                segments.push(match items {
                    Some(items) => item_segment(items, *index),
                    None => Segment::Index(*index),
                });
                node = items.and_then(|items| items.get(*index));
            }
        }
    }
    FieldPath(segments)
}

/// The path as text for a violation; `None` for the object root.
pub(crate) fn shown(path: &FieldPath) -> Option<String> {
    (!path.0.is_empty()).then(|| path.to_string())
}

/// A JSON value in one short line for messages (at most 80 characters).
pub(crate) fn brief(value: Option<&Value>) -> String {
    const MAX_CHARS: usize = 80;
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return "(absent)".to_string();
    };
    let text = value.to_string();
    if text.chars().count() <= MAX_CHARS {
        text
    } else {
        let cut: String = text.chars().take(MAX_CHARS - 1).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn named_lists_are_addressed_by_name() {
        let obj = json!({"spec": {"containers": [{"name": "a"}, {"name": "b", "ports": [{"containerPort": 80}]}]}});
        let steps = [
            Step::Key("spec".into()),
            Step::Key("containers".into()),
            Step::Index(1),
            Step::Key("ports".into()),
            Step::Index(0),
            Step::Key("containerPort".into()),
        ];
        assert_eq!(
            field_path(&steps, &obj).to_string(),
            "spec.containers[name=b].ports[0].containerPort"
        );
    }

    #[test]
    fn duplicate_or_missing_names_fall_back_to_indexes() {
        assert!(!is_named_list(&[
            json!({"name": "a"}),
            json!({"name": "a"})
        ]));
        assert!(!is_named_list(&[json!({"name": "a"}), json!({"port": 1})]));
        assert!(is_named_list(&[]));
        let items = [json!({"name": "a"}), json!({"name": "a"})];
        assert_eq!(item_segment(&items, 1), Segment::Index(1));
    }

    #[test]
    fn selectors_match_numbers_as_text() {
        let port = json!({"containerPort": 8080, "name": "http"});
        assert!(selects(&port, "containerPort", "8080"));
        assert!(selects(&port, "name", "http"));
        assert!(!selects(&port, "containerPort", "80"));
        assert!(!selects(&port, "protocol", "TCP"));
    }

    #[test]
    fn brief_shortens_long_values() {
        assert_eq!(brief(None), "(absent)");
        assert_eq!(brief(Some(&json!("256Mi"))), "\"256Mi\"");
        assert_eq!(brief(Some(&json!("x".repeat(200)))).chars().count(), 80);
    }
}
