//! The model's reply: a patch on the workload (never a manifest), its JSON schema, and the
//! semantic check every reply passes before it becomes a [`Remediation`].
//!
//! Strict structured output cannot express "any JSON value", so each new value travels as a
//! string holding JSON (`value_json: "\"256Mi\""`, `"2"`, `"true"`) and is parsed here.

use autofix_core::path::Segment;
use autofix_core::{Category, FieldChange, FieldPath, WorkloadKind};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Most field changes one reply may propose: a patch stays small enough to review.
pub const MAX_CHANGES: usize = 5;

/// The model's reply: a diagnosis and a patch of the workload's pod template (never a manifest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "autofix_patch")]
pub struct PatchReply {
    /// The root-cause class: one of the listed categories (`unknown` when none fits).
    pub category: String,
    /// The root cause, in one sentence.
    pub root_cause: String,
    /// A short summary of the reasoning that leads from the evidence to the root cause.
    pub reasoning: String,
    /// The fix in a few words (e.g. `raise memory limit`); empty when there is no change.
    pub fix_summary: String,
    /// How sure you are, from 0 to 1.
    pub confidence: f64,
    /// Field changes on the workload object, inside its pod template; empty when no such
    /// change fixes the root cause (humans are then told).
    pub changes: Vec<ProposedChange>,
    /// The evidence relied on: short quotes or references to what was seen.
    pub evidence: Vec<String>,
}

/// One field to set on the workload object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposedChange {
    /// Dotted path from the workload object's root, selecting list items by name, e.g.
    /// `spec.template.spec.containers[name=app].resources.limits.memory`.
    pub path: String,
    /// The new value as JSON text, e.g. `"\"512Mi\""` for a string, `"3"` for a number.
    pub value_json: String,
    /// Why this change fixes the root cause, in one sentence.
    pub reason: String,
}

/// The JSON schema sent as `response_format` (strict mode): every property required, no
/// additional properties, `category` limited to the known categories.
pub fn patch_schema() -> Value {
    let settings = schemars::generate::SchemaSettings::draft2020_12().with(|s| {
        s.inline_subschemas = true;
    });
    let schema = settings
        .into_generator()
        .into_root_schema_for::<PatchReply>();
    let mut value = schema.to_value();
    if let Some(root) = value.as_object_mut() {
        root.remove("$schema");
    }
    strip_formats(&mut value);
    let names: Vec<Value> = Category::ALL
        .iter()
        .map(|c| Value::String(c.as_str().to_string()))
        .collect();
    if let Some(category) = value.pointer_mut("/properties/category")
        && let Some(map) = category.as_object_mut()
    {
        map.insert("enum".into(), Value::Array(names));
    }
    value
}

/// Removes `format` annotations (`double`, `uint`...), which strict mode does not accept on
/// numbers.
fn strip_formats(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.get("format").is_some_and(Value::is_string) {
                map.remove("format");
            }
            map.values_mut().for_each(strip_formats);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_formats),
        _ => {}
    }
}

/// Parses the reply text; the error names the failing JSON path.
pub(crate) fn parse_reply(text: &str) -> Result<PatchReply, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    let reply: PatchReply = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            format!("the reply is not a valid patch object: {}", e.inner())
        } else {
            format!("at `{path}`: {}", e.inner())
        }
    })?;
    de.end()
        .map_err(|e| format!("text after the JSON object: {e}"))?;
    Ok(reply)
}

/// What a reply may touch: the workload object and, for the narrow scope, one container and
/// one field.
pub(crate) struct PatchScope<'a> {
    /// The live workload object (redacted), which paths address.
    pub object: &'a Value,
    /// Its kind, which says where the pod template is.
    pub kind: WorkloadKind,
    /// When set, every change must be inside this container.
    pub only_container: Option<&'a str>,
    /// Most changes accepted.
    pub max_changes: usize,
}

/// A reply that passed the semantic check.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CheckedPatch {
    /// The category named.
    pub category: Category,
    /// The changes, with `from` read from the live object.
    pub changes: Vec<FieldChange>,
}

/// Where the pod template sits in an object of `kind`.
pub(crate) fn template_prefix(kind: WorkloadKind) -> &'static str {
    match kind {
        WorkloadKind::Pod => "spec",
        WorkloadKind::CronJob => "spec.jobTemplate.spec.template",
        _ => "spec.template",
    }
}

/// The lists of containers in a pod spec, each selected by `name`.
const CONTAINER_LISTS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];

