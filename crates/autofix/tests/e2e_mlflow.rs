//! `autofix run --mlflow` against a real MLflow server, read back through MLflow's REST API.
//!
//! (a) MLflow up: the PR body links the run, and that run exists FINISHED with its tags, params,
//!     metrics, a nested attempt run and the artifacts.
//! (b) MLflow down (a closed loopback port, the "server stopped mid-run" case as a one-shot
//!     command sees it): the PR still opens, the run waits in the spool, `autofix tracking flush`
//!     replays it once the server is reachable, and a second flush adds nothing.
//!
//! Skipped with a note unless `MLFLOW_TRACKING_URI` is set (the test script starts MLflow with
//! `scripts/mlflow-server.sh` and exports it).

mod support;

use serde_json::Value;
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use support::mlflow::{Mlflow, flush_spool, metric, tracking_uri, value};
use support::{Fixture, assert_success, autofix, free_port};

const SCENARIO: &str = "cpu-throttled-api-gateway";

/// An experiment name no other test (or earlier run) uses.
fn unique_experiment(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("e2e-{test}-{}-{nanos}", std::process::id())
}

fn tracking_config(f: &Fixture, experiment: &str) -> std::path::PathBuf {
    let config = f.path("autofix.toml");
    std::fs::write(
        &config,
        format!("[tracking]\nexperiment = \"{experiment}\"\ntimeout_ms = 3000\n"),
    )
    .unwrap();
    config
}

