//! The checks of `autofix validate`: one standalone manifest object, as a CI linter sees it.
//!
//! A workload (Deployment, StatefulSet, DaemonSet, Job, CronJob, Pod) goes through the same
//! [`validate`] a fix does, as both the object before and after an empty remediation (so the
//! rules about what a change does, `limits-removed`, `undeclared-path` and `not-applied`, have
//! nothing to say), with the namespace lists of the policy left out: where an object may live
//! is not a property of the manifest. Two rules only a linter asks are added: every container
//! and init container has cpu and memory limits (`limits-missing`), and every limit is within
//! the policy's ceilings (`limits-ceiling`, which a fix only applies to the limits it sets).
//!
//! Any other kind with a k8s-openapi type is schema-checked like an edited file is (`schema`:
//! unknown fields, wrong types, missing required fields). Custom resources, old API versions
//! and SOPS-encrypted Secrets have no type to check against: they are skipped, with the reason.

use crate::config::PolicyConfig;
use crate::limits;
use crate::paths::shown;
use crate::schema::{Problem, ProblemKind, check_as, problems};
use crate::validate::{ValidationInput, validate};
use autofix_core::{FieldPath, Remediation, Violation, WorkloadKind, WorkloadRef};
use k8s_openapi::api::{apps, autoscaling, core, networking, rbac, scheduling, storage};
use serde_json::Value;

/// What the linter made of one object.
#[derive(Debug, Clone, PartialEq)]
pub enum Lint {
    /// The object was checked; it passed when there is no violation.
    Checked(Vec<Violation>),
    /// There is nothing to check it against; the reason, e.g. `no schema for
    /// external-secrets.io/v1beta1 ExternalSecret`.
    Skipped(String),
}

/// Lints one object (a document of a manifest file) against the policy's kinds and ceilings.
pub fn lint(object: &Value, config: &PolicyConfig) -> Lint {
    let Some(kind) = object.get("kind").and_then(Value::as_str) else {
        return Lint::Skipped("not a Kubernetes object: it has no `kind`".to_string());
    };
    if let Some(workload) = WorkloadKind::parse(kind) {
        return Lint::Checked(workload_violations(object, workload, config));
    }
    if kind == "Secret" && object.get("sops").is_some() {
        return Lint::Skipped("a SOPS-encrypted Secret: its values are ciphertext".to_string());
    }
    match other_problems(object, kind) {
        Some(found) => Lint::Checked(
            found
                .into_iter()
                .map(|problem| Violation {
                    rule: "schema".to_string(),
                    file: None,
                    path: shown(&problem.path),
                    message: problem.message,
                })
                .collect(),
        ),
        None => Lint::Skipped(format!(
            "no schema for {} {kind} (a custom resource, or an API version kube-autofix does \
             not know)",
            object
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or("(no apiVersion)")
        )),
    }
}

/// The pipeline's rules over the object as it stands, plus `limits-missing` and the ceilings.
fn workload_violations(
    object: &Value,
    kind: WorkloadKind,
    config: &PolicyConfig,
) -> Vec<Violation> {
    let text = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let workload = WorkloadRef {
        kind,
        namespace: text("/metadata/namespace").unwrap_or_else(|| "default".to_string()),
        name: text("/metadata/name").unwrap_or_default(),
    };
    let remediation = Remediation {
        strategy: "lint".to_string(),
        changes: Vec::new(),
    };
    let input = ValidationInput {
        workload: &workload,
        remediation: &remediation,
        rendered_before: object,
        rendered_after: object,
        edits: &[],
    };
    let anywhere = PolicyConfig {
        allowed_namespaces: Vec::new(),
        denied_namespaces: Vec::new(),
        ..config.clone()
    };
    let mut violations = validate(&input, &anywhere).violations;
    violations.extend(limits::missing(object, kind));
    // Against no previous object every limit counts as set, so every one meets the ceiling.
    violations.extend(
        limits::check(&Value::Null, object, kind, config)
            .into_iter()
            .filter(|v| v.rule == "limits-ceiling"),
    );
    violations
}

