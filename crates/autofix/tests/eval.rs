//! `autofix eval` as CI runs it: exit code 0 when every scenario passes, 1 naming the failing
//! ones, 2 for bad folders; the JSON results; an LLM eval against the scripted fake OpenAI
//! server (tokens counted); and, with a real MLflow server
//! (`MLFLOW_TRACKING_URI`, skipped with a note when unset), a parent run per eval and a nested
//! run per scenario, read back over MLflow's REST API.

use autofix_testkit::copy_dir;
use autofix_testkit::{FakeOpenAi, LONG_TAIL_SCENARIO, Reply, long_tail_patch};
use autofix_tracking::{ClientOptions, MlflowClient, Run};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/scenarios")
}

fn autofix(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_autofix"))
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("AUTOFIX_MLFLOW_URI")
        .env_remove("AUTOFIX_CONFIG")
        .output()
        .expect("the autofix binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A folder holding a good copy of `resolved-oom-cart` and a copy of `helm-values-oom-cart`
/// whose expected category is wrong (`broken-category`).
fn good_and_broken(root: &Path) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let dir = root.join("scenarios");
    copy_dir(&examples().join("resolved-oom-cart"), &dir.join("good"));
    let broken = dir.join("broken-category");
    copy_dir(&examples().join("helm-values-oom-cart"), &broken);
    let path = broken.join("expected.json");
    let mut expected: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    expected["category"] = "cpu_throttled".into();
    std::fs::write(&path, serde_json::to_vec_pretty(&expected)?)?;
    Ok(dir)
}

#[test]
fn the_examples_all_pass_and_the_json_lists_them() -> TestResult {
    let temp = tempfile::tempdir()?;
    let out = temp.path().join("out.json");
    let examples = examples();
    let run = autofix(&[
        "eval",
        examples.to_str().ok_or("path")?,
        "--json",
        out.to_str().ok_or("path")?,
    ]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let stdout = text(&run.stdout);
    assert!(stdout.contains("17/17 scenarios passed"), "{stdout}");
    assert!(stdout.contains("oom_killed"), "{stdout}");
    assert!(text(&run.stderr).contains("[17/17] "), "progress on stderr");
    let results: serde_json::Value = serde_json::from_slice(&std::fs::read(&out)?)?;
    let scenarios = results["scenarios"].as_array().ok_or("no scenarios")?;
    assert_eq!(scenarios.len(), 17);
    assert!(scenarios.iter().all(|s| s["passed"] == true));
    assert_eq!(results["summary"]["scenarios_passed"], 17);
    assert_eq!(results["summary"]["accuracy"], 1.0);
    assert_eq!(results["diagnoser"], "rules");
    Ok(())
}

#[test]
fn a_failing_scenario_exits_1_and_is_named() -> TestResult {
    let temp = tempfile::tempdir()?;
    let dir = good_and_broken(temp.path())?;
    let run = autofix(&["eval", dir.to_str().ok_or("path")?]);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run.stderr));
    let stdout = text(&run.stdout);
    let row = stdout
        .lines()
        .find(|l| l.starts_with("broken-category "))
        .ok_or(format!("no row for the broken scenario:\n{stdout}"))?;
    assert!(
        row.ends_with("FAIL") && row.contains("cpu_throttled"),
        "{row}"
    );
    assert!(
        stdout.contains("✗ category: category oom_killed != cpu_throttled"),
        "{stdout}"
    );
    assert!(stdout.contains("1/2 scenarios passed"), "{stdout}");
    let stderr = text(&run.stderr);
    assert!(
        stderr.contains("1 of 2 scenarios failed: broken-category"),
        "{stderr}"
    );
    Ok(())
}

