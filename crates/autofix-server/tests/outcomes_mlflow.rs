//! Outcomes on the MLflow run, against a real `mlflow server`: the service's pipeline runner
//! runs an example scenario (its run tracked in MLflow), then GitHub reports the merge and a
//! revert; the run gets the `fix_outcome` tag and the `fix_safe` metric.
//!
//! Skipped with a note unless `MLFLOW_TRACKING_URI` is set
//! (`eval "$(scripts/mlflow-server.sh start /tmp/mlflow)" && export MLFLOW_TRACKING_URI`).

use autofix_cluster::SnapshotSource;
use autofix_diagnose::RuleDiagnoser;
use autofix_forge::LocalForge;
use autofix_pipeline::{Config, Pipeline, Target};
use autofix_server::{Auth, PipelineRunner, ServerConfig, Service};
use autofix_testkit::{Delivery, FakeGithub, GithubWebhook, Signature, git_repo_from};
use autofix_tracking::{ClientOptions, MlflowClient, Run, Tracker};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const SECRET: &str = "webhook-secret";
/// Bound of every wait: far above what any step needs.
const PATIENCE: Duration = Duration::from_secs(60);
/// Polls `probe` until it returns `Some`, within [`PATIENCE`].
async fn wait_for<T, F: Future<Output = Option<T>>>(what: &str, probe: impl Fn() -> F) -> T {
    let waited = tokio::time::timeout(PATIENCE, async {
        loop {
            if let Some(found) = probe().await {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    waited.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

async fn get(client: &reqwest::Client, url: String) -> String {
    client.get(url).send().await.unwrap().text().await.unwrap()
}

/// The parent run of `incident` in `experiment`.
async fn parent_run(mlflow: &MlflowClient, experiment: &str, incident: &str) -> Run {
    let id = mlflow
        .get_experiment_by_name(experiment)
        .await
        .unwrap()
        .unwrap()
        .experiment_id;
    let runs = mlflow
        .search_runs(&[id.as_str()], &format!("tags.incident = '{incident}'"))
        .await
        .unwrap();
    let mut parents = runs
        .into_iter()
        .filter(|r| r.data.tag("mlflow.parentRunId").is_none());
    let run = parents.next().expect("a parent run");
    assert!(parents.next().is_none(), "one parent run");
    run
}

#[tokio::test]
async fn outcomes_are_marked_on_the_incidents_mlflow_run() {
    let Some(uri) = std::env::var("MLFLOW_TRACKING_URI")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        println!("note: skipping: MLFLOW_TRACKING_URI is not set");
        return;
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let temp = tempfile::tempdir().unwrap();
    let scenario =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/scenarios/helm-values-oom-cart");
    let work = temp.path().join("gitops");
    git_repo_from(&scenario.join("gitops"), &work);
    let git_dir = autofix_gitops::git_dir(&work).unwrap();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let experiment = format!("autofix-test-outcomes-{}-{nanos}", std::process::id());
    let mut config = Config::default();
    config.tracking.enabled = true;
    config.tracking.tracking_uri = Some(uri.clone());
    config.tracking.experiment = experiment.clone();
    config.tracking.export_traces = false;
    config.server = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: temp.path().join("data"),
        ..ServerConfig::default()
    };
    config.server.auth.insecure_no_auth = true;
    let secret_file = temp.path().join("github-secret");
    std::fs::write(&secret_file, SECRET).unwrap();
    config.server.github_webhook.secret_file = Some(secret_file);
    let tracker = Tracker::new(&config.tracking, &config.server.data_dir).unwrap();
    let pipeline = Pipeline {
        source: Arc::new(SnapshotSource::open(&scenario).unwrap()),
        diagnoser: Arc::new(RuleDiagnoser::default()),
        target: Target::local(work.clone(), Arc::new(LocalForge::for_git_dir(&git_dir))),
        dry_run: None,
        strategies: None,
        config: config.clone(),
    };
    let runner = Arc::new(PipelineRunner::new(Arc::new(pipeline), tracker));
    let service = Service::bind(&config.server, Auth::Disabled, runner)
        .await
        .unwrap();
    let base = format!("http://{}", service.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(service.run(async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();

    // The alert: the pipeline proposes a fix and the run is tracked.
    let alert = std::fs::read_to_string(scenario.join("alert.json")).unwrap();
    let status = client
        .post(format!("{base}/webhooks/alertmanager"))
        .header("content-type", "application/json")
        .body(alert)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let report: Value = wait_for("the fix", || async {
        let incidents: Value =
            serde_json::from_str(&get(&client, format!("{base}/incidents")).await).ok()?;
        let report = incidents[0]["last_report"].clone();
        report["branch"].is_string().then_some(report)
    })
    .await;
    let metrics = || async { get(&client, format!("{base}/metrics")).await };
    wait_for("the run to be logged", || async {
        metrics()
            .await
            .contains("autofix_tracking_runs_total{result=\"logged\"} 1")
            .then_some(())
    })
    .await;
    let incident = report["incident"].as_str().unwrap().to_string();
    let branch = report["branch"].as_str().unwrap();

    // GitHub: the fix's pull request is merged.
    let github = FakeGithub::start(None).await.unwrap();
    github.add_repo("acme", "gitops");
    let pull: Value = client
        .post(format!("{}/repos/acme/gitops/pulls", github.url()))
        .json(&json!({"title": "fix", "head": branch, "base": "main"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let number = pull["number"].as_u64().unwrap();
    github.merge_pull("acme", "gitops", number);
    let hook = GithubWebhook::new(format!("{base}/webhooks/github"), SECRET);
    let merged =
        Delivery::pull_request(github.pull_request_event("acme", "gitops", number).unwrap());
    let (status, body) = hook.send(&merged, Signature::Valid).await.unwrap();
    assert_eq!(
        (status, body["result"].as_str()),
        (200, Some("recorded")),
        "{body}"
    );
    wait_for("the merge to be marked", || async {
        metrics()
            .await
            .contains("autofix_outcome_marks_total{result=\"marked\"} 1")
            .then_some(())
    })
    .await;
    let mlflow = MlflowClient::new(&uri, ClientOptions::default()).unwrap();
    let run = parent_run(&mlflow, &experiment, &incident).await;
    assert_eq!(run.data.tag("fix_outcome"), Some("merged"));
    assert_eq!(run.data.metric("fix_safe"), Some(1.0));
    assert_eq!(run.data.metric("fix_outcome_recorded"), Some(1.0));
    assert!(
        run.data.metric("risk_score").is_some(),
        "the pair's risk score"
    );

    // A revert of the fix commit is pushed: the same run becomes unsafe.
    let message = format!("Revert \"fix\"\n\nAutofix-Incident: {incident}\n");
    let push = Delivery::push(
        "acme",
        "gitops",
        "refs/heads/main",
        &[("5555555", &message)],
    );
    let (status, body) = hook.send(&push, Signature::Valid).await.unwrap();
    assert_eq!(
        (status, body["result"].as_str()),
        (200, Some("recorded")),
        "{body}"
    );
    wait_for("the revert to be marked", || async {
        metrics()
            .await
            .contains("autofix_outcome_marks_total{result=\"marked\"} 2")
            .then_some(())
    })
    .await;
    let run = parent_run(&mlflow, &experiment, &incident).await;
    assert_eq!(run.data.tag("fix_outcome"), Some("reverted"));
    assert_eq!(run.data.metric("fix_safe"), Some(0.0));
    let _ = stop.send(());
}
