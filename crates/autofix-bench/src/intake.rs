//! `autofix bench intake`: how many alerts per second the real `autofix serve` takes in durably.
//!
//! The server is the `autofix` binary itself, started as `autofix serve` (SQLite with
//! `synchronous = FULL` in a temporary data directory, or `--database-url`), with one worker
//! (the least the config allows) over the example snapshot. The alerts name Deployments the
//! snapshot does not hold, so a run of their incident stops at the evidence stage and parks it;
//! the worker's runs are counted and reported because they share the store's one writer. A load
//! generator in this process keeps `concurrency` keep-alive connections busy for `duration`.

use crate::alerts::{body, crash_looping};
use crate::fixture::{Fixture, ServeProcess, TOKEN};
use crate::machine::{Memory, cpu_seconds_of};
use crate::stats::Percentiles;
use crate::table::{Table, n1, rate, verdict};
use crate::{BenchError, Machine};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Goal of the issue: alerts per second on 2 cores with the durable store.
pub const GOAL_ALERTS_PER_SEC: f64 = 20_000.0;

/// Goal of the issue: resident memory of an idle server, MiB.
pub const GOAL_IDLE_RSS_MIB: f64 = 25.0;

/// The server's count of SQLite transactions that recorded deliveries.
const COMMITS: &str = "autofix_store_group_commits_total";

/// How the load is made.
#[derive(Debug, Clone)]
pub struct IntakeOptions {
    /// The `autofix` binary to start as `autofix serve`.
    pub exe: PathBuf,
    /// Requests in flight at once (one keep-alive connection each).
    pub concurrency: usize,
    /// How long the load lasts.
    pub duration: Duration,
    /// Alerts per delivery (Alertmanager groups several in one body).
    pub batch: usize,
    /// Percentage of deliveries carrying new alerts; the rest re-deliver an earlier body.
    pub distinct_percent: u8,
    /// Deployments the alerts are spread over (one incident each).
    pub workloads: u64,
    /// PostgreSQL instead of SQLite.
    pub database_url: Option<String>,
}

impl Default for IntakeOptions {
    fn default() -> Self {
        IntakeOptions {
            exe: PathBuf::from("autofix"),
            concurrency: 64,
            duration: Duration::from_secs(10),
            batch: 1,
            distinct_percent: 100,
            workloads: 100,
            database_url: None,
        }
    }
}

/// What the intake benchmark measured.
#[derive(Debug, Clone, Serialize)]
pub struct IntakeReport {
    /// Where it ran.
    pub machine: Machine,
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Alerts per delivery.
    pub batch: usize,
    /// Percentage of deliveries with new alerts.
    pub distinct_percent: u8,
    /// Deployments the alerts were spread over.
    pub workloads: u64,
    /// How long the load lasted, seconds.
    pub duration_secs: f64,
    /// Deliveries answered 200.
    pub deliveries_ok: u64,
    /// Alerts in those deliveries.
    pub alerts_ok: u64,
    /// Of which new (recorded), by the server's answers.
    pub alerts_new: u64,
    /// Of which re-deliveries (recognised, nothing written).
    pub alerts_duplicate: u64,
    /// Sustained deliveries per second (200s only).
    pub deliveries_per_sec: f64,
    /// Sustained alerts per second (200s only).
    pub alerts_per_sec: f64,
    /// Latency of every request, ms.
    pub latency: Percentiles,
    /// Non-200 answers by status code, and `transport` for failed requests.
    pub errors: BTreeMap<String, u64>,
    /// Pipeline runs the worker made during the load (each one claim and one park).
    pub worker_runs: f64,
    /// SQLite transactions that recorded the deliveries (group commit; 0 on PostgreSQL).
    pub commits: f64,
    /// The server's memory after start, before any load.
    pub idle: Memory,
    /// The server's memory after the load (`hwm_mib` is the peak).
    pub loaded: Memory,
    /// The server process id (its memory is its own, not the load generator's).
    pub server_pid: u32,
    /// CPU time the server used during the load, seconds (user + system, all threads).
    pub server_cpu_secs: f64,
    /// CPU time the load generator (this process) used meanwhile: the machine's cores are
    /// shared between the two.
    pub generator_cpu_secs: f64,
}

