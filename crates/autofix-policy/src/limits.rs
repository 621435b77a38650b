//! Resource rules on the rendered object: limits kept, under the ceilings, above the requests.

use crate::config::PolicyConfig;
use crate::paths::shown;
use crate::pod::containers;
use autofix_core::quantity::Quantity;
use autofix_core::{FieldPath, Violation, WorkloadKind};
use serde_json::Value;

/// The limits whose removal is refused: without them one container can starve its node.
const GUARDED_LIMITS: [&str; 2] = ["cpu", "memory"];

fn violation(rule: &str, path: &FieldPath, message: String) -> Violation {
    Violation {
        rule: rule.to_string(),
        file: None,
        path: shown(path),
        message,
    }
}

/// Violations of `limits-removed`, `limits-ceiling`, `requests-exceed-limits` and
/// `invalid-quantity` for the containers of `after`.
pub(crate) fn check(
    before: &Value,
    after: &Value,
    kind: WorkloadKind,
    config: &PolicyConfig,
) -> Vec<Violation> {
    let mut out = Vec::new();
    let after_containers = containers(after, kind);
    for old in containers(before, kind) {
        let Some(new) = after_containers
            .iter()
            .find(|c| c.list == old.list && c.name.is_some() && c.name == old.name)
        else {
            continue;
        };
        for resource in GUARDED_LIMITS {
            let had = old.value.pointer(&format!("/resources/limits/{resource}"));
            let has = new.value.pointer(&format!("/resources/limits/{resource}"));
            if had.is_some_and(|v| !v.is_null()) && has.is_none_or(Value::is_null) {
                out.push(violation(
                    "limits-removed",
                    &new.path.key("resources").key("limits").key(resource),
                    format!(
                        "the fix removes the {resource} limit of container `{}`; an unbounded \
                         container can starve everything else on its node",
                        new.name.unwrap_or_default()
                    ),
                ));
            }
        }
    }
    let ceilings = [
        (
            "memory",
            config.max_memory_bytes(),
            &config.max_memory_limit,
        ),
        ("cpu", config.max_cpu_cores(), &config.max_cpu_limit),
    ];
    for container in &after_containers {
        let resources = container.path.key("resources");
        let section = |name: &str| {
            container
                .value
                .get("resources")
                .and_then(|r| r.get(name))
                .and_then(Value::as_object)
        };
        let mut parsed = |name: &str| {
            let mut quantities = Vec::new();
            for (resource, value) in section(name).into_iter().flatten() {
                let path = resources.key(name).key(resource);
                match Quantity::from_value(value) {
                    Some(quantity) => quantities.push((resource.as_str(), quantity, value, path)),
                    None => out.push(violation(
                        "invalid-quantity",
                        &path,
                        format!("{value} is not a Kubernetes quantity"),
                    )),
                }
            }
            quantities
        };
        let limits = parsed("limits");
        let requests = parsed("requests");
        for (resource, quantity, value, path) in &limits {
            for (name, ceiling, text) in ceilings {
                // The ceiling bounds what a fix sets; a limit the fix leaves alone is the
                // owners' decision, however large.
                let unchanged = path.get(before) == Some(*value);
                if *resource == name && quantity.0 > ceiling && !unchanged {
                    out.push(violation(
                        "limits-ceiling",
                        path,
                        format!(
                            "{resource} limit {value} is above the policy ceiling {text:?}; \
                             a larger limit needs a human decision"
                        ),
                    ));
                }
            }
        }
        for (resource, request, request_value, path) in &requests {
            let limit = limits.iter().find(|(name, ..)| name == resource);
            if let Some((_, limit, limit_value, _)) = limit
                && request.0 > limit.0
            {
                out.push(violation(
                    "requests-exceed-limits",
                    path,
                    format!(
                        "{resource} request {request_value} is above its limit {limit_value}; \
                         the API server rejects such a pod"
                    ),
                ));
            }
        }
    }
    out
}

