//! The LLM engine through the whole pipeline (local GitOps repo, LocalForge), with the scripted
//! fake OpenAI server: a long-tail incident the rules cannot fix gets a PR from the model's
//! patch, and patches beyond what the rules may do are refused and escalated.

use autofix_cluster::SnapshotSource;
use autofix_core::alert::WebhookPayload;
use autofix_core::{Action, Incident};
use autofix_diagnose::RuleDiagnoser;
use autofix_forge::LocalForge;
use autofix_llm::{ChainDiagnoser, DiagnosisMode, LlmConfig, LlmDiagnoser};
use autofix_pipeline::{Config, Pipeline, RunReport, Target};
use autofix_testkit::{FakeOpenAi, Reply, git_repo_from};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The long-tail scenario: the rules answer `unknown` and escalate.
const SCENARIO: &str = "unknown-replicas-mismatch-ledger-sync";
const DEPLOYMENT: &str = "apps/finance/ledger-sync/deployment.yaml";
const CONTAINER: &str = "spec.template.spec.containers[name=ledger-sync]";

fn scenario() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/scenarios")
        .join(SCENARIO)
}

/// One pipeline run of the scenario with the fake model answering `replies` (then `default`).
struct Run {
    report: RunReport,
    repo: git2::Repository,
    git_dir: PathBuf,
    fake: FakeOpenAi,
    _temp: tempfile::TempDir,
}

async fn run(replies: Vec<Reply>, default: Option<Reply>) -> Run {
    let temp = tempfile::tempdir().unwrap();
    let dir = scenario();
    let work = temp.path().join("gitops");
    git_repo_from(&dir.join("gitops"), &work);
    let fake = FakeOpenAi::start().await.unwrap();
    fake.script(replies);
    if let Some(reply) = default {
        fake.set_default(reply);
    }
    let llm = LlmDiagnoser::new(
        LlmConfig {
            mode: DiagnosisMode::RulesThenLlm,
            base_url: fake.url(),
            model: "primary-model".into(),
            max_iterations: 1,
            max_retries: 0,
            timeout_ms: 5_000,
            ..LlmConfig::default()
        },
        "sk-test".to_string().into(),
    )
    .unwrap();
    let payload =
        WebhookPayload::from_json(&std::fs::read(dir.join("alert.json")).unwrap()).unwrap();
    let incident = Incident::from_payload(&payload).unwrap();
    let git_dir = autofix_gitops::git_dir(&work).unwrap();
    let pipeline = Pipeline {
        source: Arc::new(SnapshotSource::open(&dir).unwrap()),
        diagnoser: Arc::new(ChainDiagnoser::new(
            RuleDiagnoser::default(),
            Some(llm),
            DiagnosisMode::RulesThenLlm,
        )),
        target: Target::local(work.clone(), Arc::new(LocalForge::for_git_dir(&git_dir))),
        dry_run: None,
        strategies: None,
        config: Config::default(),
    };
    let report = tokio::time::timeout(Duration::from_secs(60), pipeline.run(&incident))
        .await
        .expect("the run ends within the global timeout")
        .unwrap();
    Run {
        report,
        repo: git2::Repository::open(&work).unwrap(),
        git_dir,
        fake,
        _temp: temp,
    }
}

fn patch(category: &str, changes: Value) -> Reply {
    Reply::Patch(json!({
        "category": category,
        "root_cause": "The kubelet stopped a ledger-sync pod during a node drain; its replacement pulled the 1.9 GB image for 16 minutes.",
        "reasoning": "Only Normal events: Killing at 02:40:10 on prod-worker-2, then a 16m26s pull on prod-worker-1.",
        "fix_summary": "longer termination grace period for drains",
        "confidence": 0.55,
        "changes": changes,
        "evidence": ["Successfully pulled image in 16m26.113s", "Killing ledger-sync on prod-worker-2"]
    }))
}

fn branches(repo: &git2::Repository) -> Vec<String> {
    repo.branches(Some(git2::BranchType::Local))
        .unwrap()
        .flatten()
        .filter_map(|(b, _)| b.name().ok().flatten().map(str::to_string))
        .collect()
}

fn at_branch(repo: &git2::Repository, branch: &str, file: &str) -> String {
    let tip = repo
        .find_branch(branch, git2::BranchType::Local)
        .unwrap()
        .get()
        .peel_to_commit()
        .unwrap();
    let entry = tip.tree().unwrap().get_path(Path::new(file)).unwrap();
    String::from_utf8_lossy(repo.find_blob(entry.id()).unwrap().content()).into_owned()
}

