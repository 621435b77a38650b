//! The effective workload: the base document, then every layer in order (strategic merge,
//! JSON6902, namespace, name affixes, replicas, images); and, for one field, the layer whose
//! text defines its value.

use crate::error::RemedyError;
use crate::image::ImageOverride;
use crate::jsonpatch;
use crate::locate::{DocRef, Layer, WorkloadSources};
use crate::repo::GitopsRepo;
use autofix_core::WorkloadKind;
use autofix_core::path::{FieldPath, Segment};
use autofix_core::yaml;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// Where the text that gives a field its value is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Definer {
    /// At `path` of document `doc`: the base, a strategic-merge patch, or the `value` of a
    /// JSON6902 operation.
    Doc { doc: DocRef, path: FieldPath },
    /// A kustomize `images:` entry, which receives the image `before`.
    Image {
        kustomization: DocRef,
        at: FieldPath,
        before: String,
    },
    /// A kustomize `replicas:` entry.
    Replicas {
        kustomization: DocRef,
        at: FieldPath,
    },
    /// Something that cannot be edited to set a value (a JSON patch `move`, a namespace change).
    Opaque { file: String, what: String },
}

impl GitopsRepo {
    /// The workload as the cluster gets it: the base document with every layer applied.
    ///
    /// `overrides` maps relative file paths to texts that replace the repo's, e.g. the `after`
    /// of [`FileEdit`](crate::FileEdit)s to see the effect of an edit.
    pub fn render(
        &self,
        sources: &WorkloadSources,
        overrides: &BTreeMap<String, String>,
    ) -> Result<Value, RemedyError> {
        Ok(layered(self, sources, overrides, None)?.0)
    }

    /// The value of one document (or of an inline patch), with `overrides` taking precedence.
    pub(crate) fn doc_value(
        &self,
        doc: &DocRef,
        overrides: &BTreeMap<String, String>,
    ) -> Result<Value, RemedyError> {
        let yaml_err = |source| RemedyError::Yaml {
            file: doc.file.clone(),
            source,
        };
        let docs: Cow<[Value]> = match overrides.get(&doc.file) {
            Some(text) => Cow::Owned(yaml::parse_documents(text).map_err(yaml_err)?),
            None => Cow::Borrowed(self.documents(&doc.file)?),
        };
        let gone = || RemedyError::Kustomization {
            file: doc.file.clone(),
            reason: format!("document #{} is gone", doc.doc),
        };
        let value = docs.get(doc.doc).ok_or_else(gone)?;
        let Some(embedded) = &doc.embedded else {
            return Ok(value.clone());
        };
        let text = embedded
            .at
            .get(value)
            .and_then(Value::as_str)
            .ok_or_else(|| RemedyError::Kustomization {
                file: doc.file.clone(),
                reason: format!("no inline patch text at {}", embedded.at),
            })?;
        yaml::parse_documents(text)
            .map_err(yaml_err)?
            .into_iter()
            .nth(embedded.doc)
            .ok_or_else(gone)
    }
}

/// The rendered workload and the definer of `path`'s value (`None`: the field does not exist).
pub(crate) fn trace(
    repo: &GitopsRepo,
    sources: &WorkloadSources,
    overrides: &BTreeMap<String, String>,
    path: &FieldPath,
) -> Result<(Value, Option<Definer>), RemedyError> {
    layered(repo, sources, overrides, Some(path))
}

