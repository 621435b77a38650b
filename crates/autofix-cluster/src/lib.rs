//! Read-only evidence about an incident's workload.
//!
//! An [`EvidenceSource`] answers one question: given an [`Incident`], what does the cluster show
//! about the workload behind it? [`SnapshotSource`] answers from a snapshot folder (the offline
//! default, `kubectl get -o yaml` output plus logs); [`LiveSource`] answers from the Kubernetes API
//! through kube-rs, with get, list and log requests only. Both load objects into an
//! [`ObjectStore`] and let [`assemble`] walk the owner chain, pick the related objects and redact
//! them, so the two sources cannot drift apart. [`write_snapshot`] turns a live cluster into a
//! snapshot folder. Apart from all this, [`DryRunner`] (opt-in, its own credential) asks the API
//! server to judge a corrected object with a server-side apply dry run.
//!
//! Layout: `store.rs` (objects by kind, owner chain, evidence assembly), `snapshot.rs` (the folder
//! reader), `live.rs` (the live source and its options), `reader.rs` (the bounded API reads),
//! `writer.rs` (the snapshot writer), `redaction.rs` (secrets out, once, here), `dry_run.rs`
//! (the dry-run client and its config) and `dry_run/verdict.rs` (what the cluster answered).

mod dry_run;
mod live;
mod reader;
mod redaction;
mod snapshot;
mod store;
mod writer;

pub use dry_run::{DryRunConfig, DryRunVerdict, DryRunner, FIELD_MANAGER};
pub use live::{LiveOptions, LiveSource, install_crypto_provider};
pub use reader::MAX_LIST_ITEMS;
pub use snapshot::{LOG_TAIL_LINES, SnapshotSource};
pub use store::{ObjectStore, assemble};
pub use writer::{SNAPSHOT_ALERT, SnapshotSummary, write_snapshot};

use autofix_core::{Evidence, Incident};
use std::path::PathBuf;
use std::time::Duration;

/// Why evidence could not be gathered.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The snapshot folder (or a required part of it) does not exist.
    #[error("snapshot folder {0} does not exist or has no cluster/ folder")]
    MissingSnapshot(PathBuf),
    /// A file or folder could not be read (or, for a snapshot being written, written).
    #[error("cannot access {path}: {source}")]
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
    /// A request to the Kubernetes API failed (or a client could not be configured).
    #[error("cannot {what}: {source}")]
    Api {
        /// What was being read, e.g. `list pods`.
        what: String,
        /// kube's error: the apiserver's `Status` (code, reason, message), or a transport error.
        #[source]
        source: kube::Error,
    },
    /// A name that cannot be used as a file name in a snapshot folder.
    #[error("{0:?} is not a valid Kubernetes name")]
    InvalidName(String),
    /// A snapshot file's content could not be encoded (YAML or JSON).
    #[error("cannot encode {path}: {source}")]
    Encode {
        /// The file.
        path: PathBuf,
        /// The encoder's complaint.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An object cannot be dry-run: a field is missing or its kind is not one kube-autofix
    /// dry-runs.
    #[error("cannot dry-run this object: {reason}")]
    UnsupportedObject {
        /// What is missing or unsupported.
        reason: String,
    },
    /// A request to the Kubernetes API took longer than allowed.
    #[error("cannot {what}: no answer within {after:?}")]
    Timeout {
        /// What was being asked, e.g. `dry-run Deployment shop/cart`.
        what: String,
        /// The time allowed.
        after: Duration,
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
