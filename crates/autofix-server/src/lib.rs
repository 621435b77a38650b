//! The kube-autofix service (`autofix serve`): what Alertmanager calls.
//!
//! A webhook delivery is authenticated ([`auth`]), parsed, and committed to the store
//! ([`autofix_store`]) before the 2xx reply, so nothing accepted is lost; re-deliveries are
//! recognised there and alerts grouped into one incident per workload. A pool of workers
//! ([`worker`]) claims incidents under a lease and hands each to a [`Runner`] — in production the
//! pipeline ([`PipelineRunner`]) — retrying transient failures with backoff and parking the rest.
//!
//! GitHub reports what became of each fix (`POST /webhooks/github`, signed with a shared
//! secret): [`github`] verifies and reads the deliveries, [`outcomes`] records them on the
//! incident and marks them on the fix's MLflow run.
//!
//! Layout: [`routes`] (the router, built by [`app`] apart from any socket), [`error`] (the one
//! `AppError`), [`metrics`] (Prometheus), [`runner`] (the seam), [`worker`] (the pool), and here
//! the state, [`Service`] (bind, run, shut down) and [`serve`].
//!
//! With `[server.tls]` `cert_file` and `key_file` the service speaks HTTPS only (rustls with the
//! ring provider, HTTP/1.1 and HTTP/2 by ALPN); without them, plain HTTP.

pub mod auth;
pub mod error;
pub mod github;
pub mod learning;
pub mod metrics;
pub mod outcomes;
pub mod routes;
pub mod runner;
pub mod worker;

pub use auth::Auth;
use autofix_pipeline::LearnedStrategies;
pub use autofix_pipeline::config::{AuthConfig, ServerConfig};
pub use error::AppError;
pub use github::WebhookSecret;
pub use metrics::Metrics;
pub use outcomes::OutcomeMarker;
pub use routes::app;
pub use runner::{PipelineRunner, Published, RunError, RunOutput, Runner};

use autofix_store::{RetryPolicy, Store, StoreError};
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use worker::WorkerContext;

/// Request limits and backpressure settings the routes apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest webhook body, in bytes.
    pub body_limit_bytes: usize,
    /// Incidents allowed to wait before deliveries adding more get 503.
    pub max_queued: u64,
    /// `Retry-After` of a 503, in seconds.
    pub retry_after_secs: u64,
}

impl Limits {
    /// The limits of a `[server]` section.
    pub fn from_config(config: &ServerConfig) -> Limits {
        Limits {
            body_limit_bytes: config.body_limit_bytes,
            max_queued: config.max_queued,
            retry_after_secs: config.retry_after_secs,
        }
    }
}

/// What every request handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The durable store.
    pub store: Store,
    /// Who may call the protected routes.
    pub auth: Arc<Auth>,
    /// Exported metrics.
    pub metrics: Arc<Metrics>,
    /// Signalled when a delivery queues new work, to wake idle workers.
    pub wake: Arc<Notify>,
    /// Body limit and backpressure.
    pub limits: Limits,
    /// The GitHub webhook secret; `None` disables `POST /webhooks/github` (404).
    pub github: Option<Arc<WebhookSecret>>,
    /// Marks fix outcomes on MLflow runs; `None` marks nothing.
    pub marker: Option<OutcomeMarker>,
    /// The strategy statistics the pipeline picks fixes with, relearned from the store when an
    /// outcome is recorded; `None` when the runner learns nothing.
    pub strategies: Option<LearnedStrategies>,
}

