//! The fake Kubernetes API server: a handle owning the serving task.

mod api;
mod selector;
mod world;

use crate::TestkitError;
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
}

/// Every request received so far, in order.
type RequestLog = Arc<Mutex<Vec<RecordedRequest>>>;

/// A Kubernetes API server on `127.0.0.1` serving one scenario folder; stops when dropped.
#[derive(Debug)]
pub struct FakeKube {
    url: String,
    requests: RequestLog,
    server: JoinHandle<()>,
}

impl FakeKube {
    /// Loads `<scenario_dir>/cluster/**/*.yaml` and serves it (and `logs/`) on a free port.
    pub async fn start(scenario_dir: &Path) -> Result<FakeKube, TestkitError> {
        let world = World::load(scenario_dir)?;
        let requests = RequestLog::default();
        let app = api::app(Arc::new(world), requests.clone());
        let (listener, url) = crate::bind_loopback().await?;
        let server = crate::spawn_server(listener, app);
        Ok(FakeKube {
            url,
            requests,
            server,
        })
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
