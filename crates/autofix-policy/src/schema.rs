//! Schema check of one Kubernetes object against the k8s-openapi type of its kind.
//!
//! Three kinds of problem, each with the JSON path it is at:
//! - a wrong type (a string where a number belongs), found by deserializing (again through
//!   `serde_path_to_error` for its path, when the first pass fails); deserialization stops at
//!   the first one;
//! - an unknown field (`resources.limit`, `imagePullPolicyy`), which k8s-openapi would drop
//!   silently, found with `serde_ignored`;
//! - a missing required field: k8s-openapi fills those with defaults, so the typed value is
//!   serialized again and every key the round trip adds is one the document lacked.
//!
//! Keys starting with `$` are strategic-merge-patch directives (`$patch`,
//! `$setElementOrder/containers`) and are not unknown fields.

use crate::paths::{Step, field_path};
use autofix_core::FieldPath;
use k8s_openapi::Resource;
use k8s_openapi::api::{apps, autoscaling, batch, core, policy};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::fmt;

/// What is wrong at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProblemKind {
    /// A value of the wrong type or an invalid value (e.g. a wrong `apiVersion`).
    WrongType,
    /// A field the kind does not have.
    Unknown,
    /// A required field that is absent.
    Missing,
}

/// One schema problem of a document.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Problem {
    /// What is wrong.
    pub kind: ProblemKind,
    /// Where, from the document root.
    pub path: FieldPath,
    /// The explanation shown in the violation.
    pub message: String,
}