impl IntakeReport {
    /// The printed table.
    pub fn table(&self) -> String {
        let mut t = Table::new(
            "autofix bench intake: Alertmanager deliveries into `autofix serve`",
            &self.machine,
        );
        t.row("store", self.backend_line())
            .row(
                "load",
                format!(
                    "{} connections, {:.1}s, {} alert(s)/delivery, {}% new, {} workloads",
                    self.concurrency,
                    self.duration_secs,
                    self.batch,
                    self.distinct_percent,
                    self.workloads
                ),
            )
            .goal(
                "alerts/s",
                rate(self.alerts_per_sec),
                &format!(
                    ">= {} ({})",
                    rate(GOAL_ALERTS_PER_SEC),
                    verdict(self.alerts_per_sec >= GOAL_ALERTS_PER_SEC)
                ),
            )
            .row("deliveries/s", rate(self.deliveries_per_sec))
            .row(
                "alerts new / re-delivered",
                format!("{} / {}", self.alerts_new, self.alerts_duplicate),
            )
            .row("latency p50 (ms)", n1(self.latency.p50_ms))
            .row("latency p99 (ms)", n1(self.latency.p99_ms))
            .row("latency max (ms)", n1(self.latency.max_ms))
            .row("errors", self.errors_line())
            .row("CPU during load (cores)", self.cpu_line())
            .row(
                "alerts per server CPU-second",
                rate(self.alerts_ok as f64 / self.server_cpu_secs.max(f64::EPSILON)),
            )
            .row("worker runs during load", self.worker_runs)
            .row("store commits", self.commits_line())
            .goal(
                "server RSS idle (MiB)",
                n1(self.idle.rss_mib),
                &format!(
                    "< {} ({})",
                    GOAL_IDLE_RSS_MIB,
                    verdict(self.idle.rss_mib < GOAL_IDLE_RSS_MIB)
                ),
            )
            .row("server RSS peak (MiB)", n1(self.loaded.hwm_mib))
            .row("server RSS after load (MiB)", n1(self.loaded.rss_mib));
        t.render()
    }

    fn backend_line(&self) -> String {
        match self.backend {
            "sqlite" => "SQLite, WAL, synchronous = FULL (autofix serve, own process)".into(),
            other => format!("{other} (autofix serve, own process)"),
        }
    }

    fn commits_line(&self) -> String {
        if self.commits == 0.0 {
            return "one per delivery (no group commit on this backend)".into();
        }
        let delivered = self.deliveries_ok as f64 + self.errors.values().sum::<u64>() as f64;
        format!(
            "{} ({:.1} deliveries per commit)",
            self.commits,
            delivered / self.commits
        )
    }

    fn cpu_line(&self) -> String {
        format!(
            "server {:.2}, load generator {:.2}, of {}",
            self.server_cpu_secs / self.duration_secs,
            self.generator_cpu_secs / self.duration_secs,
            self.machine.nproc
        )
    }