/// `autofix run --json` with tracking on; answers the report and stderr.
fn run_tracked(f: &Fixture, config: &Path, mlflow: &str) -> (Value, String) {
    let out = autofix(&[
        "run",
        "--snapshot",
        f.scenario.to_str().unwrap(),
        "--gitops",
        f.repo.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--mlflow",
        mlflow,
        "--json",
    ]);
    assert_success("autofix run --mlflow", &out);
    let report: Value = serde_json::from_slice(&out.stdout).expect("run --json prints JSON");
    (report, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The parent runs (no `mlflow.parentRunId`) of one incident.
fn parent_runs(mlflow: &Mlflow, experiment_id: &str, incident: &str) -> Vec<Value> {
    mlflow.parents(experiment_id, &format!("tags.incident = '{incident}'"))
}

fn nested_runs(mlflow: &Mlflow, experiment_id: &str, parent: &str) -> Vec<Value> {
    mlflow.search(
        experiment_id,
        &format!("tags.mlflow.parentRunId = '{parent}'"),
    )
}

/// Checks a complete parent run of the scenario's fix and its nested run and artifacts.
fn assert_complete_run(mlflow: &Mlflow, run: &Value, report: &Value) {
    let run_id = run["info"]["run_id"].as_str().unwrap();
    let experiment_id = run["info"]["experiment_id"].as_str().unwrap();
    assert_eq!(run["info"]["status"], "FINISHED", "{run:#}");
    assert!(run["info"]["end_time"].as_str().is_some() || run["info"]["end_time"].is_number());
    for (key, expected) in [
        ("category", "cpu_throttled"),
        ("action", "pr"),
        ("outcome", "pr_opened"),
        ("namespace", "mobile"),
        ("workload", "api"),
        ("incident", report["incident"].as_str().unwrap()),
        ("branch", report["branch"].as_str().unwrap()),
        ("alertname", "CPUThrottlingHigh"),
    ] {
        assert_eq!(
            value(run, "tags", key),
            Some(expected),
            "tag {key}: {run:#}"
        );
    }
    assert_eq!(value(run, "params", "namespace"), Some("mobile"));
    assert_eq!(value(run, "params", "model"), Some("rules"));
    assert_eq!(metric(run, "success"), Some(1.0), "{run:#}");
    assert_eq!(metric(run, "validation_passed"), Some(1.0));
    assert!(metric(run, "latency_total_ms").is_some(), "{run:#}");

    let nested = nested_runs(mlflow, experiment_id, run_id);
    assert!(!nested.is_empty(), "no nested run under {run_id}");
    for child in &nested {
        assert_eq!(child["info"]["status"], "FINISHED", "{child:#}");
        assert!(value(child, "tags", "agent_type").is_some(), "{child:#}");
    }

    let (root, files) = mlflow.artifacts(run);
    for expected in [
        "fix.diff",
        "diagnosis.md",
        "report.json",
        "pr.md",
        "evidence.redacted.json",
    ] {
        assert!(
            files.iter().any(|f| f == expected),
            "artifact {expected} missing: {files:?}"
        );
    }
    let diff = mlflow.get_text(&format!(
        "/api/2.0/mlflow-artifacts/artifacts/{root}/fix.diff"
    ));
    assert!(diff.contains("mobile/api/deployment.yaml"), "{diff}");
    let logged_report: Value = serde_json::from_str(&mlflow.get_text(&format!(
        "/api/2.0/mlflow-artifacts/artifacts/{root}/report.json"
    )))
    .unwrap();
    assert_eq!(logged_report["branch"], report["branch"]);
    assert_eq!(logged_report["commit"], report["commit"]);
}

#[test]
fn a_tracked_run_links_its_complete_mlflow_run_in_the_pr() {
    let Some(uri) = tracking_uri("the MLflow end-to-end test") else {
        return;
    };
    let t0 = Instant::now();
    let mlflow = Mlflow::new(&uri);
    let f = Fixture::new(SCENARIO);
    let experiment = unique_experiment("linked");
    let config = tracking_config(&f, &experiment);
    let (report, stderr) = run_tracked(&f, &config, &uri);
    assert_eq!(report["action"], "pr");
    assert!(stderr.contains("tracking: run logged"), "{stderr}");

    // The PR body carries the run's UI link.
    let pulls = f.pulls();
    assert_eq!(pulls.len(), 1);
    let body = std::fs::read_to_string(f.forge_dir().join("pulls/1/body.md")).unwrap();
    let marker = format!("{uri}/#/experiments/");
    let at = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no MLflow link in the PR body:\n{body}"));
    let link = &body[at + marker.len()..];
    let (experiment_id, rest) = link.split_once("/runs/").expect("…/runs/<id>");
    let run_id: String = rest
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    assert_eq!(experiment_id, mlflow.experiment_id(&experiment));

    // That run exists, complete, and is the incident's only parent run.
    let run = mlflow.run(&run_id);
    assert_eq!(run["info"]["experiment_id"], experiment_id);
    assert_complete_run(&mlflow, &run, &report);
    let parents = parent_runs(&mlflow, experiment_id, report["incident"].as_str().unwrap());
    assert_eq!(parents.len(), 1, "{parents:#?}");
    assert_eq!(parents[0]["info"]["run_id"], run_id.as_str());
    assert!(
        !f.forge_dir().join("mlflow-spool").exists()
            || std::fs::read_dir(f.forge_dir().join("mlflow-spool"))
                .unwrap()
                .flatten()
                .all(|e| !e.file_name().to_string_lossy().ends_with(".json")),
        "nothing should be spooled when MLflow is up"
    );
    eprintln!("done in {:?}", t0.elapsed());
}

#[test]
fn mlflow_down_spools_the_run_and_flush_replays_it_once() {
    let Some(uri) = tracking_uri("the MLflow spool end-to-end test") else {
        return;
    };
    let t0 = Instant::now();
    let mlflow = Mlflow::new(&uri);
    let f = Fixture::new(SCENARIO);
    let experiment = unique_experiment("spooled");
    let config = tracking_config(&f, &experiment);
    // Nothing listens there: MLflow is "down" for the whole run.
    let down = format!("http://127.0.0.1:{}", free_port());
    let (report, stderr) = run_tracked(&f, &config, &down);
    eprintln!("run with MLflow down took {:?}", t0.elapsed());

    // The PR opened regardless, without a run link.
    assert_eq!(report["action"], "pr");
    let pulls = f.pulls();
    assert_eq!(pulls.len(), 1, "{pulls:#?}");
    assert_eq!(pulls[0]["head"], report["branch"]);
    let body = std::fs::read_to_string(f.forge_dir().join("pulls/1/body.md")).unwrap();
    assert!(!body.contains("#/experiments/"), "{body}");
    // `autofix run` spools into the repo's forge dir: <gitops>/.git/autofix/mlflow-spool.
    assert!(stderr.contains("tracking: run spooled"), "{stderr}");
    let data_dir = f.forge_dir();
    let spooled = spool_files(&data_dir);
    assert_eq!(spooled.len(), 1, "one spooled run: {spooled:?}");

    // MLflow is reachable again: a flush replays the run.
    let flush = || flush_spool(&config, &uri, &data_dir);
    let first = flush();
    assert!(
        first.contains("replayed: 1,") && first.contains("remaining: 0"),
        "{first}"
    );
    assert!(spool_files(&data_dir).is_empty(), "the replayed file stays");
    let experiment_id = mlflow.experiment_id(&experiment);
    let incident = report["incident"].as_str().unwrap();
    let parents = parent_runs(&mlflow, &experiment_id, incident);
    assert_eq!(parents.len(), 1, "the run logged once: {parents:#?}");
    let run_id = parents[0]["info"]["run_id"].as_str().unwrap().to_string();
    let run = mlflow.run(&run_id);
    assert_complete_run(&mlflow, &run, &report);
    let nested = nested_runs(&mlflow, &experiment_id, &run_id).len();
    let all = mlflow.search(&experiment_id, "").len();

    // A second flush has nothing left to do and logs nothing again.
    let second = flush();
    assert!(second.contains("replayed: 0,"), "{second}");
    assert_eq!(parent_runs(&mlflow, &experiment_id, incident).len(), 1);
    assert_eq!(nested_runs(&mlflow, &experiment_id, &run_id).len(), nested);
    assert_eq!(mlflow.search(&experiment_id, "").len(), all);
    eprintln!("done in {:?}", t0.elapsed());
}

/// The spooled runs (`*.json` directly in the spool dir; `rejected/` is not a run waiting).
fn spool_files(data_dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(data_dir.join("mlflow-spool")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect()
}

/// docs/observability.md promises `manifests/<gitops path>` (each corrected manifest) among the
/// parent run's artifacts: through the command line, byte for byte what the fix commit holds.
#[test]
fn a_tracked_run_uploads_the_corrected_manifest() {
    let Some(uri) = tracking_uri("the MLflow manifests test") else {
        return;
    };
    let mlflow = Mlflow::new(&uri);
    let f = Fixture::new(SCENARIO);
    let config = tracking_config(&f, &unique_experiment("manifests"));
    let (report, _) = run_tracked(&f, &config, &uri);
    let experiment_id = report_experiment(&f);
    let parents = parent_runs(
        &mlflow,
        &experiment_id,
        report["incident"].as_str().unwrap(),
    );
    assert_eq!(parents.len(), 1);
    let (root, files) = mlflow.artifacts(&parents[0]);
    assert!(
        files.iter().any(|f| f == "manifests"),
        "no manifests/ artifact: {files:?}"
    );
    let stored = mlflow.get_text(&format!(
        "/api/2.0/mlflow-artifacts/artifacts/{root}/manifests/mobile/api/deployment.yaml"
    ));
    let committed = support::git(
        &f.repo,
        &[
            "show",
            &format!(
                "{}:mobile/api/deployment.yaml",
                report["commit"].as_str().unwrap()
            ),
        ],
    );
    assert_eq!(stored, committed);
}

/// The experiment id in the PR body's run link.
fn report_experiment(f: &Fixture) -> String {
    let body = std::fs::read_to_string(f.forge_dir().join("pulls/1/body.md")).unwrap();
    let at = body.find("#/experiments/").expect("a run link") + "#/experiments/".len();
    body[at..].split('/').next().unwrap().to_string()
}
