//! Tracking against a real `mlflow server` (started by `scripts/mlflow-server.sh`): real
//! incidents run through the pipeline, are tracked, and are read back through MLflow's REST API.
//!
//! Tests that need MLflow read `MLFLOW_TRACKING_URI` and skip with a note when it is unset, so
//! `cargo test` passes without it. Each test uses its own experiment.

use autofix_cluster::SnapshotSource;
use autofix_core::Incident;
use autofix_core::alert::WebhookPayload;
use autofix_diagnose::RuleDiagnoser;
use autofix_forge::LocalForge;
use autofix_pipeline::{Config, Pipeline, RunReport, Target};
use autofix_testkit::git_repo_from;
use autofix_tracking::client::FileInfo;
use autofix_tracking::record::RECORD_ID_TAG;
use autofix_tracking::{
    MlflowClient, RecordOutcome, Run, RunContext, RunRecord, RunRef, SpooledRun, Tracker,
    TrackingConfig,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The real server's URI, or `None` (with a note) when the tests must skip.
fn mlflow_uri(test: &str) -> Option<String> {
    match std::env::var("MLFLOW_TRACKING_URI") {
        Ok(uri) if !uri.is_empty() => Some(uri),
        _ => {
            println!(
                "skipping {test}: MLFLOW_TRACKING_URI is unset (start one with scripts/mlflow-server.sh start DIR)"
            );
            None
        }
    }
}

/// An experiment name no other test (or earlier run of this one) uses.
fn unique_experiment(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("autofix-test-{test}-{}-{nanos}", std::process::id())
}

fn tracker(
    uri: &str,
    experiment: &str,
    spool: &Path,
) -> Result<Tracker, Box<dyn std::error::Error>> {
    let config = TrackingConfig {
        enabled: true,
        tracking_uri: Some(uri.to_string()),
        experiment: experiment.to_string(),
        timeout_ms: 5_000,
        spool_dir: Some(spool.to_path_buf()),
        ..TrackingConfig::default()
    };
    Ok(Tracker::new(&config, spool)?)
}

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/scenarios")
        .join(name)
}

/// A file's content at the tip of a branch.
fn at_branch(repo: &Path, branch: &str, file: &str) -> Option<String> {
    let repo = git2::Repository::open(repo).ok()?;
    let tip = repo
        .find_branch(branch, git2::BranchType::Local)
        .ok()?
        .get()
        .peel_to_commit()
        .ok()?;
    let entry = tip.tree().ok()?.get_path(Path::new(file)).ok()?;
    let blob = repo.find_blob(entry.id()).ok()?;
    Some(String::from_utf8_lossy(blob.content()).into_owned())
}

/// A real pipeline run of a scenario, its tracking context (with the corrected manifests read
/// from the fix branch) and the secrets that must never show.
struct IncidentRun {
    report: RunReport,
    ctx: RunContext,
    secrets: Vec<String>,
    _temp: tempfile::TempDir,
}

async fn run_scenario(name: &str) -> Result<IncidentRun, Box<dyn std::error::Error>> {
    let dir = scenario(name);
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json"))?)?;
    let temp = tempfile::tempdir()?;
    let work = temp.path().join("gitops");
    git_repo_from(&dir.join("gitops"), &work);
    let payload = WebhookPayload::from_json(&std::fs::read(dir.join("alert.json"))?)?;
    let incident = Incident::from_payload(&payload)?;
    let git_dir = autofix_gitops::git_dir(&work)?;
    let pipeline = Pipeline {
        source: Arc::new(SnapshotSource::open(&dir)?),
        diagnoser: Arc::new(RuleDiagnoser::default()),
        target: Target::local(work.clone(), Arc::new(LocalForge::for_git_dir(&git_dir))),
        dry_run: None,
        strategies: None,
        config: Config::default(),
    };
    let mut ctx = RunContext::from_incident(&incident);
    let report = pipeline.run(&incident).await?;
    if let Some(branch) = &report.branch {
        for f in &report.files_changed {
            if let Some(content) = at_branch(&work, branch, &f.file) {
                ctx.manifests.insert(f.file.clone(), content);
            }
        }
    }
    let secrets = expected["must_not_contain"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Ok(IncidentRun {
        report,
        ctx,
        secrets,
        _temp: temp,
    })
}

/// Every file of a run's artifacts, recursively: path -> content.
async fn artifacts(
    client: &MlflowClient,
    run: &Run,
) -> Result<BTreeMap<String, String>, Box<dyn std::error::Error>> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![String::new()];
    while let Some(dir) = dirs.pop() {
        let files: Vec<FileInfo> = client.list_artifacts(&run.info.artifact_uri, &dir).await?;
        for f in files {
            // The listing gives paths relative to the run's root or to the listed directory,
            // depending on the server version.
            let path = if dir.is_empty() || f.path.starts_with(&format!("{dir}/")) {
                f.path.clone()
            } else {
                format!("{dir}/{}", f.path)
            };
            if f.is_dir {
                dirs.push(path);
            } else {
                let bytes = client
                    .download_artifact(&run.info.artifact_uri, &path)
                    .await?;
                out.insert(path, String::from_utf8(bytes)?);
            }
        }
    }
    Ok(out)
}

