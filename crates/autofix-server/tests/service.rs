//! The service over a real socket: auth, limits, re-deliveries, storms, retries, restarts.

use async_trait::async_trait;
use autofix_core::Incident;
use autofix_server::{Auth, Published, RunError, RunOutput, Runner, ServerConfig, Service};
use autofix_store::{IncidentState, Store};
use autofix_testkit::pod_suffix;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tempfile::TempDir;
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinHandle;

const TOKEN: &str = "test-token";
const FIRST: &str = include_str!("fixtures/01-first-notification.json");
const REPEAT: &str = include_str!("fixtures/02-repeat-notification.json");
const RESOLVED: &str = include_str!("fixtures/03-one-alert-resolved.json");
/// Bound of every wait on the service: far above what any step needs.
const PATIENCE: Duration = Duration::from_secs(20);

/// A fake runner: counts runs, answers from a script (then succeeds), optionally gated.
struct FakeRunner {
    runs: AtomicUsize,
    script: Mutex<VecDeque<Result<RunOutput, RunError>>>,
    gate: Option<Semaphore>,
}

impl FakeRunner {
    fn new(script: Vec<Result<RunOutput, RunError>>) -> Arc<FakeRunner> {
        Arc::new(FakeRunner {
            runs: AtomicUsize::new(0),
            script: Mutex::new(script.into()),
            gate: None,
        })
    }

    /// Runs wait until `open` is called.
    fn gated() -> Arc<FakeRunner> {
        Arc::new(FakeRunner {
            runs: AtomicUsize::new(0),
            script: Mutex::new(VecDeque::new()),
            gate: Some(Semaphore::new(0)),
        })
    }

    fn open(&self) {
        if let Some(gate) = &self.gate {
            gate.add_permits(Semaphore::MAX_PERMITS / 2);
        }
    }

    fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }
}

fn pr() -> Result<RunOutput, RunError> {
    Ok(RunOutput {
        report: json!({"action": "pr", "pr": {"number": 1}}),
        published: Some(Published::PullRequest),
    })
}

#[async_trait]
impl Runner for FakeRunner {
    async fn run(&self, incident: &Incident) -> Result<RunOutput, RunError> {
        assert_eq!(incident.namespace, "shop");
        self.runs.fetch_add(1, Ordering::SeqCst);
        if let Some(gate) = &self.gate {
            let _permit = gate
                .acquire()
                .await
                .map_err(|e| RunError::transient(e.to_string()))?;
        }
        let next = self.script.lock().unwrap().pop_front();
        next.unwrap_or_else(pr)
    }
}

/// A running service on 127.0.0.1 with its data dir, and a client.
struct Harness {
    base: String,
    client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), autofix_server::ServeError>>>,
}

fn config(dir: &Path) -> ServerConfig {
    let token = dir.join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let password = dir.join("password");
    std::fs::write(&password, "pw").unwrap();
    let mut config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.join("data"),
        workers: 2,
        backoff_initial_secs: 0,
        backoff_max_secs: 0,
        shutdown_grace_secs: 0,
        ..ServerConfig::default()
    };
    config.auth.bearer_token_file = Some(token);
    config.auth.basic_username = Some("alertmanager".into());
    config.auth.basic_password_file = Some(password);
    config
}

impl Harness {
    async fn start(config: ServerConfig, runner: Arc<dyn Runner>) -> Harness {
        let auth = Auth::from_config(&config.auth, |_| None).unwrap();
        let service = Service::bind(&config, auth, runner)
            .await
            .unwrap()
            .with_timing(Duration::from_secs(30), Duration::from_millis(50));
        let base = format!("http://{}", service.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(service.run(async move {
            let _ = stopped.await;
        }));
        // reqwest's rustls is built without a default crypto provider in this workspace.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Harness {
            base,
            client: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
        }
    }

