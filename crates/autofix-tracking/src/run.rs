//! One pipeline run with its tracking: the MLflow run is begun first so that its link goes
//! into the pull request, and recorded afterwards without holding the caller up.

use crate::record::{RunContext, RunRecord};
use crate::tracker::{RecordOutcome, Tracker};
use autofix_core::Incident;
use autofix_pipeline::{Pipeline, PipelineError, RunReport};
use std::collections::BTreeMap;
use tokio::task::JoinHandle;

/// Runs `incident` through `pipeline` and tracks it.
///
/// Returns the pipeline's result at once and the task logging the run, which a long-running
/// service lets finish on its own and a one-shot command awaits before exiting. Tracking can
/// neither fail nor delay the run beyond [`Tracker::begin`]'s bounded wait.
pub async fn run_and_track(
    pipeline: &Pipeline,
    tracker: &Tracker,
    incident: &Incident,
) -> (Result<RunReport, PipelineError>, JoinHandle<RecordOutcome>) {
    let context = RunContext::from_incident(incident).with_llm(&pipeline.config.llm);
    // The incident hash is known only after diagnosis; the alert group's key stands in for it
    // until the full record replaces the tag.
    let group = incident
        .alerts
        .iter()
        .map(|a| a.fingerprint.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let run = tracker.begin(&context.run_name(), &group).await;
    let result = pipeline
        .run_linked(incident, run.as_ref().map(|r| r.url.as_str()))
        .await;
    let record = match &result {
        Ok(report) => RunRecord::from_report(report, &context),
        Err(error) => RunRecord::from_error(&context, error, &BTreeMap::new()),
    };
    let tracker = tracker.clone();
    let task = tokio::spawn(async move {
        let outcome = tracker.record(run, record).await;
        tracing::info!("tracking: {outcome}");
        outcome
    });
    (result, task)
}
