//! The `[tracking]` section of the config file (used by the autofix-tracking crate).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// MLflow tracking settings. Secrets never go here: credentials come from
/// `MLFLOW_TRACKING_USERNAME`/`MLFLOW_TRACKING_PASSWORD` or `MLFLOW_TRACKING_TOKEN`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackingConfig {
    /// Track runs in MLflow (default false).
    pub enabled: bool,
    /// The MLflow tracking server, e.g. `http://mlflow.mlflow:5000` (default: the
    /// `MLFLOW_TRACKING_URI` environment variable).
    pub tracking_uri: Option<String>,
    /// Experiment the runs go to; created when missing (default `kube-autofix`).
    pub experiment: String,
    /// Timeout of one MLflow request, and the most `begin` may take, in milliseconds
    /// (default 5000).
    pub timeout_ms: u64,
    /// Most time logging one run may take before it is spooled instead, in milliseconds
    /// (default 60000).
    pub record_timeout_ms: u64,
    /// Retries of a request answered 429 or 5xx or refused, with exponential backoff
    /// (default 2).
    pub max_retries: u32,
    /// Where runs wait while MLflow is unreachable (default `<data dir>/mlflow-spool`).
    pub spool_dir: Option<PathBuf>,
    /// Also store the redacted prompts and raw LLM replies as artifacts (default false).
    /// For local experimentation only: prompts quote evidence at length.
    pub log_prompts: bool,
    /// Also export each logged run as an OpenTelemetry trace (a span per pipeline stage) to
    /// MLflow's OTLP endpoint `<tracking_uri>/v1/traces`, shown in the experiment's Traces tab
    /// (default true). Needs MLflow >= 3.6 with a SQL backend store; an older or file-backed
    /// server answers 404 or an error, which is logged once and counted in `/metrics`, never
    /// failing the run.
    pub export_traces: bool,
}

impl Default for TrackingConfig {
    fn default() -> Self {
        TrackingConfig {
            enabled: false,
            tracking_uri: None,
            experiment: "kube-autofix".into(),
            timeout_ms: 5_000,
            record_timeout_ms: 60_000,
            max_retries: 2,
            spool_dir: None,
            log_prompts: false,
            export_traces: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_defaults_and_refuses_unknown_keys() -> Result<(), serde_json::Error> {
        let c: TrackingConfig =
            serde_json::from_value(serde_json::json!({ "enabled": true, "experiment": "x" }))?;
        assert!(c.enabled && !c.log_prompts && c.export_traces);
        assert_eq!(c.experiment, "x");
        assert_eq!(c.timeout_ms, 5_000);
        assert!(
            serde_json::from_value::<TrackingConfig>(serde_json::json!({ "enable": true }))
                .is_err()
        );
        Ok(())
    }
}
