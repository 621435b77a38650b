//! The `[server]` section: how `autofix serve` listens, stores and works its queue.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Settings of the long-running service (`autofix serve`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on (default `0.0.0.0:8080`).
    pub listen: SocketAddr,
    /// Directory of the embedded SQLite database `autofix.db`, created if missing (default
    /// `/var/lib/autofix`).
    pub data_dir: PathBuf,
    /// The intake database shared by several replicas, `postgres://USER@HOST:PORT/DB`; the
    /// password goes in `PGPASSWORD` or in the whole URL in `AUTOFIX_DATABASE_URL` (which takes
    /// precedence), never in this file (default: the embedded SQLite `autofix.db` in
    /// `data_dir`, for one replica).
    pub database_url: Option<String>,
    /// Largest webhook body accepted, in bytes (default 1048576 = 1 MiB); larger bodies get 413.
    pub body_limit_bytes: usize,
    /// Pipeline runs at once (default 2).
    pub workers: usize,
    /// Incidents allowed to wait in the queue; a delivery adding more is refused with 503 and
    /// `Retry-After` (default 1000).
    pub max_queued: u64,
    /// Runs allowed per incident before it is parked (default 5).
    pub max_attempts: u32,
    /// Wait before retrying a failed run, in seconds; doubled after each further failure
    /// (default 30).
    pub backoff_initial_secs: u64,
    /// Ceiling of that wait, in seconds (default 3600).
    pub backoff_max_secs: u64,
    /// Lease of a running incident, in seconds, renewed while the run lasts; after a crash the
    /// incident is resumed once its lease expires (default 300).
    pub lease_secs: u64,
    /// On shutdown, how long runs in progress may finish before they are given back to the
    /// queue, in seconds (default 30).
    pub shutdown_grace_secs: u64,
    /// `Retry-After` sent with a 503, in seconds (default 30).
    pub retry_after_secs: u64,
    /// How Alertmanager authenticates.
    pub auth: AuthConfig,
    /// HTTPS: off unless both files are given.
    pub tls: TlsConfig,
    /// The GitHub webhook that reports what became of each fix.
    pub github_webhook: GithubWebhookConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            data_dir: PathBuf::from("/var/lib/autofix"),
            database_url: None,
            body_limit_bytes: 1024 * 1024,
            workers: 2,
            max_queued: 1000,
            max_attempts: 5,
            backoff_initial_secs: 30,
            backoff_max_secs: 3600,
            lease_secs: 300,
            shutdown_grace_secs: 30,
            retry_after_secs: 30,
            auth: AuthConfig::default(),
            tls: TlsConfig::default(),
            github_webhook: GithubWebhookConfig::default(),
        }
    }
}

/// `POST /webhooks/github`: pull requests closed and pushes reverting a fix become outcomes
/// (see docs/risk-model.md). Off unless a secret is given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GithubWebhookConfig {
    /// File holding the webhook secret GitHub signs deliveries with (`X-Hub-Signature-256`);
    /// `AUTOFIX_GITHUB_WEBHOOK_SECRET` takes precedence (default: none, the route answers 404).
    pub secret_file: Option<PathBuf>,
    /// After a merge, how long a new firing alert of the same incident counts as a recurrence,
    /// in seconds (default 604800 = 7 days).
    pub recurrence_window_secs: u64,
}

impl Default for GithubWebhookConfig {
    fn default() -> Self {
        GithubWebhookConfig {
            secret_file: None,
            recurrence_window_secs: 7 * 24 * 3600,
        }
    }
}

/// Webhook credentials, as Alertmanager's `http_config` sends them. Only file paths live here:
/// the secrets themselves come from those files or from the environment.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// File holding the bearer token (`Authorization: Bearer ...`); `AUTOFIX_WEBHOOK_TOKEN`
    /// takes precedence (default: none).
    pub bearer_token_file: Option<PathBuf>,
    /// Basic-auth user name; basic auth is off without it (default: none).
    pub basic_username: Option<String>,
    /// File holding the basic-auth password; `AUTOFIX_WEBHOOK_PASSWORD` takes precedence
    /// (default: none).
    pub basic_password_file: Option<PathBuf>,
    /// Accept webhooks without credentials (default false: without credentials the service
    /// refuses to start).
    pub insecure_no_auth: bool,
}