/// Parent runs of an experiment carrying a record id.
async fn runs_with_record_id(
    client: &MlflowClient,
    experiment_id: &str,
    record_id: &str,
) -> Result<Vec<Run>, Box<dyn std::error::Error>> {
    Ok(client
        .search_runs(
            &[experiment_id],
            &format!("tags.\"{RECORD_ID_TAG}\" = '{record_id}'"),
        )
        .await?)
}

async fn children(
    client: &MlflowClient,
    experiment_id: &str,
    parent: &str,
) -> Result<Vec<Run>, Box<dyn std::error::Error>> {
    Ok(client
        .search_runs(
            &[experiment_id],
            &format!("tags.\"mlflow.parentRunId\" = '{parent}'"),
        )
        .await?)
}

/// Everything MLflow shows of a run as one string: params, tags, metric keys, artifacts.
async fn everything_shown(
    client: &MlflowClient,
    run: &Run,
) -> Result<String, Box<dyn std::error::Error>> {
    let mut shown = String::new();
    for p in &run.data.params {
        shown.push_str(&format!("{}={}\n", p.key, p.value));
    }
    for t in &run.data.tags {
        shown.push_str(&format!("{}={}\n", t.key, t.value));
    }
    for m in &run.data.metrics {
        shown.push_str(&format!("{}\n", m.key));
    }
    for (path, content) in artifacts(client, run).await? {
        shown.push_str(&format!("{path}\n{content}\n"));
    }
    Ok(shown)
}

