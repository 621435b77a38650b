//! Evidence: the read-only, redacted view of the cluster that diagnosis works from.
//!
//! Objects keep their Kubernetes types (k8s-openapi), whether they came from a snapshot folder or
//! the live API, so both sources fill the same struct.

use crate::alert::Alert;
use crate::workload::WorkloadRef;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Event, Node, PersistentVolumeClaim, Pod};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// A ConfigMap or Secret reduced to its name and key names (never values).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigObject {
    /// Object name.
    pub name: String,
    /// Key names under `data` and `binaryData`.
    pub keys: Vec<String>,
}

/// The (redacted) tail of one container's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogExcerpt {
    /// Pod name.
    pub pod: String,
    /// Container name.
    pub container: String,
    /// True for `--previous` (the last terminated instance).
    pub previous: bool,
    /// The last lines, redacted.
    pub lines: Vec<String>,
}

/// Everything known about one incident's workload.
#[derive(Debug, Clone, Serialize)]
pub struct Evidence {
    /// Cluster name.
    pub cluster: String,
    /// The workload that owns the failing pods.
    pub workload: WorkloadRef,
    /// The container the alerts are about, when known.
    pub container: Option<String>,
    /// The live workload object as JSON (redacted); remediation paths address it.
    pub workload_object: Value,
    /// Labels of the workload's namespace (e.g. `environment: production`).
    pub namespace_labels: BTreeMap<String, String>,
    /// The workload's pods.
    pub pods: Vec<Pod>,
    /// The Deployment's ReplicaSets (each a revision of the pod template).
    pub replica_sets: Vec<ReplicaSet>,
    /// Events about the workload, its pods, ReplicaSets and claims (messages redacted).
    pub events: Vec<Event>,
    /// The cluster's nodes.
    pub nodes: Vec<Node>,
    /// ConfigMaps in the namespace, key names only.
    pub config_maps: Vec<ConfigObject>,
    /// Secrets in the namespace, key names only.
    pub secrets: Vec<ConfigObject>,
    /// PersistentVolumeClaims used by the workload.
    pub claims: Vec<PersistentVolumeClaim>,
    /// Container logs.
    pub logs: Vec<LogExcerpt>,
    /// The alerts of the incident.
    pub alerts: Vec<Alert>,
    /// Alerts of the incident left out of `alerts` (a run reads a bounded number of them).
    pub alerts_left_out: usize,
}

impl Evidence {
    /// Log lines of a container, previous instance first, across the workload's pods.
    pub fn log_lines<'a>(&'a self, container: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.logs
            .iter()
            .filter(move |l| l.container == container)
            .flat_map(|l| l.lines.iter().map(String::as_str))
    }
}
