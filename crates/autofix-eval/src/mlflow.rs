//! An eval in MLflow: one parent run (params: diagnoser, model, version, scenario count; the
//! overall metrics; `results.json` and `table.txt`), and one nested run per scenario with its
//! own metrics and tags, so MLflow's compare view sets two evals (two models, two versions)
//! side by side.

use crate::{EvalError, EvalReport, ScenarioScore};
use autofix_tracking::batch::{Metric, Param, Tag};
use autofix_tracking::client::NewRun;
use autofix_tracking::{MlflowClient, RunStatus};

/// Where an eval was logged.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalRunInfo {
    /// The experiment's id.
    pub experiment_id: String,
    /// The parent run's id.
    pub run_id: String,
    /// The parent run's page in the MLflow UI.
    pub url: String,
    /// The nested runs' ids, in scenario order.
    pub scenario_run_ids: Vec<String>,
}

/// Logs an eval to `experiment` (created when missing): the parent run, a nested run per
/// scenario, and `results.json` plus `table` (as `table.txt`) as the parent's artifacts.
pub async fn log_eval(
    client: &MlflowClient,
    experiment: &str,
    report: &EvalReport,
    table: &str,
) -> Result<EvalRunInfo, EvalError> {
    let experiment_id = client
        .get_or_create_experiment(experiment)
        .await
        .map_err(EvalError::Mlflow)?;
    let model = report.model.as_deref().unwrap_or("none");
    let name = format!("eval {} {model} v{}", report.diagnoser, report.version);
    let parent = client
        .create_run(&NewRun {
            experiment_id: &experiment_id,
            run_name: &name,
            start_time: now_ms(),
            tags: vec![
                tag("mlflow.source.name", "kube-autofix eval"),
                tag("autofix.eval", "true"),
            ],
        })
        .await
        .map_err(EvalError::Mlflow)?;
    let mut scenario_run_ids = Vec::new();
    for score in &report.scenarios {
        scenario_run_ids
            .push(log_scenario(client, &experiment_id, &parent.run_id, report, score).await?);
    }

    let s = &report.summary;
    let now = now_ms();
    let mut metrics = vec![
        metric("scenarios", s.scenarios as f64, now),
        metric("scenarios_passed", s.scenarios_passed as f64, now),
        metric("accuracy", s.accuracy, now),
        metric("category_accuracy", s.category_accuracy, now),
        metric("action_accuracy", s.action_accuracy, now),
        metric("fix_checks_passed", s.fix_checks_passed as f64, now),
        metric("fix_checks_total", s.fix_checks_total as f64, now),
        metric("leaked", s.leaked as f64, now),
        metric("mean_latency_ms", s.mean_latency_ms, now),
        metric("p95_latency_ms", s.p95_latency_ms, now),
        metric("total_tokens", s.total_tokens as f64, now),
    ];
    for (category, stats) in &s.per_category {
        metrics.push(metric(
            &format!("category_accuracy.{category}"),
            stats.accuracy,
            now,
        ));
    }
    // Per-scenario results on the parent too: comparing two parents shows which scenarios moved.
    for score in &report.scenarios {
        metrics.push(metric(
            &format!("scenario.{}.passed", score.scenario),
            f64::from(u8::from(score.passed)),
            now,
        ));
    }
    let params = vec![
        param("diagnoser", &report.diagnoser),
        param("model", model),
        param("version", &report.version),
        param("scenarios", &s.scenarios.to_string()),
    ];
    client
        .log_batch(&parent.run_id, &metrics, &params, &[])
        .await
        .map_err(EvalError::Mlflow)?;
    let results = serde_json::to_string_pretty(report).map_err(EvalError::Json)?;
    for (path, content) in [("results.json", results.as_str()), ("table.txt", table)] {
        client
            .upload_artifact(&parent.artifact_uri, path, content.as_bytes().to_vec())
            .await
            .map_err(EvalError::Mlflow)?;
    }
    let status = if report.passed() {
        RunStatus::Finished
    } else {
        RunStatus::Failed
    };
    client
        .update_run(&parent.run_id, status, now_ms())
        .await
        .map_err(EvalError::Mlflow)?;
    Ok(EvalRunInfo {
        url: client.run_url(&experiment_id, &parent.run_id),
        experiment_id,
        run_id: parent.run_id,
        scenario_run_ids,
    })
}

/// The nested run of one scenario; returns its id.
async fn log_scenario(
    client: &MlflowClient,
    experiment_id: &str,
    parent: &str,
    report: &EvalReport,
    score: &ScenarioScore,
) -> Result<String, EvalError> {
    let run = client
        .create_run(&NewRun {
            experiment_id,
            run_name: &score.scenario,
            start_time: now_ms(),
            tags: vec![
                tag("mlflow.parentRunId", parent),
                tag("autofix.eval", "true"),
            ],
        })
        .await
        .map_err(EvalError::Mlflow)?;
    let now = now_ms();
    let flag = |b: bool| f64::from(u8::from(b));
    let metrics = [
        metric("passed", flag(score.passed), now),
        metric("category_correct", flag(score.category_correct()), now),
        metric("action_correct", flag(score.action_correct()), now),
        metric("fix_checks_passed", score.fix_checks_passed as f64, now),
        metric("fix_checks_total", score.fix_checks_total as f64, now),
        metric("leaked", flag(score.leaked()), now),
        metric("latency_ms", score.latency_ms, now),
        metric("tokens", score.tokens as f64, now),
    ];
    let params = [
        param("scenario", &score.scenario),
        param("expected_category", &score.expected_category),
        param("diagnoser", &report.diagnoser),
        param("model", report.model.as_deref().unwrap_or("none")),
    ];
    let failed: Vec<&str> = score.failures().map(|c| c.name.as_str()).collect();
    let tags = [
        tag("category.expected", &score.expected_category),
        tag("category.got", score.category.as_deref().unwrap_or("")),
        tag("action.expected", &score.expected_action),
        tag("action.got", score.action.as_deref().unwrap_or("")),
        tag("failed_checks", &failed.join(", ")),
    ];
    client
        .log_batch(&run.run_id, &metrics, &params, &tags)
        .await
        .map_err(EvalError::Mlflow)?;
    let status = if score.passed {
        RunStatus::Finished
    } else {
        RunStatus::Failed
    };
    client
        .update_run(&run.run_id, status, now_ms())
        .await
        .map_err(EvalError::Mlflow)?;
    Ok(run.run_id)
}

fn metric(key: &str, value: f64, timestamp: i64) -> Metric {
    Metric {
        key: key.to_string(),
        value,
        timestamp,
        step: 0,
    }
}

fn param(key: &str, value: &str) -> Param {
    Param {
        key: key.to_string(),
        value: value.to_string(),
    }
}

fn tag(key: &str, value: &str) -> Tag {
    Tag {
        key: key.to_string(),
        value: value.to_string(),
    }
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
