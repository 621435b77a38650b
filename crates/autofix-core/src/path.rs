//! Dotted field paths into Kubernetes objects, e.g.
//! `spec.template.spec.containers[name=cart].resources.limits.memory`.
//!
//! `[name=X]` selects the list item whose `name` is X (how Kubernetes merges containers, env,
//! ports and volumes); `[N]` selects by index.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::fmt;
use std::str::FromStr;

/// One step of a [`FieldPath`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// A mapping key.
    Key(String),
    /// A list item by position.
    Index(usize),
    /// A list item whose field `key` equals `value`.
    Select {
        /// The identifying field, usually `name`.
        key: String,
        /// Its value.
        value: String,
    },
}

/// A path from an object's root to one field.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct FieldPath(pub Vec<Segment>);

/// A path that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("invalid field path {path:?}: {reason}")]
pub struct PathError {
    /// The text given.
    pub path: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl FromStr for FieldPath {
    type Err = PathError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = |reason| PathError {
            path: text.to_string(),
            reason,
        };
        let mut segments = Vec::new();
        for part in split_outside_brackets(text) {
            let (key, mut rest) = match part.find('[') {
                Some(i) => (&part[..i], &part[i..]),
                None => (part, ""),
            };
            if key.is_empty() && segments.is_empty() && rest.is_empty() {
                return Err(err("empty segment"));
            }
            if !key.is_empty() {
                segments.push(Segment::Key(key.to_string()));
            }
            while let Some(stripped) = rest.strip_prefix('[') {
                let end = stripped.find(']').ok_or_else(|| err("unclosed `[`"))?;
                let inner = &stripped[..end];
                segments.push(match inner.split_once('=') {
                    Some((k, v)) if !k.is_empty() => Segment::Select {
                        key: k.to_string(),
                        value: v.to_string(),
                    },
                    Some(_) => return Err(err("selector without a key")),
                    None => Segment::Index(inner.parse().map_err(|_| err("bad index"))?),
                });
                rest = &stripped[end + 1..];
            }
            if !rest.is_empty() {
                return Err(err("text after `]`"));
            }
        }
        if segments.is_empty() {
            return Err(err("empty path"));
        }
        Ok(FieldPath(segments))
    }
}

/// Splits at dots that are not inside `[...]`, so selectors may hold dotted values
/// (`images[name=registry.example.com/app].newTag`).
fn split_outside_brackets(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (i, c) in text.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            '.' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(k) if i == 0 => write!(f, "{k}")?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
                Segment::Select { key, value } => write!(f, "[{key}={value}]")?,
            }
        }
        Ok(())
    }
}

impl Serialize for FieldPath {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FieldPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl FieldPath {
    /// Parses a path known to be valid at compile time; panics otherwise.
    pub fn must(text: &str) -> Self {
        text.parse().expect("static field path")
    }

    /// This path with one more key appended.
    pub fn key(&self, key: &str) -> Self {
        let mut out = self.clone();
        out.0.push(Segment::Key(key.to_string()));
        out
    }

    /// This path with a `[name=X]` selector appended.
    pub fn select(&self, key: &str, value: &str) -> Self {
        let mut out = self.clone();
        out.0.push(Segment::Select {
            key: key.to_string(),
            value: value.to_string(),
        });
        out
    }

    /// True when `self` is `other` or lies below it.
    pub fn starts_with(&self, other: &FieldPath) -> bool {
        self.0.len() >= other.0.len() && self.0[..other.0.len()] == other.0[..]
    }

