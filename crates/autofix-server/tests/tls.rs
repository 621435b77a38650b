//! `[server.tls]`: HTTPS over a real socket with a self-signed certificate, and the startup errors.

use async_trait::async_trait;
use autofix_core::Incident;
use autofix_server::{Auth, RunError, RunOutput, Runner, ServerConfig, Service};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;
use tokio::sync::oneshot;

const TOKEN: &str = "test-token";
const FIRST: &str = include_str!("fixtures/01-first-notification.json");
const PATIENCE: Duration = Duration::from_secs(20);

/// A runner that never publishes anything.
struct QuietRunner;

#[async_trait]
impl Runner for QuietRunner {
    async fn run(&self, _incident: &Incident) -> Result<RunOutput, RunError> {
        Ok(RunOutput {
            report: json!({"action": "none"}),
            published: None,
        })
    }
}

/// Writes a self-signed certificate for `localhost` and `127.0.0.1`; returns (cert, key, PEM).
fn self_signed(dir: &Path) -> (PathBuf, PathBuf, String) {
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let pem = generated.cert.pem();
    let cert = dir.join("tls.crt");
    let key = dir.join("tls.key");
    std::fs::write(&cert, &pem).unwrap();
    std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
    (cert, key, pem)
}

fn config(dir: &Path) -> ServerConfig {
    let token = dir.join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let mut config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.join("data"),
        shutdown_grace_secs: 0,
        ..ServerConfig::default()
    };
    config.auth.bearer_token_file = Some(token);
    config
}

async fn bind(config: &ServerConfig) -> Result<Service, autofix_server::ServeError> {
    let auth = Auth::from_config(&config.auth, |_| None).unwrap();
    Service::bind(config, auth, Arc::new(QuietRunner)).await
}

#[tokio::test]
async fn https_delivery_is_accepted_and_plain_http_is_refused() {
    // reqwest's rustls is built without a default crypto provider in this workspace.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = TempDir::new().unwrap();
    let (cert, key, pem) = self_signed(dir.path());
    let mut config = config(dir.path());
    config.tls.cert_file = Some(cert);
    config.tls.key_file = Some(key);
    let service = bind(&config).await.unwrap();
    assert!(service.is_tls());
    let port = service.local_addr().unwrap().port();
    let store = service.state().store.clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(service.run(async move {
        let _ = stopped.await;
    }));

    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).unwrap()])
        .timeout(PATIENCE)
        .build()
        .unwrap();
    for host in ["127.0.0.1", "localhost"] {
        let response = client
            .get(format!("https://{host}:{port}/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{host}");
    }
    let response = client
        .post(format!("https://127.0.0.1:{port}/webhooks/alertmanager"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(FIRST)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let incidents = store.list_incidents().await.unwrap();
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    // Auth still applies over TLS.
    let response = client
        .post(format!("https://127.0.0.1:{port}/webhooks/alertmanager"))
        .header("content-type", "application/json")
        .body(FIRST)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = reqwest::Client::builder()
        .timeout(PATIENCE)
        .build()
        .unwrap();
    let refused = plain
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await;
    assert!(refused.is_err(), "{refused:?}");
    // A client that does not trust the certificate fails the handshake.
    let untrusting = reqwest::Client::builder()
        .tls_certs_only([])
        .timeout(PATIENCE)
        .build()
        .unwrap();
    let refused = untrusting
        .get(format!("https://127.0.0.1:{port}/healthz"))
        .send()
        .await;
    assert!(refused.is_err(), "{refused:?}");

    // Graceful shutdown ends the service.
    let _ = stop.send(());
    tokio::time::timeout(PATIENCE, task)
        .await
        .expect("the service did not stop")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn half_a_tls_config_is_refused_naming_the_missing_field() {
    let dir = TempDir::new().unwrap();
    let (cert, key, _) = self_signed(dir.path());
    let mut config = config(dir.path());
    config.tls.cert_file = Some(cert.clone());
    let err = autofix_server::serve(config.clone(), Arc::new(QuietRunner), async {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("tls.key_file"), "{err}");

    config.tls.cert_file = None;
    config.tls.key_file = Some(key);
    let err = bind(&config).await.err().unwrap();
    assert!(err.to_string().contains("tls.cert_file"), "{err}");
}

#[tokio::test]
async fn unreadable_or_unusable_tls_files_are_named() {
    let dir = TempDir::new().unwrap();
    let (cert, key, _) = self_signed(dir.path());
    let mut config = config(dir.path());

    config.tls.cert_file = Some(dir.path().join("missing.crt"));
    config.tls.key_file = Some(key.clone());
    let err = bind(&config).await.err().unwrap().to_string();
    assert!(
        err.contains("cert_file") && err.contains("missing.crt"),
        "{err}"
    );

    // A key where the certificate should be: no certificate in it.
    config.tls.cert_file = Some(key.clone());
    let err = bind(&config).await.err().unwrap().to_string();
    assert!(
        err.contains("cert_file") && err.contains("no PEM certificate"),
        "{err}"
    );

    // A certificate where the key should be: no key in it.
    config.tls.cert_file = Some(cert.clone());
    config.tls.key_file = Some(cert.clone());
    let err = bind(&config).await.err().unwrap().to_string();
    assert!(err.contains("key_file") && err.contains("tls.crt"), "{err}");

    // A key that does not belong to the certificate.
    let other = TempDir::new().unwrap();
    let (_, other_key, _) = self_signed(other.path());
    config.tls.key_file = Some(other_key);
    let err = bind(&config).await.err().unwrap().to_string();
    assert!(err.contains("key_file"), "{err}");
}
