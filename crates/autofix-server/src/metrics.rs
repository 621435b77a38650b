//! Prometheus metrics of the service, served as text by `GET /metrics`.

use crate::runner::Runner;
use autofix_store::{GroupCommitStats, IncidentState};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The pipeline's stages, as named in the run report's `stage_ms`.
const STAGES: [&str; 5] = ["evidence", "diagnose", "remedy", "validate", "publish"];

/// Results of `autofix_tracking_runs_total{result}`.
const TRACKING_RESULTS: [&str; 4] = ["logged", "spooled", "lost", "replayed"];

/// Results of `autofix_tracking_traces_total{result}`.
const TRACE_RESULTS: [&str; 2] = ["exported", "failed"];

/// One label: name and value.
type Label = [(&'static str, &'static str); 1];

/// Builds run-duration histograms: buckets from 0.25 s doubling to about 8.5 min.
type HistogramMaker = fn() -> Histogram;

/// Every metric the service exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    deliveries: Family<Label, Counter>,
    alerts: Family<Label, Counter>,
    duplicates: Counter,
    ignored: Counter,
    truncated: Counter,
    runs: Family<Label, Counter>,
    published: Family<Label, Counter>,
    run_seconds: Family<Label, Histogram, HistogramMaker>,
    stage_seconds: Family<Label, Histogram, HistogramMaker>,
    queue_depth: Gauge,
    incidents: Family<Label, Gauge>,
    store_commits: Counter,
    store_committed_deliveries: Counter,
    tracking_runs: Family<Label, Counter>,
    traces: Family<Label, Counter>,
    llm_requests: Family<Label, Counter>,
    llm_tokens: Family<Label, Counter>,
    llm_seconds: Histogram,
    github_deliveries: Family<Label, Counter>,
    outcomes: Family<Label, Counter>,
    outcome_marks: Family<Label, Counter>,
    tracking: Option<TrackingSource>,
}

/// Where the MLflow tracking counters are read at render time: the runner, which owns the
/// tracker.
#[derive(Clone)]
struct TrackingSource(Arc<dyn Runner>);

impl std::fmt::Debug for TrackingSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TrackingSource")
    }
}

/// What happened to a finished run, for `autofix_runs_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// Completed: the incident is done.
    Done,
    /// Failed transiently; queued again after a backoff.
    Retry,
    /// Parked: bad input or out of attempts.
    Parked,
    /// Given back unfinished at shutdown.
    Released,
}

