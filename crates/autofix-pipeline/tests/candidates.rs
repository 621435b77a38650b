//! Candidate fixes through the whole pipeline (snapshot evidence, local GitOps repo, local
//! forge): where a rule's targeted fix competes with a revert to the last good rollout, both are
//! placed and judged, the documented order picks one, the PR proposes exactly that one and lists
//! both; when neither passes the safety gate, neither is proposed.

use autofix_choose::{Strategy, StrategyBandit};
use autofix_cluster::SnapshotSource;
use autofix_core::alert::WebhookPayload;
use autofix_core::{Action, Incident};
use autofix_diagnose::RuleDiagnoser;
use autofix_forge::LocalForge;
use autofix_pipeline::{Config, LearnedStrategies, Pipeline, RunReport, Target};
use autofix_testkit::git_repo_from;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// Scenarios whose rule fix has a revert to the last good revision as a competitor.
const CONTESTED: [&str; 3] = [
    "cpu-throttled-api-gateway",
    "nodeselector-typo-gpu-inference",
    "secret-name-typo-orders",
];

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/scenarios")
        .join(name)
}

async fn run(name: &str, config: Config) -> RunReport {
    run_learned(name, config, None).await
}

async fn run_learned(
    name: &str,
    config: Config,
    strategies: Option<LearnedStrategies>,
) -> RunReport {
    let temp = tempfile::tempdir().unwrap();
    let dir = scenario(name);
    let work = temp.path().join("gitops");
    git_repo_from(&dir.join("gitops"), &work);
    let payload =
        WebhookPayload::from_json(&std::fs::read(dir.join("alert.json")).unwrap()).unwrap();
    let incident = Incident::from_payload(&payload).unwrap();
    let git_dir = autofix_gitops::git_dir(&work).unwrap();
    let pipeline = Pipeline {
        source: Arc::new(SnapshotSource::open(&dir).unwrap()),
        diagnoser: Arc::new(RuleDiagnoser::new(config.rule_config())),
        target: Target::local(work, Arc::new(LocalForge::for_git_dir(&git_dir))),
        dry_run: None,
        strategies,
        config,
    };
    pipeline.run(&incident).await.unwrap()
}

#[tokio::test]
async fn the_lowest_risk_candidate_that_passes_is_proposed_and_both_are_listed() {
    for name in CONTESTED {
        let report = run(name, Config::default()).await;
        assert_eq!(report.action, Action::Pr, "{name}");
        let candidates = report.candidates.as_ref().expect("two candidates weighed");
        let strategies: Vec<&str> = candidates
            .considered
            .iter()
            .map(|c| c.strategy.as_str())
            .collect();
        assert_eq!(strategies, ["rule", "revert-to-last-good"], "{name}");
        let chosen = candidates
            .considered
            .iter()
            .find(|c| Some(&c.id) == candidates.chosen.as_ref())
            .expect("one is chosen");
        assert!(chosen.passed);
        // Safety first: no passing candidate has a lower risk than the chosen one.
        for other in candidates.considered.iter().filter(|c| c.passed) {
            assert!(chosen.risk <= other.risk + 1e-9, "{name}: {candidates:#?}");
        }
        // The proposed fix is the chosen candidate, and the PR explains the choice.
        assert_eq!(report.strategy.as_deref(), Some(chosen.summary.as_str()));
        let body = &report.pr.as_ref().unwrap().body;
        assert!(body.contains("### Candidates considered"), "{body}");
        for c in &candidates.considered {
            assert!(body.contains(&c.summary), "{name}: {} missing", c.summary);
        }
    }
}

#[tokio::test]
async fn no_candidate_above_the_block_threshold_is_proposed() {
    let mut config = Config::default();
    config.risk.review_at = 0.1;
    config.risk.block_at = 0.2;
    let report = run("cpu-throttled-api-gateway", config).await;
    let candidates = report.candidates.as_ref().unwrap();
    assert!(candidates.chosen.is_none(), "{candidates:#?}");
    assert!(candidates.considered.iter().all(|c| !c.passed));
    assert!(
        candidates
            .considered
            .iter()
            .all(|c| c.verdict.contains("block threshold")),
        "{candidates:#?}"
    );
    assert_eq!(report.action, Action::Escalate);
    assert!(report.pr.is_none() && report.branch.is_none());
}

#[tokio::test]
async fn a_single_candidate_is_proposed_without_a_table() {
    let report = run("oom-statefulset-search-cache", Config::default()).await;
    assert_eq!(report.action, Action::Pr);
    assert!(report.candidates.is_none());
    let body = &report.pr.as_ref().unwrap().body;
    assert!(!body.contains("Candidates considered"));
}

/// Outcomes where reverts of throttled workloads worked and limit raises did not.
fn reverts_work(min_outcomes: u32) -> LearnedStrategies {
    let mut bandit = StrategyBandit::new(min_outcomes);
    for _ in 0..30 {
        bandit.record("cpu_throttled", Strategy::RevertToLastGood, true);
        bandit.record("cpu_throttled", Strategy::Rule, false);
    }
    Arc::new(RwLock::new(bandit))
}

#[tokio::test]
async fn learned_outcomes_choose_the_strategy_that_works_among_those_that_pass() {
    let report = run_learned(
        "cpu-throttled-api-gateway",
        Config::default(),
        Some(reverts_work(20)),
    )
    .await;
    let candidates = report.candidates.as_ref().unwrap();
    assert_eq!(candidates.learned.as_deref(), Some("revert-to-last-good"));
    assert_eq!(report.source.as_deref(), Some("revert-to-last-good"));
    assert!(
        report
            .strategy
            .as_deref()
            .unwrap()
            .starts_with("revert to revision")
    );
    assert!(!candidates.arms.is_empty());
    // Too few outcomes for the category: the rank order decides, as without learning.
    let cold = run_learned(
        "cpu-throttled-api-gateway",
        Config::default(),
        Some(reverts_work(1000)),
    )
    .await;
    assert_eq!(cold.candidates.as_ref().unwrap().learned, None);
    assert_eq!(cold.source.as_deref(), Some("rule"));
}

#[tokio::test]
async fn learning_never_overrides_the_safety_gate() {
    // The revert learned to work reaches the block threshold here; the rule does not.
    let mut config = Config::default();
    config.risk.review_at = 0.3;
    config.risk.block_at = 0.35;
    let report = run_learned("cpu-throttled-api-gateway", config, Some(reverts_work(20))).await;
    let candidates = report.candidates.as_ref().unwrap();
    let revert = candidates
        .considered
        .iter()
        .find(|c| c.strategy == "revert-to-last-good")
        .unwrap();
    assert!(!revert.passed, "{candidates:#?}");
    assert_eq!(report.source.as_deref(), Some("rule"));
    assert_eq!(report.action, Action::Pr);
}