impl Problem {
    /// True when `other` is the same problem at the same place (messages may differ).
    pub fn same_as(&self, other: &Problem) -> bool {
        self.kind == other.kind && self.path == other.path
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Kinds whose pod template kube-autofix edits: they must have a `spec`.
const WORKLOAD_KINDS: [&str; 6] = [
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
    "Pod",
];

/// Checks `doc` against the type of its `kind` (and `apiVersion`, when present).
///
/// Returns `None` when kube-autofix has no type for it: custom resources, Kustomizations, old
/// API versions, and Secrets (SOPS-encrypted ones carry extra keys by design).
pub(crate) fn problems(doc: &Value) -> Option<Vec<Problem>> {
    let api_version = doc.get("apiVersion").and_then(Value::as_str);
    let kind = doc.get("kind").and_then(Value::as_str)?;
    let mut found = match kind {
        "Deployment" => check_as::<apps::v1::Deployment>(api_version, doc),
        "StatefulSet" => check_as::<apps::v1::StatefulSet>(api_version, doc),
        "DaemonSet" => check_as::<apps::v1::DaemonSet>(api_version, doc),
        "Job" => check_as::<batch::v1::Job>(api_version, doc),
        "CronJob" => check_as::<batch::v1::CronJob>(api_version, doc),
        "Pod" => check_as::<core::v1::Pod>(api_version, doc),
        "ConfigMap" => check_as::<core::v1::ConfigMap>(api_version, doc),
        "Service" => check_as::<core::v1::Service>(api_version, doc),
        "ServiceAccount" => check_as::<core::v1::ServiceAccount>(api_version, doc),
        "PodDisruptionBudget" => check_as::<policy::v1::PodDisruptionBudget>(api_version, doc),
        "HorizontalPodAutoscaler" => {
            check_as::<autoscaling::v2::HorizontalPodAutoscaler>(api_version, doc)
        }
        _ => None,
    }?;
    let mut require = |path: &str| {
        let path = FieldPath::must(path);
        if path.get(doc).is_none_or(Value::is_null) {
            found.push(Problem {
                kind: ProblemKind::Missing,
                message: format!("required field `{path}` is missing"),
                path,
            });
        }
    };
    require("metadata.name");
    if WORKLOAD_KINDS.contains(&kind) {
        require("spec");
    }
    Some(found)
}

/// Checks `doc` as a `T`: `None` when `apiVersion` is set and is not `T`'s.
pub(crate) fn check_as<T>(api_version: Option<&str>, doc: &Value) -> Option<Vec<Problem>>
where
    T: Resource + DeserializeOwned + Serialize,
{
    if api_version.is_some_and(|v| v != T::API_VERSION) {
        return None;
    }
    let (typed, unknown) = deserialize_noting_unknown::<T>(doc);
    let mut found: Vec<Problem> = unknown
        .iter()
        .map(|steps| {
            let path = field_path(steps, doc);
            let field = match steps.last() {
                Some(Step::Key(key)) => key.clone(),
                _ => path.to_string(),
            };
            Problem {
                kind: ProblemKind::Unknown,
                message: format!(
                    "unknown field `{field}` in {}: Kubernetes drops it (or rejects the object \
                     under strict field validation), so the setting never takes effect",
                    T::KIND
                ),
                path,
            }
        })
        .collect();
    match typed {
        Err(err) => {
            let steps: Vec<Step> = err
                .path()
                .iter()
                .filter_map(|segment| match segment {
                    serde_path_to_error::Segment::Seq { index } => Some(Step::Index(*index)),
                    serde_path_to_error::Segment::Map { key } => Some(Step::Key(key.clone())),
                    serde_path_to_error::Segment::Enum { .. }
                    | serde_path_to_error::Segment::Unknown => None,
                })
                .collect();
            found.push(Problem {
                kind: ProblemKind::WrongType,
                path: field_path(&steps, doc),
                message: format!("not a valid {}: {}", T::KIND, err.inner()),
            });
        }
        Ok(typed) => match serde_json::to_value(&typed) {
            Ok(round_trip) => {
                let mut steps = Vec::new();
                missing_keys(doc, &round_trip, &mut steps, &mut |steps| {
                    let path = field_path(steps, doc);
                    found.push(Problem {
                        kind: ProblemKind::Missing,
                        message: format!("required field `{path}` is missing"),
                        path,
                    });
                });
            }
            Err(err) => found.push(Problem {
                kind: ProblemKind::WrongType,
                path: FieldPath::default(),
                message: format!("cannot serialize the {} again: {err}", T::KIND),
            }),
        },
    }
    Some(found)
}

/// `doc` as a `T`, and the steps to every field `T` does not have (strategic-merge-patch
/// directives left out).
///
/// Most documents are valid, so the first pass does not track where it is; only a failing one
/// is read again through `serde_path_to_error`, whose error says where the value went wrong.
fn deserialize_noting_unknown<T: DeserializeOwned>(
    doc: &Value,
) -> (
    Result<T, serde_path_to_error::Error<serde_json::Error>>,
    Vec<Vec<Step>>,
) {
    let mut unknown = Vec::new();
    let mut note_unknown = |path: serde_ignored::Path| {
        let mut steps = Vec::new();
        ignored_steps(&path, &mut steps);
        let directive = steps
            .iter()
            .any(|s| matches!(s, Step::Key(k) if k.starts_with('$')));
        if !directive {
            unknown.push(steps);
        }
    };
    let untracked = T::deserialize(serde_ignored::Deserializer::new(doc, &mut note_unknown));
    // Both passes stop at the same first error, so the unknown fields met before it are the
    // same too.
    let typed = untracked.or_else(|_| serde_path_to_error::deserialize(doc));
    (typed, unknown)
}

fn ignored_steps(path: &serde_ignored::Path, out: &mut Vec<Step>) {
    match path {
        serde_ignored::Path::Root => {}
        serde_ignored::Path::Seq { parent, index } => {
            ignored_steps(parent, out);
            out.push(Step::Index(*index));
        }
        serde_ignored::Path::Map { parent, key } => {
            ignored_steps(parent, out);
            out.push(Step::Key(key.clone()));
        }
        serde_ignored::Path::Some { parent }
        | serde_ignored::Path::NewtypeStruct { parent }
        | serde_ignored::Path::NewtypeVariant { parent } => ignored_steps(parent, out),
    }
}

/// Calls `report` with every key present in `round_trip` but absent (or null) in `doc`.
///
/// The walk borrows its keys from `round_trip` and makes owned [`Step`]s only for a report:
/// nearly every key is present, and copying each one cost an allocation per key.
fn missing_keys<'a>(
    doc: &Value,
    round_trip: &'a Value,
    steps: &mut Vec<BorrowedStep<'a>>,
    report: &mut dyn FnMut(&[Step]),
) {
    match (doc, round_trip) {
        (Value::Object(doc), Value::Object(round_trip)) => {
            for (key, value) in round_trip {
                // k8s-openapi writes `apiVersion`/`kind` into embedded resources (e.g.
                // `volumeClaimTemplates`), where the API does not require them.
                let embedded_type_meta =
                    !steps.is_empty() && matches!(key.as_str(), "apiVersion" | "kind");
                steps.push(BorrowedStep::Key(key));
                match doc.get(key).filter(|v| !v.is_null()) {
                    Some(present) => missing_keys(present, value, steps, report),
                    None if embedded_type_meta => {}
                    None => report(&steps.iter().map(BorrowedStep::owned).collect::<Vec<_>>()),
                }
                steps.pop();
            }
        }
        (Value::Array(doc), Value::Array(round_trip)) => {
            for (index, (present, value)) in doc.iter().zip(round_trip).enumerate() {
                steps.push(BorrowedStep::Index(index));
                missing_keys(present, value, steps, report);
                steps.pop();
            }
        }
        _ => {}
    }
}

/// A [`Step`] whose key is borrowed from the value being walked.
#[derive(Debug, Clone, Copy)]
enum BorrowedStep<'a> {
    Key(&'a str),
    Index(usize),
}

impl BorrowedStep<'_> {
    fn owned(&self) -> Step {
        match *self {
            BorrowedStep::Key(key) => Step::Key(key.to_string()),
            BorrowedStep::Index(index) => Step::Index(index),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "cart", "namespace": "shop"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "cart"}},
                "template": {
                    "metadata": {"labels": {"app": "cart"}},
                    "spec": {"containers": [
                        {"name": "sidecar", "image": "envoy:1"},
                        {"name": "cart", "image": "cart:1.8.2",
                         "resources": {"limits": {"memory": "128Mi"}}}
                    ]}
                }
            }
        })
    }

    fn shown(problems: &[Problem]) -> Vec<(ProblemKind, String)> {
        problems
            .iter()
            .map(|p| (p.kind, p.path.to_string()))
            .collect()
    }

    #[test]
    fn a_valid_deployment_has_no_problem() {
        assert_eq!(problems(&deployment()), Some(vec![]));
    }

    #[test]
    fn nested_misspelled_fields_are_reported_with_their_path() {
        let mut doc = deployment();
        let cart = FieldPath::must("spec.template.spec.containers[name=cart]");
        assert!(
            cart.key("resources")
                .set(&mut doc, json!({"limit": {"memory": "256Mi"}}))
        );
        assert!(cart.key("imagePullPolicyy").set(&mut doc, json!("Always")));
        let found = problems(&doc).expect("known kind");
        assert_eq!(
            shown(&found),
            [
                (
                    ProblemKind::Unknown,
                    "spec.template.spec.containers[name=cart].imagePullPolicyy".to_string()
                ),
                (
                    ProblemKind::Unknown,
                    "spec.template.spec.containers[name=cart].resources.limit".to_string()
                ),
            ]
        );
        assert!(found[1].message.contains("`limit`"), "{}", found[1]);
    }

    #[test]
    fn wrong_types_name_the_json_path() {
        let mut doc = deployment();
        assert!(FieldPath::must("spec.replicas").set(&mut doc, json!("two")));
        let found = problems(&doc).expect("known kind");
        assert_eq!(
            shown(&found),
            [(ProblemKind::WrongType, "spec.replicas".to_string())]
        );

        let mut doc = deployment();
        let port = FieldPath::must("spec.template.spec.containers[name=cart].ports");
        assert!(port.set(&mut doc, json!([{"containerPort": "http"}])));
        let found = problems(&doc).expect("known kind");
        assert_eq!(
            shown(&found),
            [(
                ProblemKind::WrongType,
                "spec.template.spec.containers[name=cart].ports[0].containerPort".to_string()
            )]
        );
    }

    #[test]
    fn missing_required_fields_are_reported() {
        let mut doc = deployment();
        FieldPath::must("spec.selector").remove(&mut doc);
        FieldPath::must("spec.template.spec.containers[name=sidecar].name").remove(&mut doc);
        FieldPath::must("metadata.name").remove(&mut doc);
        let found = problems(&doc).expect("known kind");
        assert_eq!(
            shown(&found),
            [
                (ProblemKind::Missing, "spec.selector".to_string()),
                (
                    ProblemKind::Missing,
                    "spec.template.spec.containers[0].name".to_string()
                ),
                (ProblemKind::Missing, "metadata.name".to_string()),
            ]
        );
    }

    #[test]
    fn unknown_kinds_and_versions_are_not_checked() {
        assert_eq!(problems(&json!({"kind": "ExternalSecret"})), None);
        assert_eq!(
            problems(&json!({"apiVersion": "extensions/v1beta1", "kind": "Deployment"})),
            None
        );
        assert_eq!(problems(&json!({"metadata": {"name": "x"}})), None);
    }

    #[test]
    fn patch_directives_are_not_unknown_fields() {
        let patch = json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "cart"},
            "spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "cart"}],
                "containers": [{"name": "cart", "$patch": "delete"}]
            }}}
        });
        let found = problems(&patch).expect("known kind");
        assert!(
            found.iter().all(|p| p.kind == ProblemKind::Missing),
            "{found:?}"
        );
    }
}
