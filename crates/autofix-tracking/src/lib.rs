//! MLflow tracking of kube-autofix runs: every incident run a glass box, never in the way.
//!
//! Each incident run becomes a parent run in an MLflow experiment, with one nested run per
//! agent attempt, logged through MLflow's REST API: params, metrics (step = iteration), tags, a
//! Markdown note and artifacts (the fix diff, corrected manifests, diagnosis, redacted
//! evidence, PR or escalation text). When MLflow is slow or down, runs wait in a spool directory
//! and are replayed in order later; nothing here can fail or delay a pull request.
//!
//! Layout: `client.rs` (the REST client: auth, retries, experiments, runs, artifacts),
//! `batch.rs` (log-batch limits: chunking and truncation), `record.rs` (what a run logs, built
//! from the pipeline's `RunReport`), `spool.rs` (the on-disk queue), `tracker.rs` (the API the
//! pipeline calls: begin, record, flush), `config.rs` (the `[tracking]` config section).

pub mod batch;
pub mod client;
pub mod config;
pub mod record;
pub mod spool;
pub mod tracker;

pub use client::{Auth, ClientError, ClientOptions, MlflowClient, Run, RunStatus};
pub use config::TrackingConfig;
pub use record::{Artifact, AttemptRecord, RunContext, RunRecord};
pub use spool::{Spool, SpoolError, SpooledRun};
pub use tracker::{FlushReport, RecordOutcome, RunRef, Tracker, TrackerError, TrackerStats};
