//! Which workload an alert is about, guessed from its labels alone (no cluster access).
//!
//! Intake groups alerts into one incident per workload before anything asks the cluster, so many
//! crash-looping pods of one Deployment become one unit of work. Workload labels
//! (`deployment`, `statefulset`, `daemonset`, `job_name`, `cronjob`, as kubernetes-mixin sets
//! them) win; otherwise the pod name is read the way the controllers build it:
//!
//! | owner | pod name |
//! |---|---|
//! | Deployment | `<name>-<pod-template-hash>-<5 chars>` |
//! | CronJob | `<name>-<scheduled minute>-<5 chars>` (the Job is `<name>-<minute>`) |
//! | StatefulSet | `<name>-<ordinal>` |
//! | DaemonSet or Job | `<name>-<5 chars>` (the name cannot tell which) |
//! | bare Pod | anything else |
//!
//! The guess only groups alerts; the pipeline resolves the real owner chain from the cluster.

use crate::workload::WorkloadKind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Characters Kubernetes uses for generated name suffixes and pod-template hashes
/// (`k8s.io/apimachinery/pkg/util/rand`: no vowels, no `0`, `1`, `3`, so no words are spelled).
const SAFE_ALPHABET: &str = "bcdfghjklmnpqrstvwxz2456789";

/// Length of the random suffix of generated pod names.
const SUFFIX_LEN: usize = 5;

/// What an alert's labels say about the workload behind it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WorkloadHint {
    /// The alert's `namespace` label.
    pub namespace: String,
    /// The workload kind; `None` when the pod name fits a DaemonSet's and a Job's alike.
    pub kind: Option<WorkloadKind>,
    /// The workload name.
    pub name: String,
}

impl WorkloadHint {
    /// The kind as text: the Kubernetes kind, or `DaemonSet|Job` when it cannot be told.
    pub fn kind_str(&self) -> &'static str {
        self.kind.map_or("DaemonSet|Job", WorkloadKind::as_str)
    }
}

impl fmt::Display for WorkloadHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind_str(), self.namespace, self.name)
    }
}

/// Guesses the workload an alert is about from its labels.
///
/// `None` when the alert has no `namespace` (cluster-wide alerts such as KubeMemoryOvercommit) or
/// names neither a workload nor a pod (namespace-level alerts such as KubeQuotaExceeded).
pub fn workload_hint(labels: &BTreeMap<String, String>) -> Option<WorkloadHint> {
    let label = |name: &str| {
        labels
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let namespace = label("namespace")?.to_string();
    let workload_labels = [
        ("deployment", WorkloadKind::Deployment),
        ("statefulset", WorkloadKind::StatefulSet),
        ("daemonset", WorkloadKind::DaemonSet),
        ("job_name", WorkloadKind::Job),
        ("cronjob", WorkloadKind::CronJob),
    ];
    if let Some((name, kind)) = workload_labels
        .iter()
        .find_map(|(l, kind)| label(l).map(|name| (name, *kind)))
    {
        return Some(WorkloadHint {
            namespace,
            kind: Some(kind),
            name: name.to_string(),
        });
    }
    let (kind, name) = owner_from_pod_name(label("pod")?);
    Some(WorkloadHint {
        namespace,
        kind,
        name: name.to_string(),
    })
}

/// Reads a pod name as its controller built it; see the module table.
fn owner_from_pod_name(pod: &str) -> (Option<WorkloadKind>, &str) {
    let bare = (Some(WorkloadKind::Pod), pod);
    let Some((rest, last)) = pod.rsplit_once('-') else {
        return bare;
    };
    if is_ordinal(last) && !(last.len() == SUFFIX_LEN && is_safe(last)) {
        return (Some(WorkloadKind::StatefulSet), rest);
    }
    if !(last.len() == SUFFIX_LEN && is_safe(last)) {
        return bare;
    }
    if let Some((owner, middle)) = rest.rsplit_once('-')
        && !owner.is_empty()
    {
        if middle.len() >= 6 && middle.bytes().all(|b| b.is_ascii_digit()) {
            return (Some(WorkloadKind::CronJob), owner);
        }
        if (6..=10).contains(&middle.len()) && is_safe(middle) {
            return (Some(WorkloadKind::Deployment), owner);
        }
    }
    if rest.is_empty() { bare } else { (None, rest) }
}

/// A StatefulSet ordinal: decimal, no leading zero.
fn is_ordinal(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
}

/// Only characters of generated names.
fn is_safe(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| SAFE_ALPHABET.contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hint(pairs: &[(&str, &str)]) -> Option<WorkloadHint> {
        let labels = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        workload_hint(&labels)
    }

    fn pod(name: &str) -> (Option<WorkloadKind>, String) {
        let h = hint(&[("namespace", "shop"), ("pod", name)]).unwrap();
        (h.kind, h.name)
    }

    #[test]
    fn deployment_pods_share_the_deployment() {
        for name in [
            "cart-6868cd956-49v8m",
            "cart-6868cd956-kqwcv",
            "cart-7d9b6c7fd6-x2z4p",
        ] {
            assert_eq!(pod(name), (Some(WorkloadKind::Deployment), "cart".into()));
        }
        assert_eq!(
            pod("cert-manager-cainjector-7d9b6c7fd6-kq8x2"),
            (
                Some(WorkloadKind::Deployment),
                "cert-manager-cainjector".into()
            )
        );
    }

    #[test]
    fn statefulset_daemonset_cronjob_and_bare_pods() {
        assert_eq!(pod("db-0"), (Some(WorkloadKind::StatefulSet), "db".into()));
        assert_eq!(pod("db-12"), (Some(WorkloadKind::StatefulSet), "db".into()));
        assert_eq!(pod("node-exporter-x7k2p"), (None, "node-exporter".into()));
        assert_eq!(pod("migrate-db-4f5xz"), (None, "migrate-db".into()));
        assert_eq!(
            pod("backup-29412345-bq7xz"),
            (Some(WorkloadKind::CronJob), "backup".into())
        );
        assert_eq!(pod("debug"), (Some(WorkloadKind::Pod), "debug".into()));
        assert_eq!(pod("my-tool"), (Some(WorkloadKind::Pod), "my-tool".into()));
        assert_eq!(pod("db-01"), (Some(WorkloadKind::Pod), "db-01".into()));
    }

    #[test]
    fn workload_labels_win_over_the_pod_label() {
        // kube-state-metrics alerts name its own pod; the workload label is the subject.
        let h = hint(&[
            ("namespace", "shop"),
            ("deployment", "cart"),
            ("pod", "kube-state-metrics-6d4b5c8f9b-abcde"),
        ])
        .unwrap();
        assert_eq!(
            (h.kind, h.name.as_str()),
            (Some(WorkloadKind::Deployment), "cart")
        );
        let h = hint(&[
            ("namespace", "batch"),
            ("job_name", "nightly"),
            ("job", "kube-state-metrics"),
        ])
        .unwrap();
        assert_eq!(h.kind, Some(WorkloadKind::Job));
        assert_eq!(h.to_string(), "Job batch/nightly");
    }

    #[test]
    fn cluster_wide_and_namespace_level_alerts_have_no_workload() {
        assert_eq!(hint(&[("alertname", "KubeMemoryOvercommit")]), None);
        assert_eq!(
            hint(&[("namespace", "shop"), ("alertname", "KubeQuotaExceeded")]),
            None
        );
        assert_eq!(
            hint(&[("namespace", ""), ("pod", "cart-6868cd956-49v8m")]),
            None
        );
    }
}
