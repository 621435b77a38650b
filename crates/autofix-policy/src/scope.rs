//! Where the bot may act: the workload's kind and namespace (`kind` and `namespace` rules).

use crate::config::PolicyConfig;
use autofix_core::{Violation, WorkloadRef};
use serde_json::Value;

fn violation(rule: &str, path: Option<&str>, message: String) -> Violation {
    Violation {
        rule: rule.to_string(),
        file: None,
        path: path.map(str::to_string),
        message,
    }
}

/// The `metadata.namespace` of an object, when set.
pub(crate) fn namespace_of(object: &Value) -> Option<&str> {
    object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
}

/// Violations of the workload's kind and namespace against the policy, and of a rendered
/// object whose kind or namespace is not the workload's or changes with the fix.
pub(crate) fn check(
    workload: &WorkloadRef,
    before: &Value,
    after: &Value,
    config: &PolicyConfig,
) -> Vec<Violation> {
    let mut out = Vec::new();
    let kind = workload.kind.as_str();
    if !config.kind_allowed(kind) {
        out.push(violation(
            "kind",
            None,
            format!(
                "{workload}: kind {kind} is not in the policy's allowed_kinds ({})",
                config.allowed_kinds.join(", ")
            ),
        ));
    }
    let rendered_kind = after.get("kind").and_then(Value::as_str);
    if rendered_kind != Some(kind) {
        out.push(violation(
            "kind",
            Some("kind"),
            format!(
                "the rendered object is a {}, not the {kind} the incident is about",
                rendered_kind.unwrap_or("(no kind)")
            ),
        ));
    }
    if !config.namespace_allowed(&workload.namespace) {
        out.push(violation(
            "namespace",
            None,
            format!(
                "{workload}: namespace {} is denied or not allowed by policy",
                workload.namespace
            ),
        ));
    }
    let (was, is) = (namespace_of(before), namespace_of(after));
    if was != is {
        out.push(violation(
            "namespace",
            Some("metadata.namespace"),
            format!(
                "the fix moves the object from namespace {} to {}",
                was.unwrap_or("(unset)"),
                is.unwrap_or("(unset)")
            ),
        ));
    } else if let Some(ns) = is.filter(|ns| *ns != workload.namespace) {
        out.push(violation(
            "namespace",
            Some("metadata.namespace"),
            format!(
                "the rendered object is in namespace {ns}, not {}",
                workload.namespace
            ),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use autofix_core::WorkloadKind;
    use serde_json::json;

    fn workload(kind: WorkloadKind, namespace: &str) -> WorkloadRef {
        WorkloadRef {
            kind,
            namespace: namespace.into(),
            name: "cart".into(),
        }
    }

    fn rules(workload: &WorkloadRef, before: &Value, after: &Value) -> Vec<(String, String)> {
        check(workload, before, after, &PolicyConfig::default())
            .into_iter()
            .map(|v| (v.rule, v.path.unwrap_or_default()))
            .collect()
    }

    #[test]
    fn an_allowed_workload_passes() {
        let object = json!({"kind": "Deployment", "metadata": {"namespace": "shop"}});
        let cart = workload(WorkloadKind::Deployment, "shop");
        assert_eq!(rules(&cart, &object, &object), vec![]);
    }

    #[test]
    fn disallowed_kinds_and_kind_mismatches_are_refused() {
        let pod = json!({"kind": "Pod", "metadata": {"namespace": "shop"}});
        let bare = workload(WorkloadKind::Pod, "shop");
        assert_eq!(rules(&bare, &pod, &pod), [("kind".into(), String::new())]);
        let cart = workload(WorkloadKind::Deployment, "shop");
        assert_eq!(rules(&cart, &pod, &pod), [("kind".into(), "kind".into())]);
    }

    #[test]
    fn denied_namespaces_and_moves_are_refused() {
        let system = json!({"kind": "DaemonSet", "metadata": {"namespace": "kube-system"}});
        let proxy = workload(WorkloadKind::DaemonSet, "kube-system");
        assert_eq!(
            rules(&proxy, &system, &system),
            [("namespace".into(), String::new())]
        );
        let moved = json!({"kind": "DaemonSet", "metadata": {"namespace": "shop"}});
        let agent = workload(WorkloadKind::DaemonSet, "shop");
        assert_eq!(
            rules(&agent, &system, &moved),
            [("namespace".into(), "metadata.namespace".into())]
        );
        assert_eq!(
            rules(&agent, &system, &system),
            [("namespace".into(), "metadata.namespace".into())]
        );
    }
}