fn layered(
    repo: &GitopsRepo,
    sources: &WorkloadSources,
    overrides: &BTreeMap<String, String>,
    path: Option<&FieldPath>,
) -> Result<(Value, Option<Definer>), RemedyError> {
    let mut obj = repo.doc_value(&sources.base, overrides)?;
    let mut definer = path
        .filter(|p| p.get(&obj).is_some())
        .map(|p| Definer::Doc {
            doc: sources.base.clone(),
            path: p.clone(),
        });
    for layer in &sources.layers {
        let before = path.and_then(|p| p.get(&obj)).cloned();
        let claim = apply(
            repo,
            layer,
            &mut obj,
            sources.workload.kind,
            overrides,
            path,
        )?;
        let Some(path) = path else { continue };
        definer = match (claim, path.get(&obj)) {
            (_, None) => None,
            (Some(claim), Some(_)) => Some(claim),
            // A mapping whose content changed below it still lives where it was written.
            (None, Some(v))
                if Some(v) != before.as_ref() && !both_collections(before.as_ref(), v) =>
            {
                Some(Definer::Opaque {
                    file: layer.file().to_string(),
                    what: describe(layer),
                })
            }
            (None, Some(_)) => definer,
        };
    }
    Ok((obj, definer))
}

fn both_collections(before: Option<&Value>, after: &Value) -> bool {
    matches!(
        (before, after),
        (Some(Value::Object(_)), Value::Object(_)) | (Some(Value::Array(_)), Value::Array(_))
    )
}

fn describe(layer: &Layer) -> String {
    match layer {
        Layer::StrategicMerge { .. } => "a strategic-merge patch directive".into(),
        Layer::Json6902 { .. } => "a JSON patch".into(),
        Layer::Images { at, .. } => format!("the image override {at}"),
        Layer::Replicas { at, .. } => format!("the replicas override {at}"),
        Layer::Namespace { .. } => "a namespace transformer".into(),
        Layer::NameAffix { .. } => "namePrefix/nameSuffix".into(),
    }
}

/// Applies one layer; when `path` is given, returns the layer's claim to define its value.
fn apply(
    repo: &GitopsRepo,
    layer: &Layer,
    obj: &mut Value,
    kind: WorkloadKind,
    overrides: &BTreeMap<String, String>,
    path: Option<&FieldPath>,
) -> Result<Option<Definer>, RemedyError> {
    match layer {
        Layer::StrategicMerge { patch } => {
            let value = repo.doc_value(patch, overrides)?;
            strategic_merge(obj, &value);
            Ok(path
                .filter(|p| p.get(&value).is_some())
                .map(|p| Definer::Doc {
                    doc: patch.clone(),
                    path: p.clone(),
                }))
        }
        Layer::Json6902 { patch } => {
            let value = repo.doc_value(patch, overrides)?;
            let ops = value.as_array().ok_or_else(|| RemedyError::JsonPatch {
                file: patch.file.clone(),
                op: "(document)".into(),
                reason: "a JSON6902 patch must be a list of operations".into(),
            })?;
            let mut claim = None;
            for (k, op) in ops.iter().enumerate() {
                let landed =
                    jsonpatch::apply(obj, op).map_err(|reason| RemedyError::JsonPatch {
                        file: patch.file.clone(),
                        op: jsonpatch::describe(op),
                        reason,
                    })?;
                let (Some(path), Some(landed)) = (path, landed) else {
                    continue;
                };
                if let Some(rest) = below(path, obj, &landed.tokens) {
                    claim = Some(if landed.own_value {
                        let mut inner = vec![Segment::Index(k), Segment::Key("value".into())];
                        inner.extend(rest);
                        Definer::Doc {
                            doc: patch.clone(),
                            path: FieldPath(inner),
                        }
                    } else {
                        Definer::Opaque {
                            file: patch.file.clone(),
                            what: format!("the JSON patch operation {}", jsonpatch::describe(op)),
                        }
                    });
                }
            }
            Ok(claim)
        }
        Layer::Images { kustomization, at } => {
            let doc = repo.doc_value(kustomization, overrides)?;
            let entry = at
                .get(&doc)
                .and_then(ImageOverride::from_value)
                .ok_or_else(|| RemedyError::Kustomization {
                    file: kustomization.file.clone(),
                    reason: format!("{at} is not an images entry with a name"),
                })?;
            let mut claim = None;
            for (image_path, image) in container_images(obj, kind) {
                let Some(new) = entry.apply(&image) else {
                    continue;
                };
                if path == Some(&image_path) && entry.changes_image() {
                    claim = Some(Definer::Image {
                        kustomization: kustomization.clone(),
                        at: at.clone(),
                        before: image,
                    });
                }
                image_path.set(obj, Value::String(new));
            }
            Ok(claim)
        }
        Layer::Replicas { kustomization, at } => {
            let doc = repo.doc_value(kustomization, overrides)?;
            let entry = at.get(&doc).unwrap_or(&Value::Null);
            let name = obj.pointer("/metadata/name").and_then(Value::as_str);
            let (Some(count), true) = (
                entry.get("count"),
                entry.get("name").and_then(Value::as_str) == name,
            ) else {
                return Ok(None);
            };
            let replicas = FieldPath::must("spec.replicas");
            replicas.set(obj, count.clone());
            Ok((path == Some(&replicas)).then(|| Definer::Replicas {
                kustomization: kustomization.clone(),
                at: at.clone(),
            }))
        }
        Layer::Namespace {
            namespace,
            only_if_unset,
            ..
        } => {
            let field = FieldPath::must("metadata.namespace");
            if !only_if_unset || field.get(obj).is_none() {
                field.set(obj, Value::String(namespace.clone()));
            }
            Ok(None)
        }
        Layer::NameAffix { prefix, suffix, .. } => {
            let field = FieldPath::must("metadata.name");
            let name = field.get(obj).and_then(Value::as_str).unwrap_or_default();
            let renamed = format!("{prefix}{name}{suffix}");
            field.set(obj, Value::String(renamed));
            Ok(None)
        }
    }
}