impl RunOutcome {
    fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Done => "done",
            RunOutcome::Retry => "retry",
            RunOutcome::Parked => "parked",
            RunOutcome::Released => "released",
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric (names below are without the `_total` suffix counters get).
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("autofix");
        let deliveries = Family::<Label, Counter>::default();
        registry.register(
            "webhook_deliveries",
            "Webhook deliveries by result (accepted, unauthorized, bad_request, too_large, queue_full, store_error)",
            deliveries.clone(),
        );
        let alerts = Family::<Label, Counter>::default();
        registry.register(
            "alerts_received",
            "Alerts in accepted deliveries, by status (firing, resolved), re-deliveries included",
            alerts.clone(),
        );
        let duplicates = Counter::default();
        registry.register(
            "alerts_duplicate",
            "Alerts recognised as re-deliveries (same fingerprint, startsAt and status)",
            duplicates.clone(),
        );
        let ignored = Counter::default();
        registry.register(
            "alerts_ignored",
            "New alerts recorded but not acted on (cluster-wide or naming no workload)",
            ignored.clone(),
        );
        let truncated = Counter::default();
        registry.register(
            "alerts_truncated",
            "Alerts Alertmanager cut off with max_alerts (truncatedAlerts)",
            truncated.clone(),
        );
        let runs = Family::<Label, Counter>::default();
        registry.register(
            "runs",
            "Pipeline runs by outcome (done, retry, parked, released)",
            runs.clone(),
        );
        let published = Family::<Label, Counter>::default();
        registry.register(
            "published",
            "Runs that published, by kind (pull_request, escalation)",
            published.clone(),
        );
        let run_seconds: Family<Label, Histogram, HistogramMaker> =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.25, 2.0, 12)));
        registry.register(
            "run_duration_seconds",
            "Duration of pipeline runs in seconds, by outcome",
            run_seconds.clone(),
        );
        let stage_seconds: Family<Label, Histogram, HistogramMaker> =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.001, 2.0, 16)));
        registry.register(
            "stage_duration_seconds",
            "Duration of each pipeline stage in seconds (evidence, diagnose, remedy, validate, publish)",
            stage_seconds.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "queue_depth",
            "Incidents waiting for a worker",
            queue_depth.clone(),
        );
        let incidents = Family::<Label, Gauge>::default();
        registry.register(
            "incidents",
            "Incidents in the store by state",
            incidents.clone(),
        );
        let store_commits = Counter::default();
        registry.register(
            "store_group_commits",
            "SQLite transactions that recorded deliveries (group commit)",
            store_commits.clone(),
        );
        let store_committed_deliveries = Counter::default();
        registry.register(
            "store_group_committed_deliveries",
            "Deliveries those transactions carried; divided by the commits, the mean group size",
            store_committed_deliveries.clone(),
        );
        let tracking_runs = Family::<Label, Counter>::default();
        registry.register(
            "tracking_runs",
            "Runs given to MLflow tracking, by result (logged; spooled and lost are tracking \
             failures; replayed from the spool)",
            tracking_runs.clone(),
        );
        let traces = Family::<Label, Counter>::default();
        registry.register(
            "tracking_traces",
            "Runs exported as OTLP traces to MLflow, by result (exported, failed)",
            traces.clone(),
        );
        let llm_requests = Family::<Label, Counter>::default();
        registry.register(
            "llm_requests",
            "LLM diagnosis tries by outcome (accepted, invalid: the reply was refused, error: the call failed)",
            llm_requests.clone(),
        );
        let llm_tokens = Family::<Label, Counter>::default();
        registry.register(
            "llm_tokens",
            "Tokens the LLM provider reported, by kind (prompt, completion)",
            llm_tokens.clone(),
        );
        let llm_seconds = Histogram::new(exponential_buckets(0.05, 2.0, 12));
        registry.register(
            "llm_request_duration_seconds",
            "Duration of LLM diagnosis tries in seconds, retries included",
            llm_seconds.clone(),
        );
        let github_deliveries = Family::<Label, Counter>::default();
        registry.register(
            "github_deliveries",
            "GitHub webhook deliveries by result (recorded, duplicate, ignored, pong, unauthorized, \
             bad_request, too_large, disabled, store_error)",
            github_deliveries.clone(),
        );
        let outcomes = Family::<Label, Counter>::default();
        registry.register(
            "outcomes",
            "Fix outcomes recorded, by outcome (merged, rejected, reverted, resolved, recurred)",
            outcomes.clone(),
        );
        let outcome_marks = Family::<Label, Counter>::default();
        registry.register(
            "outcome_marks",
            "Outcomes marked on the fix's MLflow run, by result (marked; no_run: none found; \
             failed: MLflow error)",
            outcome_marks.clone(),
        );
        // Shown from the start, at zero, even with tracking off.
        for result in TRACKING_RESULTS {
            tracking_runs.get_or_create(&[("result", result)]).inc_by(0);
        }
        for result in TRACE_RESULTS {
            traces.get_or_create(&[("result", result)]).inc_by(0);
        }
        Metrics {
            registry,
            deliveries,
            alerts,
            duplicates,
            ignored,
            truncated,
            runs,
            published,
            run_seconds,
            stage_seconds,
            queue_depth,
            incidents,
            store_commits,
            store_committed_deliveries,
            tracking_runs,
            traces,
            llm_requests,
            llm_tokens,
            llm_seconds,
            github_deliveries,
            outcomes,
            outcome_marks,
            tracking: None,
        }
    }

    /// These metrics, with the MLflow tracking counters of `runner` read at every render.
    pub fn with_tracking(mut self, runner: Arc<dyn Runner>) -> Metrics {
        self.tracking = Some(TrackingSource(runner));
        self
    }

    /// Counts a webhook delivery by result.
    pub fn delivery(&self, result: &'static str) {
        self.deliveries.get_or_create(&[("result", result)]).inc();
    }

    /// Counts a GitHub webhook delivery by result.
    pub fn github_delivery(&self, result: &'static str) {
        self.github_deliveries
            .get_or_create(&[("result", result)])
            .inc();
    }

    /// Counts a recorded fix outcome.
    pub fn outcome(&self, outcome: &'static str) {
        self.outcomes.get_or_create(&[("outcome", outcome)]).inc();
    }

    /// Counts an attempt to mark an outcome on MLflow by result.
    pub fn outcome_mark(&self, result: &'static str) {
        self.outcome_marks
            .get_or_create(&[("result", result)])
            .inc();
    }

    /// Counts the alerts of an accepted delivery.
    pub fn alerts(
        &self,
        firing: u64,
        resolved: u64,
        duplicates: u64,
        ignored: u64,
        truncated: u64,
    ) {
        self.alerts
            .get_or_create(&[("status", "firing")])
            .inc_by(firing);
        self.alerts
            .get_or_create(&[("status", "resolved")])
            .inc_by(resolved);
        self.duplicates.inc_by(duplicates);
        self.ignored.inc_by(ignored);
        self.truncated.inc_by(truncated);
    }

    /// Records the stage latencies of a run report (its `stage_ms` map).
    pub fn stages(&self, report: &serde_json::Value) {
        for stage in STAGES {
            let ms = report
                .pointer(&format!("/stage_ms/{stage}"))
                .and_then(serde_json::Value::as_f64);
            if let Some(ms) = ms {
                self.stage_seconds
                    .get_or_create(&[("stage", stage)])
                    .observe(ms / 1000.0);
            }
        }
    }

    /// Records the LLM tries of a run report (its `attempts` array): outcome, tokens, latency.
    pub fn llm_attempts(&self, report: &serde_json::Value) {
        let Some(attempts) = report.get("attempts").and_then(|a| a.as_array()) else {
            return;
        };
        for attempt in attempts.iter().filter(|a| a["agent"] == "llm") {
            let outcome = match attempt["outcome"].as_str() {
                Some("accepted") => "accepted",
                Some("invalid") => "invalid",
                _ => "error",
            };
            self.llm_requests
                .get_or_create(&[("outcome", outcome)])
                .inc();
            for kind in ["prompt", "completion"] {
                if let Some(tokens) = attempt[format!("{kind}_tokens")].as_u64() {
                    self.llm_tokens
                        .get_or_create(&[("kind", kind)])
                        .inc_by(tokens);
                }
            }
            if let Some(ms) = attempt["latency_ms"].as_f64() {
                self.llm_seconds.observe(ms / 1000.0);
            }
        }
    }

    /// Records a finished run.
    pub fn run(&self, outcome: RunOutcome, took: Duration) {
        let label = [("outcome", outcome.as_str())];
        self.runs.get_or_create(&label).inc();
        self.run_seconds
            .get_or_create(&label)
            .observe(took.as_secs_f64());
    }

    /// Counts a pull request or escalation.
    pub fn published(&self, kind: &'static str) {
        self.published.get_or_create(&[("kind", kind)]).inc();
    }

    /// Sets the queue gauges from the store.
    pub fn set_queue(&self, depth: u64, by_state: &BTreeMap<IncidentState, u64>) {
        self.queue_depth
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
        for (state, n) in by_state {
            self.incidents
                .get_or_create(&[("state", state.as_str())])
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
    }

    /// Sets the group-commit counters from the store's own counts.
    pub fn set_group_commit(&self, stats: GroupCommitStats) {
        self.store_commits
            .inner()
            .store(stats.commits, Ordering::Relaxed);
        self.store_committed_deliveries
            .inner()
            .store(stats.deliveries, Ordering::Relaxed);
    }

    /// The metrics in the OpenMetrics text format.
    pub fn render(&self) -> String {
        if let Some(stats) = self.tracking.as_ref().and_then(|t| t.0.tracking_stats()) {
            let set = |family: &Family<Label, Counter>, result: &'static str, value: u64| {
                family
                    .get_or_create(&[("result", result)])
                    .inner()
                    .store(value, Ordering::Relaxed);
            };
            set(&self.tracking_runs, "logged", stats.logged);
            set(&self.tracking_runs, "spooled", stats.spooled);
            set(&self.tracking_runs, "lost", stats.lost);
            set(&self.tracking_runs, "replayed", stats.replayed);
            set(&self.traces, "exported", stats.traces_exported);
            set(&self.traces, "failed", stats.trace_export_failures);
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod stage_tests {
    use super::*;

    #[test]
    fn llm_attempts_of_a_report_become_counters() {
        let metrics = Metrics::new();
        metrics.llm_attempts(&serde_json::json!({"attempts": [
            {"agent": "llm", "outcome": "invalid", "prompt_tokens": 900, "completion_tokens": 80, "latency_ms": 1200.0},
            {"agent": "llm", "outcome": "accepted", "prompt_tokens": 950, "completion_tokens": 70, "latency_ms": 900.0},
        ]}));
        let text = metrics.render();
        for line in [
            "autofix_llm_requests_total{outcome=\"invalid\"} 1",
            "autofix_llm_requests_total{outcome=\"accepted\"} 1",
            "autofix_llm_tokens_total{kind=\"prompt\"} 1850",
            "autofix_llm_tokens_total{kind=\"completion\"} 150",
            "autofix_llm_request_duration_seconds_count 2",
        ] {
            assert!(text.contains(line), "{line} missing:\n{text}");
        }
    }

    #[test]
    fn stage_latencies_of_a_report_become_histograms() {
        let metrics = Metrics::new();
        metrics.stages(&serde_json::json!({"stage_ms": {"evidence": 12.0, "publish": 30.5}}));
        let text = metrics.render();
        assert!(
            text.contains("autofix_stage_duration_seconds_count{stage=\"evidence\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("autofix_stage_duration_seconds_count{stage=\"publish\"} 1"),
            "{text}"
        );
        assert!(!text.contains("stage=\"diagnose\""), "{text}");
    }
}

#[cfg(test)]
mod tracking_tests {
    use super::*;
    use crate::runner::{RunError, RunOutput};
    use autofix_core::Incident;
    use autofix_tracking::TrackerStats;

    struct Tracked;

    #[async_trait::async_trait]
    impl Runner for Tracked {
        async fn run(&self, _: &Incident) -> Result<RunOutput, RunError> {
            Err(RunError::bad_input("not used"))
        }

        fn tracking_stats(&self) -> Option<TrackerStats> {
            Some(TrackerStats {
                logged: 7,
                spooled: 2,
                lost: 1,
                replayed: 2,
                traces_exported: 6,
                trace_export_failures: 1,
            })
        }
    }

    #[test]
    fn tracking_counters_are_shown_at_zero_without_a_tracker() {
        let text = Metrics::new().render();
        for result in TRACKING_RESULTS {
            assert!(
                text.contains(&format!(
                    "autofix_tracking_runs_total{{result=\"{result}\"}} 0"
                )),
                "{text}"
            );
        }
        for result in TRACE_RESULTS {
            assert!(
                text.contains(&format!(
                    "autofix_tracking_traces_total{{result=\"{result}\"}} 0"
                )),
                "{text}"
            );
        }
    }

    #[test]
    fn tracking_counters_are_read_from_the_runner_at_render_time() {
        let metrics = Metrics::new().with_tracking(Arc::new(Tracked));
        let text = metrics.render();
        for line in [
            "autofix_tracking_runs_total{result=\"logged\"} 7",
            "autofix_tracking_runs_total{result=\"spooled\"} 2",
            "autofix_tracking_runs_total{result=\"lost\"} 1",
            "autofix_tracking_runs_total{result=\"replayed\"} 2",
            "autofix_tracking_traces_total{result=\"exported\"} 6",
            "autofix_tracking_traces_total{result=\"failed\"} 1",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }
}
