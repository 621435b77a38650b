//! A small MLflow REST client over reqwest: experiments, runs, log-batch and proxied artifacts.
//!
//! The seam is the tracking URI: tests point it at a real `mlflow server`. Auth follows the MLflow
//! client conventions ([`Auth::from_env`]). Requests that fail with 429, 5xx or a refused
//! connection are retried with exponential backoff (honouring `Retry-After`, capped), a bounded
//! number of times.

use crate::batch::{self, Metric, Param, Tag};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Prefix of MLflow's tracking REST API.
const API: &str = "api/2.0/mlflow";
/// Prefix of the artifact proxy API.
const ARTIFACTS_API: &str = "api/2.0/mlflow-artifacts/artifacts";
/// Scheme of artifact URIs served by the tracking server's artifact proxy.
const ARTIFACT_SCHEME: &str = "mlflow-artifacts:";
/// MLflow's OTLP trace endpoint (since 3.6).
const OTLP_TRACES: &str = "v1/traces";
/// Experiment the OTLP traces go to (required by MLflow).
const EXPERIMENT_ID_HEADER: &str = "x-mlflow-experiment-id";
/// Run the OTLP traces are linked to.
const RUN_ID_HEADER: &str = "x-mlflow-run-id";
/// First backoff delay; doubled on each retry.
const BACKOFF_BASE: Duration = Duration::from_millis(200);
/// Longest wait between two attempts, even when `Retry-After` asks for more.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How requests authenticate, as MLflow clients do.
#[derive(Clone, Default)]
pub enum Auth {
    /// No credentials.
    #[default]
    None,
    /// HTTP basic (`MLFLOW_TRACKING_USERNAME` / `MLFLOW_TRACKING_PASSWORD`).
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: SecretString,
    },
    /// Bearer token (`MLFLOW_TRACKING_TOKEN`).
    Bearer(SecretString),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names the scheme only: credentials never reach logs.
        f.write_str(match self {
            Auth::None => "Auth::None",
            Auth::Basic { .. } => "Auth::Basic",
            Auth::Bearer(_) => "Auth::Bearer",
        })
    }
}

impl Auth {
    /// Credentials from `MLFLOW_TRACKING_TOKEN` (bearer) or `MLFLOW_TRACKING_USERNAME` and
    /// `MLFLOW_TRACKING_PASSWORD` (basic); none when unset. The token wins when both are set.
    pub fn from_env() -> Auth {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        if let Some(token) = var("MLFLOW_TRACKING_TOKEN") {
            Auth::Bearer(SecretString::from(token))
        } else if let Some(username) = var("MLFLOW_TRACKING_USERNAME") {
            Auth::Basic {
                username,
                password: SecretString::from(var("MLFLOW_TRACKING_PASSWORD").unwrap_or_default()),
            }
        } else {
            Auth::None
        }
    }
}

