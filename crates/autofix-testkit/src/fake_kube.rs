//! The fake Kubernetes API server: a handle owning the serving task.

mod api;
mod dry_run;
mod selector;
mod world;

use crate::TestkitError;
use axum::http::StatusCode;
use dry_run::{DryRunScript, Scripted};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::task::JoinHandle;
use world::World;

/// One request the fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// HTTP method (`GET`, `POST`...).
    pub method: String,
    /// Path, e.g. `/api/v1/namespaces/shop/pods`.
    pub path: String,
    /// Raw query string, if any (still percent-encoded).
    pub query: Option<String>,
    /// `Content-Type` header, if any (`application/apply-patch+yaml` for server-side apply).
    pub content_type: Option<String>,
    /// `Authorization` header, if any: tests check which credential a client used.
    pub authorization: Option<String>,
    /// The request body (empty for reads).
    pub body: Vec<u8>,
}

/// Every request received so far, in order.
type RequestLog = Arc<Mutex<Vec<RecordedRequest>>>;

/// A Kubernetes API server on `127.0.0.1` serving one scenario folder; stops when dropped.
#[derive(Debug)]
pub struct FakeKube {
    url: String,
    requests: RequestLog,
    dry_runs: DryRunScript,
    server: JoinHandle<()>,
}

impl FakeKube {
    /// Loads `<scenario_dir>/cluster/**/*.yaml` and serves it (and `logs/`) on a free port.
    /// Server-side apply dry runs (`PATCH ...?dryRun=All`, field manager `kube-autofix`) are
    /// accepted and echoed back unless scripted otherwise; every other write is refused.
    pub async fn start(scenario_dir: &Path) -> Result<FakeKube, TestkitError> {
        let world = World::load(scenario_dir)?;
        let requests = RequestLog::default();
        let dry_runs = DryRunScript::default();
        let app = api::app(Arc::new(world), dry_runs.clone(), requests.clone());
        let (listener, url) = crate::bind_loopback(0).await?;
        let server = crate::spawn_server(listener, app);
        Ok(FakeKube {
            url,
            requests,
            dry_runs,
            server,
        })
    }

    /// Answers dry runs of the `kind` object `name` with a `Status` failure of `code` (reason
    /// from the code: 400 `BadRequest`, 403 `Forbidden`, 409 `Conflict`, 422 `Invalid`, 5xx
    /// `InternalError`...) and `message`, as admission or a broken apiserver would.
    ///
    /// # Panics
    /// If `code` is not an HTTP status code (100 to 999).
    pub fn deny_dry_run(&self, kind: &str, name: &str, code: u16, message: &str) {
        let code = StatusCode::from_u16(code).expect("an HTTP status code");
        self.script_dry_run(kind, name, |s| {
            s.failure = Some((code, message.to_string()))
        });
    }

    /// Adds a `Warning` header (`299 - "<warning>"`) to dry-run answers for the `kind` object
    /// `name`, as admission policies in warn or audit mode do.
    pub fn warn_on_dry_run(&self, kind: &str, name: &str, warning: &str) {
        self.script_dry_run(kind, name, |s| s.warnings.push(warning.to_string()));
    }

    fn script_dry_run(&self, kind: &str, name: &str, change: impl FnOnce(&mut Scripted)) {
        let mut script = self.dry_runs.lock().unwrap_or_else(PoisonError::into_inner);
        change(
            script
                .entry((kind.to_string(), name.to_string()))
                .or_default(),
        );
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A real kube-rs client pointed at this server (plain HTTP, no credentials), default
    /// namespace `default`.
    ///
    /// # Panics
    /// If kube cannot build a client for a plain `http://127.0.0.1` URL (its TLS setup fails).
    pub fn client(&self) -> kube::Client {
        // kube builds a rustls config even for http; with several providers compiled in,
        // rustls needs one chosen. An earlier install (by anyone) is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let uri: axum::http::Uri = self.url.parse().expect("a socket address is a valid URI");
        kube::Client::try_from(kube::Config::new(uri)).expect("kube client for a plain HTTP URL")
    }
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        self.server.abort();
    }
}
