//! What became of a fix, marked on the MLflow run that proposed it, so `(risk_score, safe)`
//! pairs accumulate where the runs are (`autofix calibrate` reads them back).
//!
//! The run marked is the newest parent run of the incident (tag `incident`) and fix branch (tag
//! `branch`): the run whose fix was merged or closed. It gets the tag `fix_outcome` and the
//! metrics `fix_safe` (1 safe, 0 unsafe) and `fix_outcome_recorded` (1, timestamped when the
//! outcome was recorded); a later outcome overwrites the tag and adds a point to each metric.

use crate::batch::{Metric, Tag};
use crate::client::{ClientError, MlflowClient};

/// Tag holding the outcome name (merged, rejected, reverted, resolved, recurred).
pub const OUTCOME_TAG: &str = "fix_outcome";

/// Metric: 1 when the outcome is safe, 0 when not.
pub const SAFE_METRIC: &str = "fix_safe";

/// Metric: 1 at the time each outcome was recorded.
pub const RECORDED_METRIC: &str = "fix_outcome_recorded";

/// An outcome to mark on the run of a fix.
#[derive(Debug, Clone, PartialEq)]
pub struct OutcomeMark<'a> {
    /// The incident key's short hash (the run's `incident` tag).
    pub incident: &'a str,
    /// The fix branch (the run's `branch` tag).
    pub branch: &'a str,
    /// The outcome's name.
    pub outcome: &'a str,
    /// Whether the outcome counts as safe (docs/risk-model.md).
    pub safe: bool,
    /// When it was recorded, in ms since the Unix epoch.
    pub recorded_at: i64,
}

/// What marking found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Marked {
    /// This run (its id) was marked.
    Run(String),
    /// No run of this incident and branch in the experiment (never tracked, or deleted).
    NoRun,
}

/// Marks the outcome on the newest parent run of the fix in `experiment`.
pub async fn mark_outcome(
    client: &MlflowClient,
    experiment: &str,
    mark: &OutcomeMark<'_>,
) -> Result<Marked, ClientError> {
    let Some(experiment) = client.get_experiment_by_name(experiment).await? else {
        return Ok(Marked::NoRun);
    };
    let filter = format!(
        "tags.incident = '{}' AND tags.branch = '{}'",
        quote(mark.incident),
        quote(mark.branch)
    );
    let runs = client
        .search_runs(&[experiment.experiment_id.as_str()], &filter)
        .await?;
    let Some(run) = runs
        .into_iter()
        .find(|r| r.data.tag("mlflow.parentRunId").is_none())
    else {
        return Ok(Marked::NoRun);
    };
    let metric = |key: &str, value: f64| Metric {
        key: key.to_string(),
        value,
        timestamp: mark.recorded_at,
        step: 0,
    };
    let metrics = [
        metric(SAFE_METRIC, if mark.safe { 1.0 } else { 0.0 }),
        metric(RECORDED_METRIC, 1.0),
    ];
    let tags = [Tag {
        key: OUTCOME_TAG.to_string(),
        value: mark.outcome.to_string(),
    }];
    client
        .log_batch(&run.info.run_id, &metrics, &[], &tags)
        .await?;
    Ok(Marked::Run(run.info.run_id))
}

/// Escapes a value for a single-quoted MLflow filter string.
fn quote(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\'', "\\'")
}