/// Schema problems of a kind kube-autofix never edits but knows the type of.
fn other_problems(object: &Value, kind: &str) -> Option<Vec<Problem>> {
    if let Some(found) = problems(object) {
        return Some(found);
    }
    let v = object.get("apiVersion").and_then(Value::as_str);
    let mut found = match kind {
        "Secret" => check_as::<core::v1::Secret>(v, object),
        "Namespace" => check_as::<core::v1::Namespace>(v, object),
        "PersistentVolumeClaim" => check_as::<core::v1::PersistentVolumeClaim>(v, object),
        "PersistentVolume" => check_as::<core::v1::PersistentVolume>(v, object),
        "ResourceQuota" => check_as::<core::v1::ResourceQuota>(v, object),
        "LimitRange" => check_as::<core::v1::LimitRange>(v, object),
        "ReplicaSet" => check_as::<apps::v1::ReplicaSet>(v, object),
        "Role" => check_as::<rbac::v1::Role>(v, object),
        "ClusterRole" => check_as::<rbac::v1::ClusterRole>(v, object),
        "RoleBinding" => check_as::<rbac::v1::RoleBinding>(v, object),
        "ClusterRoleBinding" => check_as::<rbac::v1::ClusterRoleBinding>(v, object),
        "NetworkPolicy" => check_as::<networking::v1::NetworkPolicy>(v, object),
        "Ingress" => check_as::<networking::v1::Ingress>(v, object),
        "IngressClass" => check_as::<networking::v1::IngressClass>(v, object),
        "HorizontalPodAutoscaler" => {
            check_as::<autoscaling::v1::HorizontalPodAutoscaler>(v, object)
        }
        "StorageClass" => check_as::<storage::v1::StorageClass>(v, object),
        "PriorityClass" => check_as::<scheduling::v1::PriorityClass>(v, object),
        _ => None,
    }?;
    let name = FieldPath::must("metadata.name");
    if name.get(object).is_none_or(Value::is_null) {
        found.push(Problem {
            kind: ProblemKind::Missing,
            message: format!("required field `{name}` is missing"),
            path: name,
        });
    }
    Some(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(container: Value) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "cart", "namespace": "kube-system"},
            "spec": {
                "selector": {"matchLabels": {"app": "cart"}},
                "template": {
                    "metadata": {"labels": {"app": "cart"}},
                    "spec": {"containers": [container]}
                }
            }
        })
    }

    fn rules(object: &Value) -> Vec<(String, Option<String>)> {
        match lint(object, &PolicyConfig::default()) {
            Lint::Checked(violations) => violations.into_iter().map(|v| (v.rule, v.path)).collect(),
            Lint::Skipped(why) => panic!("skipped: {why}"),
        }
    }

    const CART: &str = "spec.template.spec.containers[name=cart]";

    #[test]
    fn a_bounded_workload_passes_in_any_namespace() {
        let object = deployment(json!({
            "name": "cart", "image": "cart:1",
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}
        }));
        assert_eq!(rules(&object), vec![]);
    }

    #[test]
    fn missing_and_excessive_limits_and_privileges_are_reported() {
        let object = deployment(json!({
            "name": "cart", "image": "cart:1",
            "securityContext": {"privileged": true},
            "resources": {"limits": {"memory": "64Gi"}}
        }));
        assert_eq!(
            rules(&object),
            [
                (
                    "privileged".to_string(),
                    Some(format!("{CART}.securityContext.privileged"))
                ),
                (
                    "limits-missing".to_string(),
                    Some(format!("{CART}.resources.limits.cpu"))
                ),
                (
                    "limits-ceiling".to_string(),
                    Some(format!("{CART}.resources.limits.memory"))
                ),
            ]
        );
    }

    #[test]
    fn other_known_kinds_are_schema_checked() {
        let policy = json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "web"},
            "spec": {"podSelecter": {}}
        });
        assert_eq!(
            rules(&policy),
            [("schema".to_string(), Some("spec.podSelecter".to_string()))]
        );
        let role = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]
        });
        assert_eq!(rules(&role), vec![]);
    }

    #[test]
    fn custom_resources_and_encrypted_secrets_are_skipped() {
        let external =
            json!({"apiVersion": "external-secrets.io/v1beta1", "kind": "ExternalSecret"});
        assert!(matches!(
            lint(&external, &PolicyConfig::default()),
            Lint::Skipped(_)
        ));
        let sops = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
                          "stringData": {"password": "ENC[...]"}, "sops": {}});
        assert!(matches!(
            lint(&sops, &PolicyConfig::default()),
            Lint::Skipped(_)
        ));
        assert!(matches!(
            lint(&json!("text"), &PolicyConfig::default()),
            Lint::Skipped(_)
        ));
    }
}
