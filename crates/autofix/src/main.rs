//! `autofix`: turn Kubernetes alerts into reviewed GitOps pull requests.
//!
//! `main` sets up tracing and parses the command line; `try_main` reads top to bottom: config,
//! seams (snapshot, rules, local forge), then the pipeline. Exit codes: 0 success (any action),
//! 2 bad input, 1 internal error (and, for `eval`, a failing scenario).

mod bench;
mod calibrate;
mod demo;
mod eval;
mod render;
mod validate;

use anyhow::Context;
use autofix_choose::StrategyBandit;
use autofix_cluster::{
    DryRunner, EvidenceSource, LiveOptions, LiveSource, SnapshotSource, write_snapshot,
};
use autofix_core::Incident;
use autofix_core::alert::WebhookPayload;
use autofix_diagnose::{Diagnoser, RuleDiagnoser};
use autofix_forge::LocalForge;
use autofix_llm::{ChainDiagnoser, DiagnosisMode, LlmDiagnoser};
use autofix_pipeline::{Config, Pipeline, PipelineError, Target};
use autofix_server::PipelineRunner;
use autofix_store::{Backend, Store};
use autofix_tracking::{Tracker, run_and_track};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

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
        /// Config file (its `[llm]` and `[rules]` sections).
        #[arg(long, env = "AUTOFIX_CONFIG")]
        config: Option<PathBuf>,
        /// Ask the LLM too: `[llm] mode`, or `rules-then-llm` when that says `rules`.
        #[arg(long)]
        llm: bool,
        /// Print one JSON object instead of the report.
        #[arg(long)]
        json: bool,
    },
    /// Run the whole pipeline: diagnose, fix the GitOps repo on a branch, record the PR.
    Run {
        /// Snapshot folder holding cluster/ and logs/ (and alert.json).
        #[arg(long, env = "AUTOFIX_SNAPSHOT")]
        snapshot: PathBuf,
        /// Local git work tree of the GitOps repo; its checked-out branch is the base. Without
        /// it, fixes go to the remote repositories of `[[gitops.repos]]`.
        #[arg(long, env = "AUTOFIX_GITOPS")]
        gitops: Option<PathBuf>,
        /// Data directory for clones of remote repositories and the tracking spool (overrides
        /// `server.data_dir`).
        #[arg(long, env = "AUTOFIX_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Alertmanager webhook body to handle (default: <snapshot>/alert.json).
        #[arg(long)]
        alert: Option<PathBuf>,
        /// Config file (TOML; see config/autofix.example.toml).
        #[arg(long, env = "AUTOFIX_CONFIG")]
        config: Option<PathBuf>,
        /// Track the run in this MLflow server (enables `[tracking]`).
        #[arg(long, env = "AUTOFIX_MLFLOW_URI")]
        mlflow: Option<String>,
        /// Print one JSON object instead of the report.
        #[arg(long)]
        json: bool,
    },
    /// Serve Alertmanager webhooks: durable intake, workers running the pipeline.
    Serve {
        /// Read evidence from this snapshot folder instead of the live cluster (offline mode).
        #[arg(long, env = "AUTOFIX_SNAPSHOT")]
        snapshot: Option<PathBuf>,
        /// Local git work tree of the GitOps repo; its checked-out branch is the base. Without
        /// it, fixes go to the remote repositories of `[[gitops.repos]]`.
        #[arg(long, env = "AUTOFIX_GITOPS")]
        gitops: Option<PathBuf>,
        /// Config file (TOML; see config/autofix.example.toml).
        #[arg(long, env = "AUTOFIX_CONFIG")]
        config: Option<PathBuf>,
        /// Address to listen on (overrides `server.listen`).
        #[arg(long, env = "AUTOFIX_LISTEN")]
        listen: Option<std::net::SocketAddr>,
        /// Data directory of the intake database (overrides `server.data_dir`).
        #[arg(long, env = "AUTOFIX_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Intake database shared by several replicas, `postgres://USER:PASSWORD@HOST/DB`
        /// (overrides `server.database_url`; default SQLite in the data directory).
        #[arg(long, env = "AUTOFIX_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// Track runs in this MLflow server (enables `[tracking]`).
        #[arg(long, env = "AUTOFIX_MLFLOW_URI")]
        mlflow: Option<String>,
        /// Accept webhooks without credentials: local experiments only.
        #[arg(long)]
        insecure_no_auth: bool,
    },
    /// Write a snapshot folder (scenario layout) of a pod's workload from the live cluster.
    Snapshot {
        /// Namespace of the pod.
        #[arg(long)]
        namespace: String,
        /// The pod the incident is about.
        #[arg(long)]
        pod: String,
        /// Folder to write (created).
        #[arg(long)]
        out: PathBuf,
        /// Also record Secret key names (needs `list secrets`; values are never written).
        #[arg(long)]
        secrets: bool,
    },
    /// Inspect the incidents the service has taken in.
    Incidents {
        #[command(subcommand)]
        command: IncidentsCommand,
    },
    /// Manage MLflow tracking.
    Tracking {
        #[command(subcommand)]
        command: TrackingCommand,
    },
    /// Fit the risk score to fix outcomes and suggest a block threshold (see docs/risk-model.md).
    Calibrate {
        /// CSV of decisions with columns `risk_score` and `outcome` (merged, rejected, reverted,
        /// resolved, recurred).
        #[arg(long, required_unless_present = "mlflow", conflicts_with = "mlflow")]
        csv: Option<PathBuf>,
        /// Read the decisions from this MLflow server (runs with a `fix_outcome` tag and a
        /// `risk_score` metric) and log the calibration there as a run with its plot.
        #[arg(long, env = "AUTOFIX_MLFLOW_URI")]
        mlflow: Option<String>,
        /// The MLflow experiment of the service's runs.
        #[arg(long, default_value = "kube-autofix")]
        experiment: String,
        /// Safe rate the fixes below the suggested threshold must reach.
        #[arg(long, default_value_t = 0.95)]
        target: f64,
        /// Fewest decisions to suggest a threshold from.
        #[arg(long, default_value_t = 30)]
        min_decisions: usize,
        /// The outcomes that count as safe, comma-separated (default `merged,resolved`).
        #[arg(long, value_delimiter = ',')]
        safe: Vec<String>,
        /// Write the calibration plot (SVG) here.
        #[arg(long)]
        plot: Option<PathBuf>,
        /// Print JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Score scenario folders end to end against their expected.json (see docs/evaluation.md);
    /// exit code 1 when one fails.
    Eval {
        /// Scenario folders (holding expected.json), or folders of scenario folders.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Config file (its `[llm]` and `[rules]` sections, and the pipeline settings).
        #[arg(long, env = "AUTOFIX_CONFIG")]
        config: Option<PathBuf>,
        /// Ask the LLM too: `[llm] mode`, or `rules-then-llm` when that says `rules`.
        #[arg(long)]
        llm: bool,
        /// Write the full results (every check of every scenario, the summary) to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Log the eval to this MLflow server: a run per eval, a nested run per scenario.
        #[arg(long, env = "AUTOFIX_MLFLOW_URI")]
        mlflow: Option<String>,
        /// MLflow experiment of the eval runs.
        #[arg(
            long,
            env = "AUTOFIX_EVAL_EXPERIMENT",
            default_value = "kube-autofix-eval"
        )]
        experiment: String,
        /// No progress and no table: only the summary.
        #[arg(long)]
        quiet: bool,
    },
    /// Measure speed and print it (see docs/performance.md): webhook intake, alert storms,
    /// alert-to-PR latency, YAML edits.
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
    /// Check manifest files and folders with the pipeline's schema and safety rules, as a CI
    /// linter; exit code 1 when an object breaks a rule, 2 when a file cannot be read.
    Validate {
        /// Manifest files (`*.yaml`, `*.yml`, `*.json`) and folders to walk.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Config file (its `[policy]` section: `allowed_kinds` and the limit ceilings).
        #[arg(long, env = "AUTOFIX_CONFIG")]
        config: Option<PathBuf>,
        /// Print one JSON object with every result instead of the report.
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

#[derive(Debug, Subcommand)]
enum IncidentsCommand {
    /// List incidents with their state, attempts and last error.
    List {
        /// Data directory of the intake database.
        #[arg(long, env = "AUTOFIX_DATA_DIR", default_value = "/var/lib/autofix")]
        data_dir: PathBuf,
        /// The shared intake database, when `autofix serve` uses PostgreSQL.
        #[arg(long, env = "AUTOFIX_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// Print JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum TrackingCommand {
    /// Replay runs spooled while MLflow was unreachable.
    Flush {
        /// Config file (its `[tracking]` section).
        #[arg(long, env = "AUTOFIX_CONFIG")]
        config: Option<PathBuf>,
        /// MLflow server (enables tracking).
        #[arg(long, env = "AUTOFIX_MLFLOW_URI")]
        mlflow: Option<String>,
        /// Data directory holding the spool.
        #[arg(long, env = "AUTOFIX_DATA_DIR")]
        data_dir: Option<PathBuf>,
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

/// How long the exit waits for blocking tasks still running before leaving them behind.
const BLOCKING_EXIT_WAIT: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("AUTOFIX_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let opts = Opts::parse();
    let result = match opts.command {
        // A linter run in CI, synchronous: no async runtime (and its threads) to start.
        Command::Validate {
            paths,
            config,
            json,
        } => run_validate(&paths, config.as_deref(), json),
        command => on_runtime(command),
    };
    match result {
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

/// `autofix validate`: loads the policy and lints `paths` with it.
fn run_validate(paths: &[PathBuf], config: Option<&Path>, json: bool) -> anyhow::Result<()> {
    let config = load_config(config, None)?;
    validate::run(paths, &config.policy, json)
}

/// Runs `command` on a multi-threaded async runtime.
fn on_runtime(command: Command) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let result = runtime.block_on(try_main(command));
    // Dropping the runtime would wait for every blocking task to end, and one still running now
    // belongs to a run `autofix serve` gave back to the queue at shutdown (a git fetch or push
    // held up by the remote): waiting for it would keep the process from exiting. Whatever it
    // was doing, the next run starts again from a fresh fetch.
    runtime.shutdown_timeout(BLOCKING_EXIT_WAIT);
    result
}

async fn try_main(command: Command) -> anyhow::Result<()> {
    // One rustls crypto provider (ring) for every client: kube, octocrab, reqwest, async-openai.
    autofix_cluster::install_crypto_provider();
    match command {
        Command::Diagnose {
            scenario,
            config,
            llm,
            json,
        } => {
            let mut config = load_config(config.as_deref(), None)?;
            if llm && config.llm.mode == DiagnosisMode::Rules {
                config.llm.mode = DiagnosisMode::RulesThenLlm;
            }
            let source = SnapshotSource::open(&scenario).map_err(|e| BadInput(e.into()))?;
            let incident = read_incident(&scenario.join("alert.json"))?;
            let evidence = source
                .collect(&incident)
                .await
                .map_err(|e| BadInput(e.into()))?;
            let diagnosis = diagnoser(&config)?.diagnose(&evidence).await?;
            emit(json, &diagnosis, render::diagnosis)
        }
        Command::Run {
            snapshot,
            gitops,
            data_dir,
            alert,
            config,
            mlflow,
            json,
        } => {
            let mut config = load_config(config.as_deref(), mlflow)?;
            if let Some(dir) = data_dir {
                config.server.data_dir = dir;
            }
            let incident = read_incident(&alert.unwrap_or_else(|| snapshot.join("alert.json")))?;
            let spool = match &gitops {
                Some(work_tree) => work_tree.join(".git").join("autofix"),
                None => config.server.data_dir.clone(),
            };
            let tracker = tracker(&config, &spool)?;
            let target = target(gitops.as_deref(), &config)?;
            let pipeline = offline_pipeline(&snapshot, target, config)?;
            let (result, logging) = run_and_track(&pipeline, &tracker, &incident).await;
            // A one-shot command waits for the (bounded) logging before it exits.
            if let Ok(outcome) = logging.await
                && tracker.is_enabled()
            {
                eprintln!("tracking: {outcome}");
            }
            let report = result.map_err(classify)?;
            emit(json, &report, render::run)
        }
        Command::Serve {
            snapshot,
            gitops,
            config,
            listen,
            data_dir,
            database_url,
            mlflow,
            insecure_no_auth,
        } => {
            let mut config = load_config(config.as_deref(), mlflow)?;
            if let Some(listen) = listen {
                config.server.listen = listen;
            }
            if let Some(dir) = data_dir {
                config.server.data_dir = dir;
            }
            if database_url.is_some() {
                config.server.database_url = database_url;
            }
            config.server.auth.insecure_no_auth |= insecure_no_auth;
            let tracker = tracker(&config, &config.server.data_dir)?;
            let target = target(gitops.as_deref(), &config)?;
            let mut pipeline = match snapshot {
                Some(dir) => offline_pipeline(&dir, target, config.clone())?,
                None => live_pipeline(target, config.clone()).await?,
            };
            // The service records outcomes, so it can learn which strategy's fixes work.
            pipeline.strategies = config.choose.learn.then(|| {
                Arc::new(std::sync::RwLock::new(StrategyBandit::new(
                    config.choose.min_outcomes,
                )))
            });
            if tracker.is_enabled() {
                let replay = tracker.clone();
                tokio::spawn(async move {
                    let report = replay.flush_spool().await;
                    tracing::info!("tracking spool replayed at start: {report:?}");
                });
            }
            let runner = Arc::new(PipelineRunner::new(Arc::new(pipeline), tracker));
            autofix_server::serve(config.server, runner, autofix_server::shutdown_signal())
                .await
                .context("the service stopped")?;
            Ok(())
        }
        Command::Snapshot {
            namespace,
            pod,
            out,
            secrets,
        } => {
            let client = kube::Client::try_default()
                .await
                .context("cannot reach a cluster (in-cluster config or kubeconfig)")?;
            let options = LiveOptions {
                read_secrets: secrets,
                ..LiveOptions::default()
            };
            let summary = write_snapshot(client, &namespace, &pod, &out, &options)
                .await
                .map_err(|e| BadInput(e.into()))?;
            println!(
                "Wrote {} objects and {} logs of {} to {} (secret values are never written).",
                summary.objects,
                summary.logs,
                summary.workload,
                out.display()
            );
            Ok(())
        }
        Command::Incidents {
            command:
                IncidentsCommand::List {
                    data_dir,
                    database_url,
                    json,
                },
        } => {
            let url = database_url.unwrap_or_else(|| Store::sqlite_url(&data_dir));
            let store = Store::open(&url)
                .await
                .with_context(|| match Backend::of_url(&url) {
                    Some(Backend::Postgres) => "cannot open the intake database".to_string(),
                    _ => format!("cannot open the intake database in {}", data_dir.display()),
                })?;
            let incidents = store.list_incidents().await?;
            emit(json, &incidents, |i: &Vec<_>| render::incidents(i))
        }
        Command::Tracking {
            command:
                TrackingCommand::Flush {
                    config,
                    mlflow,
                    data_dir,
                },
        } => {
            let config = load_config(config.as_deref(), mlflow)?;
            let data_dir = data_dir.unwrap_or_else(|| config.server.data_dir.clone());
            let tracker = tracker(&config, &data_dir)?;
            anyhow::ensure!(
                tracker.is_enabled(),
                "tracking is off: pass --mlflow URI or enable [tracking]"
            );
            let report = tracker.flush_spool().await;
            println!("{report:?}");
            Ok(())
        }
        Command::Calibrate {
            csv,
            mlflow,
            experiment,
            target,
            min_decisions,
            safe,
            plot,
            json,
        } => {
            let client = mlflow
                .as_deref()
                .map(|uri| {
                    autofix_tracking::MlflowClient::new(
                        uri,
                        autofix_tracking::ClientOptions::default(),
                    )
                })
                .transpose()
                .map_err(|e| BadInput(e.into()))?;
            let decisions = match (&csv, &client) {
                (Some(csv), _) => {
                    let text = std::fs::read_to_string(csv)
                        .with_context(|| format!("cannot read {}", csv.display()))
                        .map_err(BadInput)?;
                    autofix_calibrate::read_csv(&text)
                        .with_context(|| csv.display().to_string())
                        .map_err(BadInput)?
                }
                (None, Some(client)) => {
                    calibrate::decisions_from_mlflow(client, &experiment).await?
                }
                (None, None) => {
                    return Err(BadInput(anyhow::anyhow!("give --csv FILE or --mlflow URI")).into());
                }
            };
            let mut config = autofix_calibrate::CalibrationConfig {
                target_safe_rate: target,
                min_decisions,
                ..Default::default()
            };
            if !safe.is_empty() {
                config.safe_outcomes = safe
                    .iter()
                    .map(|name| name.parse())
                    .collect::<Result<_, _>>()
                    .context("--safe")
                    .map_err(BadInput)?;
            }
            config.validate().map_err(|e| BadInput(e.into()))?;
            let calibration = autofix_calibrate::calibrate(&decisions, &config);
            let svg = calibration.svg(&decisions);
            if let Some(path) = &plot {
                std::fs::write(path, &svg)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            if let Some(client) = &client {
                let url =
                    calibrate::log_calibration(client, &experiment, &calibration, &svg).await?;
                eprintln!("calibration logged to MLflow: {url}");
            }
            emit(json, &calibration, |c| c.table())
        }
        Command::Eval {
            dirs,
            config,
            llm,
            json,
            mlflow,
            experiment,
            quiet,
        } => {
            eval::run(eval::EvalArgs {
                dirs,
                config,
                llm,
                json,
                mlflow,
                experiment,
                quiet,
            })
            .await
        }
        Command::Validate {
            paths,
            config,
            json,
        } => run_validate(&paths, config.as_deref(), json),
        Command::Demo { keep, json } => demo::run(keep, json).await,
        Command::Bench { command } => bench::run(command).await,
    }
}

/// Prints `value` as pretty JSON with `--json`, else its readable report.
fn emit<T: serde::Serialize>(
    json: bool,
    value: &T,
    report: impl Fn(&T) -> String,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        print!("{}", report(value));
    }
    Ok(())
}

/// Reads the config file (defaults without one) with `AUTOFIX__*` overrides; `--mlflow` turns
/// tracking on.
fn load_config(path: Option<&Path>, mlflow: Option<String>) -> anyhow::Result<Config> {
    let mut config =
        Config::load_with_env(path, std::env::vars()).map_err(|e| BadInput(e.into()))?;
    if let Some(uri) = mlflow {
        config.tracking.enabled = true;
        config.tracking.tracking_uri = Some(uri);
    }
    Ok(config)
}

/// The MLflow tracker of the config (disabled unless `[tracking] enabled`).
fn tracker(config: &Config, data_dir: &Path) -> anyhow::Result<Tracker> {
    Tracker::new(&config.tracking, data_dir).map_err(|e| BadInput(e.into()).into())
}

/// Where fixes go: the local work tree given with `--gitops` (records in its `.git/autofix/`),
/// else the remote repositories of `[[gitops.repos]]`, cloned below `gitops.cache_dir`
/// (default `<server.data_dir>/repos`).
fn target(gitops: Option<&Path>, config: &Config) -> anyhow::Result<Target> {
    if let Some(work_tree) = gitops {
        let git_dir = autofix_gitops::git_dir(work_tree).map_err(|e| {
            BadInput(anyhow::Error::new(e).context(format!("--gitops {}", work_tree.display())))
        })?;
        return Ok(Target::local(
            work_tree,
            Arc::new(LocalForge::for_git_dir(&git_dir)),
        ));
    }
    if config.gitops.repos.is_empty() {
        return Err(BadInput(anyhow::anyhow!(
            "no GitOps repository: pass --gitops DIR (a local work tree) or configure [[gitops.repos]]"
        ))
        .into());
    }
    let cache = config
        .gitops
        .cache_dir
        .clone()
        .unwrap_or_else(|| config.server.data_dir.join("repos"));
    Target::remote(config, &cache).map_err(|e| BadInput(e.into()).into())
}

/// The service default: live read-only evidence and rules.
async fn live_pipeline(target: Target, config: Config) -> anyhow::Result<Pipeline> {
    autofix_cluster::install_crypto_provider();
    let source = LiveSource::from_default_config().await.context(
        "cannot reach a cluster (in-cluster config or kubeconfig); use --snapshot to run offline",
    )?;
    let dry_run = DryRunner::from_config(&config.dry_run)
        .await
        .context("cannot set up the server-side dry run ([dry_run])")?;
    Ok(Pipeline {
        source: Arc::new(source),
        diagnoser: diagnoser(&config)?,
        target,
        dry_run,
        strategies: None,
        config,
    })
}

/// The diagnoser of `[llm] mode`: the rules alone (no key needed), or the rules with the LLM
/// chain, whose API key is read now.
fn diagnoser(config: &Config) -> anyhow::Result<Arc<dyn Diagnoser>> {
    let rules = RuleDiagnoser::new(config.rule_config());
    if config.llm.mode == DiagnosisMode::Rules {
        return Ok(Arc::new(rules));
    }
    let key = config.llm.api_key().map_err(|e| BadInput(e.into()))?;
    let llm = LlmDiagnoser::new(config.llm.clone(), key).map_err(|e| BadInput(e.into()))?;
    Ok(Arc::new(ChainDiagnoser::new(
        rules,
        Some(llm),
        config.llm.mode,
    )))
}

/// The offline default: snapshot evidence and rules.
fn offline_pipeline(snapshot: &Path, target: Target, config: Config) -> anyhow::Result<Pipeline> {
    let source = SnapshotSource::open(snapshot).map_err(|e| BadInput(e.into()))?;
    if config.dry_run.enabled {
        tracing::warn!("[dry_run] is ignored with --snapshot: there is no cluster to ask");
    }
    Ok(Pipeline {
        source: Arc::new(source),
        diagnoser: diagnoser(&config)?,
        target,
        dry_run: None,
        strategies: None,
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