/// Why an MLflow call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The HTTP client cannot be built.
    #[error("cannot build the MLflow HTTP client: {0}")]
    Build(#[source] reqwest::Error),
    /// The tracking URI is not an http(s) URL.
    #[error("invalid MLflow tracking URI `{uri}`: {reason}")]
    InvalidUri {
        /// The URI given.
        uri: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The request did not get an answer (connection refused, timeout, reset).
    #[error("MLflow {endpoint}: {source}")]
    Transport {
        /// The endpoint called.
        endpoint: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// MLflow answered with an error.
    #[error("MLflow {endpoint} answered {status} {code}: {message}")]
    Api {
        /// The endpoint called.
        endpoint: String,
        /// HTTP status.
        status: u16,
        /// MLflow error code, e.g. `RESOURCE_ALREADY_EXISTS`.
        code: String,
        /// MLflow's message.
        message: String,
    },
    /// MLflow answered something this client cannot read.
    #[error("MLflow {endpoint} answered an unreadable body: {source}")]
    Decode {
        /// The endpoint called.
        endpoint: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The run stores artifacts where the tracking server does not proxy them.
    #[error(
        "run artifact URI `{uri}` is not served by the tracking server (start it without --default-artifact-root)"
    )]
    UnsupportedArtifactUri {
        /// The run's artifact URI.
        uri: String,
    },
}

impl ClientError {
    /// True when trying again later may succeed: no answer, 429 or 5xx.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Transport { .. } => true,
            ClientError::Api { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }

    /// The MLflow error code, for API errors.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// An MLflow experiment.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Experiment {
    /// Id.
    pub experiment_id: String,
    /// Name.
    pub name: String,
    /// `active` or `deleted`.
    #[serde(default)]
    pub lifecycle_stage: String,
}

/// Identity and status of a run.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RunInfo {
    /// Run id.
    pub run_id: String,
    /// Experiment id.
    pub experiment_id: String,
    /// Display name.
    #[serde(default)]
    pub run_name: String,
    /// `RUNNING`, `FINISHED`, `FAILED`, ...
    #[serde(default)]
    pub status: String,
    /// Start, in ms since the epoch.
    #[serde(default, deserialize_with = "int64")]
    pub start_time: Option<i64>,
    /// End, in ms since the epoch, once ended.
    #[serde(default, deserialize_with = "int64")]
    pub end_time: Option<i64>,
    /// Where the run's artifacts live, e.g. `mlflow-artifacts:/1/<run>/artifacts`.
    #[serde(default)]
    pub artifact_uri: String,
    /// `active` or `deleted`.
    #[serde(default)]
    pub lifecycle_stage: String,
}

/// Latest metrics, params and tags of a run.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct RunData {
    /// The latest point of each metric.
    #[serde(default)]
    pub metrics: Vec<Metric>,
    /// Params.
    #[serde(default)]
    pub params: Vec<Param>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl RunData {
    /// A tag's value.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|t| t.key == key)
            .map(|t| t.value.as_str())
    }

    /// A param's value.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|p| p.key == key)
            .map(|p| p.value.as_str())
    }

    /// A metric's latest value.
    pub fn metric(&self, key: &str) -> Option<f64> {
        self.metrics.iter().find(|m| m.key == key).map(|m| m.value)
    }
}

/// A run as `runs/get` and `runs/search` return it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Run {
    /// Identity and status.
    pub info: RunInfo,
    /// Metrics, params and tags.
    #[serde(default)]
    pub data: RunData,
}

/// One entry of an artifact directory listing.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FileInfo {
    /// Path relative to the listed directory.
    pub path: String,
    /// True for directories.
    #[serde(default)]
    pub is_dir: bool,
    /// Size in bytes, for files.
    #[serde(default, deserialize_with = "int64")]
    pub file_size: Option<i64>,
}

/// What a new run starts with.
#[derive(Debug, Clone, Serialize)]
pub struct NewRun<'a> {
    /// Experiment to create it in.
    pub experiment_id: &'a str,
    /// Display name (also sent as the `mlflow.runName` tag).
    pub run_name: &'a str,
    /// Start, in ms since the epoch.
    pub start_time: i64,
    /// Initial tags (e.g. `mlflow.parentRunId`).
    pub tags: Vec<Tag>,
}

/// Terminal status of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    /// Still being logged.
    Running,
    /// Completed.
    Finished,
    /// Ended in failure.
    Failed,
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Per-request timeout (connect included).
    pub timeout: Duration,
    /// Retries after the first attempt on 429, 5xx or a refused connection.
    pub max_retries: u32,
    /// Credentials.
    pub auth: Auth,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeout: Duration::from_secs(10),
            max_retries: 3,
            auth: Auth::from_env(),
        }
    }
}

/// A client of one MLflow tracking server.
#[derive(Debug, Clone)]
pub struct MlflowClient {
    http: reqwest::Client,
    base: reqwest::Url,
    options: ClientOptions,
}