/// The container images of a workload object, with the path of each `image` field.
fn container_images(obj: &Value, kind: WorkloadKind) -> Vec<(FieldPath, String)> {
    let pod = FieldPath::must(kind.pod_spec_prefix());
    let mut out = Vec::new();
    for list in ["initContainers", "containers"] {
        let items = pod.key(list).get(obj).and_then(Value::as_array);
        for (i, container) in items.into_iter().flatten().enumerate() {
            let Some(image) = container.get("image").and_then(Value::as_str) else {
                continue;
            };
            let item = match container.get("name").and_then(Value::as_str) {
                Some(name) => pod.key(list).select("name", name),
                None => {
                    let mut p = pod.key(list);
                    p.0.push(Segment::Index(i));
                    p
                }
            };
            out.push((item.key("image"), image.to_string()));
        }
    }
    out
}

/// When `tokens` (where a JSON patch put a value) is `path` or above it: the rest of `path`
/// below `tokens`.
fn below(path: &FieldPath, obj: &Value, tokens: &[String]) -> Option<Vec<Segment>> {
    if tokens.len() > path.0.len() {
        return None;
    }
    let mut node = Some(obj);
    for (segment, token) in path.0.iter().zip(tokens) {
        let resolved = match segment {
            Segment::Key(k) => k.clone(),
            Segment::Index(i) => i.to_string(),
            Segment::Select { key, value } => node?
                .as_array()?
                .iter()
                .position(|item| matches_selector(item, key, value))?
                .to_string(),
        };
        if &resolved != token {
            return None;
        }
        node = node.and_then(|n| match n {
            Value::Object(map) => map.get(token),
            Value::Array(items) => items.get(token.parse::<usize>().ok()?),
            _ => None,
        });
    }
    Some(path.0[tokens.len()..].to_vec())
}

/// How [`FieldPath`] matches `[key=value]`.
pub(crate) fn matches_selector(item: &Value, key: &str, value: &str) -> bool {
    match item.get(key) {
        Some(Value::String(s)) => s == value,
        Some(other) => serde_json::from_str::<Value>(value).is_ok_and(|v| v == *other),
        None => false,
    }
}

/// The merge key of a list field under Kubernetes' strategic merge (pod spec fields).
fn merge_key(field: &str) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims" => "name",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "ports" => "containerPort",
        "hostAliases" => "ip",
        "topologySpreadConstraints" => "topologyKey",
        "readinessGates" => "conditionType",
        _ => return None,
    })
}