#[tokio::test]
async fn a_real_incident_is_tracked_completely() -> TestResult {
    let Some(uri) = mlflow_uri("a_real_incident_is_tracked_completely") else {
        return Ok(());
    };
    let spool = tempfile::tempdir()?;
    let experiment = unique_experiment("complete");
    let tracker = tracker(&uri, &experiment, spool.path())?;
    let run = run_scenario("app-env-regression-billing").await?;
    let report = &run.report;
    assert!(report.pr.is_some(), "the scenario opens a PR");

    let begun = tracker
        .begin(&run.ctx.run_name(), &report.incident)
        .await
        .ok_or("begin created no run")?;
    assert_eq!(
        begun.url,
        format!(
            "{uri}/#/experiments/{}/runs/{}",
            begun.experiment_id, begun.run_id
        )
    );
    let record = RunRecord::from_report(report, &run.ctx);
    let outcome = tracker.record(Some(begun.clone()), record.clone()).await;
    assert_eq!(outcome, RecordOutcome::Logged(begun.clone()), "{outcome}");
    assert!(
        tracker
            .spool_dir()
            .is_some_and(|d| d.read_dir().is_ok_and(|mut e| e.next().is_none()))
    );

    let client = tracker.client().ok_or("enabled")?;
    let parent = client.get_run(&begun.run_id).await?.ok_or("parent run")?;
    assert_eq!(parent.info.status, "FINISHED");
    assert_eq!(parent.info.end_time, Some(record.end_time));
    let data = &parent.data;
    for (key, want) in [
        ("provider", "rules"),
        ("model", "rules"),
        ("namespace", "payments-eu"),
        ("workload", "billing"),
        ("kind", "Deployment"),
        ("mode", "pr"),
        ("cluster", "prod-eu-1"),
        ("risk_weight_blast_radius", "0.35"),
    ] {
        assert_eq!(data.param(key), Some(want), "param {key}");
    }
    let pr = report.pr.as_ref().ok_or("pr")?;
    for (key, want) in [
        ("alertname", "KubePodCrashLooping"),
        ("category", "crash_loop_app"),
        ("action", "pr"),
        ("namespace", "payments-eu"),
        ("workload", "billing"),
        ("agent_type", "rules"),
        ("incident", report.incident.as_str()),
        ("outcome", "pr_opened"),
        ("pr_url", pr.url.as_str()),
        ("mlflow.source.name", "kube-autofix"),
    ] {
        assert_eq!(data.tag(key), Some(want), "tag {key}");
    }
    let note = data.tag("mlflow.note.content").ok_or("note")?;
    assert!(note.contains(&report.summary), "{note}");
    assert!(note.contains("#### Evidence"));
    assert_eq!(data.tag("mlflow.runName"), Some(record.run_name.as_str()));

    for stage in ["evidence", "diagnose", "remedy", "validate", "publish"] {
        assert!(
            data.metric(&format!("latency_{stage}_ms")).is_some(),
            "latency of {stage}"
        );
    }
    assert_eq!(data.metric("confidence"), Some(report.confidence));
    let risk = report.risk.as_ref().ok_or("risk")?;
    assert_eq!(data.metric("risk_score"), Some(risk.score));
    assert_eq!(
        data.metric("risk_blast_radius"),
        Some(risk.factors.blast_radius.value)
    );
    assert_eq!(data.metric("validation_passed"), Some(1.0));
    assert_eq!(data.metric("violations"), Some(0.0));
    assert_eq!(data.metric("files_changed"), Some(1.0));
    assert_eq!(data.metric("lines_changed"), Some(2.0));
    assert_eq!(data.metric("success"), Some(1.0));
    assert_eq!(data.metric("iterations"), Some(1.0));
    let history = client.metric_history(&begun.run_id, "confidence").await?;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].step, 1, "step = iteration");

    // One nested run for the rules attempt, with its own metrics at step 1.
    let nested = children(client, &begun.experiment_id, &begun.run_id).await?;
    assert_eq!(nested.len(), 1);
    let child = &nested[0];
    assert_eq!(child.info.status, "FINISHED");
    assert!(child.info.end_time.is_some());
    assert_eq!(child.data.tag("agent_type"), Some("rules"));
    assert_eq!(child.data.metric("confidence"), Some(report.confidence));
    let child_history = client
        .metric_history(&child.info.run_id, "validation_passed")
        .await?;
    assert_eq!(
        child_history.iter().map(|m| m.step).collect::<Vec<_>>(),
        [1]
    );

    // Every artifact, byte for byte.
    let stored = artifacts(client, &parent).await?;
    let expected: BTreeMap<String, String> = record
        .clone()
        .redacted()
        .artifacts
        .into_iter()
        .map(|a| (a.path, a.content))
        .collect();
    assert_eq!(
        stored.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    assert_eq!(stored, expected);
    for name in [
        "fix.diff",
        "diagnosis.md",
        "evidence.redacted.json",
        "pr.md",
        "manifests/payments-eu/billing/deployment.yaml",
    ] {
        assert!(stored.contains_key(name), "artifact {name}");
    }
    assert!(stored["fix.diff"].contains("CURRENCY_PRECISION"));
    assert!(stored["manifests/payments-eu/billing/deployment.yaml"].contains("value: \"2\""));
    assert!(stored["pr.md"].contains(&pr.title));

    // No planted secret anywhere in MLflow.
    let mut shown = everything_shown(client, &parent).await?;
    shown.push_str(&everything_shown(client, child).await?);
    assert!(!run.secrets.is_empty());
    for secret in &run.secrets {
        assert!(!shown.contains(secret), "secret {secret} shows in MLflow");
    }
    Ok(())
}