impl MlflowClient {
    /// A client of the tracking server at `tracking_uri` (`http(s)://host[:port][/prefix]`).
    pub fn new(tracking_uri: &str, options: ClientOptions) -> Result<Self, ClientError> {
        let invalid = |reason: String| ClientError::InvalidUri {
            uri: tracking_uri.to_string(),
            reason,
        };
        // A trailing slash makes `join` keep any path prefix (e.g. behind a reverse proxy).
        let base = reqwest::Url::parse(&format!("{}/", tracking_uri.trim_end_matches('/')))
            .map_err(|e| invalid(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(invalid(
                "only http and https tracking URIs are supported".into(),
            ));
        }
        // kube-autofix compiles rustls with ring only; reqwest needs a process default. An
        // already installed provider is kept.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(options.timeout)
            .connect_timeout(options.timeout)
            .user_agent(concat!("kube-autofix/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ClientError::Build)?;
        Ok(MlflowClient {
            http,
            base,
            options,
        })
    }

    /// The tracking URI, without a trailing slash.
    pub fn tracking_uri(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// The MLflow UI page of a run.
    pub fn run_url(&self, experiment_id: &str, run_id: &str) -> String {
        format!(
            "{}/#/experiments/{experiment_id}/runs/{run_id}",
            self.tracking_uri()
        )
    }

    /// The experiment with this name, if it exists.
    pub async fn get_experiment_by_name(
        &self,
        name: &str,
    ) -> Result<Option<Experiment>, ClientError> {
        #[derive(Deserialize)]
        struct Reply {
            experiment: Experiment,
        }
        let mut url = self.api("experiments/get-by-name");
        url.query_pairs_mut().append_pair("experiment_name", name);
        match self.call::<Reply>(reqwest::Method::GET, url, None).await {
            Ok(reply) => Ok(Some(reply.experiment)),
            Err(e) if e.code() == Some("RESOURCE_DOES_NOT_EXIST") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates an experiment and returns its id.
    pub async fn create_experiment(&self, name: &str) -> Result<String, ClientError> {
        #[derive(Deserialize)]
        struct Reply {
            experiment_id: String,
        }
        let body = serde_json::json!({ "name": name });
        let reply: Reply = self
            .call(
                reqwest::Method::POST,
                self.api("experiments/create"),
                Some(body),
            )
            .await?;
        Ok(reply.experiment_id)
    }

    /// The id of the experiment with this name, created when missing. Safe against a concurrent
    /// creator: `RESOURCE_ALREADY_EXISTS` means someone else won, so it is read again.
    pub async fn get_or_create_experiment(&self, name: &str) -> Result<String, ClientError> {
        if let Some(e) = self.get_experiment_by_name(name).await? {
            return Ok(e.experiment_id);
        }
        match self.create_experiment(name).await {
            Ok(id) => Ok(id),
            Err(e) if e.code() == Some("RESOURCE_ALREADY_EXISTS") => self
                .get_experiment_by_name(name)
                .await?
                .map(|e| e.experiment_id)
                .ok_or(e),
            Err(e) => Err(e),
        }
    }

    /// Creates a run.
    pub async fn create_run(&self, run: &NewRun<'_>) -> Result<RunInfo, ClientError> {
        #[derive(Deserialize)]
        struct Reply {
            run: Run,
        }
        let mut tags = run.tags.clone();
        if !tags.iter().any(|t| t.key == "mlflow.runName") {
            tags.push(Tag {
                key: "mlflow.runName".into(),
                value: run.run_name.to_string(),
            });
        }
        let tags: Vec<Tag> = batch::chunk(&[], &[], &tags)
            .into_iter()
            .flat_map(|b| b.tags)
            .collect();
        let body = serde_json::json!({
            "experiment_id": run.experiment_id,
            "run_name": batch::truncate(run.run_name, batch::MAX_TAG_VALUE_CHARS),
            "start_time": run.start_time,
            "tags": tags,
        });
        let reply: Reply = self
            .call(reqwest::Method::POST, self.api("runs/create"), Some(body))
            .await?;
        Ok(reply.run.info)
    }

    /// Logs metrics, params and tags, split into as many `log-batch` calls as the limits need.
    pub async fn log_batch(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &[Param],
        tags: &[Tag],
    ) -> Result<(), ClientError> {
        for b in batch::chunk(metrics, params, tags) {
            let body = serde_json::json!({
                "run_id": run_id,
                "metrics": b.metrics,
                "params": b.params,
                "tags": b.tags,
            });
            self.call::<serde_json::Value>(
                reqwest::Method::POST,
                self.api("runs/log-batch"),
                Some(body),
            )
            .await?;
        }
        Ok(())
    }

    /// Sets a run's status and end time.
    pub async fn update_run(
        &self,
        run_id: &str,
        status: RunStatus,
        end_time: i64,
    ) -> Result<(), ClientError> {
        let body = serde_json::json!({ "run_id": run_id, "status": status, "end_time": end_time });
        self.call::<serde_json::Value>(reqwest::Method::POST, self.api("runs/update"), Some(body))
            .await?;
        Ok(())
    }

    /// A run; `None` when it does not exist.
    pub async fn get_run(&self, run_id: &str) -> Result<Option<Run>, ClientError> {
        #[derive(Deserialize)]
        struct Reply {
            run: Run,
        }
        let mut url = self.api("runs/get");
        url.query_pairs_mut().append_pair("run_id", run_id);
        match self.call::<Reply>(reqwest::Method::GET, url, None).await {
            Ok(reply) => Ok(Some(reply.run)),
            Err(e) if e.code() == Some("RESOURCE_DOES_NOT_EXIST") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every active run of the experiments matching an MLflow filter
    /// (e.g. `tags."autofix.record_id" = 'x'`), newest first, all pages.
    pub async fn search_runs(
        &self,
        experiment_ids: &[&str],
        filter: &str,
    ) -> Result<Vec<Run>, ClientError> {
        #[derive(Deserialize)]
        struct Reply {
            #[serde(default)]
            runs: Vec<Run>,
            #[serde(default)]
            next_page_token: Option<String>,
        }
        let mut runs = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut body = serde_json::json!({
                "experiment_ids": experiment_ids,
                "filter": filter,
                "run_view_type": "ACTIVE_ONLY",
                "max_results": 1000,
                "order_by": ["attributes.start_time DESC"],
            });
            if let Some(t) = &token {
                body["page_token"] = serde_json::Value::String(t.clone());
            }
            let reply: Reply = self
                .call(reqwest::Method::POST, self.api("runs/search"), Some(body))
                .await?;
            runs.extend(reply.runs);
            match reply.next_page_token.filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t),
                None => return Ok(runs),
            }
        }
    }

    /// Every point of a metric, in logging order.
    pub async fn metric_history(
        &self,
        run_id: &str,
        key: &str,
    ) -> Result<Vec<Metric>, ClientError> {
        #[derive(Deserialize)]
        struct Reply {
            #[serde(default)]
            metrics: Vec<Metric>,
        }
        let mut url = self.api("metrics/get-history");
        url.query_pairs_mut()
            .append_pair("run_id", run_id)
            .append_pair("metric_key", key);
        let reply: Reply = self.call(reqwest::Method::GET, url, None).await?;
        Ok(reply.metrics)
    }

    /// Uploads one artifact of a run (`path` relative to the run's artifact root; `/` separated).
    pub async fn upload_artifact(
        &self,
        artifact_uri: &str,
        path: &str,
        content: Vec<u8>,
    ) -> Result<(), ClientError> {
        let url = self.artifact_url(artifact_uri, path)?;
        let endpoint = format!("PUT artifacts/{path}");
        self.send(&endpoint, || {
            self.authorize(self.http.put(url.clone()))
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(content.clone())
        })
        .await?;
        Ok(())
    }

    /// Sends traces to MLflow's OTLP endpoint (`POST <tracking>/v1/traces`, MLflow >= 3.6 with a
    /// SQL backend): `body` is a protobuf `ExportTraceServiceRequest`; the traces go to
    /// `experiment_id` and, with `run_id`, are linked to that run.
    pub async fn export_traces(
        &self,
        experiment_id: &str,
        run_id: Option<&str>,
        body: Vec<u8>,
    ) -> Result<(), ClientError> {
        let url = self.join(OTLP_TRACES);
        self.send(OTLP_TRACES, || {
            let request = self
                .authorize(self.http.post(url.clone()))
                .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
                .header(EXPERIMENT_ID_HEADER, experiment_id)
                .body(body.clone());
            match run_id {
                Some(run_id) => request.header(RUN_ID_HEADER, run_id),
                None => request,
            }
        })
        .await?;
        Ok(())
    }

    /// Downloads one artifact of a run.
    pub async fn download_artifact(
        &self,
        artifact_uri: &str,
        path: &str,
    ) -> Result<Vec<u8>, ClientError> {
        let url = self.artifact_url(artifact_uri, path)?;
        let endpoint = format!("GET artifacts/{path}");
        let response = self
            .send(&endpoint, || self.authorize(self.http.get(url.clone())))
            .await?;
        response
            .bytes()
            .await
            .map(|b| b.to_vec())
            .map_err(|source| ClientError::Transport { endpoint, source })
    }

    /// Lists a directory of a run's artifacts (`""` for the root).
    pub async fn list_artifacts(
        &self,
        artifact_uri: &str,
        path: &str,
    ) -> Result<Vec<FileInfo>, ClientError> {
        #[derive(Deserialize)]
        struct Reply {
            #[serde(default)]
            files: Vec<FileInfo>,
        }
        let root = artifact_root(artifact_uri)?;
        let full = if path.is_empty() {
            root
        } else {
            format!("{root}/{path}")
        };
        let mut url = self.join(ARTIFACTS_API);
        url.query_pairs_mut().append_pair("path", &full);
        let reply: Reply = self.call(reqwest::Method::GET, url, None).await?;
        Ok(reply.files)
    }

    fn join(&self, path: &str) -> reqwest::Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(path.split('/'));
        }
        url
    }

    fn api(&self, endpoint: &str) -> reqwest::Url {
        self.join(&format!("{API}/{endpoint}"))
    }

    /// `<base>/api/2.0/mlflow-artifacts/artifacts/<exp>/<run>/artifacts/<path>`, each segment
    /// percent-encoded.
    fn artifact_url(&self, artifact_uri: &str, path: &str) -> Result<reqwest::Url, ClientError> {
        let root = artifact_root(artifact_uri)?;
        let mut url = self.join(ARTIFACTS_API);
        if let Ok(mut segments) = url.path_segments_mut() {
            segments
                .extend(root.split('/'))
                .extend(path.split('/').filter(|s| !s.is_empty() && *s != ".."));
        }
        Ok(url)
    }

    fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.options.auth {
            Auth::None => request,
            Auth::Basic { username, password } => {
                request.basic_auth(username, Some(password.expose_secret()))
            }
            Auth::Bearer(token) => request.bearer_auth(token.expose_secret()),
        }
    }

    /// A JSON call; the reply body is parsed as `T`.
    async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        url: reqwest::Url,
        body: Option<serde_json::Value>,
    ) -> Result<T, ClientError> {
        let endpoint = url
            .path()
            .rsplit_once("/mlflow/")
            .map_or(url.path(), |(_, e)| e)
            .to_string();
        let response = self
            .send(&endpoint, || {
                let request = self.authorize(self.http.request(method.clone(), url.clone()));
                match &body {
                    Some(b) => request.json(b),
                    None => request,
                }
            })
            .await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|source| ClientError::Transport {
                endpoint: endpoint.clone(),
                source,
            })?;
        serde_json::from_slice(&bytes).map_err(|source| ClientError::Decode { endpoint, source })
    }

