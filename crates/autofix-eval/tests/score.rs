//! The harness scores real scenario folders: a good one passes, a broken copy fails with the
//! right check named, and bad folders are refused naming the file.

use autofix_diagnose::RuleDiagnoser;
use autofix_eval::{EvalError, EvalReport, Scenario, ScenarioScore, discover, score};
use autofix_pipeline::Config;
use autofix_testkit::copy_dir;
use std::path::{Path, PathBuf};
use std::sync::Arc;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/scenarios")
        .join(name)
}

/// A copy of an example whose expected.json is changed by `edit`.
fn broken_copy(
    root: &Path,
    name: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let dir = root.join(name);
    copy_dir(&example(name), &dir);
    let path = dir.join("expected.json");
    let mut expected: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    edit(&mut expected);
    std::fs::write(&path, serde_json::to_vec_pretty(&expected)?)?;
    Ok(dir)
}

async fn rules_score(dir: &Path) -> Result<ScenarioScore, Box<dyn std::error::Error>> {
    let scenario = Scenario::load(dir)?;
    Ok(score(
        &scenario,
        Arc::new(RuleDiagnoser::default()),
        &Config::default(),
    )
    .await?)
}

fn failed(score: &ScenarioScore) -> Vec<&str> {
    score.failures().map(|c| c.name.as_str()).collect()
}

#[tokio::test]
async fn a_conforming_scenario_passes_every_check() -> TestResult {
    let s = rules_score(&example("helm-values-oom-cart")).await?;
    assert!(s.passed, "failed: {:?}", s.checks);
    assert!(s.category_correct() && s.action_correct() && !s.leaked());
    assert_eq!(s.category.as_deref(), Some("oom_killed"));
    assert_eq!((s.fix_checks_passed, s.fix_checks_total), (2, 2));
    for name in [
        "run",
        "category",
        "action",
        "unchanged_lines",
        "no_leak",
        "idempotent",
    ] {
        assert!(s.check(name).is_some_and(|c| c.passed), "check {name}");
    }
    assert!(s.latency_ms > 0.0);
    assert_eq!(s.tokens, 0, "the rules use no tokens");
    Ok(())
}

#[tokio::test]
async fn a_wrong_expected_category_fails_the_category_check_only() -> TestResult {
    let temp = tempfile::tempdir()?;
    let dir = broken_copy(temp.path(), "helm-values-oom-cart", |e| {
        e["category"] = "cpu_throttled".into();
    })?;
    let s = rules_score(&dir).await?;
    assert!(!s.passed);
    assert_eq!(failed(&s), ["category"]);
    assert!(!s.category_correct() && s.action_correct());
    let detail = &s.check("category").ok_or("no category check")?.detail;
    assert!(
        detail.contains("oom_killed") && detail.contains("cpu_throttled"),
        "{detail}"
    );
    Ok(())
}

#[tokio::test]
async fn a_leaked_string_fails_no_leak_without_being_repeated() -> TestResult {
    // The PR names the workload, so "marketplace/cart" must show somewhere.
    let temp = tempfile::tempdir()?;
    let dir = broken_copy(temp.path(), "helm-values-oom-cart", |e| {
        e["must_not_contain"] = serde_json::json!(["Qm7tW3xLc9RbN2vH", "marketplace/cart"]);
    })?;
    let s = rules_score(&dir).await?;
    assert!(!s.passed && s.leaked());
    assert_eq!(failed(&s), ["no_leak"]);
    let detail = &s.check("no_leak").ok_or("no no_leak check")?.detail;
    assert!(detail.contains("must_not_contain[1]"), "{detail}");
    assert!(!serde_json::to_string(&s)?.contains("Qm7tW3xLc9RbN2vH"));
    Ok(())
}

#[tokio::test]
async fn a_wrong_fix_check_is_named_and_counted() -> TestResult {
    let temp = tempfile::tempdir()?;
    let dir = broken_copy(temp.path(), "helm-values-oom-cart", |e| {
        e["fix_checks"][0]["value"] = "4Gi".into();
    })?;
    let s = rules_score(&dir).await?;
    assert_eq!(
        failed(&s),
        ["fix:marketplace/cart/release.yaml spec.values.resources.limits.memory"]
    );
    assert_eq!((s.fix_checks_passed, s.fix_checks_total), (1, 2));
    Ok(())
}

#[tokio::test]
async fn the_summary_counts_accuracy_per_category() -> TestResult {
    let temp = tempfile::tempdir()?;
    let broken = broken_copy(temp.path(), "helm-values-oom-cart", |e| {
        e["category"] = "cpu_throttled".into();
    })?;
    let scores = vec![
        rules_score(&example("helm-values-oom-cart")).await?,
        rules_score(&broken).await?,
    ];
    let report = EvalReport::new("rules", None, "0.0.0", scores);
    let s = &report.summary;
    assert!(!report.passed());
    assert_eq!((s.scenarios, s.scenarios_passed), (2, 1));
    assert_eq!(s.accuracy, 0.5);
    assert_eq!(s.action_accuracy, 1.0);
    assert_eq!(s.per_category["oom_killed"].accuracy, 1.0);
    assert_eq!(s.per_category["cpu_throttled"].accuracy, 0.0);
    assert_eq!((s.fix_checks_passed, s.fix_checks_total), (4, 4));
    Ok(())
}

#[test]
fn discover_takes_scenario_folders_and_folders_of_them() -> TestResult {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/scenarios");
    let all = discover(std::slice::from_ref(&root))?;
    assert_eq!(all.len(), 17);
    let one = discover(&[example("resolved-oom-cart")])?;
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].name, "resolved-oom-cart");
    Ok(())
}

#[test]
fn bad_folders_are_refused_naming_the_file() -> TestResult {
    let temp = tempfile::tempdir()?;
    let missing = temp.path().join("missing");
    assert!(matches!(
        discover(&[missing]),
        Err(EvalError::Folder { .. })
    ));
    let empty = temp.path().join("empty");
    std::fs::create_dir(&empty)?;
    assert!(matches!(discover(&[empty]), Err(EvalError::NoScenario(_))));
    let dir = broken_copy(temp.path(), "resolved-oom-cart", |e| {
        e["fix_checks"] = "not a list".into();
    })?;
    let error = discover(&[dir]).err().ok_or("accepted")?;
    let message = error.to_string();
    assert!(
        message.contains("resolved-oom-cart/expected.json") && message.contains("fix_checks"),
        "{message}"
    );
    Ok(())
}
