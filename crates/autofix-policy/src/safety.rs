//! Safety rules on the rendered pod spec after the fix.
//!
//! The bot refuses to ship any manifest whose pod spec, after the fix, is privileged or reaches
//! into the node: `privileged`, `allowPrivilegeEscalation`, added capabilities, `hostNetwork`,
//! `hostPID`, `hostIPC` or a `hostPath` volume, in any container, init container or ephemeral
//! container. A setting already present before the fix is refused too (the bot must not put its
//! name on such a manifest); its message says so, since the cure is a human change.

use crate::paths::{item_segment, shown};
use crate::pod::{containers, pod_spec_path};
use autofix_core::{FieldPath, Violation, WorkloadKind};
use serde_json::Value;

/// One unsafe setting found in an object.
struct Finding {
    rule: &'static str,
    path: FieldPath,
    what: &'static str,
}

/// Pod-level switches that share a host namespace: (field, rule, why).
const HOST_NAMESPACES: [(&str, &str, &str); 3] = [
    (
        "hostNetwork",
        "host-network",
        "the pod shares the node's network stack and can bind or sniff any node port",
    ),
    (
        "hostPID",
        "host-pid",
        "the pod sees and can signal every process on the node",
    ),
    (
        "hostIPC",
        "host-ipc",
        "the pod shares the node's IPC namespace and its shared memory",
    ),
];

fn findings(object: &Value, kind: WorkloadKind) -> Vec<Finding> {
    let mut out = Vec::new();
    let spec_path = pod_spec_path(kind);
    if let Some(spec) = spec_path.get(object) {
        for (field, rule, what) in HOST_NAMESPACES {
            if spec.get(field) == Some(&Value::Bool(true)) {
                out.push(Finding {
                    rule,
                    path: spec_path.key(field),
                    what,
                });
            }
        }
        if let Some(volumes) = spec.get("volumes").and_then(Value::as_array) {
            for (index, volume) in volumes.iter().enumerate() {
                if volume.get("hostPath").is_some_and(|v| !v.is_null()) {
                    let mut path = spec_path.key("volumes");
                    path.0.push(item_segment(volumes, index));
                    out.push(Finding {
                        rule: "host-path",
                        path: path.key("hostPath"),
                        what: "a hostPath volume reads or writes the node's filesystem",
                    });
                }
            }
        }
    }
    for container in containers(object, kind) {
        let Some(security) = container.value.get("securityContext") else {
            continue;
        };
        let security_path = container.path.key("securityContext");
        if security.get("privileged") == Some(&Value::Bool(true)) {
            out.push(Finding {
                rule: "privileged",
                path: security_path.key("privileged"),
                what: "a privileged container has every capability and device of the node",
            });
        }
        if security.get("allowPrivilegeEscalation") == Some(&Value::Bool(true)) {
            out.push(Finding {
                rule: "allow-privilege-escalation",
                path: security_path.key("allowPrivilegeEscalation"),
                what: "the process can gain more privileges than its parent (setuid binaries)",
            });
        }
        let added = security
            .get("capabilities")
            .and_then(|c| c.get("add"))
            .and_then(Value::as_array);
        if added.is_some_and(|caps| !caps.is_empty()) {
            out.push(Finding {
                rule: "capabilities-add",
                path: security_path.key("capabilities").key("add"),
                what: "the container asks for Linux capabilities beyond the runtime's default set",
            });
        }
    }
    out
}

/// Violations for every unsafe setting of `after`; `before` only tells which were already there.
pub(crate) fn check(before: &Value, after: &Value, kind: WorkloadKind) -> Vec<Violation> {
    let earlier = findings(before, kind);
    findings(after, kind)
        .into_iter()
        .map(|finding| {
            let preexisting = earlier
                .iter()
                .any(|e| e.rule == finding.rule && e.path == finding.path);
            let origin = if preexisting {
                "it was already there before the fix; a human must remove it or fix this workload"
            } else {
                "the fix introduces it"
            };
            Violation {
                rule: finding.rule.to_string(),
                file: None,
                path: shown(&finding.path),
                message: format!(
                    "{}; kube-autofix does not ship such a manifest ({origin})",
                    finding.what
                ),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(pod_spec: Value) -> Value {
        json!({"kind": "Deployment", "spec": {"template": {"spec": pod_spec}}})
    }

    fn rules(violations: &[Violation]) -> Vec<(&str, Option<&str>)> {
        violations
            .iter()
            .map(|v| (v.rule.as_str(), v.path.as_deref()))
            .collect()
    }

    #[test]
    fn a_hardened_pod_passes() {
        let safe = deployment(json!({
            "hostNetwork": false,
            "volumes": [{"name": "tmp", "emptyDir": {}}],
            "containers": [{"name": "app", "securityContext": {
                "privileged": false, "allowPrivilegeEscalation": false,
                "capabilities": {"drop": ["ALL"], "add": []}
            }}]
        }));
        assert_eq!(check(&safe, &safe, WorkloadKind::Deployment), vec![]);
    }

    #[test]
    fn every_unsafe_setting_is_reported() {
        let before = deployment(json!({"containers": [{"name": "app"}]}));
        let after = deployment(json!({
            "hostNetwork": true, "hostPID": true, "hostIPC": true,
            "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
            "initContainers": [{"name": "init", "securityContext": {"privileged": true}}],
            "containers": [{"name": "app", "securityContext": {
                "allowPrivilegeEscalation": true, "capabilities": {"add": ["NET_ADMIN"]}
            }}],
            "ephemeralContainers": [{"name": "debug", "securityContext": {"privileged": true}}]
        }));
        let found = check(&before, &after, WorkloadKind::Deployment);
        let p = "spec.template.spec";
        assert_eq!(
            rules(&found),
            [
                ("host-network", Some(format!("{p}.hostNetwork").as_str())),
                ("host-pid", Some(format!("{p}.hostPID").as_str())),
                ("host-ipc", Some(format!("{p}.hostIPC").as_str())),
                (
                    "host-path",
                    Some(format!("{p}.volumes[name=root].hostPath").as_str())
                ),
                (
                    "allow-privilege-escalation",
                    Some(
                        format!(
                            "{p}.containers[name=app].securityContext.allowPrivilegeEscalation"
                        )
                        .as_str()
                    )
                ),
                (
                    "capabilities-add",
                    Some(
                        format!("{p}.containers[name=app].securityContext.capabilities.add")
                            .as_str()
                    )
                ),
                (
                    "privileged",
                    Some(
                        format!("{p}.initContainers[name=init].securityContext.privileged")
                            .as_str()
                    )
                ),
                (
                    "privileged",
                    Some(
                        format!("{p}.ephemeralContainers[name=debug].securityContext.privileged")
                            .as_str()
                    )
                ),
            ]
        );
        assert!(
            found
                .iter()
                .all(|v| v.message.contains("the fix introduces it"))
        );
    }

    #[test]
    fn preexisting_settings_are_refused_and_labelled() {
        let cron = json!({"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {
            "spec": {"hostPID": true, "containers": [{"name": "c"}]}
        }}}}});
        let found = check(&cron, &cron, WorkloadKind::CronJob);
        assert_eq!(
            rules(&found),
            [(
                "host-pid",
                Some("spec.jobTemplate.spec.template.spec.hostPID")
            )]
        );
        assert!(found[0].message.contains("already there before the fix"));
    }
}