    /// The value at this path, if every step exists.
    pub fn get<'a>(&self, root: &'a Value) -> Option<&'a Value> {
        self.0.iter().try_fold(root, |node, seg| step(node, seg))
    }

    /// Sets the value at this path, creating missing mappings on the way.
    ///
    /// Returns false when a list item named by a selector or index does not exist, or a step
    /// crosses a scalar.
    pub fn set(&self, root: &mut Value, value: Value) -> bool {
        let Some((last, parents)) = self.0.split_last() else {
            return false;
        };
        let mut node = root;
        for seg in parents {
            if node.is_null() {
                *node = Value::Object(Default::default());
            }
            node = match step_mut(node, seg, true) {
                Some(next) => next,
                None => return false,
            };
        }
        if node.is_null() {
            *node = Value::Object(Default::default());
        }
        match (last, node) {
            (Segment::Key(k), Value::Object(map)) => {
                map.insert(k.clone(), value);
                true
            }
            (seg, node) => match step_mut(node, seg, false) {
                Some(slot) => {
                    *slot = value;
                    true
                }
                None => false,
            },
        }
    }

    /// Removes the field at this path; returns the removed value.
    pub fn remove(&self, root: &mut Value) -> Option<Value> {
        let (last, parents) = self.0.split_last()?;
        let mut node = root;
        for seg in parents {
            node = step_mut(node, seg, false)?;
        }
        match (last, node) {
            (Segment::Key(k), Value::Object(map)) => map.remove(k),
            (Segment::Index(i), Value::Array(items)) if *i < items.len() => Some(items.remove(*i)),
            (Segment::Select { key, value }, Value::Array(items)) => {
                let i = items
                    .iter()
                    .position(|it| matches_selector(it, key, value))?;
                Some(items.remove(i))
            }
            _ => None,
        }
    }
}

fn matches_selector(item: &Value, key: &str, value: &str) -> bool {
    item.get(key).is_some_and(|field| selects(field, value))
}

/// Whether an item whose identifying field holds `field` is the one `[key=value]` selects: a
/// string by its text, anything else by its JSON (`[port=8080]`, `[name=null]`).
pub fn selects(field: &Value, value: &str) -> bool {
    match field {
        Value::String(s) => s == value,
        other => *other.to_string() == *value,
    }
}

fn step<'a>(node: &'a Value, seg: &Segment) -> Option<&'a Value> {
    match seg {
        Segment::Key(k) => node.as_object()?.get(k),
        Segment::Index(i) => node.as_array()?.get(*i),
        Segment::Select { key, value } => node
            .as_array()?
            .iter()
            .find(|it| matches_selector(it, key, value)),
    }
}

fn step_mut<'a>(node: &'a mut Value, seg: &Segment, create: bool) -> Option<&'a mut Value> {
    match seg {
        Segment::Key(k) => {
            let map = node.as_object_mut()?;
            if create && !map.contains_key(k) {
                map.insert(k.clone(), Value::Object(Default::default()));
            }
            map.get_mut(k)
        }
        Segment::Index(i) => node.as_array_mut()?.get_mut(*i),
        Segment::Select { key, value } => node
            .as_array_mut()?
            .iter_mut()
            .find(|it| matches_selector(it, key, value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_through_text() {
        for text in [
            "spec.template.spec.containers[name=cart].env[0].value",
            "images[name=registry.example.com/finance/ledger].newTag",
        ] {
            assert_eq!(FieldPath::must(text).to_string(), text);
        }
        let dotted = FieldPath::must("images[name=a.b/c].newTag");
        assert_eq!(dotted.0.len(), 3);
    }

    #[test]
    fn rejects_broken_paths() {
        for bad in ["", "a.[x", "a[1]b", "a[=x]", "a[q]"] {
            assert!(bad.parse::<FieldPath>().is_err(), "{bad}");
        }
    }

    #[test]
    fn gets_sets_and_removes() {
        let mut obj = json!({"spec": {"containers": [{"name": "a"}, {"name": "b", "image": "x"}]}});
        let image = FieldPath::must("spec.containers[name=b].image");
        assert_eq!(image.get(&obj), Some(&json!("x")));
        let limit = FieldPath::must("spec.containers[name=a].resources.limits.memory");
        assert!(limit.set(&mut obj, json!("1Gi")));
        assert_eq!(limit.get(&obj), Some(&json!("1Gi")));
        assert!(!FieldPath::must("spec.containers[name=zz].image").set(&mut obj, json!("y")));
        assert_eq!(image.remove(&mut obj), Some(json!("x")));
        assert_eq!(image.get(&obj), None);
    }
}
