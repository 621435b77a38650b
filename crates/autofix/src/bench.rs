//! `autofix bench`: measured speed a reviewer can rerun (see docs/performance.md).
//!
//! The benchmarks live in `autofix-bench`; this file turns the command line into their options
//! and prints a report: a table naming the machine, or JSON with `--json`. `intake` and `storm`
//! start this very binary as `autofix serve`, so they measure what users run.

use anyhow::Context;
use autofix_bench::intake::IntakeOptions;
use autofix_bench::pr::PrOptions;
use autofix_bench::storm::StormOptions;
use autofix_bench::yaml::YamlOptions;
use clap::Subcommand;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Alertmanager deliveries per second into `autofix serve` (durable store), latency and
    /// the server's memory.
    Intake {
        /// Requests in flight at once, one keep-alive connection each.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// How long the load lasts (`10s`, `1m`).
        #[arg(long, default_value = "10s", value_parser = autofix_bench::parse_duration)]
        duration: Duration,
        /// Alerts per delivery.
        #[arg(long, default_value_t = 1)]
        batch: usize,
        /// Percentage of deliveries carrying new alerts; the rest are re-deliveries.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u8).range(0..=100))]
        distinct: u8,
        /// Deployments the alerts are spread over (one incident each).
        #[arg(long, default_value_t = 100)]
        workloads: u64,
        /// Measure the PostgreSQL store at this URL instead of SQLite (the database must exist;
        /// use a scratch one).
        #[arg(long, env = "AUTOFIX_BENCH_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// Print JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// An alert storm for one workload: incidents made (must be 1), alerts recorded, duplicates,
    /// time until the workers have drained the queue.
    Storm {
        /// Webhook deliveries in the storm.
        #[arg(long, default_value_t = 1000)]
        deliveries: usize,
        /// Requests in flight at once.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Distinct alert notifications among the deliveries; the rest repeat them.
        #[arg(long, default_value_t = 10)]
        distinct: usize,
        /// Print JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Alert to pull request without an LLM: the real pipeline, a bare git remote on disk and
    /// a fake GitHub; total and per stage.
    Pr {
        /// Measured runs, after one warm-up run.
        #[arg(long, default_value_t = 30)]
        runs: usize,
        /// Print JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Lossless YAML edits through the remedy API on one large multi-document file.
    Yaml {
        /// Deployments in the generated file.
        #[arg(long, default_value_t = 1000)]
        documents: usize,
        /// Deployments edited, one value each (default: all of them).
        #[arg(long)]
        edits: Option<usize>,
        /// Print JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Intake {
            concurrency,
            duration,
            batch,
            distinct,
            workloads,
            database_url,
            json,
        } => {
            let options = IntakeOptions {
                exe: this_binary()?,
                concurrency,
                duration,
                batch,
                distinct_percent: distinct,
                workloads,
                database_url,
            };
            let report = autofix_bench::intake::run(&options).await?;
            crate::emit(json, &report, |r| r.table())
        }
        BenchCommand::Storm {
            deliveries,
            concurrency,
            distinct,
            json,
        } => {
            let options = StormOptions {
                exe: this_binary()?,
                deliveries,
                concurrency,
                distinct,
                ..StormOptions::default()
            };
            let report = autofix_bench::storm::run(&options).await?;
            crate::emit(json, &report, |r| r.table())
        }
        BenchCommand::Pr { runs, json } => {
            let report = autofix_bench::pr::run(&PrOptions { runs }).await?;
            crate::emit(json, &report, |r| r.table())
        }
        BenchCommand::Yaml {
            documents,
            edits,
            json,
        } => {
            let options = YamlOptions {
                documents,
                edits: edits.unwrap_or(documents),
            };
            let report = autofix_bench::yaml::run(&options)?;
            crate::emit(json, &report, |r| r.table())
        }
    }
}

/// This `autofix` binary, which `intake` and `storm` start as `autofix serve`.
fn this_binary() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("cannot locate the autofix binary to start `autofix serve`")
}