/// The service's own TLS (HTTPS). Both files or neither: with both the service serves HTTPS
/// only; with neither, plain HTTP (default). Both are read at startup.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM file holding the server certificate, followed by any intermediates (default: none).
    pub cert_file: Option<PathBuf>,
    /// PEM file holding the certificate's private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC)
    /// (default: none).
    pub key_file: Option<PathBuf>,
}

impl TlsConfig {
    /// Whether HTTPS is configured (both files given).
    pub fn enabled(&self) -> bool {
        self.cert_file.is_some() && self.key_file.is_some()
    }

    /// The missing half of a half-given pair, as (field, reason).
    pub fn check(&self) -> Result<(), (&'static str, &'static str)> {
        match (&self.cert_file, &self.key_file) {
            (Some(_), None) => Err(("tls.key_file", "is needed with tls.cert_file")),
            (None, Some(_)) => Err(("tls.cert_file", "is needed with tls.key_file")),
            _ => Ok(()),
        }
    }
}

impl ServerConfig {
    /// The first out-of-range value, as (field, reason).
    pub fn check(&self) -> Result<(), (&'static str, &'static str)> {
        if self.database_url.as_deref().is_some_and(has_password) {
            return Err((
                "database_url",
                "must not hold a password: set PGPASSWORD, or the whole URL in AUTOFIX_DATABASE_URL",
            ));
        }
        if self.workers == 0 {
            return Err(("workers", "must be at least 1"));
        }
        if self.max_attempts == 0 {
            return Err(("max_attempts", "must be at least 1"));
        }
        if self.body_limit_bytes == 0 {
            return Err(("body_limit_bytes", "must be at least 1"));
        }
        if self.lease_secs == 0 {
            return Err(("lease_secs", "must be at least 1"));
        }
        if self.backoff_max_secs < self.backoff_initial_secs {
            return Err(("backoff_max_secs", "must not be below backoff_initial_secs"));
        }
        if self.auth.basic_password_file.is_some() && self.auth.basic_username.is_none() {
            return Err(("auth.basic_password_file", "needs auth.basic_username"));
        }
        self.tls.check()
    }
}

/// True when a URL carries a password (`scheme://user:password@host`).
fn has_password(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    authority
        .rsplit_once('@')
        .is_some_and(|(credentials, _)| credentials.contains(':'))
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn tls_needs_both_files() {
        let err = Config::parse("[server.tls]\ncert_file = \"c.pem\"\n", "x.toml").unwrap_err();
        assert!(err.to_string().contains("tls.key_file"), "{err}");
        let err = Config::parse("[server.tls]\nkey_file = \"k.pem\"\n", "x.toml").unwrap_err();
        assert!(err.to_string().contains("tls.cert_file"), "{err}");
        let err = Config::parse("[server.tls]\ncert = \"c.pem\"\n", "x.toml").unwrap_err();
        assert!(err.to_string().contains("cert"), "{err}");
        let both = "[server.tls]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n";
        let config = Config::parse(both, "x.toml").unwrap();
        assert!(config.server.tls.enabled());
        assert!(!Config::default().server.tls.enabled());
    }

    #[test]
    fn a_database_password_is_refused_in_the_file() {
        let with_password = "[server]\ndatabase_url = \"postgres://autofix:s3cret@db/autofix\"\n";
        let err = Config::parse(with_password, "x.toml").unwrap_err();
        assert!(err.to_string().contains("PGPASSWORD"), "{err}");
        let without = "[server]\ndatabase_url = \"postgres://autofix@db:5432/autofix\"\n";
        let config = Config::parse(without, "x.toml").unwrap();
        assert_eq!(
            config.server.database_url.as_deref(),
            Some("postgres://autofix@db:5432/autofix")
        );
    }
}
