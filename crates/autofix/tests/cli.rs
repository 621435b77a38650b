//! The command line as users meet it: exit codes, messages that name the bad file, JSON output,
//! and no partial branch left behind by bad input.

use autofix_testkit::copy_dir;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SCENARIO: &str = "cpu-throttled-api-gateway";

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/scenarios")
        .join(name)
}

fn autofix(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_autofix"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("the autofix binary runs")
}
/// A copy of an example scenario plus its gitops folder as a git repo on `main`.
struct Fixture {
    _temp: tempfile::TempDir,
    scenario: PathBuf,
    repo: PathBuf,
}

fn fixture(name: &str) -> Fixture {
    let temp = tempfile::tempdir().unwrap();
    let scenario = temp.path().join("scenario");
    copy_dir(&example(name), &scenario);
    let repo = temp.path().join("gitops");
    copy_dir(&scenario.join("gitops"), &repo);
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(&repo)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "import"]);
    Fixture {
        _temp: temp,
        scenario,
        repo,
    }
}

fn branches(repo: &Path) -> Vec<String> {
    let out = Command::new("git")
        .args(["branch", "--format=%(refname:short)"])
        .current_dir(repo)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn run(f: &Fixture, extra: &[&str]) -> Output {
    let mut args = vec![
        "run",
        "--snapshot",
        f.scenario.to_str().unwrap(),
        "--gitops",
        f.repo.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    autofix(&args)
}

fn assert_bad_input(out: &Output, names: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains(names),
        "the message should name {names:?}: {stderr}"
    );
}

#[test]
fn diagnose_prints_a_report_and_json() {
    let out = autofix(&["diagnose", example(SCENARIO).to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("cpu_throttled") && text.contains("Evidence"),
        "{text}"
    );

    let out = autofix(&["diagnose", example(SCENARIO).to_str().unwrap(), "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["category"], "cpu_throttled");
    assert_eq!(json["action"], "pr");
}

#[test]
fn run_json_has_the_documented_fields_and_is_idempotent() {
    let f = fixture(SCENARIO);
    let out = run(&f, &["--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for field in [
        "category",
        "action",
        "workload",
        "container",
        "summary",
        "confidence",
        "evidence",
        "risk",
        "validation",
        "branch",
        "commit",
        "files_changed",
        "pr",
    ] {
        assert!(report.get(field).is_some(), "missing {field}");
    }
    for factor in [
        "blast_radius",
        "resource_sensitivity",
        "rollback_complexity",
        "namespace_scope",
    ] {
        let value = report["risk"]["factors"][factor]["value"].as_f64().unwrap();
        assert!(value > 0.0 && value <= 1.0, "{factor} = {value}");
        assert!(report["risk"]["weights"][factor].is_number());
    }
    assert_eq!(report["workload"]["kind"], "Deployment");
    assert_eq!(report["validation"]["passed"], true);
    let labels = report["pr"]["labels"].as_array().unwrap();
    assert!(
        labels.iter().any(|l| l == "category/cpu_throttled"),
        "{labels:?}"
    );

    let again: serde_json::Value = serde_json::from_slice(&run(&f, &["--json"]).stdout).unwrap();
    assert_eq!(again["commit"], report["commit"]);
    assert_eq!(again["pr"]["number"], report["pr"]["number"]);
    assert_eq!(again["pr"]["created"], false);
    assert_eq!(branches(&f.repo).len(), 2, "main and one fix branch");
}

#[test]
fn a_missing_folder_is_bad_input() {
    let out = autofix(&["diagnose", "/nonexistent/scenario"]);
    assert_bad_input(&out, "/nonexistent/scenario");
}

#[test]
fn malformed_alert_json_names_the_file_and_field() {
    let f = fixture(SCENARIO);
    std::fs::write(
        f.scenario.join("alert.json"),
        r#"{"version":"4","status":"firing","alerts":[{"status":7}]}"#,
    )
    .unwrap();
    let out = run(&f, &[]);
    assert_bad_input(&out, "alert.json");
    assert!(String::from_utf8_lossy(&out.stderr).contains("alerts[0].status"));
    assert_eq!(branches(&f.repo), ["main"]);
}

#[test]
fn malformed_cluster_yaml_names_the_file() {
    let f = fixture(SCENARIO);
    std::fs::write(
        f.scenario.join("cluster/broken.yaml"),
        "kind: Pod\nmetadata: [oops\n",
    )
    .unwrap();
    assert_bad_input(&run(&f, &[]), "broken.yaml");
    assert_eq!(branches(&f.repo), ["main"]);
}

#[test]
fn a_yaml_bomb_is_refused() {
    let f = fixture(SCENARIO);
    let mut bomb = String::from("a: &a [x,x,x,x,x,x,x,x,x,x]\n");
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for pair in names.windows(2) {
        let refs = vec![format!("*{}", pair[0]); 10].join(",");
        bomb.push_str(&format!("{}: &{} [{refs}]\n", pair[1], pair[1]));
    }
    std::fs::write(f.scenario.join("cluster/bomb.yaml"), &bomb).unwrap();
    assert_bad_input(&run(&f, &[]), "bomb.yaml");
    // The same bomb in the GitOps repo is refused too, and no branch is left behind.
    let g = fixture(SCENARIO);
    std::fs::write(g.repo.join("bomb.yaml"), &bomb).unwrap();
    for args in [&["add", "bomb.yaml"][..], &["commit", "-q", "-m", "bomb"]] {
        let status = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(&g.repo)
            .status()
            .unwrap();
        assert!(status.success());
    }
    assert_bad_input(&run(&g, &[]), "bomb.yaml");
    assert_eq!(branches(&g.repo), ["main"]);
}

#[test]
fn malformed_gitops_yaml_leaves_no_branch() {
    let f = fixture(SCENARIO);
    let manifest = f.repo.join("mobile/api/deployment.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replacen("spec:", "spec: [unclosed", 1)).unwrap();
    assert_bad_input(&run(&f, &[]), "mobile/api/deployment.yaml");
    assert_eq!(branches(&f.repo), ["main"]);
}

#[test]
fn an_alert_for_a_pod_not_in_the_snapshot_is_bad_input() {
    let f = fixture(SCENARIO);
    let path = f.scenario.join("alert.json");
    let mut payload: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for a in payload["alerts"].as_array_mut().unwrap() {
        a["labels"]["pod"] = "ghost-pod-0".into();
    }
    std::fs::write(&path, payload.to_string()).unwrap();
    let out = run(&f, &[]);
    assert_bad_input(&out, "ghost-pod-0");
    assert_eq!(branches(&f.repo), ["main"]);
}

#[test]
fn an_invalid_config_names_the_key() {
    let f = fixture(SCENARIO);
    let config = f.scenario.join("autofix.toml");
    std::fs::write(&config, "[policy]\nmax_memory_limitt = \"1Gi\"\n").unwrap();
    assert_bad_input(
        &run(&f, &["--config", config.to_str().unwrap()]),
        "max_memory_limitt",
    );
}

#[test]
fn a_denied_namespace_is_escalated_by_config() {
    let f = fixture(SCENARIO);
    let config = f.scenario.join("autofix.toml");
    std::fs::write(&config, "[policy]\ndenied_namespaces = [\"mobile\"]\n").unwrap();
    let out = run(&f, &["--config", config.to_str().unwrap(), "--json"]);
    assert!(out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["action"], "escalate");
    assert!(
        report["escalation"]["body"]
            .as_str()
            .unwrap()
            .contains("mobile")
    );
    assert_eq!(branches(&f.repo), ["main"]);
}

/// Decisions whose chance of being unsafe is risk², from a fixed-seed generator.
fn synthetic_decisions(n: usize) -> String {
    let mut state: u64 = 42;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut csv = String::from("incident,risk_score,outcome\n");
    for i in 0..n {
        let risk = next();
        let outcome = if next() < risk * risk {
            "reverted"
        } else {
            "merged"
        };
        csv.push_str(&format!("i{i},{risk:.4},{outcome}\n"));
    }
    csv
}

#[test]
fn calibrate_suggests_a_threshold_and_draws_the_plot() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("decisions.csv");
    std::fs::write(&csv, synthetic_decisions(2000)).unwrap();
    let plot = dir.path().join("calibration.svg");
    let out = autofix(&[
        "calibrate",
        "--csv",
        csv.to_str().unwrap(),
        "--plot",
        plot.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let block_at = json["threshold"]["block_at"].as_f64().unwrap();
    // P(unsafe | r) = r²: the fixes below b are 95% safe when b²/3 = 0.05, b ≈ 0.387.
    assert!((block_at - 0.387).abs() < 0.05, "block_at {block_at}");
    assert_eq!(json["decisions"], 2000);
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("threshold"),
        "{svg}"
    );

    std::fs::write(&csv, synthetic_decisions(10)).unwrap();
    let out = autofix(&["calibrate", "--csv", csv.to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("No threshold suggested"), "{text}");
    assert!(text.contains("10 recorded"), "{text}");

    // Counting only `resolved` as safe, merged-but-unresolved fixes are unsafe: with the same
    // data the suggested threshold drops (or disappears).
    std::fs::write(&csv, synthetic_decisions(2000)).unwrap();
    let out = autofix(&[
        "calibrate",
        "--csv",
        csv.to_str().unwrap(),
        "--safe",
        "resolved",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let strict: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(strict["safe_outcomes"], serde_json::json!(["resolved"]));
    assert!(strict["threshold"].is_null(), "{strict}");
    let out = autofix(&[
        "calibrate",
        "--csv",
        csv.to_str().unwrap(),
        "--safe",
        "fine",
    ]);
    assert_bad_input(&out, "--safe");

    std::fs::write(&csv, "risk_score,outcome\n0.3,merged\nlots,merged\n").unwrap();
    let out = autofix(&["calibrate", "--csv", csv.to_str().unwrap()]);
    assert_bad_input(&out, "line 3");
}