#[tokio::test]
async fn a_failed_run_ends_failed_with_its_error() -> TestResult {
    let Some(uri) = mlflow_uri("a_failed_run_ends_failed_with_its_error") else {
        return Ok(());
    };
    let spool = tempfile::tempdir()?;
    let tracker = tracker(&uri, &unique_experiment("failed"), spool.path())?;
    let run = run_scenario("app-env-regression-billing").await?;
    let error = std::io::Error::other("forge refused: token=Qm8vTz4Lx2Wp9Rb6xx invalid");
    let record = RunRecord::from_error(&run.ctx, &error, &run.report.stage_ms);
    let outcome = tracker.record(None, record.clone()).await;
    let RecordOutcome::Logged(logged) = outcome else {
        return Err(format!("not logged: {outcome}").into());
    };
    let client = tracker.client().ok_or("enabled")?;
    let parent = client.get_run(&logged.run_id).await?.ok_or("run")?;
    assert_eq!(parent.info.status, "FAILED");
    assert_eq!(parent.info.end_time, Some(record.end_time));
    assert_eq!(parent.data.tag("outcome"), Some("failed"));
    assert_eq!(parent.data.metric("success"), Some(0.0));
    let stored = artifacts(client, &parent).await?;
    let text = stored.get("error.txt").ok_or("error.txt")?;
    assert!(text.contains("forge refused"), "{text}");
    assert!(!text.contains("Qm8vTz4Lx2Wp9Rb6xx"), "redacted: {text}");
    Ok(())
}

/// A free loopback port with nothing listening on it.
fn closed_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

#[tokio::test]
async fn an_unreachable_server_spools_and_the_replay_logs_once() -> TestResult {
    let spool = tempfile::tempdir()?;
    let experiment = unique_experiment("spool");
    let down = format!("http://127.0.0.1:{}", closed_port()?);
    let offline = tracker(&down, &experiment, spool.path())?;
    let run = run_scenario("app-env-regression-billing").await?;
    let record = RunRecord::from_report(&run.report, &run.ctx);

    // Promptly, without a panic: begin gives up, record spools. The guard only bounds a hang.
    let guard = Duration::from_secs(30);
    let begun = tokio::time::timeout(guard, offline.begin("x", &run.report.incident)).await?;
    assert_eq!(begun, None);
    let outcome = tokio::time::timeout(guard, offline.record(None, record.clone())).await?;
    let RecordOutcome::Spooled { path, .. } = &outcome else {
        return Err(format!("not spooled: {outcome}").into());
    };
    let spooled: SpooledRun = serde_json::from_slice(&std::fs::read(path)?)?;
    assert_eq!(spooled.record.id, record.id);
    assert_eq!(offline.stats().spooled, 1);
    let still_down = offline.flush_spool().await;
    assert_eq!((still_down.replayed, still_down.remaining), (0, 1));

    let Some(uri) = mlflow_uri("an_unreachable_server_spools_and_the_replay_logs_once (replay)")
    else {
        return Ok(());
    };
    let online = tracker(&uri, &experiment, spool.path())?;
    let flushed = online.flush_spool().await;
    assert_eq!(flushed.replayed, 1, "{flushed:?}");
    assert_eq!(flushed.remaining, 0);
    assert!(!path.exists(), "replayed runs leave the spool");
    let again = online.flush_spool().await;
    assert_eq!(again.replayed, 0);

    let client = online.client().ok_or("enabled")?;
    let experiment_id = client
        .get_experiment_by_name(&experiment)
        .await?
        .ok_or("experiment")?
        .experiment_id;
    let parents = runs_with_record_id(client, &experiment_id, &record.id).await?;
    assert_eq!(parents.len(), 1, "logged exactly once");
    let parent = &parents[0];
    assert_eq!(parent.info.status, "FINISHED");
    assert_eq!(parent.data.metric("success"), Some(1.0));
    assert!(artifacts(client, parent).await?.contains_key("fix.diff"));
    assert_eq!(
        children(client, &experiment_id, &parent.info.run_id)
            .await?
            .len(),
        1
    );
    Ok(())
}