/// Kubernetes strategic merge of `patch` into `target`: mappings merge, lists with a merge key
/// merge item by item, other lists and scalars are replaced, `null` deletes, and the
/// `$patch: replace|delete` directives are honoured.
pub(crate) fn strategic_merge(target: &mut Value, patch: &Value) {
    let (Value::Object(t), Value::Object(p)) = (&mut *target, patch) else {
        *target = without_directives(patch);
        return;
    };
    if directive(patch) == Some("replace") {
        *target = without_directives(patch);
        return;
    }
    for (key, value) in p {
        if key.starts_with('$') {
            continue;
        }
        if value.is_null() || directive(value) == Some("delete") {
            t.remove(key);
            continue;
        }
        match (t.get_mut(key), value) {
            (Some(Value::Array(items)), Value::Array(patch_items)) => {
                merge_list(items, patch_items, merge_key(key));
            }
            (Some(existing @ Value::Object(_)), Value::Object(_)) => {
                strategic_merge(existing, value)
            }
            _ => {
                t.insert(key.clone(), without_directives(value));
            }
        }
    }
}

fn merge_list(items: &mut Vec<Value>, patch: &[Value], key: Option<&str>) {
    let replace = patch.iter().any(|p| directive(p) == Some("replace"));
    let Some(key) = key.filter(|_| !replace) else {
        *items = patch
            .iter()
            .filter(|p| directive(p).is_none())
            .map(without_directives)
            .collect();
        return;
    };
    for entry in patch {
        let id = entry.get(key);
        if directive(entry) == Some("delete") {
            items.retain(|item| id.is_none() || item.get(key) != id);
            continue;
        }
        match items
            .iter_mut()
            .find(|item| id.is_some() && item.get(key) == id)
        {
            Some(existing) => strategic_merge(existing, entry),
            None => items.push(without_directives(entry)),
        }
    }
}

fn directive(value: &Value) -> Option<&str> {
    value.get("$patch").and_then(Value::as_str)
}

fn without_directives(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), without_directives(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_directives).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merges_containers_by_name_and_replaces_plain_lists() {
        let mut base = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "x", "args": ["1", "2"], "resources": {"limits": {"memory": "1Gi"}}},
            {"name": "b", "image": "y"}
        ]}}}});
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "args": ["3"], "resources": {"limits": {"cpu": "250m"}}},
            {"name": "c", "image": "z"},
            {"name": "b", "$patch": "delete"}
        ]}}}});
        strategic_merge(&mut base, &patch);
        assert_eq!(
            base,
            json!({"spec": {"template": {"spec": {"containers": [
                {"name": "a", "image": "x", "args": ["3"], "resources": {"limits": {"memory": "1Gi", "cpu": "250m"}}},
                {"name": "c", "image": "z"}
            ]}}}})
        );
    }

    #[test]
    fn honours_null_and_replace_directives() {
        let mut base = json!({"a": {"x": 1, "y": 2}, "b": 1});
        strategic_merge(
            &mut base,
            &json!({"a": {"$patch": "replace", "z": 3}, "b": null}),
        );
        assert_eq!(base, json!({"a": {"z": 3}}));
    }

    #[test]
    fn finds_the_rest_of_a_path_below_a_json_patch_target() {
        let obj = json!({"spec": {"containers": [{"name": "a"}, {"name": "b", "r": {"l": 1}}]}});
        let path = FieldPath::must("spec.containers[name=b].r.l");
        let tokens: Vec<String> = ["spec", "containers", "1", "r"].map(String::from).to_vec();
        assert_eq!(
            below(&path, &obj, &tokens),
            Some(vec![Segment::Key("l".into())])
        );
        let other: Vec<String> = ["spec", "containers", "0"].map(String::from).to_vec();
        assert_eq!(below(&path, &obj, &other), None);
    }
}
