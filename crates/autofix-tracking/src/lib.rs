//! MLflow tracking of kube-autofix runs: every incident run a glass box, never in the way.
//!
//! Each incident run becomes a parent run in an MLflow experiment, with one nested run per
//! agent attempt, logged through MLflow's REST API: params, metrics (step = iteration), tags, a
//! Markdown note and artifacts (the fix diff, corrected manifests, diagnosis, redacted
//! evidence, PR or escalation text). When MLflow is slow or down, runs wait in a spool directory
//! and are replayed in order later; nothing here can fail or delay a pull request.
//!
//! Layout: `client.rs` (the REST client: auth, retries, experiments, runs, artifacts, OTLP
//! traces), `batch.rs` (log-batch limits: chunking and truncation), `record.rs` (what a run
//! logs, built from the pipeline's `RunReport`), `spool.rs` (the on-disk queue), `trace.rs` (a
//! run as an OpenTelemetry trace for MLflow's Traces view), `tracker.rs` (the API the pipeline
//! calls: begin, record, flush), `run.rs` (a pipeline run with its tracking), `outcome.rs`
//! (what became of a fix, marked on its run). The
//! `[tracking]` config section lives with the rest of the config file in autofix-pipeline.

pub mod batch;
pub mod client;
pub mod outcome;
pub mod record;
mod run;
pub mod spool;
pub mod trace;
pub mod tracker;

pub use autofix_pipeline::config::TrackingConfig;
pub use client::{Auth, ClientError, ClientOptions, MlflowClient, Run, RunStatus};
pub use record::{Artifact, AttemptRecord, RunContext, RunRecord};
pub use run::run_and_track;
pub use spool::{Spool, SpoolError, SpooledRun};
pub use tracker::{FlushReport, RecordOutcome, RunRef, Tracker, TrackerError, TrackerStats};
