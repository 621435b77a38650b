//! Incidents: the unit of work, one per failing workload.
//!
//! Alert fingerprints only recognise re-deliveries; the [`IncidentKey`] (cluster, workload,
//! category) is what deduplicates work, branches and pull requests.

use crate::alert::{Alert, AlertStatus, WebhookPayload};
use crate::category::Category;
use crate::workload::{WorkloadKind, WorkloadRef};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The cluster name used when an alert carries no `cluster` label.
pub const DEFAULT_CLUSTER: &str = "default";

/// Alerts about one subject, before the cluster has been asked which workload owns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// The `cluster` external label, or [`DEFAULT_CLUSTER`].
    pub cluster: String,
    /// The namespace the alerts are about.
    pub namespace: String,
    /// The alerts, firing ones first.
    pub alerts: Vec<Alert>,
    /// Alerts of the incident not in `alerts`: a run reads a bounded number of them.
    #[serde(default)]
    pub alerts_left_out: usize,
}

/// What an alert points at, from its labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Subject {
    /// A pod (and maybe one of its containers).
    Pod {
        /// Pod name.
        pod: String,
        /// Container name, if the alert names one.
        container: Option<String>,
    },
    /// A workload named directly (Deployment-, StatefulSet- or Job-level alerts).
    Workload(WorkloadRef),
}

/// Why alerts could not be turned into an incident.
#[derive(Debug, thiserror::Error)]
pub enum IncidentError {
    /// The payload held no alerts.
    #[error("the webhook payload holds no alerts")]
    NoAlerts,
    /// No alert names a namespace.
    #[error("no alert carries a `namespace` label (cluster-wide alerts are not handled)")]
    NoNamespace,
}

impl Incident {
    /// Builds an incident from every alert in a webhook body.
    pub fn from_payload(payload: &WebhookPayload) -> Result<Self, IncidentError> {
        Self::from_alerts(payload.alerts.clone())
    }

    /// Builds an incident from alerts that share a subject.
    pub fn from_alerts(mut alerts: Vec<Alert>) -> Result<Self, IncidentError> {
        if alerts.is_empty() {
            return Err(IncidentError::NoAlerts);
        }
        alerts.sort_by_key(|a| a.status != AlertStatus::Firing);
        let namespace = alerts
            .iter()
            .find_map(|a| a.label("namespace"))
            .ok_or(IncidentError::NoNamespace)?
            .to_string();
        let cluster = alerts
            .iter()
            .find_map(|a| a.label("cluster"))
            .unwrap_or(DEFAULT_CLUSTER)
            .to_string();
        Ok(Incident {
            cluster,
            namespace,
            alerts,
            alerts_left_out: 0,
        })
    }

    /// True while at least one alert fires.
    pub fn is_firing(&self) -> bool {
        self.alerts.iter().any(|a| a.status == AlertStatus::Firing)
    }

    /// The alerts that still fire.
    pub fn firing(&self) -> impl Iterator<Item = &Alert> {
        self.alerts
            .iter()
            .filter(|a| a.status == AlertStatus::Firing)
    }

    /// True when any alert (firing first) has this name.
    pub fn has_alert(&self, name: &str) -> bool {
        self.alerts.iter().any(|a| a.name() == name)
    }

    /// The subjects the alerts point at, firing alerts first, without repeats.
    pub fn subjects(&self) -> Vec<Subject> {
        let mut out: Vec<Subject> = Vec::new();
        for alert in &self.alerts {
            if let Some(subject) = subject_of(alert, &self.namespace)
                && !out.contains(&subject)
            {
                out.push(subject);
            }
        }
        out
    }
}

/// Reads an alert's subject from its labels.
///
/// Deployment- and Job-level alerts from kube-state-metrics carry `pod`/`container` labels that
/// name the kube-state-metrics pod itself, so the workload labels win over the pod label.
fn subject_of(alert: &Alert, namespace: &str) -> Option<Subject> {
    let workload_labels = [
        ("deployment", WorkloadKind::Deployment),
        ("statefulset", WorkloadKind::StatefulSet),
        ("daemonset", WorkloadKind::DaemonSet),
        ("job_name", WorkloadKind::Job),
        ("cronjob", WorkloadKind::CronJob),
    ];
    for (label, kind) in workload_labels {
        if let Some(name) = alert.label(label) {
            return Some(Subject::Workload(WorkloadRef {
                kind,
                namespace: namespace.to_string(),
                name: name.to_string(),
            }));
        }
    }
    alert.label("pod").map(|pod| Subject::Pod {
        pod: pod.to_string(),
        container: alert.label("container").map(str::to_string),
    })
}

/// What deduplicates work: one branch and one pull request per key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IncidentKey {
    /// Cluster name.
    pub cluster: String,
    /// The owning workload.
    pub workload: WorkloadRef,
    /// The diagnosed root cause.
    pub category: Category,
}

impl IncidentKey {
    /// A short, stable hash of the key (8 hex digits), used in branch names and trailers.
    pub fn short_hash(&self) -> String {
        let mut hasher = Sha256::new();
        for part in [
            self.cluster.as_str(),
            self.workload.kind.as_str(),
            &self.workload.namespace,
            &self.workload.name,
            self.category.as_str(),
        ] {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
        hex8(&hasher.finalize())
    }

    /// The git branch for this incident: `autofix/<namespace>/<workload>-<category>-<hash>`.
    pub fn branch_name(&self) -> String {
        format!(
            "autofix/{}/{}-{}-{}",
            self.workload.namespace,
            self.workload.name,
            self.category.slug(),
            self.short_hash()
        )
    }
}

/// A short, stable digest of `bytes`: the first 8 hex digits of their SHA-256.
pub fn short_digest(bytes: &[u8]) -> String {
    hex8(&Sha256::digest(bytes))
}

fn hex8(digest: &[u8]) -> String {
    digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> IncidentKey {
        IncidentKey {
            cluster: "prod".into(),
            workload: WorkloadRef {
                kind: WorkloadKind::Deployment,
                namespace: "shop".into(),
                name: name.into(),
            },
            category: Category::OomKilled,
        }
    }

    #[test]
    fn branch_is_stable_and_distinct() {
        assert_eq!(key("cart").branch_name(), key("cart").branch_name());
        assert_ne!(key("cart").short_hash(), key("carts").short_hash());
        assert!(
            key("cart")
                .branch_name()
                .starts_with("autofix/shop/cart-oom-killed-")
        );
    }
}
