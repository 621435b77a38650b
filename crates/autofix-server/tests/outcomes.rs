//! Outcomes over a real socket: the fake GitHub's pull requests and pushes delivered as signed
//! webhooks (good, wrong and missing signatures), recorded on the incident and shown by
//! `GET /incidents`; `resolved` and `recurred` from Alertmanager after a merge.

use async_trait::async_trait;
use autofix_core::Incident;
use autofix_server::{Auth, Published, RunError, RunOutput, Runner, ServerConfig, Service};
use autofix_store::OutcomeRecord;
use autofix_testkit::{Delivery, FakeGithub, GithubWebhook, Signature};
use autofix_tracking::outcome::{Marked, OutcomeMark, mark_outcome};
use autofix_tracking::{ClientError, ClientOptions, MlflowClient};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;
use tempfile::TempDir;
use tokio::sync::oneshot;

const SECRET: &str = "webhook-secret";
const FIRST: &str = include_str!("fixtures/01-first-notification.json");
const HASH: &str = "1a2b3c4d";
const BRANCH: &str = "autofix/shop/cart-crashloop-1a2b3c4d";
const FIX_COMMIT: &str = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00";
const OWNER: &str = "acme";
const REPO: &str = "gitops";
/// Bound of every wait on the service: far above what any step needs.
const PATIENCE: Duration = Duration::from_secs(20);

/// Publishes the fix as the pipeline would: a branch, a commit and a pull request; marks
/// outcomes on `mlflow` when given.
struct Publisher {
    github: String,
    mlflow: Option<MlflowClient>,
}

#[async_trait]
impl Runner for Publisher {
    async fn run(&self, _incident: &Incident) -> Result<RunOutput, RunError> {
        let pull: Value = reqwest::Client::new()
            .post(format!("{}/repos/{OWNER}/{REPO}/pulls", self.github))
            .json(
                &json!({"title": "fix(shop/cart): crash loop", "head": BRANCH, "base": "main",
                          "body": format!("<!-- autofix:incident={HASH} -->")}),
            )
            .send()
            .await
            .map_err(|e| RunError::transient(e.to_string()))?
            .json()
            .await
            .map_err(|e| RunError::transient(e.to_string()))?;
        Ok(RunOutput {
            report: json!({"incident": HASH, "action": "pr", "branch": BRANCH, "commit": FIX_COMMIT,
                           "risk": {"score": 0.25, "level": "low"},
                           "pr": {"number": pull["number"], "url": pull["html_url"]}}),
            published: Some(Published::PullRequest),
        })
    }

    async fn mark_outcome(&self, outcome: &OutcomeRecord) -> Option<Result<Marked, ClientError>> {
        let mark = OutcomeMark {
            incident: &outcome.incident_hash,
            branch: &outcome.branch,
            outcome: outcome.outcome.as_str(),
            safe: outcome.outcome.is_safe(),
            recorded_at: outcome.recorded_at,
        };
        Some(mark_outcome(self.mlflow.as_ref()?, "autofix", &mark).await)
    }
}

/// A service, the fake GitHub its runner publishes to, and the hook between them.
struct Harness {
    base: String,
    github: FakeGithub,
    hook: GithubWebhook,
    client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    _dir: TempDir,
}

fn config(dir: &Path, secret: bool) -> ServerConfig {
    let mut config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.join("data"),
        ..ServerConfig::default()
    };
    config.auth.insecure_no_auth = true;
    if secret {
        let file = dir.join("github-secret");
        std::fs::write(&file, format!("{SECRET}\n")).unwrap();
        config.github_webhook.secret_file = Some(file);
    }
    config
}

impl Harness {
    async fn start(secret: bool) -> Harness {
        Harness::with_mlflow(secret, None).await
    }