#[tokio::test]
async fn a_long_tail_incident_gets_a_pr_from_the_model_patch() {
    let path = "spec.template.spec.terminationGracePeriodSeconds";
    let run = run(
        vec![patch(
            "unknown",
            json!([{"path": path, "value_json": "60", "reason": "let in-flight ledger postings finish when a node is drained"}]),
        )],
        None,
    )
    .await;
    let report = &run.report;
    assert_eq!(report.action, Action::Pr, "{:?}", report.escalation_reason);
    assert_eq!(report.diagnoser, "llm/primary-model");
    assert_eq!(report.changes.len(), 1);
    assert_eq!(report.changes[0].path, path);
    assert_eq!(report.changes[0].from, json!(30));
    assert_eq!(report.changes[0].to, json!(60));
    assert_eq!(report.attempts.len(), 1);
    assert_eq!(run.fake.requests().len(), 1);

    // The branch is one commit on main, the PR is recorded, and only that line changed.
    let branch = report.branch.clone().unwrap();
    assert!(branches(&run.repo).contains(&branch));
    let commit = run
        .repo
        .find_branch(&branch, git2::BranchType::Local)
        .unwrap()
        .get()
        .peel_to_commit()
        .unwrap();
    assert_eq!(commit.parent_count(), 1);
    assert_eq!(
        report.commit.as_deref(),
        Some(commit.id().to_string().as_str())
    );
    assert!(report.pr.as_ref().is_some_and(|pr| pr.created));
    assert!(
        run.git_dir.join("autofix").exists(),
        "LocalForge keeps the PR record"
    );

    let before = std::fs::read_to_string(scenario().join("gitops").join(DEPLOYMENT)).unwrap();
    let after = at_branch(&run.repo, &branch, DEPLOYMENT);
    let diff = similar::TextDiff::from_lines(&before, &after);
    let changed: Vec<(similar::ChangeTag, String)> = diff
        .iter_all_changes()
        .filter(|c| c.tag() != similar::ChangeTag::Equal)
        .map(|c| (c.tag(), c.value().trim().to_string()))
        .collect();
    assert_eq!(
        changed,
        [(
            similar::ChangeTag::Insert,
            "terminationGracePeriodSeconds: 60".to_string()
        )]
    );
    assert_eq!(report.files_changed.len(), 1);
}

#[tokio::test]
async fn a_privileged_patch_is_refused_by_the_policy_and_escalated() {
    let run = run(
        vec![patch(
            "unknown",
            json!([{
                "path": format!("{CONTAINER}.securityContext.privileged"),
                "value_json": "true",
                "reason": "pre-pull the image from the host"
            }]),
        )],
        None,
    )
    .await;
    let report = &run.report;
    assert_eq!(report.action, Action::Escalate);
    assert_eq!(report.diagnoser, "llm/primary-model");
    let reason = report.escalation_reason.clone().unwrap();
    assert!(
        reason.contains("validation") && reason.contains("privileged"),
        "{reason}"
    );
    assert_eq!(
        branches(&run.repo),
        ["main"],
        "no branch for a refused patch"
    );
    assert!(report.escalation.is_some() && report.pr.is_none());
}

#[tokio::test]
async fn a_cluster_role_binding_cannot_be_expressed_and_ends_in_escalation() {
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "ledger-sync-admin"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "finance"}]
    });
    let reply = patch(
        "unknown",
        json!([{
            "path": "ClusterRoleBinding/ledger-sync-admin",
            "value_json": binding.to_string(),
            "reason": "let the pod pre-pull images"
        }]),
    );
    let run = run(vec![], Some(reply)).await;
    let report = &run.report;
    assert_eq!(report.action, Action::Escalate);
    assert!(report.changes.is_empty());
    let stages: Vec<(&str, &str)> = report
        .attempts
        .iter()
        .map(|a| (a.stage.as_str(), a.outcome.as_str()))
        .collect();
    assert_eq!(
        stages,
        [("primary", "invalid"), ("narrow-scope", "invalid")]
    );
    assert!(
        report.attempts[0]
            .error
            .as_deref()
            .unwrap()
            .contains("pod template")
    );
    let reason = report.escalation_reason.clone().unwrap();
    assert!(
        reason.contains("no acceptable patch") && reason.contains("narrow-scope"),
        "{reason}"
    );
    assert_eq!(branches(&run.repo), ["main"]);
    assert!(report.escalation.is_some() && report.pr.is_none());
}