/// Violations of `limits-missing`: a container or init container of a standalone manifest
/// without a cpu or memory limit. Only the linter asks this; a fix is judged by what it
/// changes (`limits-removed`), not by limits its workload never had. Ephemeral containers
/// cannot set resources.
pub(crate) fn missing(object: &Value, kind: WorkloadKind) -> Vec<Violation> {
    let mut out = Vec::new();
    for container in containers(object, kind) {
        if container.list == "ephemeralContainers" {
            continue;
        }
        for resource in GUARDED_LIMITS {
            let limit = container
                .value
                .pointer(&format!("/resources/limits/{resource}"));
            if limit.is_none_or(Value::is_null) {
                out.push(violation(
                    "limits-missing",
                    &container.path.key("resources").key("limits").key(resource),
                    format!(
                        "container `{}` has no {resource} limit; an unbounded container can \
                         starve everything else on its node",
                        container.name.unwrap_or_default()
                    ),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(resources: Value) -> Value {
        json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "resources": resources}
        ]}}}})
    }

    fn rules(before: &Value, after: &Value) -> Vec<(String, String)> {
        check(
            before,
            after,
            WorkloadKind::Deployment,
            &PolicyConfig::default(),
        )
        .into_iter()
        .map(|v| (v.rule, v.path.unwrap_or_default()))
        .collect()
    }

    const APP: &str = "spec.template.spec.containers[name=app].resources";

    #[test]
    fn a_raised_limit_within_the_ceiling_passes() {
        let before = deployment(
            json!({"requests": {"memory": "64Mi"}, "limits": {"memory": "128Mi", "cpu": "500m"}}),
        );
        let after = deployment(
            json!({"requests": {"memory": "64Mi"}, "limits": {"memory": "256Mi", "cpu": 1}}),
        );
        assert_eq!(rules(&before, &after), vec![]);
    }

    #[test]
    fn removed_limits_are_refused() {
        let before = deployment(json!({"limits": {"memory": "128Mi", "cpu": "500m"}}));
        let after = deployment(json!({"limits": {"cpu": "500m"}}));
        assert_eq!(
            rules(&before, &after),
            [("limits-removed".to_string(), format!("{APP}.limits.memory"))]
        );
    }

    #[test]
    fn limits_above_the_ceiling_are_refused() {
        let before = deployment(json!({"limits": {"memory": "1Gi", "cpu": "1"}}));
        let after = deployment(json!({"limits": {"memory": "16Gi", "cpu": "8500m"}}));
        assert_eq!(
            rules(&before, &after),
            [
                ("limits-ceiling".to_string(), format!("{APP}.limits.cpu")),
                ("limits-ceiling".to_string(), format!("{APP}.limits.memory")),
            ]
        );
        let at_ceiling = deployment(json!({"limits": {"memory": "8Gi", "cpu": "8"}}));
        assert_eq!(rules(&before, &at_ceiling), vec![]);
        // A large limit the fix does not touch is the owners' call.
        assert_eq!(rules(&after, &after), vec![]);
    }

    #[test]
    fn requests_above_limits_are_refused() {
        let after = deployment(
            json!({"requests": {"cpu": "2", "memory": "64Mi"}, "limits": {"cpu": "1500m", "memory": "64Mi"}}),
        );
        assert_eq!(
            rules(&after, &after),
            [(
                "requests-exceed-limits".to_string(),
                format!("{APP}.requests.cpu")
            )]
        );
    }

    #[test]
    fn missing_limits_are_found_in_standalone_manifests() {
        let object = deployment(json!({"limits": {"cpu": "500m"}}));
        let found: Vec<(String, String)> = missing(&object, WorkloadKind::Deployment)
            .into_iter()
            .map(|v| (v.rule, v.path.unwrap_or_default()))
            .collect();
        assert_eq!(
            found,
            [("limits-missing".to_string(), format!("{APP}.limits.memory"))]
        );
        let bounded = deployment(json!({"limits": {"cpu": "500m", "memory": "64Mi"}}));
        assert!(missing(&bounded, WorkloadKind::Deployment).is_empty());
    }

    #[test]
    fn unreadable_quantities_are_refused() {
        let after = deployment(json!({"limits": {"memory": "256MB"}}));
        assert_eq!(
            rules(&after, &after),
            [(
                "invalid-quantity".to_string(),
                format!("{APP}.limits.memory")
            )]
        );
    }
}