#[tokio::test]
async fn a_replay_after_a_crash_mid_replay_does_not_log_twice() -> TestResult {
    let Some(uri) = mlflow_uri("a_replay_after_a_crash_mid_replay_does_not_log_twice") else {
        return Ok(());
    };
    let spool = tempfile::tempdir()?;
    let experiment = unique_experiment("crash");
    let tracker = tracker(&uri, &experiment, spool.path())?;
    let run = run_scenario("app-env-regression-billing").await?;
    let record = RunRecord::from_report(&run.report, &run.ctx).redacted();
    let begun = tracker.begin("crash", &run.report.incident).await;
    let RecordOutcome::Logged(logged) = tracker.record(begun, record.clone()).await else {
        return Err("not logged".into());
    };
    // As if the process died after logging but before deleting the spool file; once with the
    // parent run known, once without.
    let spool_dir = tracker.spool_dir().ok_or("enabled")?;
    let store = autofix_tracking::Spool::open(spool_dir)?;
    store.write(&SpooledRun::new(
        Some(logged.clone()),
        record.clone(),
        "crash".into(),
    ))?;
    assert_eq!(tracker.flush_spool().await.replayed, 1);
    store.write(&SpooledRun::new(
        None::<RunRef>,
        record.clone(),
        "crash".into(),
    ))?;
    assert_eq!(tracker.flush_spool().await.replayed, 1);

    let client = tracker.client().ok_or("enabled")?;
    let parents = runs_with_record_id(client, &logged.experiment_id, &record.id).await?;
    assert_eq!(parents.len(), 1);
    assert_eq!(parents[0].info.run_id, logged.run_id);
    let nested = children(client, &logged.experiment_id, &logged.run_id).await?;
    assert_eq!(nested.len(), 1);
    let history = client.metric_history(&logged.run_id, "confidence").await?;
    assert_eq!(history.len(), 1, "metric points are not repeated");
    let status = client.get_run(&logged.run_id).await?.map(|r| r.info.status);
    assert_eq!(status.as_deref(), Some("FINISHED"));
    Ok(())
}

#[tokio::test]
async fn concurrent_experiment_creation_agrees_on_one_id() -> TestResult {
    let Some(uri) = mlflow_uri("concurrent_experiment_creation_agrees_on_one_id") else {
        return Ok(());
    };
    let client = MlflowClient::new(&uri, autofix_tracking::ClientOptions::default())?;
    let name = unique_experiment("race");
    let calls: Vec<_> = (0..4)
        .map(|_| {
            let (client, name) = (client.clone(), name.clone());
            tokio::spawn(async move { client.get_or_create_experiment(&name).await })
        })
        .collect();
    let mut ids = Vec::new();
    for call in calls {
        ids.push(call.await??);
    }
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
    Ok(())
}

/// `POST <uri>/<path>` or `GET` with a JSON answer, through plain reqwest.
async fn mlflow_json(
    uri: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder().build()?;
    let url = format!("{uri}/{path}");
    let request = match body {
        Some(b) => http.post(url).json(&b),
        None => http.get(url),
    };
    let response = request.send().await?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        return Err(format!("{path} answered {status}: {text}").into());
    }
    Ok(serde_json::from_str(&text)?)
}

