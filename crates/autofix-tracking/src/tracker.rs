//! The pipeline's view of tracking: begin a run, record it, replay the spool. Never in the way.
//!
//! [`Tracker::begin`] is bounded by `timeout_ms` and answers `None` rather than wait for a slow
//! or absent MLflow. [`Tracker::record`] logs a whole run (meant for a spawned task) and, on any
//! failure, spools it; it never panics and never returns an error, only a [`RecordOutcome`] to
//! log. [`Tracker::flush_spool`] replays spooled runs in order. Replays are idempotent: every run
//! carries the [`RECORD_ID_TAG`] and is looked up before it is created, MLflow accepts a param
//! again with the same value, ignores a metric point it already has, and artifact uploads
//! overwrite.

use crate::batch::{Metric, Param, Tag};
use crate::client::{ClientError, ClientOptions, MlflowClient, NewRun};
use crate::record::{AttemptRecord, RECORD_ID_TAG, RunRecord, now_ms};
use crate::spool::{Spool, SpoolError, SpooledRun};
use autofix_pipeline::config::TrackingConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Default spool directory name under the data dir.
pub const SPOOL_DIR_NAME: &str = "mlflow-spool";

/// Why a tracker cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum TrackerError {
    /// Tracking is enabled but no tracking URI is configured.
    #[error("tracking is enabled but neither tracking.tracking_uri nor MLFLOW_TRACKING_URI is set")]
    NoTrackingUri,
    /// The client cannot be built.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The spool directory cannot be created.
    #[error(transparent)]
    Spool(#[from] SpoolError),
}

/// A parent run created in MLflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRef {
    /// Run id.
    pub run_id: String,
    /// Experiment id.
    pub experiment_id: String,
    /// The run's page in the MLflow UI, for the PR body.
    pub url: String,
    /// Where the run's artifacts go.
    pub artifact_uri: String,
}

/// What became of a recorded run.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordOutcome {
    /// Tracking is off.
    Disabled,
    /// Logged completely.
    Logged(RunRef),
    /// MLflow failed; the run waits in the spool.
    Spooled {
        /// The spool file.
        path: PathBuf,
        /// What failed.
        error: String,
    },
    /// MLflow failed and the spool could not be written either: the run is lost.
    Lost {
        /// What failed.
        error: String,
    },
}

impl std::fmt::Display for RecordOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordOutcome::Disabled => f.write_str("tracking disabled"),
            RecordOutcome::Logged(run) => write!(f, "run logged: {}", run.url),
            RecordOutcome::Spooled { path, error } => {
                write!(f, "run spooled to {} ({error})", path.display())
            }
            RecordOutcome::Lost { error } => write!(f, "run not tracked: {error}"),
        }
    }
}

/// What a spool replay did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlushReport {
    /// Runs logged and removed from the spool.
    pub replayed: usize,
    /// Runs moved to `rejected/` (unreadable, or refused by MLflow for good).
    pub rejected: usize,
    /// Runs still waiting (MLflow unreachable again).
    pub remaining: usize,
    /// What went wrong, one line per problem.
    pub errors: Vec<String>,
}

/// Counters for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrackerStats {
    /// Runs logged directly.
    pub logged: u64,
    /// Runs spooled because MLflow failed (tracking failures).
    pub spooled: u64,
    /// Runs lost (spool unwritable).
    pub lost: u64,
    /// Spooled runs replayed.
    pub replayed: u64,
    /// Runs exported as OTLP traces.
    pub traces_exported: u64,
    /// Trace exports that failed (server older than 3.6, no SQL backend, unreachable); the
    /// run itself is logged regardless.
    pub trace_export_failures: u64,
}

