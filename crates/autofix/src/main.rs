//! `autofix`: turn Kubernetes alerts into reviewed GitOps pull requests.
//!
//! `main` sets up tracing and parses the command line; `try_main` reads top to bottom: config,
//! seams (snapshot, rules, local forge), then the pipeline. Exit codes: 0 success (any action),
//! 2 bad input, 1 internal error.

mod demo;
mod render;

use anyhow::Context;
use autofix_cluster::{EvidenceSource, SnapshotSource};
use autofix_core::Incident;
use autofix_core::alert::WebhookPayload;
use autofix_diagnose::{Diagnoser, RuleDiagnoser};
use autofix_forge::LocalForge;
use autofix_pipeline::{Config, Pipeline, PipelineError};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// kube-autofix: Kubernetes alerts in, reviewed GitOps pull requests out.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Opts {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Diagnose a frozen incident (a scenario or snapshot folder) without changing anything.
    Diagnose {
        /// Snapshot folder holding alert.json, cluster/ and logs/.
        scenario: PathBuf,
        /// Print one JSON object instead of the report.
        #[arg(long)]
        json: bool,
    },
    /// Run the whole pipeline: diagnose, fix the GitOps repo on a branch, record the PR.
    Run {
        /// Snapshot folder holding cluster/ and logs/ (and alert.json).
        #[arg(long, env = "AUTOFIX_SNAPSHOT")]
        snapshot: PathBuf,
        /// Local git work tree of the GitOps repo; its checked-out branch is the base.
        #[arg(long, env = "AUTOFIX_GITOPS")]
        gitops: PathBuf,
        /// Alertmanager webhook body to handle (default: <snapshot>/alert.json).
        #[arg(long)]
        alert: Option<PathBuf>,
        /// Config file (TOML; see config/autofix.example.toml).
        #[arg(long, env = "AUTOFIX_CONFIG")]
        config: Option<PathBuf>,
        /// Print one JSON object instead of the report.
        #[arg(long)]
        json: bool,
    },
    /// Run the bundled example incidents end to end in a temporary folder and summarise.
    Demo {
        /// Keep the temporary folder (and print its path) instead of deleting it.
        #[arg(long)]
        keep: bool,
        /// Print one JSON array instead of the table.
        #[arg(long)]
        json: bool,
    },
}

/// An error that is the input's fault (exit code 2).
#[derive(Debug)]
struct BadInput(anyhow::Error);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&describe(&self.0))
    }
}

/// An error and its causes on one line, leaving out causes its message already quotes.
fn describe(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let message = cause.to_string();
        if !text.contains(&message) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&message);
        }
    }
    text
}

impl std::error::Error for BadInput {}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("AUTOFIX_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let opts = Opts::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(try_main(opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<BadInput>() {
            Some(bad) => {
                eprintln!("error: {bad}");
                ExitCode::from(2)
            }
            None => {
                eprintln!("error: {}", describe(&e));
                ExitCode::from(1)
            }
        },
    }
}

async fn try_main(opts: Opts) -> anyhow::Result<()> {
    match opts.command {
        Command::Diagnose { scenario, json } => {
            let source = SnapshotSource::open(&scenario).map_err(|e| BadInput(e.into()))?;
            let incident = read_incident(&scenario.join("alert.json"))?;
            let evidence = source
                .collect(&incident)
                .await
                .map_err(|e| BadInput(e.into()))?;
            let diagnosis = RuleDiagnoser::new(Config::default().rule_config())
                .diagnose(&evidence)
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&diagnosis)?);
            } else {
                print!("{}", render::diagnosis(&diagnosis));
            }
            Ok(())
        }
        Command::Run {
            snapshot,
            gitops,
            alert,
            config,
            json,
        } => {
            let config = match config {
                Some(path) => Config::load(&path).map_err(|e| BadInput(e.into()))?,
                None => Config::default(),
            };
            let incident = read_incident(&alert.unwrap_or_else(|| snapshot.join("alert.json")))?;
            let pipeline = offline_pipeline(&snapshot, &gitops, config)?;
            let report = pipeline.run(&incident).await.map_err(classify)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", render::run(&report));
            }
            Ok(())
        }
        Command::Demo { keep, json } => demo::run(keep, json).await,
    }
}

/// The offline default: snapshot evidence, rule diagnosis, records in the repo's `.git/autofix/`.
fn offline_pipeline(snapshot: &Path, gitops: &Path, config: Config) -> anyhow::Result<Pipeline> {
    let source = SnapshotSource::open(snapshot).map_err(|e| BadInput(e.into()))?;
    let git_dir = autofix_gitops::git_dir(gitops).map_err(|e| {
        BadInput(anyhow::Error::new(e).context(format!("--gitops {}", gitops.display())))
    })?;
    Ok(Pipeline {
        source: Arc::new(source),
        diagnoser: Arc::new(RuleDiagnoser::new(config.rule_config())),
        forge: Arc::new(LocalForge::for_git_dir(&git_dir)),
        gitops: gitops.to_path_buf(),
        config,
    })
}

/// Reads an Alertmanager webhook body and turns it into an incident.
fn read_incident(path: &Path) -> anyhow::Result<Incident> {
    let body = std::fs::read(path)
        .with_context(|| format!("cannot read {}", path.display()))
        .map_err(BadInput)?;
    let payload = WebhookPayload::from_json(&body)
        .with_context(|| format!("{}", path.display()))
        .map_err(BadInput)?;
    Incident::from_payload(&payload)
        .with_context(|| format!("{}", path.display()))
        .map_err(|e| BadInput(e).into())
}

/// Marks pipeline errors caused by the input as such.
fn classify(error: PipelineError) -> anyhow::Error {
    if error.is_bad_input() {
        BadInput(error.into()).into()
    } else {
        error.into()
    }
}
