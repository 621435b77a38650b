//! Prometheus metrics of the service, served as text by `GET /metrics`.

use autofix_store::IncidentState;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::time::Duration;

/// The pipeline's stages, as named in the run report's `stage_ms`.
const STAGES: [&str; 5] = ["evidence", "diagnose", "remedy", "validate", "publish"];

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
        }
    }

    /// Counts a webhook delivery by result.
    pub fn delivery(&self, result: &'static str) {
        self.deliveries.get_or_create(&[("result", result)]).inc();
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

    /// The metrics in the OpenMetrics text format.
    pub fn render(&self) -> String {
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