/// Why the service cannot start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Neither a bearer token nor basic credentials, and `insecure_no_auth` is off.
    #[error(
        "no webhook credentials configured: set [server.auth] bearer_token_file (or {}) or \
         basic_username with basic_password_file (or {}); to accept unauthenticated webhooks set \
         insecure_no_auth = true",
        auth::TOKEN_ENV,
        auth::PASSWORD_ENV
    )]
    NoCredentials,
    /// `basic_username` is set but no password is given.
    #[error(
        "[server.auth] basic_username needs basic_password_file or {}",
        auth::PASSWORD_ENV
    )]
    MissingPassword,
    /// A credentials file cannot be read.
    #[error("cannot read credentials file {path}: {source}")]
    Secret {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A credential is empty.
    #[error("the credential from {0} is empty")]
    EmptySecret(String),
    /// Only one of `[server.tls]` `cert_file` and `key_file` is given.
    #[error("[server] `{field}` {reason}")]
    TlsIncomplete {
        /// The missing field, e.g. `tls.key_file`.
        field: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// A TLS file cannot be read or used.
    #[error("[server.tls] {field} {path}: {reason}")]
    Tls {
        /// `cert_file` or `key_file`.
        field: &'static str,
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The store cannot be opened.
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
    /// The listen address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP server failed.
    #[error("the HTTP server failed: {0}")]
    Http(#[source] std::io::Error),
}

/// A bound, not yet running service: tests read its address before running it.
pub struct Service {
    listener: TcpListener,
    tls: Option<RustlsConfig>,
    state: AppState,
    workers: usize,
    context: WorkerContext,
}

impl Service {
    /// Loads the TLS certificate and key if `[server.tls]` gives them and the GitHub webhook
    /// secret if `[server.github_webhook]` or `AUTOFIX_GITHUB_WEBHOOK_SECRET` gives it, opens
    /// the store (`config.database_url`, else SQLite in `config.data_dir`) and binds
    /// `config.listen`.
    pub async fn bind(
        config: &ServerConfig,
        auth: Auth,
        runner: Arc<dyn Runner>,
    ) -> Result<Service, ServeError> {
        let tls = load_tls(config).await?;
        let github = WebhookSecret::load(config.github_webhook.secret_file.as_deref(), |name| {
            std::env::var(name).ok()
        })?;
        let database = config
            .database_url
            .clone()
            .unwrap_or_else(|| Store::sqlite_url(&config.data_dir));
        let store = Store::open(&database)
            .await?
            .with_retry_policy(RetryPolicy {
                max_attempts: config.max_attempts,
                backoff_initial: Duration::from_secs(config.backoff_initial_secs),
                backoff_max: Duration::from_secs(config.backoff_max_secs),
            })
            .with_recurrence_window(Duration::from_secs(
                config.github_webhook.recurrence_window_secs,
            ));
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServeError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let state = AppState {
            store: store.clone(),
            auth: Arc::new(auth),
            metrics: Arc::new(Metrics::new().with_tracking(runner.clone())),
            wake: Arc::new(Notify::new()),
            limits: Limits::from_config(config),
            github: github.map(Arc::new),
            marker: Some(OutcomeMarker(runner.clone())),
            strategies: runner.strategies(),
        };
        if let Some(strategies) = &state.strategies {
            learning::relearn(&store, strategies).await?;
        }
        let context = WorkerContext {
            store,
            runner,
            metrics: state.metrics.clone(),
            wake: state.wake.clone(),
            lease: Duration::from_secs(config.lease_secs),
            grace: Duration::from_secs(config.shutdown_grace_secs),
        };
        Ok(Service {
            listener,
            tls,
            state,
            workers: config.workers,
            context,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Whether the service speaks HTTPS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The shared state (its store, metrics).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Changes the lease and grace periods (tests use short ones).
    pub fn with_timing(mut self, lease: Duration, grace: Duration) -> Service {
        self.context.lease = lease;
        self.context.grace = grace;
        self
    }

    /// Serves and works the queue until `shutdown` completes; then stops accepting, lets runs in
    /// progress finish within the grace period (or gives them back to the queue), and returns.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let (stop, stopped) = watch::channel(false);
        let workers = worker::spawn_workers(self.workers, &self.context, &stopped);
        tracing::info!(
            addr = ?self.listener.local_addr().ok(),
            workers = self.workers,
            tls = self.tls.is_some(),
            database = %self.state.store.backend(),
            "serving"
        );
        let served = match self.tls {
            None => axum::serve(self.listener, app(self.state))
                .with_graceful_shutdown(shutdown)
                .await
                .map_err(ServeError::Http),
            Some(tls) => {
                // Same contract as `with_graceful_shutdown`: on `shutdown`, stop accepting and
                // wait for the connections in progress to end.
                let handle = axum_server::Handle::<SocketAddr>::new();
                let trigger = handle.clone();
                let signal = tokio::spawn(async move {
                    shutdown.await;
                    trigger.graceful_shutdown(None);
                });
                let served = axum_server::Server::from_listener(self.listener)
                    .acceptor(RustlsAcceptor::new(tls))
                    .handle(handle)
                    .serve(app(self.state).into_make_service())
                    .await
                    .map_err(ServeError::Http);
                signal.abort();
                served
            }
        };
        // Receivers outlive the send: the workers hold them.
        let _ = stop.send(true);
        for worker in workers {
            if let Err(e) = worker.await {
                tracing::warn!(error = %e, "a worker ended abnormally");
            }
        }
        served
    }
}

/// The rustls server config of `[server.tls]`, or `None` when neither file is given. Errors name
/// the field and the file.
async fn load_tls(config: &ServerConfig) -> Result<Option<RustlsConfig>, ServeError> {
    config
        .tls
        .check()
        .map_err(|(field, reason)| ServeError::TlsIncomplete { field, reason })?;
    let (Some(cert_file), Some(key_file)) = (&config.tls.cert_file, &config.tls.key_file) else {
        return Ok(None);
    };
    let error = |field, path: &std::path::Path, reason: String| ServeError::Tls {
        field,
        path: path.display().to_string(),
        reason,
    };
    let cert_pem = tokio::fs::read(cert_file)
        .await
        .map_err(|e| error("cert_file", cert_file, e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            error(
                "cert_file",
                cert_file,
                format!("not a PEM certificate: {e}"),
            )
        })?;
    if certs.is_empty() {
        return Err(error(
            "cert_file",
            cert_file,
            "no PEM certificate (BEGIN CERTIFICATE) found".into(),
        ));
    }
    let key_pem = tokio::fs::read(key_file)
        .await
        .map_err(|e| error("key_file", key_file, e.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        error(
            "key_file",
            key_file,
            format!("no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"),
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| error("cert_file", cert_file, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            error(
                "key_file",
                key_file,
                format!("cannot be used with cert_file {}: {e}", cert_file.display()),
            )
        })?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(RustlsConfig::from_config(Arc::new(server))))
}

/// Runs the service until `shutdown` completes: credentials from the config files and the
/// environment (`AUTOFIX_WEBHOOK_TOKEN`, `AUTOFIX_WEBHOOK_PASSWORD`), store in the data dir.
pub async fn serve(
    config: ServerConfig,
    runner: Arc<dyn Runner>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let auth = Auth::from_config(&config.auth, |name| std::env::var(name).ok())?;
    Service::bind(&config, auth, runner)
        .await?
        .run(shutdown)
        .await
}

/// Completes on ctrl-c or SIGTERM, whichever comes first.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down: no new deliveries, finishing runs in progress");
}