    /// Sends a request, retrying transient failures; a non-success answer becomes
    /// [`ClientError::Api`].
    async fn send(
        &self,
        endpoint: &str,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let mut attempt = 0;
        loop {
            let (error, retry_after) = match request().send().await {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) => {
                    let retry_after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    (api_error(endpoint, response).await, retry_after)
                }
                Err(source) => {
                    let refused = source.is_connect();
                    let error = ClientError::Transport {
                        endpoint: endpoint.to_string(),
                        source,
                    };
                    // A timeout already spent the whole budget: do not spend it again.
                    if !refused {
                        return Err(error);
                    }
                    (error, None)
                }
            };
            if !error.is_transient() || attempt >= self.options.max_retries {
                return Err(error);
            }
            let backoff = BACKOFF_BASE * 2u32.saturating_pow(attempt);
            let wait = retry_after.unwrap_or(backoff).min(MAX_BACKOFF);
            tracing::debug!(
                endpoint,
                attempt,
                ?wait,
                "MLflow call failed, retrying: {error}"
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

/// Reads MLflow's error body (`{"error_code": ..., "message": ...}`) from a failed answer.
async fn api_error(endpoint: &str, response: reqwest::Response) -> ClientError {
    #[derive(Deserialize)]
    struct Body {
        #[serde(default)]
        error_code: String,
        #[serde(default)]
        message: String,
    }
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let (code, message) = match serde_json::from_str::<Body>(&text) {
        Ok(b) => (b.error_code, b.message),
        Err(_) => (String::new(), batch::truncate(text.trim(), 500)),
    };
    ClientError::Api {
        endpoint: endpoint.to_string(),
        status,
        code,
        message,
    }
}

/// `mlflow-artifacts:/1/abc/artifacts` (or `mlflow-artifacts://host/1/abc/artifacts`) ->
/// `1/abc/artifacts`.
fn artifact_root(artifact_uri: &str) -> Result<String, ClientError> {
    let unsupported = || ClientError::UnsupportedArtifactUri {
        uri: artifact_uri.to_string(),
    };
    let rest = artifact_uri
        .strip_prefix(ARTIFACT_SCHEME)
        .ok_or_else(unsupported)?;
    let path = match rest.strip_prefix("//") {
        Some(authority_and_path) => authority_and_path
            .split_once('/')
            .map_or("", |(_, path)| path),
        None => rest,
    };
    let path = path.trim_matches('/');
    if path.is_empty() {
        Err(unsupported())
    } else {
        Ok(path.to_string())
    }
}

/// MLflow serialises int64 fields as numbers or as strings depending on the endpoint.
fn int64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Int {
        Number(i64),
        Text(String),
    }
    Ok(match Option::<Int>::deserialize(d)? {
        Some(Int::Number(n)) => Some(n),
        Some(Int::Text(s)) => s.parse().ok(),
        None => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_roots() {
        assert_eq!(
            artifact_root("mlflow-artifacts:/1/abc/artifacts").ok(),
            Some("1/abc/artifacts".into())
        );
        assert_eq!(
            artifact_root("mlflow-artifacts://mlflow:5000/1/abc/artifacts").ok(),
            Some("1/abc/artifacts".into())
        );
        assert!(artifact_root("/srv/mlruns/1/abc/artifacts").is_err());
        assert!(artifact_root("s3://bucket/1/abc").is_err());
    }

    #[test]
    fn urls_keep_prefixes_and_encode_segments() -> Result<(), ClientError> {
        let client = MlflowClient::new(
            "http://mlflow.example:5000/proxy/",
            ClientOptions {
                auth: Auth::None,
                ..ClientOptions::default()
            },
        )?;
        assert_eq!(client.tracking_uri(), "http://mlflow.example:5000/proxy");
        assert_eq!(
            client.api("runs/get").as_str(),
            "http://mlflow.example:5000/proxy/api/2.0/mlflow/runs/get"
        );
        let url =
            client.artifact_url("mlflow-artifacts:/1/r/artifacts", "manifests/a b/../x.yaml")?;
        assert_eq!(
            url.as_str(),
            "http://mlflow.example:5000/proxy/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts/manifests/a%20b/x.yaml"
        );
        assert_eq!(
            client.run_url("3", "abc"),
            "http://mlflow.example:5000/proxy/#/experiments/3/runs/abc"
        );
        assert!(MlflowClient::new("ftp://x", ClientOptions::default()).is_err());
        Ok(())
    }

    #[test]
    fn auth_debug_hides_secrets() {
        let auth = Auth::Basic {
            username: "u".into(),
            password: SecretString::from("hunter2"),
        };
        assert!(!format!("{auth:?}").contains("hunter2"));
    }

    #[test]
    fn int64_accepts_numbers_and_strings() -> Result<(), serde_json::Error> {
        let info: RunInfo = serde_json::from_value(serde_json::json!({
            "run_id": "r", "experiment_id": "1", "start_time": "17", "end_time": 18
        }))?;
        assert_eq!((info.start_time, info.end_time), (Some(17), Some(18)));
        Ok(())
    }
}