    fn errors_line(&self) -> String {
        if self.errors.is_empty() {
            return "none".into();
        }
        self.errors
            .iter()
            .map(|(status, n)| format!("{status}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What one load task saw.
#[derive(Default)]
struct TaskResult {
    latencies: Vec<Duration>,
    deliveries_ok: u64,
    alerts_ok: u64,
    alerts_new: u64,
    alerts_duplicate: u64,
    errors: BTreeMap<String, u64>,
}

/// Runs the intake benchmark.
pub async fn run(options: &IntakeOptions) -> Result<IntakeReport, BenchError> {
    if options.concurrency == 0 || options.batch == 0 || options.distinct_percent > 100 {
        return Err(BenchError::Option(
            "--concurrency and --batch must be at least 1, --distinct at most 100".into(),
        ));
    }
    let machine = Machine::detect();
    let fixture = Fixture::new(None)?;
    let config = fixture.serve_config("workers = 1")?;
    let mut server = ServeProcess::start(
        &options.exe,
        &fixture,
        &config,
        options.database_url.as_deref(),
    )
    .await?;
    let idle = server.memory();
    let runs_before = server.metric("autofix_runs_total").await?;
    let commits_before = server.metric(COMMITS).await?;

    let url: Arc<str> = format!("{}/webhooks/alertmanager", server.base).into();
    let next_id = Arc::new(AtomicU64::new(0));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(options.concurrency)
        .build()
        .map_err(|source| BenchError::Http {
            url: url.to_string(),
            source,
        })?;
    let cpu = || {
        let server = cpu_seconds_of(server.pid()).unwrap_or_default();
        let generator = cpu_seconds_of(std::process::id()).unwrap_or_default();
        (server, generator)
    };
    let cpu_before = cpu();
    let started = Instant::now();
    let deadline = started + options.duration;
    let tasks: Vec<_> = (0..options.concurrency)
        .map(|_| {
            let (client, url, next_id) = (client.clone(), url.clone(), next_id.clone());
            let options = options.clone();
            tokio::spawn(async move { load(client, &url, &next_id, &options, deadline).await })
        })
        .collect();
    let mut total = TaskResult::default();
    for task in tasks {
        let result = task.await.map_err(|e| BenchError::Serve {
            reason: format!("a load task failed: {e}"),
            log: server.log.clone(),
        })?;
        total.latencies.extend(result.latencies);
        total.deliveries_ok += result.deliveries_ok;
        total.alerts_ok += result.alerts_ok;
        total.alerts_new += result.alerts_new;
        total.alerts_duplicate += result.alerts_duplicate;
        for (status, n) in result.errors {
            *total.errors.entry(status).or_default() += n;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_after = cpu();
    server.check_running()?;
    let loaded = server.memory();
    let worker_runs = server.metric("autofix_runs_total").await? - runs_before;
    let commits = server.metric(COMMITS).await? - commits_before;
    Ok(IntakeReport {
        machine,
        backend: if options.database_url.is_some() {
            "postgres"
        } else {
            "sqlite"
        },
        concurrency: options.concurrency,
        batch: options.batch,
        distinct_percent: options.distinct_percent,
        workloads: options.workloads,
        duration_secs: elapsed,
        deliveries_ok: total.deliveries_ok,
        alerts_ok: total.alerts_ok,
        alerts_new: total.alerts_new,
        alerts_duplicate: total.alerts_duplicate,
        deliveries_per_sec: total.deliveries_ok as f64 / elapsed,
        alerts_per_sec: total.alerts_ok as f64 / elapsed,
        latency: Percentiles::of(&mut total.latencies),
        errors: total.errors,
        worker_runs,
        commits,
        idle,
        loaded,
        server_pid: server.pid(),
        server_cpu_secs: cpu_after.0 - cpu_before.0,
        generator_cpu_secs: cpu_after.1 - cpu_before.1,
    })
}

/// One connection's loop until `deadline`: a delivery of new alerts, or (for the share of
/// re-deliveries) the last new body this task sent, again.
async fn load(
    client: reqwest::Client,
    url: &str,
    next_id: &AtomicU64,
    options: &IntakeOptions,
    deadline: Instant,
) -> TaskResult {
    let mut result = TaskResult::default();
    let mut last: Option<Vec<u8>> = None;
    let mut sent: u64 = 0;
    while Instant::now() < deadline {
        // Spread the re-deliveries evenly: delivery n is new when the count of new ones due by
        // then, n × percent / 100, goes up.
        let percent = u64::from(options.distinct_percent);
        let redeliver = (sent + 1) * percent / 100 == sent * percent / 100;
        sent += 1;
        let payload = match (&last, redeliver) {
            (Some(previous), true) => previous.clone(),
            _ => {
                let first = next_id.fetch_add(options.batch as u64, Ordering::Relaxed);
                let alerts: Vec<_> = (first..first + options.batch as u64)
                    .map(|id| crash_looping(id, options.workloads))
                    .collect();
                let fresh = body(&alerts);
                last = Some(fresh.clone());
                fresh
            }
        };
        let began = Instant::now();
        let response = client
            .post(url)
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(payload)
            .send()
            .await;
        let answer = match response {
            Ok(response) => {
                let status = response.status();
                let bytes = response.bytes().await;
                Ok((status, bytes))
            }
            Err(e) => Err(e),
        };
        result.latencies.push(began.elapsed());
        match answer {
            Ok((status, Ok(bytes))) if status.is_success() => {
                result.deliveries_ok += 1;
                result.alerts_ok += options.batch as u64;
                let outcome: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
                result.alerts_new += outcome["new_alerts"].as_u64().unwrap_or(0);
                result.alerts_duplicate += outcome["duplicates"].as_u64().unwrap_or(0);
            }
            Ok((status, _)) => {
                *result
                    .errors
                    .entry(status.as_u16().to_string())
                    .or_default() += 1
            }
            Err(_) => *result.errors.entry("transport".into()).or_default() += 1,
        }
    }
    result
}
