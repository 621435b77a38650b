//! The evaluation harness: scenario folders run through the pipeline and scored against their
//! `expected.json`, so two diagnosers, models or versions can be compared on the same incidents.
//!
//! Layout: `scenario.rs` (a scenario folder and its expected answer, found below given
//! folders), `repo.rs` (the scenario's `gitops/` as a fresh git repository), `ops.rs` (the
//! `fix_checks[].op` comparisons), `score.rs` (one scenario end to end: every check, latency,
//! tokens), `summary.rs` (the whole eval: totals and accuracy per category), `mlflow.rs` (one
//! MLflow run per eval with a nested run per scenario).

mod error;
pub mod mlflow;
mod ops;
mod repo;
pub mod scenario;
pub mod score;
pub mod summary;

pub use error::EvalError;
pub use mlflow::{EvalRunInfo, log_eval};
pub use scenario::{Expected, ExpectedWorkload, FixCheck, Scenario, discover};
pub use score::{Check, ScenarioScore, score};
pub use summary::{CategoryStats, EvalReport, Summary};
