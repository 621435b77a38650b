//! `autofix eval`: scenario folders through the pipeline, scored against their `expected.json`,
//! printed as a table and a summary, optionally written as JSON and logged to MLflow. Exit code
//! 1 when a scenario fails, so CI can gate on it (see docs/evaluation.md).

use crate::{BadInput, diagnoser, load_config, render};
use anyhow::Context;
use autofix_eval::{EvalReport, discover, log_eval, score};
use autofix_llm::DiagnosisMode;
use autofix_tracking::{ClientOptions, MlflowClient};
use std::path::PathBuf;

/// What `autofix eval` was asked.
pub struct EvalArgs {
    /// Scenario folders, or folders of them.
    pub dirs: Vec<PathBuf>,
    /// Config file.
    pub config: Option<PathBuf>,
    /// Ask the LLM too.
    pub llm: bool,
    /// Where to write the results as JSON.
    pub json: Option<PathBuf>,
    /// MLflow tracking server.
    pub mlflow: Option<String>,
    /// MLflow experiment.
    pub experiment: String,
    /// Only the summary.
    pub quiet: bool,
}

/// Runs the eval: discover, score each scenario, report, log; errors when a scenario fails.
pub async fn run(args: EvalArgs) -> anyhow::Result<()> {
    let mut config = load_config(args.config.as_deref(), None)?;
    if args.llm && config.llm.mode == DiagnosisMode::Rules {
        config.llm.mode = DiagnosisMode::RulesThenLlm;
    }
    let scenarios = discover(&args.dirs).map_err(|e| BadInput(e.into()))?;
    let diagnoser = diagnoser(&config)?;
    let mlflow = args
        .mlflow
        .as_deref()
        .map(|uri| MlflowClient::new(uri, ClientOptions::default()))
        .transpose()
        .map_err(|e| BadInput(anyhow::Error::new(e).context("--mlflow")))?;

    let mut scores = Vec::new();
    for (i, scenario) in scenarios.iter().enumerate() {
        let s = score(scenario, diagnoser.clone(), &config)
            .await
            .with_context(|| format!("scenario {}", scenario.dir.display()))?;
        if !args.quiet {
            let result = if s.passed {
                "ok".to_string()
            } else {
                let failed: Vec<&str> = s.failures().map(|c| c.name.as_str()).collect();
                format!("FAIL ({})", failed.join(", "))
            };
            eprintln!(
                "[{}/{}] {} ... {result}",
                i + 1,
                scenarios.len(),
                s.scenario
            );
        }
        scores.push(s);
    }

    let mode = serde_json::to_value(config.llm.mode)?
        .as_str()
        .unwrap_or("rules")
        .to_string();
    let model = (config.llm.mode != DiagnosisMode::Rules).then(|| config.llm.model.clone());
    let report = EvalReport::new(mode, model, env!("CARGO_PKG_VERSION"), scores);
    let table = render::eval_table(&report);
    if !args.quiet {
        print!("{table}");
    }
    print!("{}", render::eval_summary(&report));
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(client) = &mlflow {
        let logged = log_eval(client, &args.experiment, &report, &table)
            .await
            .context("cannot log the eval to MLflow")?;
        eprintln!("mlflow: {}", logged.url);
    }
    anyhow::ensure!(
        report.passed(),
        "{} of {} scenarios failed: {}",
        report.summary.scenarios - report.summary.scenarios_passed,
        report.summary.scenarios,
        report
            .scenarios
            .iter()
            .filter(|s| !s.passed)
            .map(|s| s.scenario.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}
