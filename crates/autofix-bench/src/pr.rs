//! `autofix bench pr`: alert to pull request, with no LLM, through the real pipeline.
//!
//! The example incident runs through [`Pipeline::run`] with the remote target: a bare git
//! repository on disk is the GitOps remote (mirrored in a cache folder, then fetched, branched,
//! pushed), and the stateful fake GitHub of `autofix-testkit` takes the pull request over real
//! HTTP (the real octocrab client). One run warms the mirror; then every measured run opens a
//! new pull request: before it, the previous one is merged on the fake GitHub and its branch
//! deleted from the remote, as after a reviewer's merge.

use crate::fixture::{Fixture, bare_remote};
use crate::stats::{Percentiles, ms};
use crate::table::{Table, n1, verdict};
use crate::{BenchError, Machine};
use autofix_cluster::SnapshotSource;
use autofix_core::Incident;
use autofix_core::alert::WebhookPayload;
use autofix_diagnose::RuleDiagnoser;
use autofix_pipeline::{Config, Pipeline, RunReport, Target};
use autofix_testkit::FakeGithub;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// Goal of the issue: median alert-to-PR latency without an LLM, ms.
pub const GOAL_P50_MS: f64 = 250.0;

/// The stages of a run, in order (the keys of `stage_ms`).
pub const STAGES: [&str; 5] = ["evidence", "diagnose", "remedy", "validate", "publish"];

const OWNER: &str = "acme";
const REPO: &str = "gitops";
const GITHUB_TOKEN: &str = "ghp_bench_fake_token";

/// How many runs.
#[derive(Debug, Clone)]
pub struct PrOptions {
    /// Measured runs (after one warm-up run).
    pub runs: usize,
}

impl Default for PrOptions {
    fn default() -> Self {
        PrOptions { runs: 30 }
    }
}

/// What the runs took.
#[derive(Debug, Clone, Serialize)]
pub struct PrReport {
    /// Where it ran.
    pub machine: Machine,
    /// The scenario's workload.
    pub workload: String,
    /// Measured runs.
    pub runs: usize,
    /// Runs that opened a new pull request (all of them, when nothing is wrong).
    pub prs_created: usize,
    /// The warm-up run (cloning the remote into the empty cache), ms.
    pub cold_ms: f64,
    /// Whole runs, wall clock.
    pub total: Percentiles,
    /// Each stage, from the run report's `stage_ms`.
    pub stages: BTreeMap<String, Percentiles>,
}

impl PrReport {
    /// The printed table.
    pub fn table(&self) -> String {
        let mut t = Table::new(
            "autofix bench pr: alert -> pull request (rules, bare git remote, fake GitHub)",
            &self.machine,
        );
        t.row(
            "runs",
            format!(
                "{} on {} ({} new PRs)",
                self.runs, self.workload, self.prs_created
            ),
        )
        .row("cold run: clone + PR (ms)", n1(self.cold_ms))
        .goal(
            "total p50 (ms)",
            n1(self.total.p50_ms),
            &format!(
                "< {GOAL_P50_MS} ({})",
                verdict(self.total.p50_ms < GOAL_P50_MS)
            ),
        )
        .row("total p99 (ms)", n1(self.total.p99_ms));
        for stage in STAGES {
            if let Some(p) = self.stages.get(stage) {
                t.row(
                    &format!("  {stage} p50 / p99 (ms)"),
                    format!("{} / {}", n1(p.p50_ms), n1(p.p99_ms)),
                );
            }
        }
        t.render()
    }
}

