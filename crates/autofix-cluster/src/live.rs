//! Evidence from a live cluster through kube-rs, strictly read-only.
//!
//! [`LiveSource`] reads the incident's namespace into an [`ObjectStore`] and lets [`assemble`]
//! pick the evidence, exactly as [`crate::SnapshotSource`] does with a folder; then it asks for
//! the events of the objects of interest and the logs of the workload's pods.

use crate::reader::{ApiReader, Fetched};
use crate::store::{ObjectStore, assemble, involved_objects};
use crate::{ClusterError, EvidenceSource};
use autofix_core::{Evidence, Incident};
use serde_json::Value;

/// Where objects read from the API say they come from, in errors.
pub(crate) const LIVE_ORIGIN: &str = "the live cluster";

/// Bounds and switches of a live collection. Every field has a default (`LiveOptions::default()`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LiveOptions {
    /// Read Secrets (key names only; values are dropped on arrival). Needs `list secrets` in
    /// RBAC, so it is off by default.
    pub read_secrets: bool,
    /// Lines of each container log to fetch (`tailLines`); default 300, as the snapshot keeps.
    pub log_tail_lines: i64,
    /// Bytes of each container log to fetch at most (`limitBytes`); default 262144 (256 KiB).
    pub log_limit_bytes: i64,
    /// Pods whose logs are fetched at most, unhealthy ones first; default 20.
    pub max_log_pods: usize,
    /// Objects whose events are asked for one by one (field selector) at most; beyond that the
    /// namespace's events are listed once and filtered. Default 32.
    pub max_event_queries: usize,
    /// Items per list page (`limit`); default 500.
    pub page_size: u32,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            read_secrets: false,
            log_tail_lines: i64::try_from(crate::snapshot::LOG_TAIL_LINES).unwrap_or(i64::MAX),
            log_limit_bytes: 256 * 1024,
            max_log_pods: 20,
            max_event_queries: 32,
            page_size: 500,
        }
    }
}

/// Evidence read from the Kubernetes API (get, list and log requests only).
#[derive(Clone)]
pub struct LiveSource {
    client: kube::Client,
    options: LiveOptions,
}

impl std::fmt::Debug for LiveSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSource")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Chooses rustls' ring provider for the process unless one is already chosen: with more than
/// one provider compiled in (kube uses ring, reqwest aws-lc-rs), rustls refuses to guess.
pub fn install_crypto_provider() {
    // An error means a provider is already installed, which is all that is needed.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl LiveSource {
    /// A source reading through `client` with default options.
    pub fn new(client: kube::Client) -> Self {
        LiveSource {
            client,
            options: LiveOptions::default(),
        }
    }

    /// The same source with other options.
    pub fn with_options(mut self, options: LiveOptions) -> Self {
        self.options = options;
        self
    }

    /// A source for the cluster the environment names: the in-cluster service account, else
    /// the kubeconfig (`KUBECONFIG`, `~/.kube/config`) and its current context.
    pub async fn from_default_config() -> Result<Self, ClusterError> {
        install_crypto_provider();
        let client = kube::Client::try_default()
            .await
            .map_err(|source| ClusterError::Api {
                what: "configure a client (in-cluster or kubeconfig)".to_string(),
                source,
            })?;
        Ok(LiveSource::new(client))
    }
}

/// What one collection read: the raw objects by kind, the events, and the evidence.
pub(crate) struct Gathered {
    /// Objects of the namespace (and nodes), unredacted, by kind.
    pub(crate) objects: Vec<Fetched>,
    /// Events about the incident's objects, unredacted.
    pub(crate) events: Vec<Value>,
    /// The redacted evidence, logs included.
    pub(crate) evidence: Evidence,
}

/// Reads everything the evidence needs for an incident from the API.
pub(crate) async fn gather(
    client: &kube::Client,
    options: &LiveOptions,
    incident: &Incident,
) -> Result<Gathered, ClusterError> {
    let reader = ApiReader::new(client, options);
    let ns = incident.namespace.as_str();
    let objects = reader.namespace_objects(ns).await?;
    let mut store = ObjectStore::new(LIVE_ORIGIN);
    for fetched in &objects {
        for item in &fetched.items {
            store.insert(format!("API {}", fetched.plural), item.clone());
        }
    }
    // Which events matter depends on the objects found: ask for them once those are known.
    let events = reader
        .events(ns, &involved_objects(&store, incident)?)
        .await?;
    for event in &events {
        store.insert("API events", event.clone());
    }
    let mut evidence = assemble(&store, incident)?;
    evidence.logs = reader.logs(ns, &evidence.pods).await?;
    Ok(Gathered {
        objects,
        events,
        evidence,
    })
}

#[async_trait::async_trait]
impl EvidenceSource for LiveSource {
    async fn collect(&self, incident: &Incident) -> Result<Evidence, ClusterError> {
        Ok(gather(&self.client, &self.options, incident)
            .await?
            .evidence)
    }
}