#[test]
fn bad_folders_exit_2_naming_the_file() -> TestResult {
    let temp = tempfile::tempdir()?;
    let missing = temp.path().join("missing");
    let run = autofix(&["eval", missing.to_str().ok_or("path")?]);
    assert_eq!(run.status.code(), Some(2));
    assert!(text(&run.stderr).contains("missing"));

    let empty = temp.path().join("empty");
    std::fs::create_dir(&empty)?;
    let run = autofix(&["eval", empty.to_str().ok_or("path")?]);
    assert_eq!(run.status.code(), Some(2));
    assert!(text(&run.stderr).contains("no expected.json"));

    let bad = temp.path().join("bad");
    copy_dir(&examples().join("resolved-oom-cart"), &bad);
    std::fs::write(bad.join("expected.json"), r#"{"category": 3}"#)?;
    let run = autofix(&["eval", bad.to_str().ok_or("path")?]);
    assert_eq!(run.status.code(), Some(2));
    let stderr = text(&run.stderr);
    assert!(
        stderr.contains("bad/expected.json") && stderr.contains("category"),
        "{stderr}"
    );
    Ok(())
}

#[test]
fn an_llm_eval_scores_the_models_answer_and_counts_tokens() -> TestResult {
    // A multi-thread runtime keeps serving the fake while this thread waits on the binary.
    let runtime = tokio::runtime::Runtime::new()?;
    let fake = runtime.block_on(FakeOpenAi::start())?;
    fake.set_default(Reply::Patch(long_tail_patch()));
    let temp = tempfile::tempdir()?;
    let config = temp.path().join("autofix.toml");
    std::fs::write(
        &config,
        format!(
            "[llm]\nbase_url = {:?}\nmodel = \"scripted\"\napi_key_env = \"AUTOFIX_TEST_LLM_KEY\"\nmax_retries = 0\n",
            fake.url()
        ),
    )?;
    let out = temp.path().join("out.json");
    let scenario = examples().join(LONG_TAIL_SCENARIO);
    let run = Command::new(env!("CARGO_BIN_EXE_autofix"))
        .arg("eval")
        .arg(&scenario)
        .arg("--llm")
        .arg("--config")
        .arg(&config)
        .arg("--json")
        .arg(&out)
        .env("AUTOFIX_TEST_LLM_KEY", "sk-test-key")
        .env_remove("AUTOFIX_CONFIG")
        .env_remove("AUTOFIX_MLFLOW_URI")
        .env_remove("OPENAI_API_KEY")
        .output()?;
    let results: serde_json::Value = serde_json::from_slice(&std::fs::read(&out)?)?;
    assert_eq!(results["diagnoser"], "rules-then-llm");
    assert_eq!(results["model"], "scripted");
    let score = &results["scenarios"][0];
    assert_eq!(score["diagnoser"], "llm/scripted", "{score:#}");
    assert!(score["tokens"].as_u64().is_some_and(|t| t > 0), "{score:#}");
    assert_eq!(results["summary"]["total_tokens"], score["tokens"]);
    assert!(!fake.requests().is_empty(), "the model was asked");
    // The exit code follows the score, whatever the model answered.
    let expected_code = if score["passed"] == true { 0 } else { 1 };
    assert_eq!(
        run.status.code(),
        Some(expected_code),
        "{}",
        text(&run.stderr)
    );
    Ok(())
}

/// The real server's URI, or `None` (with a note) when the test must skip.
fn mlflow_uri(test: &str) -> Option<String> {
    match std::env::var("MLFLOW_TRACKING_URI") {
        Ok(uri) if !uri.is_empty() => Some(uri),
        _ => {
            println!(
                "skipping {test}: MLFLOW_TRACKING_URI is unset (start one with scripts/mlflow-server.sh start DIR)"
            );
            None
        }
    }
}

fn metric(run: &Run, key: &str) -> Option<f64> {
    run.data.metric(key)
}

#[tokio::test]
async fn an_eval_is_a_parent_run_with_a_nested_run_per_scenario() -> TestResult {
    let Some(uri) = mlflow_uri("an_eval_is_a_parent_run_with_a_nested_run_per_scenario") else {
        return Ok(());
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    let experiment = format!("autofix-test-eval-{}-{nanos}", std::process::id());
    let temp = tempfile::tempdir()?;
    let dir = good_and_broken(temp.path())?;
    let run = autofix(&[
        "eval",
        dir.to_str().ok_or("path")?,
        "--mlflow",
        &uri,
        "--experiment",
        &experiment,
        "--quiet",
    ]);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run.stderr));
    assert!(
        text(&run.stderr).contains("mlflow: "),
        "{}",
        text(&run.stderr)
    );

    let client = MlflowClient::new(&uri, ClientOptions::default())?;
    let experiment_id = client
        .get_experiment_by_name(&experiment)
        .await?
        .ok_or("no experiment")?
        .experiment_id;
    let runs = client.search_runs(&[&experiment_id], "").await?;
    assert_eq!(runs.len(), 3, "a parent and two scenarios");
    let (parents, nested): (Vec<&Run>, Vec<&Run>) = runs
        .iter()
        .partition(|r| r.data.tag("mlflow.parentRunId").is_none());
    let parent = parents.first().ok_or("no parent run")?;
    assert_eq!(parents.len(), 1);
    assert_eq!(parent.info.status, "FAILED");
    assert_eq!(parent.data.param("diagnoser"), Some("rules"));
    assert_eq!(parent.data.param("model"), Some("none"));
    assert_eq!(parent.data.param("scenarios"), Some("2"));
    assert_eq!(
        parent.data.param("version"),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(metric(parent, "scenarios_passed"), Some(1.0));
    assert_eq!(metric(parent, "accuracy"), Some(0.5));
    assert_eq!(metric(parent, "category_accuracy"), Some(0.5));
    assert_eq!(metric(parent, "action_accuracy"), Some(1.0));
    assert_eq!(metric(parent, "fix_checks_passed"), Some(2.0));
    assert_eq!(metric(parent, "total_tokens"), Some(0.0));
    assert!(metric(parent, "mean_latency_ms").is_some_and(|v| v > 0.0));
    assert!(metric(parent, "p95_latency_ms").is_some());
    assert_eq!(metric(parent, "category_accuracy.cpu_throttled"), Some(0.0));
    assert_eq!(metric(parent, "scenario.good.passed"), Some(1.0));
    let artifacts = client.list_artifacts(&parent.info.artifact_uri, "").await?;
    let names: Vec<&str> = artifacts.iter().map(|f| f.path.as_str()).collect();
    assert!(
        names.contains(&"results.json") && names.contains(&"table.txt"),
        "{names:?}"
    );
    let results = client
        .download_artifact(&parent.info.artifact_uri, "results.json")
        .await?;
    let results: serde_json::Value = serde_json::from_slice(&results)?;
    assert_eq!(results["summary"]["scenarios"], 2);

    assert_eq!(nested.len(), 2);
    for r in &nested {
        assert_eq!(
            r.data.tag("mlflow.parentRunId"),
            Some(parent.info.run_id.as_str())
        );
    }
    let broken = nested
        .iter()
        .find(|r| r.info.run_name == "broken-category")
        .ok_or("no nested run for broken-category")?;
    assert_eq!(broken.info.status, "FAILED");
    assert_eq!(broken.data.param("scenario"), Some("broken-category"));
    assert_eq!(
        broken.data.param("expected_category"),
        Some("cpu_throttled")
    );
    assert_eq!(metric(broken, "passed"), Some(0.0));
    assert_eq!(metric(broken, "category_correct"), Some(0.0));
    assert_eq!(metric(broken, "action_correct"), Some(1.0));
    assert_eq!(metric(broken, "fix_checks_passed"), Some(2.0));
    assert_eq!(metric(broken, "fix_checks_total"), Some(2.0));
    assert_eq!(metric(broken, "leaked"), Some(0.0));
    assert_eq!(metric(broken, "tokens"), Some(0.0));
    assert!(metric(broken, "latency_ms").is_some_and(|v| v > 0.0));
    assert_eq!(broken.data.tag("category.expected"), Some("cpu_throttled"));
    assert_eq!(broken.data.tag("category.got"), Some("oom_killed"));
    assert_eq!(broken.data.tag("action.expected"), Some("pr"));
    assert_eq!(broken.data.tag("action.got"), Some("pr"));
    assert_eq!(broken.data.tag("failed_checks"), Some("category"));
    let good = nested
        .iter()
        .find(|r| r.info.run_name == "good")
        .ok_or("no nested run for good")?;
    assert_eq!(good.info.status, "FINISHED");
    assert_eq!(metric(good, "passed"), Some(1.0));
    Ok(())
}
