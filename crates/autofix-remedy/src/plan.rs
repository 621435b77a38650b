//! From a remediation to file edits: each field change goes to the outermost layer that defines
//! the value (or, for a new field, its nearest existing parent), and the result is checked by
//! rendering the workload again.

use crate::error::RemedyError;
use crate::image::ImageOverride;
use crate::locate::{DocRef, WorkloadSources};
use crate::render::{self, Definer, matches_selector};
use crate::repo::GitopsRepo;
use crate::splice;
use autofix_core::Remediation;
use autofix_core::path::{FieldPath, Segment};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The new text of one file of the GitOps repo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEdit {
    /// The file, relative to the repo root, with `/` separators.
    pub file: String,
    /// Its text before the edit.
    pub before: String,
    /// Its text after the edit: only the bytes that carry the fix differ.
    pub after: String,
    /// The remediation paths (on the live workload) this edit carries.
    pub paths: Vec<FieldPath>,
}

/// Edits that make the rendered workload carry every change of `remediation`, and change
/// nothing else of it; files are in path order. Changes whose value is already in place give no
/// edit, so an empty list means there is nothing to do.
///
/// Each value is written where it is defined: a kustomize `images:` entry for an overridden
/// image, else the last patch that sets the field, else the base document. A field that does not
/// exist yet is added to the outermost layer that defines its nearest existing parent.
pub fn plan_edits(
    repo: &GitopsRepo,
    sources: &WorkloadSources,
    remediation: &Remediation,
) -> Result<Vec<FileEdit>, RemedyError> {
    let mut texts: BTreeMap<String, String> = BTreeMap::new();
    let mut carried: BTreeMap<String, Vec<FieldPath>> = BTreeMap::new();
    let mut expected = repo.render(sources, &texts)?;
    for change in &remediation.changes {
        let current = repo.render(sources, &texts)?;
        let path = canonical(&change.path, &current);
        for (leaf, to) in leaves(sources, &path, &change.to, &current)? {
            for write in writes(repo, sources, &texts, &current, &leaf, &to)? {
                write.record(
                    repo,
                    &sources.base.file,
                    &change.path,
                    &mut texts,
                    &mut carried,
                )?;
            }
            set_creating(&leaf, &mut expected, to);
        }
    }
    let rendered = repo.render(sources, &texts)?;
    if let Some(path) = first_difference(&expected, &rendered, "") {
        return Err(RemedyError::NotEffective {
            file: texts.keys().cloned().collect::<Vec<_>>().join(", "),
            path,
        });
    }
    Ok(file_edits(repo, texts, carried))
}

/// The files whose new text differs from the repo's, as edits carrying their remediation paths.
pub(crate) fn file_edits(
    repo: &GitopsRepo,
    texts: BTreeMap<String, String>,
    mut carried: BTreeMap<String, Vec<FieldPath>>,
) -> Vec<FileEdit> {
    texts
        .into_iter()
        .filter_map(|(file, after)| {
            let before = repo.text(&file)?.to_string();
            (before != after).then(|| FileEdit {
                paths: carried.remove(&file).unwrap_or_default(),
                file,
                before,
                after,
            })
        })
        .collect()
}

/// One value to write into one document.
pub(crate) struct Write {
    pub(crate) doc: DocRef,
    pub(crate) path: FieldPath,
    pub(crate) value: Value,
}

impl Write {
    /// Applies this write to the file's current text (edited so far, else as committed) and
    /// notes that the file carries `change`. `owner` names the file that referenced it, for
    /// the error when the file is missing.
    pub(crate) fn record(
        &self,
        repo: &GitopsRepo,
        owner: &str,
        change: &FieldPath,
        texts: &mut BTreeMap<String, String>,
        carried: &mut BTreeMap<String, Vec<FieldPath>>,
    ) -> Result<(), RemedyError> {
        let file = self.doc.file.clone();
        let text = match texts.get(&file) {
            Some(text) => text.clone(),
            None => repo
                .text(&file)
                .ok_or_else(|| RemedyError::MissingResource {
                    file: owner.to_string(),
                    entry: file.clone(),
                })?
                .to_string(),
        };
        texts.insert(file.clone(), self.apply(&text)?);
        let paths = carried.entry(file).or_default();
        if !paths.contains(change) {
            paths.push(change.clone());
        }
        Ok(())
    }

