//! The validation entry point: every rule over one fix.

use crate::config::PolicyConfig;
use crate::files::{self, EditedFile};
use crate::paths::shown;
use crate::{diff, limits, safety, schema, scope};
use autofix_core::{Remediation, Validation, Violation, WorkloadRef};
use serde_json::Value;

/// Everything validation looks at for one fix.
#[derive(Debug, Clone, Copy)]
pub struct ValidationInput<'a> {
    /// The workload the incident is about.
    pub workload: &'a WorkloadRef,
    /// The fix as data: the declared field changes.
    pub remediation: &'a Remediation,
    /// The effective workload object before the fix (after kustomize layering).
    pub rendered_before: &'a Value,
    /// The effective workload object after the fix.
    pub rendered_after: &'a Value,
    /// The GitOps files the fix edits, before and after.
    pub edits: &'a [EditedFile],
}

/// Runs every rule and collects the violations, in this order: `kind` and `namespace` of the
/// workload; `schema` of the rendered object; the edited files (`yaml`, `kind`, `namespace`,
/// `undeclared-document`, `schema`); safety (`privileged`, `allow-privilege-escalation`,
/// `capabilities-add`, `host-network`, `host-pid`, `host-ipc`, `host-path`); resources
/// (`limits-removed`, `limits-ceiling`, `requests-exceed-limits`, `invalid-quantity`); and the
/// declared paths (`undeclared-path`, `not-applied`).
pub fn validate(input: &ValidationInput, config: &PolicyConfig) -> Validation {
    let kind = input.workload.kind;
    let (before, after) = (input.rendered_before, input.rendered_after);
    let mut violations = scope::check(input.workload, before, after, config);
    violations.extend(rendered_schema(after));
    violations.extend(files::check(input.workload, input.edits));
    violations.extend(safety::check(before, after, kind));
    violations.extend(limits::check(before, after, kind, config));
    violations.extend(diff::check(before, after, input.remediation));
    Validation::from_violations(violations)
}

/// The rendered object must be complete and well-typed, whatever was there before.
fn rendered_schema(after: &Value) -> Vec<Violation> {
    let violation = |path, message| Violation {
        rule: "schema".to_string(),
        file: None,
        path,
        message,
    };
    match schema::problems(after) {
        Some(found) => found
            .into_iter()
            .map(|problem| violation(shown(&problem.path), problem.message))
            .collect(),
        None => vec![violation(
            None,
            format!(
                "the rendered object ({} {}) is not a kind kube-autofix can check",
                after
                    .get("apiVersion")
                    .and_then(Value::as_str)
                    .unwrap_or("(no apiVersion)"),
                after
                    .get("kind")
                    .and_then(Value::as_str)
                    .unwrap_or("(no kind)"),
            ),
        )],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use autofix_core::{FieldChange, FieldPath, WorkloadKind};
    use serde_json::json;

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "cart", "namespace": "shop"},
            "spec": {
                "selector": {"matchLabels": {"app": "cart"}},
                "template": {"spec": {"containers": [{"name": "cart", "image": "cart:1"}]}}
            }
        })
    }

    /// Validates `after` against [`deployment`] with `declared` as the only change.
    fn rules(after: &Value, declared: &str) -> Vec<(String, Option<String>)> {
        let workload = WorkloadRef {
            kind: WorkloadKind::Deployment,
            namespace: "shop".into(),
            name: "cart".into(),
        };
        let path = FieldPath::must(declared);
        let remediation = Remediation {
            strategy: "test".into(),
            changes: vec![FieldChange {
                to: path.get(after).cloned().unwrap_or(Value::Null),
                path,
                from: None,
                reason: "test".into(),
            }],
        };
        let input = ValidationInput {
            workload: &workload,
            remediation: &remediation,
            rendered_before: &deployment(),
            rendered_after: after,
            edits: &[],
        };
        let validation = validate(&input, &PolicyConfig::default());
        assert_eq!(validation.passed, validation.violations.is_empty());
        validation
            .violations
            .into_iter()
            .map(|v| (v.rule, v.path))
            .collect()
    }

    const CART: &str = "spec.template.spec.containers[name=cart]";

    #[test]
    fn a_declared_well_typed_change_passes() {
        let mut after = deployment();
        let policy = format!("{CART}.imagePullPolicy");
        FieldPath::must(&policy).set(&mut after, json!("Always"));
        assert_eq!(rules(&after, &policy), vec![]);
    }

    #[test]
    fn the_rendered_object_is_schema_checked() {
        let mut after = deployment();
        let typo = format!("{CART}.imagePullPolicyy");
        FieldPath::must(&typo).set(&mut after, json!("Always"));
        assert_eq!(rules(&after, &typo), [("schema".to_string(), Some(typo))]);

        let mut after = deployment();
        FieldPath::must("spec.selector").remove(&mut after);
        assert_eq!(
            rules(&after, "spec.selector"),
            [("schema".to_string(), Some("spec.selector".to_string()))]
        );

        let mut after = deployment();
        let replicas = "spec.replicas";
        FieldPath::must(replicas).set(&mut after, json!("3"));
        assert_eq!(
            rules(&after, replicas),
            [("schema".to_string(), Some(replicas.to_string()))]
        );
    }

    #[test]
    fn an_unknown_api_version_is_refused() {
        let mut after = deployment();
        FieldPath::must("apiVersion").set(&mut after, json!("apps/v1beta2"));
        assert_eq!(rules(&after, "apiVersion"), [("schema".to_string(), None)]);
    }
}