impl PatchScope<'_> {
    /// Checks a parsed reply; on refusal answers every problem found, for the model to fix.
    pub(crate) fn check(&self, reply: &PatchReply) -> Result<CheckedPatch, Vec<String>> {
        let mut errors = Vec::new();
        let category = Category::ALL
            .into_iter()
            .find(|c| c.as_str() == reply.category);
        if category.is_none() {
            errors.push(format!(
                "unknown category {:?}; use one of: {}",
                reply.category,
                Category::ALL.map(Category::as_str).join(", ")
            ));
        }
        if !(0.0..=1.0).contains(&reply.confidence) {
            errors.push(format!("confidence {} is outside [0, 1]", reply.confidence));
        }
        if reply.changes.len() > self.max_changes {
            errors.push(format!(
                "{} changes proposed; at most {} are accepted",
                reply.changes.len(),
                self.max_changes
            ));
        }
        let mut changes = Vec::new();
        for (i, proposed) in reply.changes.iter().enumerate() {
            match self.check_change(proposed) {
                Ok(change) if changes.iter().any(|c: &FieldChange| c.path == change.path) => {
                    errors.push(format!("changes[{i}]: `{}` is changed twice", change.path));
                }
                Ok(change) => changes.push(change),
                Err(e) => errors.push(format!("changes[{i}] (`{}`): {e}", proposed.path)),
            }
        }
        match category {
            Some(category) if errors.is_empty() => Ok(CheckedPatch { category, changes }),
            _ => Err(errors),
        }
    }

    fn check_change(&self, proposed: &ProposedChange) -> Result<FieldChange, String> {
        let path: FieldPath = proposed
            .path
            .parse()
            .map_err(|e: autofix_core::path::PathError| e.to_string())?;
        let template = FieldPath::must(template_prefix(self.kind));
        let pod_spec = if self.kind == WorkloadKind::Pod {
            template.clone()
        } else {
            template.key("spec")
        };
        let annotations = template.key("metadata").key("annotations");
        if !(path.starts_with(&pod_spec) && path.0.len() > pod_spec.0.len()
            || path.starts_with(&annotations) && path.0.len() > annotations.0.len())
        {
            return Err(format!(
                "only fields inside the {}'s pod template may change (paths under `{pod_spec}.` \
                 or `{annotations}.`); other objects and fields cannot be patched",
                self.kind
            ));
        }
        self.check_containers(&path, pod_spec.0.len())?;
        self.check_list_items(&path)?;
        let to: Value = serde_json::from_str(&proposed.value_json).map_err(|e| {
            format!("value_json is not JSON text ({e}); quote strings: \"\\\"512Mi\\\"\"")
        })?;
        let from = path.get(self.object).filter(|v| !v.is_null()).cloned();
        if let Some(current) = &from {
            if json_type(current) != json_type(&to) {
                return Err(format!(
                    "the field holds a {} ({current}), the new value is a {}",
                    json_type(current),
                    json_type(&to)
                ));
            }
            if *current == to {
                return Err("the new value equals the current one".to_string());
            }
        }
        if proposed.reason.trim().is_empty() {
            return Err("the reason is empty".to_string());
        }
        Ok(FieldChange {
            path,
            from,
            to,
            reason: proposed.reason.trim().to_string(),
        })
    }

    /// Containers are selected by an existing name, and the narrow scope keeps to one.
    fn check_containers(&self, path: &FieldPath, spec_len: usize) -> Result<(), String> {
        let container = match (path.0.get(spec_len), path.0.get(spec_len + 1)) {
            (Some(Segment::Key(list)), Some(item)) if CONTAINER_LISTS.contains(&list.as_str()) => {
                match item {
                    Segment::Select { key, value } if key == "name" => {
                        let parent = FieldPath(path.0[..=spec_len].to_vec());
                        let exists = parent
                            .get(self.object)
                            .and_then(Value::as_array)
                            .is_some_and(|items| items.iter().any(|c| c["name"] == *value));
                        if !exists {
                            return Err(format!(
                                "there is no container named {value:?} in `{parent}`"
                            ));
                        }
                        Some(value.as_str())
                    }
                    _ => return Err(format!("select containers by name: `{list}[name=NAME]`")),
                }
            }
            _ => None,
        };
        match self.only_container {
            Some(only) if container != Some(only) => Err(format!(
                "this step may only change container {only:?} (`containers[name={only}]`)"
            )),
            _ => Ok(()),
        }
    }

    /// Every list item a path selects exists (a missing map is created, a missing item is not).
    fn check_list_items(&self, path: &FieldPath) -> Result<(), String> {
        for (i, segment) in path.0.iter().enumerate() {
            if matches!(segment, Segment::Key(_)) {
                continue;
            }
            let prefix = FieldPath(path.0[..=i].to_vec());
            if prefix.get(self.object).is_none() {
                return Err(format!(
                    "`{prefix}` selects a list item that does not exist"
                ));
            }
        }
        Ok(())
    }
}

