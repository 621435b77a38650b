//! What the pull request body says about the incident's alerts, through the whole offline
//! pipeline (snapshot, rules, a real git work tree, the local forge).

use autofix_cluster::SnapshotSource;
use autofix_core::Incident;
use autofix_core::alert::WebhookPayload;
use autofix_diagnose::RuleDiagnoser;
use autofix_forge::LocalForge;
use autofix_pipeline::{Config, Pipeline, Target};
use autofix_testkit::git_repo_from;
use std::path::Path;
use std::sync::Arc;

/// The PR body of the search-cache scenario's run, for its incident with `left_out` alerts
/// that the run did not read.
async fn body_with(left_out: usize) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/scenarios/oom-statefulset-search-cache");
    let temp = tempfile::tempdir().unwrap();
    let work = temp.path().join("gitops");
    git_repo_from(&dir.join("gitops"), &work);
    let payload =
        WebhookPayload::from_json(&std::fs::read(dir.join("alert.json")).unwrap()).unwrap();
    let incident = Incident {
        alerts_left_out: left_out,
        ..Incident::from_payload(&payload).unwrap()
    };
    let git_dir = autofix_gitops::git_dir(&work).unwrap();
    let pipeline = Pipeline {
        source: Arc::new(SnapshotSource::open(&dir).unwrap()),
        diagnoser: Arc::new(RuleDiagnoser::default()),
        target: Target::local(work.clone(), Arc::new(LocalForge::for_git_dir(&git_dir))),
        dry_run: None,
        strategies: None,
        config: Config::default(),
    };
    let report = pipeline.run(&incident).await.unwrap();
    report.pr.expect("a pull request").body
}

/// A run reads a bounded number of an incident's alerts: the body counts them all and says how
/// many the run read.
#[tokio::test]
async fn the_body_counts_the_alerts_a_run_did_not_read() {
    let whole = body_with(0).await;
    assert!(whole.contains("(2 alerts), firing since"), "{whole}");
    let part = body_with(2500).await;
    assert!(
        part.contains("(2502 alerts; this run read 2 of them, firing ones first), firing since"),
        "{part}"
    );
}
