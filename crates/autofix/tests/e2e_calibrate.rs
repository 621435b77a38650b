//! `autofix calibrate --mlflow` against a real MLflow server: the `(risk_score, fix_outcome)`
//! pairs recorded on runs are read back, the threshold is fitted from them, and the calibration
//! is logged as a run with its plot. Skipped with a note unless `MLFLOW_TRACKING_URI` is set.

mod support;

use serde_json::{Value, json};
use support::mlflow::{Mlflow, metric, tracking_uri};
use support::{assert_success, autofix};

#[test]
fn calibrate_reads_outcomes_from_mlflow_and_logs_its_plot() {
    let Some(uri) = tracking_uri("calibrate_reads_outcomes_from_mlflow_and_logs_its_plot") else {
        return;
    };
    let mlflow = Mlflow::new(&uri);
    let experiment = format!("autofix-test-calibrate-{}", std::process::id());
    let created = mlflow.post(
        "/api/2.0/mlflow/experiments/create",
        &json!({"name": experiment}),
    );
    let experiment_id = created["experiment_id"].as_str().unwrap().to_string();
    // 60 fixes: every one below risk 0.5 went well, every one above was reverted; plus a run
    // with no outcome yet, which must be left out.
    for i in 0..61 {
        let run = mlflow.post(
            "/api/2.0/mlflow/runs/create",
            &json!({"experiment_id": experiment_id, "start_time": 1_700_000_000_000i64 + i}),
        );
        let run_id = run["run"]["info"]["run_id"].as_str().unwrap().to_string();
        let risk = i as f64 / 60.0;
        let mut tags = vec![json!({"key": "incident", "value": format!("{i:08x}")})];
        if i < 60 {
            let outcome = if risk < 0.5 { "merged" } else { "reverted" };
            tags.push(json!({"key": "fix_outcome", "value": outcome}));
        }
        mlflow.post(
            "/api/2.0/mlflow/runs/log-batch",
            &json!({
                "run_id": run_id,
                "metrics": [{"key": "risk_score", "value": risk, "timestamp": 0, "step": 0}],
                "tags": tags,
            }),
        );
    }

    let out = autofix(&[
        "calibrate",
        "--mlflow",
        &uri,
        "--experiment",
        &experiment,
        "--json",
    ]);
    assert_success("autofix calibrate --mlflow", &out);
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        result["decisions"], 60,
        "the run without an outcome is left out"
    );
    let block_at = result["threshold"]["block_at"].as_f64().unwrap();
    // Every fix below 0.5 was safe; the cut just above the first unsafe one (0.5) still keeps
    // 30 of 31 fixes below it safe (96.8% >= 95%), and the next cut would not.
    assert!(
        (31.0 / 60.0 - block_at).abs() < 1e-9,
        "block_at {block_at}, expected 31/60"
    );

    let calibration = mlflow
        .search(&experiment_id, "tags.\"autofix.calibration\" = 'true'")
        .pop()
        .expect("the calibration is logged as a run");
    assert_eq!(metric(&calibration, "decisions"), Some(60.0));
    assert_eq!(metric(&calibration, "block_at"), Some(block_at));
    let (_, files) = mlflow.artifacts(&calibration);
    for file in ["calibration.svg", "calibration.json"] {
        assert!(
            files.iter().any(|f| f.ends_with(file)),
            "{file} in {files:?}"
        );
    }
}
