//! `autofix calibrate` with MLflow: the `(risk_score, fix_outcome)` pairs the service records on
//! its runs are read back, and the calibration is logged as a run of its own (metrics, the plot
//! and the JSON), so the curve sits next to the runs it was fitted from.

use anyhow::Context;
use autofix_calibrate::{Calibration, Decision, Outcome};
use autofix_tracking::batch::{Metric, Param, Tag};
use autofix_tracking::client::NewRun;
use autofix_tracking::{MlflowClient, RunStatus};

/// Every run of `experiment` with a `fix_outcome` tag and a `risk_score` metric, as decisions.
pub async fn decisions_from_mlflow(
    client: &MlflowClient,
    experiment: &str,
) -> anyhow::Result<Vec<Decision>> {
    let Some(found) = client.get_experiment_by_name(experiment).await? else {
        anyhow::bail!("MLflow has no experiment {experiment:?}");
    };
    let runs = client
        .search_runs(&[found.experiment_id.as_str()], "")
        .await
        .with_context(|| format!("cannot search the runs of {experiment:?}"))?;
    let mut decisions = Vec::new();
    for run in &runs {
        let (Some(outcome), Some(risk)) =
            (run.data.tag("fix_outcome"), run.data.metric("risk_score"))
        else {
            continue;
        };
        let outcome: Outcome = outcome
            .parse()
            .with_context(|| format!("run {}: fix_outcome", run.info.run_id))?;
        let mut decision = Decision::new(risk, outcome);
        decision.incident = run.data.tag("incident").map(str::to_string);
        decisions.push(decision);
    }
    Ok(decisions)
}

/// Logs a calibration run in `experiment`: the decisions, the threshold when there is one, the
/// plot (`calibration.svg`) and the result (`calibration.json`). Answers the run's link.
pub async fn log_calibration(
    client: &MlflowClient,
    experiment: &str,
    calibration: &Calibration,
    svg: &str,
) -> anyhow::Result<String> {
    let experiment_id = client.get_or_create_experiment(experiment).await?;
    let run = client
        .create_run(&NewRun {
            experiment_id: &experiment_id,
            run_name: "risk calibration",
            start_time: autofix_tracking::record::now_ms(),
            tags: vec![
                Tag::new("mlflow.source.name", "kube-autofix calibrate"),
                Tag::new("autofix.calibration", "true"),
            ],
        })
        .await?;
    let mut metrics = vec![Metric::now("decisions", calibration.decisions as f64)];
    if let Some(t) = &calibration.threshold {
        metrics.push(Metric::now("block_at", t.block_at));
        metrics.push(Metric::now("safe_rate_below", t.safe_rate_below));
        metrics.push(Metric::now("supporting_decisions", t.supporting as f64));
    }
    let params = [Param::new(
        "target_safe_rate",
        &calibration.target_safe_rate.to_string(),
    )];
    client
        .log_batch(&run.run_id, &metrics, &params, &[])
        .await?;
    let json = serde_json::to_string_pretty(calibration)?;
    for (path, content) in [
        ("calibration.svg", svg),
        ("calibration.json", json.as_str()),
    ] {
        client
            .upload_artifact(&run.artifact_uri, path, content.as_bytes().to_vec())
            .await?;
    }
    client
        .update_run(
            &run.run_id,
            RunStatus::Finished,
            autofix_tracking::record::now_ms(),
        )
        .await?;
    Ok(client.run_url(&experiment_id, &run.run_id))
}
