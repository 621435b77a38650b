//! Benchmarks of kube-autofix that print numbers a reviewer can rerun (`autofix bench ...`).
//!
//! Speed is measured here and reported, never asserted: each benchmark returns a report
//! (serializable for `--json`) whose [`table`](intake::IntakeReport::table) names the machine it
//! ran on ([`Machine`]) and the numbers against the project's goals.
//!
//! - [`intake`]: webhook deliveries per second into the real `autofix serve` process (durable
//!   SQLite store with `synchronous = FULL`, or PostgreSQL), latency percentiles, errors by
//!   status, and the server's resident memory idle and under load.
//! - [`storm`]: many concurrent deliveries for one workload; how many incidents they make (one),
//!   how many alerts are recorded or recognised as re-deliveries, and how long until the workers
//!   have drained the queue.
//! - [`pr`]: alert to pull request with no LLM: the real pipeline, a bare git repository as the
//!   remote, the fake GitHub of `autofix-testkit`; total and per stage.
//! - [`yaml`]: lossless YAML edits through the remedy API on one large multi-document file.
//!
//! Layout: [`machine`] (what the numbers were measured on, memory of a process), [`stats`]
//! (percentiles), [`table`] (the printed tables), [`fixture`] (the example scenario, git
//! repositories, a spawned `autofix serve`), [`alerts`] (Alertmanager bodies), then one module
//! per benchmark.

pub mod alerts;
pub mod fixture;
pub mod intake;
pub mod machine;
pub mod pr;
pub mod stats;
pub mod storm;
pub mod table;
pub mod yaml;

pub use machine::Machine;

use std::path::PathBuf;
use std::time::Duration;

/// Why a benchmark could not run to the end.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A file or folder could not be read or written.
    #[error("cannot use {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A git repository could not be set up or changed.
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    /// An HTTP request of the harness itself (readiness, incident list, metrics) failed.
    #[error("HTTP request to {url} failed: {source}")]
    Http {
        /// The URL.
        url: String,
        /// The client's error.
        #[source]
        source: reqwest::Error,
    },
    /// The `autofix serve` process could not be started or stopped early.
    #[error("autofix serve: {reason}; its log: {log}")]
    Serve {
        /// What went wrong.
        reason: String,
        /// The server's log file.
        log: PathBuf,
    },
    /// Something did not happen within its deadline.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// The deadline.
        after: Duration,
    },
    /// A fake server of the test kit failed.
    #[error(transparent)]
    Testkit(#[from] autofix_testkit::TestkitError),
    /// The pipeline failed or decided something the benchmark does not measure.
    #[error("pipeline: {0}")]
    Pipeline(String),
    /// The remedy stage failed on the generated file.
    #[error("remedy: {0}")]
    Remedy(#[from] autofix_remedy::RemedyError),
    /// An option is out of range.
    #[error("invalid option: {0}")]
    Option(String),
}

impl BenchError {
    /// An [`BenchError::Io`] naming `path`.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> BenchError {
        let path = path.into();
        move |source| BenchError::Io { path, source }
    }
}

/// Parses a duration such as `10s`, `500ms` or `2m` (the `--duration` of the command line).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| e.to_string())
}