    pub(crate) fn apply(&self, text: &str) -> Result<String, RemedyError> {
        let file = &self.doc.file;
        match &self.doc.embedded {
            None => splice::set(text, file, self.doc.doc, &self.path, &self.value),
            Some(inline) => splice::set_embedded(
                text,
                file,
                (self.doc.doc, &inline.at),
                inline.doc,
                &self.path,
                &self.value,
            ),
        }
    }
}

/// `path` with list indexes turned into `[name=X]` selectors where the item has a name, so
/// that patches (whose lists hold only some items) can be matched.
fn canonical(path: &FieldPath, obj: &Value) -> FieldPath {
    let mut node = Some(obj);
    let mut out = Vec::new();
    for segment in &path.0 {
        let segment = match (segment, node) {
            (Segment::Index(i), Some(Value::Array(items))) => {
                match items
                    .get(*i)
                    .and_then(|it| it.get("name"))
                    .and_then(Value::as_str)
                {
                    Some(name) => Segment::Select {
                        key: "name".into(),
                        value: name.into(),
                    },
                    None => segment.clone(),
                }
            }
            _ => segment.clone(),
        };
        node = node.and_then(|n| FieldPath(vec![segment.clone()]).get(n));
        out.push(segment);
    }
    FieldPath(out)
}

/// The scalar changes a change amounts to: a mapping (or same-length list) given for an existing
/// one is split into its fields, and fields already at their value are dropped.
fn leaves(
    sources: &WorkloadSources,
    path: &FieldPath,
    to: &Value,
    current: &Value,
) -> Result<Vec<(FieldPath, Value)>, RemedyError> {
    match (path.get(current), to) {
        (Some(now), _) if now == to => Ok(Vec::new()),
        (Some(Value::Object(now)), Value::Object(wanted)) => {
            if let Some(dropped) = now.keys().find(|k| !wanted.contains_key(*k)) {
                return Err(RemedyError::Unsupported {
                    file: sources.base.file.clone(),
                    reason: format!(
                        "the new value of {path} leaves out {dropped}; removing fields is not supported"
                    ),
                });
            }
            let mut out = Vec::new();
            for (key, value) in wanted {
                out.extend(leaves(sources, &path.key(key), value, current)?);
            }
            Ok(out)
        }
        (Some(Value::Array(now)), Value::Array(wanted)) if now.len() == wanted.len() => {
            let mut out = Vec::new();
            for (i, (item, value)) in now.iter().zip(wanted).enumerate() {
                let item_path = match item.get("name").and_then(Value::as_str) {
                    Some(name) => path.select("name", name),
                    None => FieldPath([path.0.clone(), vec![Segment::Index(i)]].concat()),
                };
                out.extend(leaves(sources, &item_path, value, current)?);
            }
            Ok(out)
        }
        _ => Ok(vec![(path.clone(), to.clone())]),
    }
}

/// Where to write `to` so that the rendered field at `path` takes it.
fn writes(
    repo: &GitopsRepo,
    sources: &WorkloadSources,
    texts: &BTreeMap<String, String>,
    current: &Value,
    path: &FieldPath,
    to: &Value,
) -> Result<Vec<Write>, RemedyError> {
    let (_, definer) = render::trace(repo, sources, texts, path)?;
    match definer {
        Some(Definer::Doc { doc, path: inner }) => Ok(vec![Write {
            doc,
            path: inner,
            value: to.clone(),
        }]),
        Some(Definer::Image {
            kustomization,
            at,
            before,
        }) => {
            let unsupported = |reason: String| RemedyError::Unsupported {
                file: kustomization.file.clone(),
                reason: format!("image override {at}: {reason}"),
            };
            let doc = repo.doc_value(&kustomization, texts)?;
            let entry = at
                .get(&doc)
                .and_then(ImageOverride::from_value)
                .ok_or_else(|| unsupported("it has no name".into()))?;
            let wanted = to
                .as_str()
                .ok_or_else(|| unsupported("the new image is not a string".into()))?;
            let edits = entry.edits_for(&before, wanted).map_err(unsupported)?;
            Ok(edits
                .into_iter()
                .map(|(field, value)| Write {
                    doc: kustomization.clone(),
                    path: at.key(field),
                    value,
                })
                .collect())
        }
        Some(Definer::Replicas { kustomization, at }) => Ok(vec![Write {
            doc: kustomization,
            path: at.key("count"),
            value: to.clone(),
        }]),
        Some(Definer::Opaque { file, what }) => Err(RemedyError::Unsupported {
            file,
            reason: format!("{path} is set by {what}, which is not edited automatically"),
        }),
        None => new_field(repo, sources, texts, current, path, to),
    }
}