/// Tracks runs in MLflow; cheap to clone, usable from spawned tasks.
#[derive(Clone)]
pub struct Tracker {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    client: MlflowClient,
    experiment: String,
    begin_timeout: Duration,
    record_timeout: Duration,
    log_prompts: bool,
    export_traces: bool,
    spool: Spool,
    experiment_id: tokio::sync::Mutex<Option<String>>,
    flushing: tokio::sync::Mutex<()>,
    logged: AtomicU64,
    spooled: AtomicU64,
    lost: AtomicU64,
    replayed: AtomicU64,
    traces_exported: AtomicU64,
    trace_export_failures: AtomicU64,
    /// Set once "the server has no OTLP endpoint" has been logged.
    traces_unsupported_logged: AtomicBool,
}

impl Tracker {
    /// A tracker from the config; disabled (every call a no-op) unless `enabled`. The spool
    /// defaults to `<data_dir>/mlflow-spool`.
    pub fn new(config: &TrackingConfig, data_dir: &Path) -> Result<Tracker, TrackerError> {
        if !config.enabled {
            return Ok(Tracker::disabled());
        }
        let uri = config
            .tracking_uri
            .clone()
            .or_else(|| std::env::var("MLFLOW_TRACKING_URI").ok())
            .filter(|u| !u.is_empty())
            .ok_or(TrackerError::NoTrackingUri)?;
        let client = MlflowClient::new(
            &uri,
            ClientOptions {
                timeout: Duration::from_millis(config.timeout_ms),
                max_retries: config.max_retries,
                ..ClientOptions::default()
            },
        )?;
        let spool_dir = config
            .spool_dir
            .clone()
            .unwrap_or_else(|| data_dir.join(SPOOL_DIR_NAME));
        let spool = Spool::open(&spool_dir)?;
        Ok(Tracker {
            inner: Some(Arc::new(Inner {
                client,
                experiment: config.experiment.clone(),
                begin_timeout: Duration::from_millis(config.timeout_ms),
                record_timeout: Duration::from_millis(config.record_timeout_ms),
                log_prompts: config.log_prompts,
                export_traces: config.export_traces,
                spool,
                experiment_id: tokio::sync::Mutex::new(None),
                flushing: tokio::sync::Mutex::new(()),
                logged: AtomicU64::new(0),
                spooled: AtomicU64::new(0),
                lost: AtomicU64::new(0),
                replayed: AtomicU64::new(0),
                traces_exported: AtomicU64::new(0),
                trace_export_failures: AtomicU64::new(0),
                traces_unsupported_logged: AtomicBool::new(false),
            })),
        })
    }

    /// A tracker that tracks nothing.
    pub fn disabled() -> Tracker {
        Tracker { inner: None }
    }

    /// True when runs are tracked.
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// The MLflow client, when enabled.
    pub fn client(&self) -> Option<&MlflowClient> {
        self.inner.as_deref().map(|i| &i.client)
    }

    /// The spool directory, when enabled.
    pub fn spool_dir(&self) -> Option<&Path> {
        self.inner.as_deref().map(|i| i.spool.dir())
    }

    /// Counters since start.
    pub fn stats(&self) -> TrackerStats {
        self.inner
            .as_deref()
            .map_or_else(TrackerStats::default, |i| TrackerStats {
                logged: i.logged.load(Ordering::Relaxed),
                spooled: i.spooled.load(Ordering::Relaxed),
                lost: i.lost.load(Ordering::Relaxed),
                replayed: i.replayed.load(Ordering::Relaxed),
                traces_exported: i.traces_exported.load(Ordering::Relaxed),
                trace_export_failures: i.trace_export_failures.load(Ordering::Relaxed),
            })
    }

