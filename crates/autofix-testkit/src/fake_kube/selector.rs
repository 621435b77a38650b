//! Field and label selectors, as the apiserver evaluates them on lists.

use super::world::str_at;
use serde_json::Value;

/// One `fieldSelector` term: a supported field compared to a value.
#[derive(Debug)]
struct FieldTerm {
    /// JSON pointer of the field.
    pointer: &'static str,
    value: String,
    equal: bool,
}

/// A parsed `fieldSelector`: every term must hold.
#[derive(Debug, Default)]
pub struct FieldSelector(Vec<FieldTerm>);

/// Fields the apiserver lets a kind be selected by, with their JSON pointers.
fn field_pointer(kind: &str, field: &str) -> Option<&'static str> {
    let common = match field {
        "metadata.name" => Some("/metadata/name"),
        "metadata.namespace" => Some("/metadata/namespace"),
        _ => None,
    };
    let specific = match (kind, field) {
        ("Event", "involvedObject.kind") => Some("/involvedObject/kind"),
        ("Event", "involvedObject.name") => Some("/involvedObject/name"),
        ("Event", "involvedObject.namespace") => Some("/involvedObject/namespace"),
        ("Event", "involvedObject.uid") => Some("/involvedObject/uid"),
        ("Event", "involvedObject.apiVersion") => Some("/involvedObject/apiVersion"),
        ("Event", "involvedObject.fieldPath") => Some("/involvedObject/fieldPath"),
        ("Event", "reason") => Some("/reason"),
        ("Event", "type") => Some("/type"),
        ("Event", "source") => Some("/source/component"),
        ("Pod", "spec.nodeName") => Some("/spec/nodeName"),
        ("Pod", "status.phase") => Some("/status/phase"),
        ("Secret", "type") => Some("/type"),
        _ => None,
    };
    common.or(specific)
}

impl FieldSelector {
    /// Parses `a=b,c!=d` for objects of `kind`; unsupported fields are an error, as upstream.
    pub fn parse(kind: &str, text: &str) -> Result<FieldSelector, String> {
        let mut terms = Vec::new();
        for term in text.split(',').filter(|t| !t.is_empty()) {
            let (field, value, equal) = if let Some((f, v)) = term.split_once("!=") {
                (f, v, false)
            } else if let Some((f, v)) = term.split_once("==") {
                (f, v, true)
            } else if let Some((f, v)) = term.split_once('=') {
                (f, v, true)
            } else {
                return Err(format!(
                    "invalid selector: '{text}'; can't understand '{term}'"
                ));
            };
            let pointer = field_pointer(kind, field)
                .ok_or_else(|| format!("field label not supported: {field}"))?;
            terms.push(FieldTerm {
                pointer,
                value: value.to_string(),
                equal,
            });
        }
        Ok(FieldSelector(terms))
    }

    /// True when the object satisfies every term (a missing field reads as "").
    pub fn matches(&self, object: &Value) -> bool {
        self.0
            .iter()
            .all(|t| (str_at(object, t.pointer) == t.value) == t.equal)
    }
}

/// One `labelSelector` requirement.
#[derive(Debug)]
enum LabelTerm {
    /// `k=v`, `k==v`, `k in (v1,v2)`.
    In(String, Vec<String>),
    /// `k!=v`, `k notin (v1,v2)`: also true when the label is absent.
    NotIn(String, Vec<String>),
    /// `k`.
    Exists(String),
    /// `!k`.
    Absent(String),
}

/// A parsed `labelSelector`: every requirement must hold.
#[derive(Debug, Default)]
pub struct LabelSelector(Vec<LabelTerm>);

impl LabelSelector {
    /// Parses equality (`=`, `==`, `!=`), set (`in`, `notin`) and existence (`k`, `!k`) terms.
    pub fn parse(text: &str) -> Result<LabelSelector, String> {
        let mut terms = Vec::new();
        for term in split_terms(text) {
            let term = term.trim();
            let words: Vec<&str> = term.splitn(3, ' ').collect();
            let parsed = if let [key, op @ ("in" | "notin"), values] = words.as_slice() {
                let values = values
                    .trim()
                    .strip_prefix('(')
                    .and_then(|v| v.strip_suffix(')'))
                    .ok_or_else(|| format!("unable to parse requirement: {term}"))?
                    .split(',')
                    .map(|v| v.trim().to_string())
                    .collect();
                if *op == "in" {
                    LabelTerm::In(key.to_string(), values)
                } else {
                    LabelTerm::NotIn(key.to_string(), values)
                }
            } else if let Some((k, v)) = term.split_once("!=") {
                LabelTerm::NotIn(k.trim().to_string(), vec![v.trim().to_string()])
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                LabelTerm::In(k.trim().to_string(), vec![v.trim().to_string()])
            } else if let Some(k) = term.strip_prefix('!') {
                LabelTerm::Absent(k.trim().to_string())
            } else if !term.is_empty() && !term.contains(' ') {
                LabelTerm::Exists(term.to_string())
            } else {
                return Err(format!("unable to parse requirement: {term}"));
            };
            terms.push(parsed);
        }
        Ok(LabelSelector(terms))
    }

    /// True when the object's labels satisfy every requirement.
    pub fn matches(&self, object: &Value) -> bool {
        let label = |key: &str| {
            object
                .pointer("/metadata/labels")
                .and_then(|l| l.get(key))
                .and_then(Value::as_str)
        };
        self.0.iter().all(|term| match term {
            LabelTerm::In(k, values) => label(k).is_some_and(|v| values.iter().any(|x| x == v)),
            LabelTerm::NotIn(k, values) => label(k).is_none_or(|v| values.iter().all(|x| x != v)),
            LabelTerm::Exists(k) => label(k).is_some(),
            LabelTerm::Absent(k) => label(k).is_none(),
        })
    }
}

/// Splits on commas outside parentheses (`a=b,c in (x,y)` is two terms).
fn split_terms(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out.into_iter().filter(|t| !t.trim().is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn field_selectors_match_events_by_involved_object() {
        let event =
            json!({"involvedObject": {"kind": "Pod", "name": "cart-1"}, "reason": "BackOff"});
        let sel = |t| FieldSelector::parse("Event", t).unwrap().matches(&event);
        assert!(sel("involvedObject.kind=Pod,involvedObject.name=cart-1"));
        assert!(!sel("involvedObject.kind=Pod,involvedObject.name=cart-2"));
        assert!(sel("reason!=Pulled"));
        assert!(FieldSelector::parse("Pod", "involvedObject.name=x").is_err());
    }

    #[test]
    fn label_selectors_support_equality_sets_and_existence() {
        let pod = json!({"metadata": {"labels": {"app": "cart", "tier": "web"}}});
        let sel = |t| LabelSelector::parse(t).unwrap().matches(&pod);
        assert!(sel("app=cart,tier==web"));
        assert!(!sel("app!=cart"));
        assert!(sel("app in (cart,shop),!canary,tier"));
        assert!(!sel("tier notin (web)"));
        assert!(LabelSelector::parse("app in cart").is_err());
    }
}