/// Writes for a field the workload does not have: below the outermost layer that defines its
/// nearest existing parent.
fn new_field(
    repo: &GitopsRepo,
    sources: &WorkloadSources,
    texts: &BTreeMap<String, String>,
    current: &Value,
    path: &FieldPath,
    to: &Value,
) -> Result<Vec<Write>, RemedyError> {
    let not_found = |reason: &str| RemedyError::PathNotFound {
        file: sources.base.file.clone(),
        path: path.clone(),
        reason: reason.to_string(),
    };
    let parent = (1..path.0.len())
        .rev()
        .map(|n| FieldPath(path.0[..n].to_vec()))
        .find(|p| p.get(current).is_some())
        .ok_or_else(|| not_found("no part of it exists in the workload"))?;
    match render::trace(repo, sources, texts, &parent)?.1 {
        Some(Definer::Doc { doc, path: inner }) => {
            let mut full = inner.0;
            full.extend_from_slice(&path.0[parent.0.len()..]);
            Ok(vec![Write {
                doc,
                path: FieldPath(full),
                value: to.clone(),
            }])
        }
        Some(Definer::Opaque { file, what }) => Err(RemedyError::Unsupported {
            file,
            reason: format!("{parent} is set by {what}, so {path} cannot be added to it"),
        }),
        _ => Err(not_found("no layer defines it or a mapping above it")),
    }
}

/// Sets `path` like [`FieldPath::set`], also creating list items named by `[key=value]` or
/// appended by `[len]`; gives up silently on shape mismatches (the final check reports them).
fn set_creating(path: &FieldPath, root: &mut Value, value: Value) {
    let mut node = root;
    for segment in &path.0 {
        if node.is_null() {
            *node = match segment {
                Segment::Key(_) => Value::Object(Map::new()),
                _ => Value::Array(Vec::new()),
            };
        }
        node = match (segment, node) {
            (Segment::Key(k), Value::Object(map)) => map.entry(k.clone()).or_insert(Value::Null),
            (Segment::Index(i), Value::Array(items)) => {
                if *i == items.len() {
                    items.push(Value::Null);
                }
                match items.get_mut(*i) {
                    Some(item) => item,
                    None => return,
                }
            }
            (Segment::Select { key, value }, Value::Array(items)) => {
                let i = match items.iter().position(|it| matches_selector(it, key, value)) {
                    Some(i) => i,
                    None => {
                        let mut item = Map::new();
                        item.insert(key.clone(), Value::String(value.clone()));
                        items.push(Value::Object(item));
                        items.len() - 1
                    }
                };
                &mut items[i]
            }
            _ => return,
        };
    }
    *node = value;
}

/// The first field (dotted) where `a` and `b` differ.
fn first_difference(a: &Value, b: &Value, at: &str) -> Option<String> {
    let join = |key: &str| {
        if at.is_empty() {
            key.to_string()
        } else {
            format!("{at}.{key}")
        }
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => x
            .keys()
            .chain(y.keys().filter(|k| !x.contains_key(*k)))
            .find_map(|k| match (x.get(k), y.get(k)) {
                (Some(p), Some(q)) => first_difference(p, q, &join(k)),
                _ => Some(join(k)),
            }),
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| first_difference(p, q, &format!("{at}[{i}]"))),
        _ if a == b => None,
        _ if at.is_empty() => Some("(the whole object)".into()),
        _ => Some(at.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_paths_name_list_items() {
        let obj = json!({"spec": {"containers": [{"name": "a", "args": ["x"]}]}});
        let path = canonical(&FieldPath::must("spec.containers[0].args[0]"), &obj);
        assert_eq!(path.to_string(), "spec.containers[name=a].args[0]");
    }

    #[test]
    fn creates_named_items_in_expectations() {
        let mut obj = json!({"env": []});
        set_creating(&FieldPath::must("env[name=A].value"), &mut obj, json!("1"));
        assert_eq!(obj, json!({"env": [{"name": "A", "value": "1"}]}));
    }

    #[test]
    fn reports_the_first_difference() {
        let a = json!({"a": {"b": [1, 2]}, "c": 1});
        assert_eq!(
            first_difference(&a, &json!({"a": {"b": [1, 3]}, "c": 1}), ""),
            Some("a.b[1]".into())
        );
        assert_eq!(
            first_difference(&a, &json!({"a": {"b": [1, 2]}}), ""),
            Some("c".into())
        );
        assert_eq!(first_difference(&a, &a, ""), None);
    }
}