#[tokio::test]
async fn a_tracked_run_is_exported_as_a_trace_with_a_span_per_stage() -> TestResult {
    let Some(uri) = mlflow_uri("a_tracked_run_is_exported_as_a_trace_with_a_span_per_stage") else {
        return Ok(());
    };
    let spool = tempfile::tempdir()?;
    let experiment = unique_experiment("trace");
    let tracker = tracker(&uri, &experiment, spool.path())?;
    let run = run_scenario("app-env-regression-billing").await?;
    let report = &run.report;
    let begun = tracker
        .begin(&run.ctx.run_name(), &report.incident)
        .await
        .ok_or("begin created no run")?;
    let record = RunRecord::from_report(report, &run.ctx);
    let outcome = tracker.record(Some(begun.clone()), record.clone()).await;
    assert_eq!(outcome, RecordOutcome::Logged(begun.clone()), "{outcome}");
    let stats = tracker.stats();
    assert_eq!(
        (stats.traces_exported, stats.trace_export_failures),
        (1, 0),
        "{stats:?}"
    );

    // The trace is found in the run's experiment, linked to the run.
    let found = mlflow_json(
        &uri,
        "api/3.0/mlflow/traces/search",
        Some(serde_json::json!({
            "locations": [{
                "type": "MLFLOW_EXPERIMENT",
                "mlflow_experiment": {"experiment_id": begun.experiment_id},
            }],
            "max_results": 10,
        })),
    )
    .await?;
    let traces = found["traces"].as_array().ok_or(format!("{found}"))?;
    assert_eq!(traces.len(), 1, "{found}");
    let info = &traces[0];
    let trace_id = info["trace_id"].as_str().ok_or(format!("{info}"))?;
    assert_eq!(
        trace_id,
        autofix_tracking::trace::mlflow_trace_id(&record.id),
        "{info}"
    );
    // Linked to the run: MLflow finds it by the run's id (the run's Traces tab does the same).
    let linked = mlflow_json(
        &uri,
        "api/3.0/mlflow/traces/search",
        Some(serde_json::json!({
            "locations": [{
                "type": "MLFLOW_EXPERIMENT",
                "mlflow_experiment": {"experiment_id": begun.experiment_id},
            }],
            "filter": format!("metadata.`mlflow.sourceRun` = '{}'", begun.run_id),
        })),
    )
    .await?;
    assert_eq!(
        linked["traces"][0]["trace_id"].as_str(),
        Some(trace_id),
        "the trace is linked to the run: {linked}"
    );
    assert_eq!(info["state"].as_str(), Some("OK"), "{info}");

    // Its spans: the root and one per stage, with the run's attributes.
    let got = mlflow_json(
        &uri,
        &format!("api/3.0/mlflow/traces/get?trace_id={trace_id}"),
        None,
    )
    .await?;
    let spans = got["trace"]["spans"]
        .as_array()
        .ok_or(format!("no spans: {got}"))?;
    let attribute = |span: &serde_json::Value, key: &str| -> Option<serde_json::Value> {
        let attrs = span["attributes"].as_array()?;
        let kv = attrs.iter().find(|a| a["key"] == key)?;
        let v = &kv["value"];
        // OTLP AnyValue in JSON: stringValue / doubleValue; MLflow stores values JSON-dumped.
        let raw = v
            .get("string_value")
            .or_else(|| v.get("stringValue"))
            .cloned()
            .or_else(|| {
                v.get("double_value")
                    .or_else(|| v.get("doubleValue"))
                    .cloned()
            })?;
        Some(
            match raw.as_str().map(serde_json::from_str::<serde_json::Value>) {
                Some(Ok(parsed)) => parsed,
                _ => raw,
            },
        )
    };
    let root = spans
        .iter()
        .find(|s| s["name"] == autofix_tracking::trace::ROOT_SPAN_NAME)
        .ok_or(format!("no root span: {got}"))?;
    let mut names: Vec<&str> = spans.iter().filter_map(|s| s["name"].as_str()).collect();
    names.sort_unstable();
    let mut expected = vec![autofix_tracking::trace::ROOT_SPAN_NAME];
    expected.extend(autofix_tracking::trace::STAGES);
    expected.sort_unstable();
    assert_eq!(names, expected, "{got}");
    for span in spans {
        if span["name"] != autofix_tracking::trace::ROOT_SPAN_NAME {
            assert_eq!(span["parent_span_id"], root["span_id"], "{span}");
        }
        for (key, value) in [
            ("category", serde_json::json!(report.category.to_string())),
            ("action", serde_json::json!(report.action.to_string())),
            ("namespace", serde_json::json!(report.workload.namespace)),
            ("workload", serde_json::json!(report.workload.name)),
            ("incident", serde_json::json!(report.incident)),
            ("confidence", serde_json::json!(report.confidence)),
            ("mlflow_run_id", serde_json::json!(begun.run_id)),
        ] {
            assert_eq!(attribute(span, key), Some(value), "{key} on {span}");
        }
        if let Some(risk) = &report.risk {
            assert_eq!(
                attribute(span, "risk_score"),
                Some(serde_json::json!(risk.score)),
                "{span}"
            );
        }
    }
    Ok(())
}