    /// Creates the parent run, within `timeout_ms`; `None` when tracking is off or MLflow does
    /// not answer in time (the run is then created when it is recorded or replayed).
    /// `incident` is the incident's hash or another stable id of the alert group.
    pub async fn begin(&self, run_name: &str, incident: &str) -> Option<RunRef> {
        let inner = self.inner.as_deref()?;
        let create = async {
            let experiment_id = inner.experiment_id().await?;
            let tags = vec![
                tag("incident", incident),
                tag("mlflow.source.name", "kube-autofix"),
            ];
            let info = inner
                .client
                .create_run(&NewRun {
                    experiment_id: &experiment_id,
                    run_name: &autofix_core::redact::redact(run_name),
                    start_time: now_ms(),
                    tags,
                })
                .await?;
            Ok::<_, ClientError>(inner.run_ref(info.experiment_id, info.run_id, info.artifact_uri))
        };
        match tokio::time::timeout(inner.begin_timeout, create).await {
            Ok(Ok(run)) => Some(run),
            Ok(Err(e)) => {
                tracing::warn!("MLflow run not created, it will be logged later: {e}");
                None
            }
            Err(_) => {
                tracing::warn!(
                    "MLflow did not answer within {:?}; the run will be logged later",
                    inner.begin_timeout
                );
                None
            }
        }
    }

    /// Logs a whole run and ends it, or spools it when MLflow fails. Never panics, never
    /// blocks longer than `record_timeout_ms` plus a spool write. After a successful log, runs
    /// waiting in the spool are replayed.
    pub async fn record(&self, run: Option<RunRef>, record: RunRecord) -> RecordOutcome {
        let Some(inner) = self.inner.as_deref() else {
            return RecordOutcome::Disabled;
        };
        let mut record = record.redacted();
        if !inner.log_prompts {
            record.prompts.clear();
        }
        let logged = tokio::time::timeout(inner.record_timeout, inner.log(run.as_ref(), &record));
        let error = match logged.await {
            Ok(Ok(run)) => {
                inner.logged.fetch_add(1, Ordering::Relaxed);
                inner.export_trace(&run, &record).await;
                if inner.spool.entries().is_ok_and(|e| !e.is_empty()) {
                    let report = self.flush_spool().await;
                    tracing::info!(
                        replayed = report.replayed,
                        remaining = report.remaining,
                        "replayed spooled MLflow runs"
                    );
                }
                return RecordOutcome::Logged(run);
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("MLflow logging took over {:?}", inner.record_timeout),
        };
        match inner
            .spool
            .write(&SpooledRun::new(run, record, error.clone()))
        {
            Ok(path) => {
                inner.spooled.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    "MLflow tracking failed, run spooled to {}: {error}",
                    path.display()
                );
                RecordOutcome::Spooled { path, error }
            }
            Err(spool_error) => {
                inner.lost.fetch_add(1, Ordering::Relaxed);
                let error = format!("{error}; and the spool failed: {spool_error}");
                tracing::error!("MLflow run lost: {error}");
                RecordOutcome::Lost { error }
            }
        }
    }

    /// Replays spooled runs in order, each exactly once; stops at the first run MLflow cannot
    /// take now, so order is kept. One flush runs at a time.
    pub async fn flush_spool(&self) -> FlushReport {
        let mut report = FlushReport::default();
        let Some(inner) = self.inner.as_deref() else {
            return report;
        };
        let _one_at_a_time = inner.flushing.lock().await;
        let entries = match inner.spool.entries() {
            Ok(e) => e,
            Err(e) => {
                report.errors.push(e.to_string());
                return report;
            }
        };
        for (i, path) in entries.iter().enumerate() {
            let entry = match inner.spool.read(path) {
                Ok(entry) => entry,
                Err(e) => {
                    report.errors.push(e.to_string());
                    inner.reject(path, &mut report);
                    continue;
                }
            };
            let logged = tokio::time::timeout(
                inner.record_timeout,
                inner.log(entry.run.as_ref(), &entry.record),
            )
            .await;
            match logged {
                Ok(Ok(run)) => match inner.spool.remove(path) {
                    Ok(()) => {
                        report.replayed += 1;
                        inner.replayed.fetch_add(1, Ordering::Relaxed);
                        inner.export_trace(&run, &entry.record).await;
                    }
                    Err(e) => report.errors.push(e.to_string()),
                },
                // A 400 will be a 400 next time too: set it aside rather than block the queue.
                Ok(Err(e @ ClientError::Api { status: 400, .. })) => {
                    report.errors.push(format!("{}: {e}", path.display()));
                    inner.reject(path, &mut report);
                }
                Ok(Err(e)) => {
                    report.errors.push(format!("{}: {e}", path.display()));
                    report.remaining = entries.len() - i;
                    break;
                }
                Err(_) => {
                    report.errors.push(format!(
                        "{}: MLflow logging took over {:?}",
                        path.display(),
                        inner.record_timeout
                    ));
                    report.remaining = entries.len() - i;
                    break;
                }
            }
        }
        report
    }
}

