//! The `Runner` seam the workers call, and its production implementation: the pipeline.

use async_trait::async_trait;
use autofix_core::Incident;
use autofix_core::error::with_causes;
use autofix_pipeline::{LearnedStrategies, Pipeline};
use autofix_store::OutcomeRecord;
use autofix_tracking::outcome::{Marked, OutcomeMark, mark_outcome};
use autofix_tracking::{ClientError, Tracker, TrackerStats, run_and_track};
use std::sync::Arc;

/// What a run published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// A pull request was opened or updated.
    PullRequest,
    /// An escalation (issue) was opened or updated.
    Escalation,
}

impl Published {
    /// The metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            Published::PullRequest => "pull_request",
            Published::Escalation => "escalation",
        }
    }
}

/// A finished run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutput {
    /// The run report, stored on the incident and shown by `GET /incidents`.
    pub report: serde_json::Value,
    /// What was published, if anything.
    pub published: Option<Published>,
}

/// A failed run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RunError {
    /// What went wrong, shown on the incident.
    pub message: String,
    /// True when trying again later may succeed; false parks the incident at once.
    pub retryable: bool,
}

impl RunError {
    /// A failure that may pass (network, forge, cluster API): retried with backoff.
    pub fn transient(message: impl Into<String>) -> RunError {
        RunError {
            message: message.into(),
            retryable: true,
        }
    }

    /// The input is at fault (broken alert, GitOps files): parked at once.
    pub fn bad_input(message: impl Into<String>) -> RunError {
        RunError {
            message: message.into(),
            retryable: false,
        }
    }
}

/// Runs one incident; the workers call it for every claimed incident.
#[async_trait]
pub trait Runner: Send + Sync {
    /// Takes the incident through the pipeline.
    async fn run(&self, incident: &Incident) -> Result<RunOutput, RunError>;

    /// The MLflow tracking counters, for `/metrics`; `None` when the runner tracks nothing.
    fn tracking_stats(&self) -> Option<TrackerStats> {
        None
    }

    /// The strategy statistics this runner's pipeline picks fixes with, for the service to
    /// keep learned from outcomes; `None` when it learns nothing.
    fn strategies(&self) -> Option<LearnedStrategies> {
        None
    }

    /// Marks a fix's outcome on the MLflow run that proposed it; `None` when this runner tracks
    /// nothing.
    async fn mark_outcome(&self, _outcome: &OutcomeRecord) -> Option<Result<Marked, ClientError>> {
        None
    }
}

/// The production runner: the pipeline, each run tracked in MLflow when tracking is on.
pub struct PipelineRunner {
    pipeline: Arc<Pipeline>,
    tracker: Tracker,
}

impl PipelineRunner {
    /// Runs incidents through this pipeline, tracking them with `tracker`
    /// ([`Tracker::disabled`] for none).
    pub fn new(pipeline: Arc<Pipeline>, tracker: Tracker) -> PipelineRunner {
        PipelineRunner { pipeline, tracker }
    }
}

#[async_trait]
impl Runner for PipelineRunner {
    async fn run(&self, incident: &Incident) -> Result<RunOutput, RunError> {
        // The run is logged in the background: tracking never holds a worker up.
        let (result, _logging) = run_and_track(&self.pipeline, &self.tracker, incident).await;
        let report = result.map_err(|e| RunError {
            message: with_causes(&e),
            retryable: !e.is_bad_input(),
        })?;
        let published = if report.pr.is_some() {
            Some(Published::PullRequest)
        } else if report.escalation.is_some() {
            Some(Published::Escalation)
        } else {
            None
        };
        let report = serde_json::to_value(&report)
            .map_err(|e| RunError::transient(format!("cannot serialise the run report: {e}")))?;
        Ok(RunOutput { report, published })
    }

    fn tracking_stats(&self) -> Option<TrackerStats> {
        self.tracker.is_enabled().then(|| self.tracker.stats())
    }

    fn strategies(&self) -> Option<LearnedStrategies> {
        self.pipeline.strategies.clone()
    }

    async fn mark_outcome(&self, outcome: &OutcomeRecord) -> Option<Result<Marked, ClientError>> {
        let client = self.tracker.client()?;
        let mark = OutcomeMark {
            incident: &outcome.incident_hash,
            branch: &outcome.branch,
            outcome: outcome.outcome.as_str(),
            safe: outcome.outcome.is_safe(),
            recorded_at: outcome.recorded_at,
        };
        Some(mark_outcome(client, &self.pipeline.config.tracking.experiment, &mark).await)
    }
}