/// An LLM diagnosis whose first reply is refused and second accepted: the parent run and two
/// nested runs (FAILED with the reason, then FINISHED), the model as a param, tokens as
/// metrics, and the prompts stored because `log_prompts` is on.
#[tokio::test]
async fn each_llm_iteration_is_a_nested_run() -> TestResult {
    use autofix_llm::{ChainDiagnoser, DiagnosisMode, LlmConfig, LlmDiagnoser};
    use autofix_testkit::{FakeOpenAi, LONG_TAIL_SCENARIO, Reply, long_tail_patch};
    let Some(uri) = mlflow_uri("each_llm_iteration_is_a_nested_run") else {
        return Ok(());
    };
    let fake = FakeOpenAi::start().await?;
    fake.script(vec![
        Reply::Content("{not json".into()),
        Reply::Patch(long_tail_patch()),
    ]);
    let llm_config = LlmConfig {
        mode: DiagnosisMode::RulesThenLlm,
        base_url: fake.url(),
        model: "primary-model".into(),
        max_iterations: 3,
        max_retries: 0,
        timeout_ms: 5_000,
        ..LlmConfig::default()
    };
    let dir = scenario(LONG_TAIL_SCENARIO);
    let temp = tempfile::tempdir()?;
    let work = temp.path().join("gitops");
    git_repo_from(&dir.join("gitops"), &work);
    let payload = WebhookPayload::from_json(&std::fs::read(dir.join("alert.json"))?)?;
    let incident = Incident::from_payload(&payload)?;
    let git_dir = autofix_gitops::git_dir(&work)?;
    let config = Config {
        llm: llm_config.clone(),
        ..Config::default()
    };
    let pipeline = Pipeline {
        source: Arc::new(SnapshotSource::open(&dir)?),
        diagnoser: Arc::new(ChainDiagnoser::new(
            RuleDiagnoser::default(),
            Some(LlmDiagnoser::new(llm_config, "sk-test".to_string().into())?),
            DiagnosisMode::RulesThenLlm,
        )),
        target: Target::local(work.clone(), Arc::new(LocalForge::for_git_dir(&git_dir))),
        dry_run: None,
        strategies: None,
        config,
    };
    let spool = tempfile::tempdir()?;
    let experiment = unique_experiment("llm");
    let tracker = Tracker::new(
        &TrackingConfig {
            enabled: true,
            tracking_uri: Some(uri.clone()),
            experiment: experiment.clone(),
            timeout_ms: 5_000,
            spool_dir: Some(spool.path().to_path_buf()),
            log_prompts: true,
            ..TrackingConfig::default()
        },
        spool.path(),
    )?;
    let (result, logging) = autofix_tracking::run_and_track(&pipeline, &tracker, &incident).await;
    let report = result?;
    assert!(report.pr.is_some(), "{:?}", report.escalation_reason);
    let outcome = logging.await?;
    let RecordOutcome::Logged(parent) = outcome else {
        return Err(format!("not logged: {outcome}").into());
    };

    let client = tracker.client().ok_or("enabled")?;
    let run = client.get_run(&parent.run_id).await?.ok_or("parent run")?;
    assert_eq!(run.data.param("model"), Some("primary-model"));
    assert_eq!(run.data.param("provider"), Some("openai-compatible"));
    assert_eq!(run.data.metric("iterations"), Some(2.0));
    let mut nested = children(client, &parent.experiment_id, &parent.run_id).await?;
    nested.sort_by_key(|r| r.data.tag("iteration").map(str::to_string));
    assert_eq!(nested.len(), 2, "one nested run per iteration");
    assert_eq!(nested[0].info.status, "FAILED");
    assert_eq!(nested[0].data.tag("outcome"), Some("invalid"));
    let error = artifacts(client, &nested[0]).await?;
    assert!(
        error.get("error.txt").is_some_and(|e| !e.is_empty()),
        "{error:?}"
    );
    assert_eq!(nested[1].info.status, "FINISHED");
    assert_eq!(nested[1].data.tag("outcome"), Some("accepted"));
    assert_eq!(nested[1].data.param("model"), Some("primary-model"));
    assert!(nested[1].data.metric("prompt_tokens").is_some());
    let files = artifacts(client, &run).await?;
    let prompts: Vec<&String> = files.keys().filter(|p| p.starts_with("prompts/")).collect();
    assert_eq!(
        prompts.len(),
        4,
        "prompt and reply of both tries: {prompts:?}"
    );
    Ok(())
}
