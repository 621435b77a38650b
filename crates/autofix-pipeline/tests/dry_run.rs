//! The opt-in server-side dry run through the whole pipeline: the search-cache OOM fix is sent to the
//! fake Kubernetes API server (real kube client, real socket) as a `dryRun=All` server-side apply
//! before the pull request is opened. An acceptance goes into the PR body; a Kyverno-style
//! denial becomes an escalation quoting the webhook's message, with no branch; an API server
//! that cannot answer leaves the PR as it was, saying the dry run was unavailable.

use autofix_cluster::{DryRunner, SnapshotSource};
use autofix_core::alert::WebhookPayload;
use autofix_core::{Action, Incident};
use autofix_diagnose::RuleDiagnoser;
use autofix_forge::LocalForge;
use autofix_pipeline::report::DryRunOutcome;
use autofix_pipeline::{Config, Pipeline, RunReport, Target};
use autofix_testkit::{FakeKube, git_repo_from};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const SCENARIO: &str = "oom-statefulset-search-cache";
const DENIAL: &str = "admission webhook \"validate.kyverno.svc-fail\" denied the request: \
                      resource StatefulSet/catalog/redis-cache was blocked due to the following policies \
                      require-memory-limit-ceiling: memory limits above 1Gi need an exception";

fn scenario() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/scenarios")
        .join(SCENARIO)
}

/// Runs the scenario with the dry run asked of `fake` (or of nothing listening, when `None`).
async fn run(fake: Option<&FakeKube>) -> (RunReport, Vec<String>) {
    let temp = tempfile::tempdir().unwrap();
    let dir = scenario();
    let work = temp.path().join("gitops");
    git_repo_from(&dir.join("gitops"), &work);
    let runner = match fake {
        Some(fake) => DryRunner::new(fake.client()),
        None => {
            // A port nobody listens on: the dry run cannot be made.
            let dead = FakeKube::start(&dir).await.unwrap();
            let client = dead.client();
            drop(dead);
            DryRunner::new(client).with_timeout(std::time::Duration::from_secs(2))
        }
    };
    let payload =
        WebhookPayload::from_json(&std::fs::read(dir.join("alert.json")).unwrap()).unwrap();
    let incident = Incident::from_payload(&payload).unwrap();
    let git_dir = autofix_gitops::git_dir(&work).unwrap();
    let pipeline = Pipeline {
        source: Arc::new(SnapshotSource::open(&dir).unwrap()),
        diagnoser: Arc::new(RuleDiagnoser::default()),
        target: Target::local(work.clone(), Arc::new(LocalForge::for_git_dir(&git_dir))),
        dry_run: Some(runner),
        strategies: None,
        config: Config::default(),
    };
    let report = pipeline.run(&incident).await.unwrap();
    let repo = git2::Repository::open(&work).unwrap();
    let branches = repo
        .branches(Some(git2::BranchType::Local))
        .unwrap()
        .flatten()
        .filter_map(|(b, _)| b.name().ok().flatten().map(str::to_string))
        .filter(|b| b != "main")
        .collect();
    (report, branches)
}

#[tokio::test]
async fn an_accepted_dry_run_goes_into_the_pull_request() {
    let fake = FakeKube::start(&scenario()).await.unwrap();
    fake.warn_on_dry_run(
        "StatefulSet",
        "redis-cache",
        "policy audit: memory limit raised",
    );
    let (report, branches) = run(Some(&fake)).await;
    assert_eq!(report.action, Action::Pr);
    assert_eq!(branches.len(), 1);
    let Some(DryRunOutcome::Judged(verdict)) = &report.dry_run else {
        panic!("judged: {:?}", report.dry_run);
    };
    assert!(verdict.to_string().contains("accepted"), "{verdict}");
    let body = &report.pr.as_ref().unwrap().body;
    assert!(body.contains("### Server-side dry-run"), "{body}");
    assert!(body.contains("policy audit: memory limit raised"), "{body}");

    let patches: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert_eq!(patches.len(), 1, "{patches:#?}");
    let sent: serde_json::Value = serde_json::from_slice(&patches[0].body).unwrap();
    assert_eq!(
        sent["metadata"]["namespace"], "catalog",
        "namespace filled in"
    );
    assert_eq!(
        sent["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"], "2Gi",
        "the corrected object is what the PR proposes"
    );
    assert!(sent.get("status").is_none());
    let query = patches[0].query.as_deref().unwrap_or_default();
    assert!(query.contains("dryRun=All"), "{query}");
}

#[tokio::test]
async fn a_denial_by_admission_becomes_an_escalation_with_the_message() {
    let fake = FakeKube::start(&scenario()).await.unwrap();
    fake.deny_dry_run("StatefulSet", "redis-cache", 400, DENIAL);
    let (report, branches) = run(Some(&fake)).await;
    assert_eq!(report.action, Action::Escalate);
    assert!(branches.is_empty(), "no branch: {branches:?}");
    let reason = report.escalation_reason.as_deref().unwrap();
    assert!(reason.contains("denied the corrected object"), "{reason}");
    assert!(reason.contains(DENIAL), "the message verbatim: {reason}");
    let issue = report.escalation.as_ref().expect("an escalation issue");
    assert!(
        issue.body.contains("require-memory-limit-ceiling"),
        "{}",
        issue.body
    );
    assert!(report.pr.is_none());
}

#[tokio::test]
async fn an_unreachable_api_server_leaves_the_pull_request_and_says_so() {
    let (report, branches) = run(None).await;
    assert_eq!(report.action, Action::Pr);
    assert_eq!(branches.len(), 1);
    assert!(
        matches!(report.dry_run, Some(DryRunOutcome::Unavailable { .. })),
        "{:?}",
        report.dry_run
    );
    let body = &report.pr.as_ref().unwrap().body;
    assert!(body.contains("Unavailable"), "{body}");
}