    async fn post(&self, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.client
            .post(format!("{}/webhooks/alertmanager", self.base))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    async fn deliver(&self, body: &str) -> Value {
        let response = self.post(body.to_string()).await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    async fn incidents(&self) -> Vec<Value> {
        let response = self
            .client
            .get(format!("{}/incidents", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// Polls `GET /incidents` until `done` holds, within [`PATIENCE`].
    async fn wait_until(&self, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let waited = tokio::time::timeout(PATIENCE, async {
            loop {
                let incidents = self.incidents().await;
                if done(&incidents) {
                    return incidents;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        match waited {
            Ok(incidents) => incidents,
            Err(_) => panic!(
                "timed out waiting for {what}: {:#?}",
                self.incidents().await
            ),
        }
    }

    async fn metrics(&self) -> String {
        let response = self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    }

    /// Stops accepting, lets runs finish or gives them back, and waits for the service to end.
    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(PATIENCE, task)
                .await
                .expect("the service did not stop")
                .unwrap()
                .unwrap();
        }
    }
}

fn all_in(state: &'static str) -> impl Fn(&[Value]) -> bool {
    move |incidents| !incidents.is_empty() && incidents.iter().all(|i| i["state"] == state)
}

/// A KubePodCrashLooping notification for pods of Deployment `cart`, plus fields a newer
/// Alertmanager may send.
fn crashloop(pods: &[usize]) -> String {
    let alerts: Vec<Value> = pods
        .iter()
        .map(|n| {
            json!({
                "status": "firing",
                "labels": {"alertname": "KubePodCrashLooping", "namespace": "shop",
                           "pod": format!("cart-6868cd956-{}", pod_suffix(*n)), "container": "cart"},
                "annotations": {},
                "startsAt": "2026-11-25T14:33:56.572572961Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "",
                "fingerprint": format!("fp{n}"),
            })
        })
        .collect();
    json!({
        "version": "4", "status": "firing", "receiver": "autofix", "groupKey": "{}:{}",
        "truncatedAlerts": 0, "alerts": alerts, "notification_reason": "repeat",
        "someFutureField": {"x": 1},
    })
    .to_string()
}

#[tokio::test]
async fn wrong_or_missing_credentials_get_401() {
    let dir = TempDir::new().unwrap();
    let h = Harness::start(config(dir.path()), FakeRunner::new(vec![])).await;
    let url = format!("{}/webhooks/alertmanager", h.base);
    let attempts = [
        h.client.post(&url),
        h.client.post(&url).bearer_auth("wrong"),
        h.client
            .post(&url)
            .basic_auth("alertmanager", Some("wrong")),
        h.client.post(&url).basic_auth("someone", Some("pw")),
    ];
    for request in attempts {
        let response = request.body(FIRST).send().await.unwrap();
        assert_eq!(response.status(), 401);
        let challenges: Vec<_> = response
            .headers()
            .get_all("www-authenticate")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        assert!(
            challenges.iter().any(|c| c.starts_with("Bearer")),
            "{challenges:?}"
        );
        assert!(
            challenges.iter().any(|c| c.starts_with("Basic")),
            "{challenges:?}"
        );
    }
    let listing = h
        .client
        .get(format!("{}/incidents", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(listing.status(), 401);
    let basic = h
        .client
        .post(&url)
        .basic_auth("alertmanager", Some("pw"))
        .body(FIRST)
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 200);
    for open in ["healthz", "readyz", "metrics"] {
        let response = h
            .client
            .get(format!("{}/{open}", h.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{open}");
    }
    assert!(
        h.metrics()
            .await
            .contains("autofix_webhook_deliveries_total{result=\"unauthorized\"} 4")
    );
    h.shutdown().await;
}

#[tokio::test]
async fn oversize_and_malformed_bodies_are_refused() {
    let dir = TempDir::new().unwrap();
    let h = Harness::start(config(dir.path()), FakeRunner::new(vec![])).await;
    let huge = format!("{{\"pad\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    assert_eq!(h.post(huge).await.status(), 413);

    let bad_status = r#"{"version":"4","status":"firing","alerts":[{"status":"boom","labels":{},"startsAt":"x"}]}"#;
    let response = h.post(bad_status).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("alerts[0].status"),
        "{body}"
    );

    let response = h.post("{not json").await;
    assert_eq!(response.status(), 400);
    let response = h
        .post(r#"{"version":"3","status":"firing","alerts":[]}"#)
        .await;
    assert_eq!(response.status(), 400);
    assert!(h.incidents().await.is_empty());
    let metrics = h.metrics().await;
    assert!(
        metrics.contains("autofix_webhook_deliveries_total{result=\"too_large\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("autofix_webhook_deliveries_total{result=\"bad_request\"} 3"),
        "{metrics}"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn captured_notifications_first_repeat_resolved() {
    let dir = TempDir::new().unwrap();
    let runner = FakeRunner::new(vec![]);
    let h = Harness::start(config(dir.path()), runner.clone()).await;

    let first = h.deliver(FIRST).await;
    assert_eq!(first["new_alerts"], 2);
    assert_eq!(first["incidents_queued"], 1);
    let incidents = h.wait_until("the run", all_in("done")).await;
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0]["key"], "default/shop/Deployment/cart");
    assert_eq!(incidents[0]["alerts_firing"], 2);

    let repeat = h.deliver(REPEAT).await;
    assert_eq!(
        (repeat["new_alerts"].clone(), repeat["duplicates"].clone()),
        (json!(0), json!(2))
    );
    assert_eq!(repeat["incidents_queued"], 0);

    let resolved = h.deliver(RESOLVED).await;
    assert_eq!(
        (
            resolved["new_alerts"].clone(),
            resolved["duplicates"].clone()
        ),
        (json!(1), json!(1))
    );
    let incidents = h.incidents().await;
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0]["state"], "done");
    assert_eq!(incidents[0]["alerts_resolved"], 1);
    assert_eq!(incidents[0]["alerts_firing"], 1);
    assert_eq!(incidents[0]["resolved"], false);
    assert_eq!(runner.runs(), 1);

    let metrics = h.metrics().await;
    for expected in [
        "autofix_webhook_deliveries_total{result=\"accepted\"} 3",
        "autofix_alerts_received_total{status=\"firing\"} 5",
        "autofix_alerts_received_total{status=\"resolved\"} 1",
        "autofix_alerts_duplicate_total 3",
        "autofix_runs_total{outcome=\"done\"} 1",
        "autofix_published_total{kind=\"pull_request\"} 1",
        "autofix_run_duration_seconds_count{outcome=\"done\"} 1",
        "autofix_queue_depth 0",
        "autofix_incidents{state=\"done\"} 1",
    ] {
        assert!(metrics.contains(expected), "missing {expected}:\n{metrics}");
    }
    h.shutdown().await;
}

#[tokio::test]
async fn an_alert_storm_for_one_workload_is_one_incident_and_one_run() {
    let dir = TempDir::new().unwrap();
    let runner = FakeRunner::gated();
    let h = Arc::new(Harness::start(config(dir.path()), runner.clone()).await);
    for wave in 0..10 {
        let mut tasks = Vec::new();
        for i in 0..30 {
            let h = h.clone();
            let pods: Vec<usize> = (0..3).map(|k| (wave * 30 + i + k * 7) % 40).collect();
            tasks.push(tokio::spawn(
                async move { h.deliver(&crashloop(&pods)).await },
            ));
        }
        for task in tasks {
            task.await.unwrap();
        }
    }
    runner.open();
    let incidents = h.wait_until("the single run", all_in("done")).await;
    assert_eq!(incidents.len(), 1, "{incidents:#?}");
    assert_eq!(incidents[0]["alerts_firing"], 40);
    assert_eq!(runner.runs(), 1);
    let metrics = h.metrics().await;
    assert!(metrics.contains("autofix_webhook_deliveries_total{result=\"accepted\"} 300"));
    assert!(
        metrics.contains("autofix_alerts_duplicate_total 860"),
        "{metrics}"
    );
    Arc::into_inner(h).unwrap().shutdown().await;
}

#[tokio::test]
async fn a_full_queue_answers_503_with_retry_after() {
    let dir = TempDir::new().unwrap();
    let mut config = config(dir.path());
    config.workers = 1;
    config.max_queued = 1;
    let runner = FakeRunner::gated();
    let h = Harness::start(config, runner.clone()).await;
    let deployment = |name: &str| {
        FIRST
            .replace("cart-6868cd956", &format!("{name}-6868cd956"))
            .replace("ed5c03c01829d311", &format!("{name}-a"))
            .replace("bbeea08dddc87695", &format!("{name}-b"))
    };
    h.deliver(&deployment("one")).await;
    h.wait_until("the first run to start", all_in("running"))
        .await;
    h.deliver(&deployment("two")).await;
    let full = h.post(deployment("three")).await;
    assert_eq!(full.status(), 503);
    assert_eq!(full.headers()["retry-after"], "30");
    // A re-delivery adds no work and is still accepted.
    let again = h.deliver(&deployment("two")).await;
    assert_eq!(again["duplicates"], 2);
    runner.open();
    h.wait_until("both runs", |i| i.len() == 2 && all_in("done")(i))
        .await;
    assert_eq!(h.post(deployment("three")).await.status(), 200);
    assert!(
        h.metrics()
            .await
            .contains("autofix_webhook_deliveries_total{result=\"queue_full\"} 1")
    );
    h.shutdown().await;
}

#[tokio::test]
async fn transient_failures_are_retried_and_bad_input_is_parked() {
    let dir = TempDir::new().unwrap();
    let runner = FakeRunner::new(vec![
        Err(RunError::transient("forge timed out")),
        Err(RunError::transient("forge timed out")),
    ]);
    let h = Harness::start(config(dir.path()), runner.clone()).await;
    h.deliver(FIRST).await;
    let incidents = h.wait_until("the retried run", all_in("done")).await;
    assert_eq!(incidents[0]["attempts"], 3);
    assert_eq!(incidents[0]["last_report"]["action"], "pr");
    assert_eq!(runner.runs(), 3);
    assert!(
        h.metrics()
            .await
            .contains("autofix_runs_total{outcome=\"retry\"} 2")
    );
    h.shutdown().await;

    let dir = TempDir::new().unwrap();
    let runner = FakeRunner::new(vec![Err(RunError::bad_input(
        "kustomization.yaml: bad YAML",
    ))]);
    let h = Harness::start(config(dir.path()), runner.clone()).await;
    h.deliver(FIRST).await;
    let incidents = h.wait_until("parking", all_in("parked")).await;
    assert_eq!(incidents[0]["attempts"], 1);
    assert_eq!(incidents[0]["last_error"], "kustomization.yaml: bad YAML");
    assert_eq!(runner.runs(), 1);
    h.shutdown().await;
}

#[tokio::test]
async fn transient_failures_park_after_max_attempts() {
    let dir = TempDir::new().unwrap();
    let mut config = config(dir.path());
    config.max_attempts = 2;
    let runner = FakeRunner::new(vec![
        Err(RunError::transient("cluster API unreachable")),
        Err(RunError::transient("cluster API unreachable")),
    ]);
    let h = Harness::start(config, runner.clone()).await;
    h.deliver(FIRST).await;
    let incidents = h.wait_until("parking", all_in("parked")).await;
    assert_eq!(
        incidents[0]["last_error"],
        "gave up after 2 attempts: cluster API unreachable"
    );
    assert_eq!(runner.runs(), 2);
    h.shutdown().await;
}

#[tokio::test]
async fn work_claimed_by_a_killed_process_is_resumed_once_after_restart() {
    let dir = TempDir::new().unwrap();
    let config = config(dir.path());
    {
        // The previous process: accepted the delivery, claimed the incident, then died (kill -9):
        // its lease expires and nothing completes it.
        let store = Store::open(&Store::sqlite_url(&config.data_dir))
            .await
            .unwrap();
        let payload = autofix_core::alert::WebhookPayload::from_json(FIRST.as_bytes()).unwrap();
        store.record_delivery(&payload, None).await.unwrap();
        store
            .claim_next("killed", Duration::from_millis(1))
            .await
            .unwrap()
            .unwrap();
    }
    let runner = FakeRunner::new(vec![]);
    let h = Harness::start(config, runner.clone()).await;
    let incidents = h.wait_until("the resumed run", all_in("done")).await;
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0]["attempts"], 2);
    assert_eq!(runner.runs(), 1);
    h.shutdown().await;
}

#[tokio::test]
async fn shutdown_gives_unfinished_runs_back_and_a_restart_completes_them() {
    let dir = TempDir::new().unwrap();
    let config = config(dir.path());
    let stuck = FakeRunner::gated();
    let h = Harness::start(config.clone(), stuck.clone()).await;
    h.deliver(FIRST).await;
    h.wait_until("the run to start", all_in("running")).await;
    h.shutdown().await;
    assert_eq!(stuck.runs(), 1);

    let store = Store::open(&Store::sqlite_url(&config.data_dir))
        .await
        .unwrap();
    let listed = store.list_incidents().await.unwrap();
    assert_eq!(
        (listed[0].state, listed[0].attempts),
        (IncidentState::Queued, 0)
    );
    drop(store);

    let runner = FakeRunner::new(vec![]);
    let h = Harness::start(config, runner.clone()).await;
    h.wait_until("the run after restart", all_in("done")).await;
    assert_eq!(runner.runs(), 1);
    h.shutdown().await;
}

#[tokio::test]
async fn starting_without_credentials_is_refused() {
    let dir = TempDir::new().unwrap();
    let mut config = config(dir.path());
    config.auth = Default::default();
    let err = autofix_server::serve(config, FakeRunner::new(vec![]), async {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("insecure_no_auth"), "{err}");
}