/// Runs the pull request benchmark.
pub async fn run(options: &PrOptions) -> Result<PrReport, BenchError> {
    if options.runs == 0 {
        return Err(BenchError::Option("--runs must be at least 1".into()));
    }
    let machine = Machine::detect();
    let fixture = Fixture::new(None)?;
    let remote = fixture.path("gitops.git");
    bare_remote(&fixture.repo, &remote)?;
    let github = FakeGithub::start(Some(GITHUB_TOKEN)).await?;
    github.add_repo(OWNER, REPO);
    let incident = incident(&fixture.alert()?)?;
    let pipeline = pipeline(&fixture, &remote, github.url(), &incident)?;

    let started = Instant::now();
    let warm = run_once(&pipeline, &incident).await?;
    let cold_ms = ms(started.elapsed());
    let mut last = warm;
    let mut totals = Vec::with_capacity(options.runs);
    let mut stages: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut prs_created = 0;
    for _ in 0..options.runs {
        merged_by_a_reviewer(&github, &remote, &last)?;
        let started = Instant::now();
        let report = run_once(&pipeline, &incident).await?;
        totals.push(started.elapsed());
        for (stage, ms) in &report.stage_ms {
            stages.entry(stage.clone()).or_default().push(*ms);
        }
        if report.pr.as_ref().is_some_and(|pr| pr.created) {
            prs_created += 1;
        }
        last = report;
    }
    Ok(PrReport {
        machine,
        workload: format!("{}/{}", last.workload.namespace, last.workload.name),
        runs: options.runs,
        prs_created,
        cold_ms,
        total: Percentiles::of(&mut totals),
        stages: stages
            .into_iter()
            .map(|(stage, values)| (stage, Percentiles::of_ms(&values)))
            .collect(),
    })
}

/// The scenario's incident.
fn incident(alert: &[u8]) -> Result<Incident, BenchError> {
    let payload =
        WebhookPayload::from_json(alert).map_err(|e| BenchError::Pipeline(e.to_string()))?;
    Incident::from_payload(&payload).map_err(|e| BenchError::Pipeline(e.to_string()))
}

/// The production pipeline over the snapshot, with the rules and the remote target configured
/// the way a user's config file does it.
fn pipeline(
    fixture: &Fixture,
    remote: &Path,
    github_url: &str,
    incident: &Incident,
) -> Result<Pipeline, BenchError> {
    let token = fixture.path("github-token");
    std::fs::write(&token, format!("{GITHUB_TOKEN}\n")).map_err(BenchError::io(&token))?;
    let text = format!(
        "[github]\napi_url = {github_url:?}\ntoken_file = {token:?}\n\n\
         [[gitops.repos]]\nnamespaces = [{namespace:?}]\nurl = {remote:?}\nbase = \"main\"\n\
         github_repo = \"{OWNER}/{REPO}\"\n",
        namespace = incident.namespace,
    );
    let config =
        Config::parse(&text, "bench.toml").map_err(|e| BenchError::Pipeline(e.to_string()))?;
    let target = Target::remote(&config, &fixture.path("cache"))
        .map_err(|e| BenchError::Pipeline(e.to_string()))?;
    let source =
        SnapshotSource::open(&fixture.scenario).map_err(|e| BenchError::Pipeline(e.to_string()))?;
    Ok(Pipeline {
        source: Arc::new(source),
        diagnoser: Arc::new(RuleDiagnoser::new(config.rule_config())),
        target,
        dry_run: None,
        strategies: None,
        config,
    })
}

/// One run, which must open or update a pull request.
async fn run_once(pipeline: &Pipeline, incident: &Incident) -> Result<RunReport, BenchError> {
    let report = pipeline
        .run(incident)
        .await
        .map_err(|e| BenchError::Pipeline(e.to_string()))?;
    if report.pr.is_none() {
        return Err(BenchError::Pipeline(format!(
            "the run opened no pull request (action {:?}: {})",
            report.action,
            report
                .escalation_reason
                .as_deref()
                .or(report.note.as_deref())
                .unwrap_or("no reason given")
        )));
    }
    Ok(report)
}

/// What a reviewer's merge leaves: the pull request merged, its branch deleted from the remote.
/// The next run of the incident then opens a new branch and a new pull request.
fn merged_by_a_reviewer(
    github: &FakeGithub,
    remote: &Path,
    report: &RunReport,
) -> Result<(), BenchError> {
    if let Some(pr) = &report.pr {
        github.merge_pull(OWNER, REPO, pr.number);
    }
    if let Some(branch) = &report.branch {
        let repo = git2::Repository::open_bare(remote)?;
        repo.find_branch(branch, git2::BranchType::Local)?
            .delete()?;
    }
    Ok(())
}