impl Inner {
    fn run_ref(&self, experiment_id: String, run_id: String, artifact_uri: String) -> RunRef {
        RunRef {
            url: self.client.run_url(&experiment_id, &run_id),
            run_id,
            experiment_id,
            artifact_uri,
        }
    }

    /// The experiment's id, looked up (or created) once.
    async fn experiment_id(&self) -> Result<String, ClientError> {
        let mut cached = self.experiment_id.lock().await;
        if let Some(id) = cached.as_ref() {
            return Ok(id.clone());
        }
        let id = self
            .client
            .get_or_create_experiment(&self.experiment)
            .await?;
        *cached = Some(id.clone());
        Ok(id)
    }

    /// Exports a logged run as an OTLP trace when `export_traces` is on. Never fails: a
    /// failure is counted (and logged, only once when the server has no OTLP endpoint).
    async fn export_trace(&self, run: &RunRef, record: &RunRecord) {
        if !self.export_traces {
            return;
        }
        let body = crate::trace::encode(record, run);
        let export = self
            .client
            .export_traces(&run.experiment_id, Some(&run.run_id), body);
        let error = match tokio::time::timeout(self.record_timeout, export).await {
            Ok(Ok(())) => {
                self.traces_exported.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Ok(Err(e)) => e,
            Err(_) => {
                self.trace_export_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    "MLflow trace export took over {:?}; the run is logged without its trace",
                    self.record_timeout
                );
                return;
            }
        };
        self.trace_export_failures.fetch_add(1, Ordering::Relaxed);
        let unsupported = matches!(
            error,
            ClientError::Api {
                status: 404 | 405 | 415 | 501,
                ..
            }
        );
        if !unsupported {
            tracing::warn!(
                "MLflow trace export failed; the run is logged without its trace: {error}"
            );
        } else if !self.traces_unsupported_logged.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "MLflow has no OTLP trace endpoint (needs MLflow >= 3.6 with a SQL backend; set \
                 tracking.export_traces = false to stop trying); runs are logged without traces: {error}"
            );
        } else {
            tracing::debug!("MLflow trace export unsupported: {error}");
        }
    }

    fn reject(&self, path: &Path, report: &mut FlushReport) {
        match self.spool.reject(path) {
            Ok(_) => report.rejected += 1,
            Err(e) => report.errors.push(e.to_string()),
        }
    }

    /// Logs a record completely: parent run, its data and artifacts, nested runs, statuses.
    /// Idempotent, so a replay after a partial log completes the same runs.
    async fn log(&self, known: Option<&RunRef>, record: &RunRecord) -> Result<RunRef, ClientError> {
        let experiment_id = self.experiment_id().await?;
        let parent = self
            .find_or_create(
                &experiment_id,
                known,
                &record.id,
                &record.run_name,
                record.start_time,
                Vec::new(),
            )
            .await?;
        self.client
            .log_batch(
                &parent.run_id,
                &record.metrics,
                &record.param_list(),
                &record.tag_list(),
            )
            .await?;
        for artifact in record.artifacts.iter().chain(&record.prompts) {
            self.upload(&parent, &artifact.path, &artifact.content)
                .await?;
        }
        for attempt in &record.attempts {
            self.log_attempt(&experiment_id, &parent, record, attempt)
                .await?;
        }
        self.client
            .update_run(&parent.run_id, record.status, record.end_time)
            .await?;
        Ok(parent)
    }

    /// One nested run.
    async fn log_attempt(
        &self,
        experiment_id: &str,
        parent: &RunRef,
        record: &RunRecord,
        attempt: &AttemptRecord,
    ) -> Result<(), ClientError> {
        let id = format!("{}.{}.{}", record.id, attempt.iteration, attempt.name);
        let name = format!(
            "{} #{} {}",
            record.run_name, attempt.iteration, attempt.name
        );
        let nested = self
            .find_or_create(
                experiment_id,
                None,
                &id,
                &name,
                record.start_time,
                vec![tag("mlflow.parentRunId", &parent.run_id)],
            )
            .await?;
        let step = i64::from(attempt.iteration);
        let metrics: Vec<Metric> = attempt
            .metrics
            .iter()
            .map(|(key, value)| Metric {
                key: key.clone(),
                value: *value,
                timestamp: record.end_time,
                step,
            })
            .collect();
        let params: Vec<Param> = attempt
            .params
            .iter()
            .map(|(key, value)| Param {
                key: key.clone(),
                value: value.clone(),
            })
            .collect();
        let mut tags: Vec<Tag> = attempt.tags.iter().map(|(k, v)| tag(k, v)).collect();
        tags.push(tag("agent_type", &attempt.agent));
        tags.push(tag("iteration", &attempt.iteration.to_string()));
        tags.push(tag("mlflow.parentRunId", &parent.run_id));
        tags.push(tag(RECORD_ID_TAG, &id));
        self.client
            .log_batch(&nested.run_id, &metrics, &params, &tags)
            .await?;
        if let Some(error) = &attempt.error {
            self.upload(&nested, "error.txt", error).await?;
        }
        self.client
            .update_run(&nested.run_id, attempt.status, record.end_time)
            .await
    }

    /// The run carrying `record_id`: the known one if it still exists, else one found by tag,
    /// else a new one.
    async fn find_or_create(
        &self,
        experiment_id: &str,
        known: Option<&RunRef>,
        record_id: &str,
        run_name: &str,
        start_time: i64,
        mut tags: Vec<Tag>,
    ) -> Result<RunRef, ClientError> {
        if let Some(known) = known
            && let Some(run) = self.client.get_run(&known.run_id).await?
        {
            return Ok(self.run_ref(
                run.info.experiment_id,
                run.info.run_id,
                run.info.artifact_uri,
            ));
        }
        // Record ids are made of digits, letters, `-`, `.` and `/`: safe inside quotes.
        let filter = format!(
            "tags.\"{RECORD_ID_TAG}\" = '{}'",
            record_id.replace('\'', "")
        );
        if let Some(run) = self
            .client
            .search_runs(&[experiment_id], &filter)
            .await?
            .into_iter()
            .next()
        {
            return Ok(self.run_ref(
                run.info.experiment_id,
                run.info.run_id,
                run.info.artifact_uri,
            ));
        }
        tags.push(tag(RECORD_ID_TAG, record_id));
        let info = self
            .client
            .create_run(&NewRun {
                experiment_id,
                run_name,
                start_time,
                tags,
            })
            .await?;
        Ok(self.run_ref(info.experiment_id, info.run_id, info.artifact_uri))
    }

    /// Uploads one artifact; a run whose artifacts the server does not proxy gets none (a
    /// warning), since retrying cannot help.
    async fn upload(&self, run: &RunRef, path: &str, content: &str) -> Result<(), ClientError> {
        match self
            .client
            .upload_artifact(&run.artifact_uri, path, content.as_bytes().to_vec())
            .await
        {
            Err(e @ ClientError::UnsupportedArtifactUri { .. }) => {
                tracing::warn!("artifact {path} not stored: {e}");
                Ok(())
            }
            other => other,
        }
    }
}

fn tag(key: &str, value: &str) -> Tag {
    Tag {
        key: key.to_string(),
        value: value.to_string(),
    }
}