/// The JSON type of a value, in words; numbers are one type.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> Value {
        json!({"kind": "Deployment", "spec": {"replicas": 2, "template": {"spec": {
            "containers": [{"name": "app", "image": "a:1",
                "resources": {"limits": {"memory": "256Mi"}}}]}}}})
    }

    fn reply(changes: Vec<(&str, &str)>) -> PatchReply {
        PatchReply {
            category: "oom_killed".into(),
            root_cause: "too little memory".into(),
            reasoning: "OOMKilled".into(),
            fix_summary: "raise memory limit".into(),
            confidence: 0.8,
            changes: changes
                .into_iter()
                .map(|(path, value)| ProposedChange {
                    path: path.into(),
                    value_json: value.into(),
                    reason: "because".into(),
                })
                .collect(),
            evidence: vec![],
        }
    }

    fn check(
        object: &Value,
        reply: &PatchReply,
        only: Option<&str>,
    ) -> Result<CheckedPatch, Vec<String>> {
        PatchScope {
            object,
            kind: WorkloadKind::Deployment,
            only_container: only,
            max_changes: MAX_CHANGES,
        }
        .check(reply)
    }

    const MEMORY: &str = "spec.template.spec.containers[name=app].resources.limits.memory";

    #[test]
    fn a_well_typed_change_in_the_template_passes_with_its_live_value() {
        let object = deployment();
        let checked = check(&object, &reply(vec![(MEMORY, "\"512Mi\"")]), Some("app")).unwrap();
        assert_eq!(checked.category, Category::OomKilled);
        assert_eq!(checked.changes[0].from, Some(json!("256Mi")));
        assert_eq!(checked.changes[0].to, json!("512Mi"));
    }

    #[test]
    fn paths_outside_the_pod_template_are_refused() {
        let object = deployment();
        for path in [
            "spec.replicas",
            "metadata.labels.x",
            "ClusterRoleBinding/admin.subjects",
            "spec.template.metadata.labels.app",
        ] {
            let errors = check(&object, &reply(vec![(path, "3")]), None).unwrap_err();
            assert!(errors[0].contains("pod template"), "{path}: {errors:?}");
        }
    }

    #[test]
    fn wrong_types_unknown_containers_and_categories_are_refused() {
        let object = deployment();
        let errors = check(&object, &reply(vec![(MEMORY, "512")]), None).unwrap_err();
        assert!(errors[0].contains("holds a string"), "{errors:?}");
        let errors = check(
            &object,
            &reply(vec![(
                "spec.template.spec.containers[name=nope].image",
                "\"b:2\"",
            )]),
            None,
        )
        .unwrap_err();
        assert!(errors[0].contains("no container named"), "{errors:?}");
        let errors = check(
            &object,
            &reply(vec![("spec.template.spec.containers[0].image", "\"b:2\"")]),
            None,
        )
        .unwrap_err();
        assert!(errors[0].contains("by name"), "{errors:?}");
        let errors = check(&object, &reply(vec![(MEMORY, "not json")]), None).unwrap_err();
        assert!(errors[0].contains("not JSON"), "{errors:?}");
        let mut bad = reply(vec![]);
        bad.category = "cosmic_rays".into();
        assert!(check(&object, &bad, None).unwrap_err()[0].contains("unknown category"));
    }

    #[test]
    fn the_narrow_scope_keeps_to_one_container() {
        let object = json!({"spec": {"template": {"spec": {"containers": [{"name": "app"}, {"name": "side"}]}}}});
        let r = reply(vec![(
            "spec.template.spec.containers[name=side].image",
            "\"x:1\"",
        )]);
        assert!(check(&object, &r, Some("app")).unwrap_err()[0].contains("only change container"));
        assert!(check(&object, &r, None).is_ok());
    }

    #[test]
    fn privileged_is_inside_the_template_and_left_to_the_policy() {
        let object = deployment();
        let r = reply(vec![(
            "spec.template.spec.containers[name=app].securityContext.privileged",
            "true",
        )]);
        assert!(check(&object, &r, None).is_ok());
    }

    #[test]
    fn the_schema_is_strict() {
        let schema = patch_schema();
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["additionalProperties"], false);
        let required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for key in schema["properties"].as_object().unwrap().keys() {
            assert!(required.contains(&key.as_str()), "{key} not required");
        }
        let item = &schema["properties"]["changes"]["items"];
        assert_eq!(item["additionalProperties"], false);
        assert_eq!(item["required"].as_array().unwrap().len(), 3);
        assert_eq!(
            schema["properties"]["category"]["enum"]
                .as_array()
                .unwrap()
                .len(),
            14
        );
        assert!(!schema.to_string().contains("\"format\""));
    }

    #[test]
    fn parse_errors_name_the_path() {
        let err = parse_reply(r#"{"category": "unknown", "changes": [{"path": 3}]}"#).unwrap_err();
        assert!(err.contains("changes[0].path"), "{err}");
        assert!(parse_reply("not json").is_err());
    }
}