    async fn with_mlflow(secret: bool, mlflow: Option<MlflowClient>) -> Harness {
        // reqwest's rustls is built without a default crypto provider in this workspace.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = TempDir::new().unwrap();
        let github = FakeGithub::start(None).await.unwrap();
        github.add_repo(OWNER, REPO);
        let config = config(dir.path(), secret);
        let runner = std::sync::Arc::new(Publisher {
            github: github.url().to_string(),
            mlflow,
        });
        let service = Service::bind(&config, Auth::Disabled, runner)
            .await
            .unwrap();
        let base = format!("http://{}", service.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(service.run(async move {
            let _ = stopped.await;
        }));
        Harness {
            hook: GithubWebhook::new(format!("{base}/webhooks/github"), SECRET),
            base,
            github,
            client: reqwest::Client::new(),
            stop: Some(stop),
            _dir: dir,
        }
    }

    async fn alert(&self, body: &str) {
        let response = self
            .client
            .post(format!("{}/webhooks/alertmanager", self.base))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    async fn incidents(&self) -> Vec<Value> {
        let url = format!("{}/incidents", self.base);
        self.client
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Polls `GET /incidents` until the only incident satisfies `done`, within [`PATIENCE`].
    async fn wait_for(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let waited = tokio::time::timeout(PATIENCE, async {
            loop {
                if let [one] = self.incidents().await.as_slice()
                    && done(one)
                {
                    return one.clone();
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        match waited {
            Ok(incident) => incident,
            Err(_) => panic!(
                "timed out waiting for {what}: {:#?}",
                self.incidents().await
            ),
        }
    }

    /// An incident whose fix is published as pull request #1.
    async fn published(&self) -> u64 {
        self.alert(FIRST).await;
        let incident = self
            .wait_for("the fix to be published", |i| i["state"] == "done")
            .await;
        assert_eq!(incident["outcome"], Value::Null);
        incident["last_report"]["pr"]["number"].as_u64().unwrap()
    }

    async fn send(&self, delivery: &Delivery) -> (u16, Value) {
        self.hook.send(delivery, Signature::Valid).await.unwrap()
    }

    fn pull_event(&self, number: u64) -> Delivery {
        Delivery::pull_request(self.github.pull_request_event(OWNER, REPO, number).unwrap())
    }

    async fn outcome(&self) -> Value {
        self.incidents().await[0]["outcome"].clone()
    }

    async fn metrics(&self) -> String {
        let url = format!("{}/metrics", self.base);
        self.client
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The alert of [`FIRST`] firing again later (a new `startsAt`), or resolved.
fn again(status: &str) -> String {
    let mut payload: Value = serde_json::from_str(FIRST).unwrap();
    for alert in payload["alerts"].as_array_mut().unwrap() {
        alert["status"] = json!(status);
        if status == "firing" {
            alert["startsAt"] = json!("2026-11-25T18:00:00Z");
        }
    }
    payload["status"] = json!(status);
    payload.to_string()
}

#[tokio::test]
async fn deliveries_without_a_valid_signature_get_401() {
    let h = Harness::start(true).await;
    let ping = Delivery::ping();
    let (status, _) = h.hook.send(&ping, Signature::Missing).await.unwrap();
    assert_eq!(status, 401);
    let (status, _) = h.hook.send(&ping, Signature::Wrong).await.unwrap();
    assert_eq!(status, 401);
    let (status, body) = h.hook.send(&ping, Signature::Valid).await.unwrap();
    assert_eq!((status, body["result"].as_str()), (200, Some("pong")));
    let metrics = h.metrics().await;
    assert!(
        metrics.contains("autofix_github_deliveries_total{result=\"unauthorized\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn without_a_secret_the_route_is_disabled() {
    let h = Harness::start(false).await;
    let (status, _) = h.send(&Delivery::ping()).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_merged_pull_request_is_recorded_once_and_its_revert_is_reverted() {
    let h = Harness::start(true).await;
    let number = h.published().await;
    h.github.merge_pull(OWNER, REPO, number);
    let merged = h.pull_event(number);
    let (status, body) = h.send(&merged).await;
    assert_eq!(
        (status, body["result"].as_str()),
        (200, Some("recorded")),
        "{body}"
    );
    assert_eq!(body["outcomes"][0]["risk_score"], 0.25);
    assert_eq!(h.outcome().await, "merged");

    // GitHub redelivers with the same delivery id: nothing is counted twice.
    let (status, body) = h.send(&merged).await;
    assert_eq!((status, body["result"].as_str()), (200, Some("duplicate")));
    let metrics = h.metrics().await;
    assert!(
        metrics.contains("autofix_outcomes_total{outcome=\"merged\"} 1"),
        "{metrics}"
    );

    // GitHub's revert button: `Revert "<title>"`, naming the merge commit.
    let sha = FakeGithub::merge_commit_sha(number);
    let message = format!(
        "Revert \"fix(shop/cart): crash loop\"\n\nThis reverts commit {sha}, reversing\nchanges made to 0000000."
    );
    let push = Delivery::push(
        OWNER,
        REPO,
        "refs/heads/main",
        &[
            (
                "1111111111111111111111111111111111111111",
                "docs: unrelated",
            ),
            ("2222222222222222222222222222222222222222", &message),
        ],
    );
    let (status, body) = h.send(&push).await;
    assert_eq!(
        (status, body["result"].as_str()),
        (200, Some("recorded")),
        "{body}"
    );
    assert_eq!(body["outcomes"][0]["outcome"], "reverted");
    assert_eq!(body["outcomes"][0]["pr_number"], number);
    assert_eq!(h.outcome().await, "reverted");
}

#[tokio::test]
async fn a_revert_naming_the_incident_trailer_is_reverted() {
    let h = Harness::start(true).await;
    let number = h.published().await;
    h.github.merge_pull(OWNER, REPO, number);
    h.send(&h.pull_event(number)).await;
    let message = format!("Revert \"fix\"\n\nAutofix-Incident: {HASH}\n");
    let push = Delivery::push(OWNER, REPO, "refs/heads/main", &[("3333333", &message)]);
    let (_, body) = h.send(&push).await;
    assert_eq!(body["outcomes"][0]["outcome"], "reverted", "{body}");
}

#[tokio::test]
async fn a_pull_request_closed_unmerged_is_rejected() {
    let h = Harness::start(true).await;
    let number = h.published().await;
    h.github.close_pull(OWNER, REPO, number);
    let (status, body) = h.send(&h.pull_event(number)).await;
    assert_eq!(
        (status, body["result"].as_str()),
        (200, Some("recorded")),
        "{body}"
    );
    assert_eq!(h.outcome().await, "rejected");
    let metrics = h.metrics().await;
    assert!(
        metrics.contains("autofix_outcomes_total{outcome=\"rejected\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn unknown_branches_and_unrelated_pushes_are_ignored() {
    let h = Harness::start(true).await;
    h.published().await;
    let mut payload = h.github.pull_request_event(OWNER, REPO, 1).unwrap();
    payload["action"] = json!("closed");
    payload["pull_request"]["head"]["ref"] = json!("autofix/other/api-oom-deadbeef");
    let (status, body) = h.send(&Delivery::pull_request(payload.clone())).await;
    assert_eq!(
        (status, body["result"].as_str()),
        (202, Some("ignored")),
        "{body}"
    );
    payload["pull_request"]["head"]["ref"] = json!("feature/x");
    let (status, _) = h.send(&Delivery::pull_request(payload)).await;
    assert_eq!(status, 202);
    let push = Delivery::push(
        OWNER,
        REPO,
        "refs/heads/main",
        &[("4444444", "Revert \"x\"\n\nThis reverts commit 9999999999.")],
    );
    let (status, _) = h.send(&push).await;
    assert_eq!(status, 202);
    let (status, _) = h
        .send(&Delivery::new("pull_request", json!({"action": "closed"})))
        .await;
    assert_eq!(status, 400);
    assert_eq!(h.outcome().await, Value::Null);
}

#[tokio::test]
async fn after_a_merge_the_alert_resolving_is_resolved_and_firing_again_is_recurred() {
    let h = Harness::start(true).await;
    let number = h.published().await;
    h.github.merge_pull(OWNER, REPO, number);
    h.send(&h.pull_event(number)).await;
    h.alert(&again("resolved")).await;
    assert_eq!(h.outcome().await, "resolved");
    h.alert(&again("firing")).await;
    assert_eq!(h.outcome().await, "recurred");
    let metrics = h.metrics().await;
    for outcome in ["merged", "resolved", "recurred"] {
        assert!(
            metrics.contains(&format!(
                "autofix_outcomes_total{{outcome=\"{outcome}\"}} 1"
            )),
            "{metrics}"
        );
    }
}

#[tokio::test]
async fn without_a_merge_alerts_record_no_outcome() {
    let h = Harness::start(true).await;
    h.published().await;
    h.alert(&again("resolved")).await;
    h.alert(&again("firing")).await;
    assert_eq!(h.outcome().await, Value::Null);
}

#[tokio::test]
async fn mlflow_down_does_not_fail_the_webhook() {
    // Nothing listens on port 9 of localhost: every MLflow call is refused.
    let options = ClientOptions {
        timeout: Duration::from_secs(2),
        max_retries: 0,
        ..ClientOptions::default()
    };
    let mlflow = MlflowClient::new("http://127.0.0.1:9", options).unwrap();
    let h = Harness::with_mlflow(true, Some(mlflow)).await;
    let number = h.published().await;
    h.github.merge_pull(OWNER, REPO, number);
    let (status, body) = h.send(&h.pull_event(number)).await;
    assert_eq!(
        (status, body["result"].as_str()),
        (200, Some("recorded")),
        "{body}"
    );
    assert_eq!(h.outcome().await, "merged");
    let counted = tokio::time::timeout(PATIENCE, async {
        loop {
            let metrics = h.metrics().await;
            if metrics.contains("autofix_outcome_marks_total{result=\"failed\"} 1") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(counted.is_ok(), "{}", h.metrics().await);
}
