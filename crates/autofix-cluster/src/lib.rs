//! Read-only evidence about an incident's workload.
//!
//! An [`EvidenceSource`] answers one question: given an [`Incident`], what does the cluster show
//! about the workload behind it? [`SnapshotSource`] answers from a snapshot folder (the offline
//! default, `kubectl get -o yaml` output plus logs); a live kube-rs source will answer from the API.
//! Both load objects into an [`ObjectStore`] and let [`assemble`] walk the owner chain, pick the
//! related objects and redact them, so the two sources cannot drift apart.
//!
//! Layout: `store.rs` (objects by kind, owner chain, evidence assembly), `snapshot.rs` (the folder
//! reader), `redaction.rs` (secrets out, once, here).

mod redaction;
mod snapshot;
mod store;

pub use snapshot::SnapshotSource;
pub use store::{ObjectStore, assemble};

use autofix_core::{Evidence, Incident};
use std::path::PathBuf;

/// Why evidence could not be gathered.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The snapshot folder (or a required part of it) does not exist.
    #[error("snapshot folder {0} does not exist or has no cluster/ folder")]
    MissingSnapshot(PathBuf),
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid YAML (or is a YAML bomb).
    #[error("{path}: invalid YAML: {source}")]
    Yaml {
        /// The file.
        path: PathBuf,
        /// The parser's complaint.
        #[source]
        source: autofix_core::yaml::YamlError,
    },
    /// An object does not match its Kubernetes type.
    #[error("{origin}: {kind} {name} is not a valid {kind}: {source}")]
    Object {
        /// Where the object came from (file path or API).
        origin: String,
        /// Its kind.
        kind: String,
        /// Its name.
        name: String,
        /// The type mismatch, with its JSON path.
        #[source]
        source: serde_path_to_error::Error<serde_json::Error>,
    },
    /// The alerts name a pod the cluster does not have.
    #[error("pod {namespace}/{pod} named by the alert is not in {origin}")]
    PodNotFound {
        /// Namespace.
        namespace: String,
        /// Pod name.
        pod: String,
        /// Where it was looked for.
        origin: String,
    },
    /// The alerts (or an owner reference) name a workload the cluster does not have.
    #[error("{kind} {namespace}/{name} is not in {origin}")]
    WorkloadNotFound {
        /// Kind.
        kind: String,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// Where it was looked for.
        origin: String,
    },
    /// No alert names a pod or workload.
    #[error(
        "no alert names a pod or a workload (labels pod, deployment, statefulset, job_name...)"
    )]
    NoSubject,
}

/// A place evidence comes from: a snapshot folder or a live cluster.
#[async_trait::async_trait]
pub trait EvidenceSource: Send + Sync {
    /// Gathers the redacted evidence about the workload behind an incident.
    async fn collect(&self, incident: &Incident) -> Result<Evidence, ClusterError>;
}
