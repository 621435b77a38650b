//! `autofix validate`, run as a CI job would: the real binary over manifest files and folders,
//! judged by its exit code, its report and its `--json` output.

mod support;

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use support::{PATIENCE, autofix, bin, wait_until};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `autofix validate --json ARGS`: the exit code and the parsed report.
fn validate_json(paths: &[&Path]) -> (Option<i32>, Value) {
    let mut args = vec!["validate", "--json"];
    args.extend(paths.iter().map(|p| p.to_str().unwrap()));
    let out = autofix(&args);
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("--json prints JSON ({e}):\n{}", stdout(&out)));
    (out.status.code(), report)
}

/// A bounded Deployment; `pod` is merged into its pod spec, `container` into its container.
fn deployment(pod: &str, container: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: cart
  namespace: shop
spec:
  selector:
    matchLabels: {{app: cart}}
  template:
    metadata:
      labels: {{app: cart}}
    spec:
{pod}      containers:
        - name: cart
          image: registry.example.com/cart:1.8.2
          resources:
            requests: {{cpu: 100m, memory: 128Mi}}
{container}"
    )
}

const LIMITS: &str = "            limits: {cpu: 500m, memory: 256Mi}\n";

#[test]
fn the_kustomize_install_passes() {
    let out = autofix(&["validate", repo("deploy/kustomize").to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let report = stdout(&out);
    assert!(report.starts_with("PASS"), "{report}");
    assert!(report.contains(" 0 failed"), "{report}");
}

#[test]
fn each_unsafe_or_broken_manifest_fails_naming_its_rule_and_file() {
    let temp = tempfile::tempdir().unwrap();
    let cases = [
        (
            "privileged.yaml",
            deployment(
                "",
                &format!("{LIMITS}          securityContext:\n            privileged: true\n"),
            ),
            "privileged",
        ),
        (
            "host-path.yaml",
            deployment(
                "      volumes:\n        - name: root\n          hostPath: {path: /}\n",
                LIMITS,
            ),
            "host-path",
        ),
        (
            "host-network.yaml",
            deployment("      hostNetwork: true\n", LIMITS),
            "host-network",
        ),
        ("no-limits.yaml", deployment("", ""), "limits-missing"),
        (
            "typo.yaml",
            deployment("", &format!("{LIMITS}          imagePullPolicyy: Always\n")),
            "schema",
        ),
    ];
    let clean = temp.path().join("clean.yaml");
    std::fs::write(&clean, deployment("", LIMITS)).unwrap();
    let out = autofix(&["validate", clean.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    for (file, text, rule) in cases {
        let path = temp.path().join(file);
        std::fs::write(&path, text).unwrap();
        let out = autofix(&["validate", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{file}: {}", stdout(&out));
        let line = stdout(&out)
            .lines()
            .find(|l| l.contains(&format!("  {rule}  ")))
            .unwrap_or_else(|| panic!("{file}: no `{rule}` line in\n{}", stdout(&out)))
            .to_string();
        assert!(
            line.starts_with(&format!("{}:doc#1 Deployment/cart", path.display())),
            "{line}"
        );
        assert!(stdout(&out).contains("1 failed"), "{}", stdout(&out));
    }
}

#[test]
fn malformed_files_and_yaml_bombs_fail_with_their_path_and_never_hang() {
    let temp = tempfile::tempdir().unwrap();
    let mut bomb = String::from("a: &a [x,x,x,x,x,x,x,x,x,x]\n");
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for pair in names.windows(2) {
        let refs = vec![format!("*{}", pair[0]); 10].join(",");
        bomb.push_str(&format!("{}: &{} [{refs}]\n", pair[1], pair[1]));
    }
    std::fs::write(temp.path().join("bomb.yaml"), bomb).unwrap();
    std::fs::write(
        temp.path().join("broken.yml"),
        "kind: [Deployment\n  name: }",
    )
    .unwrap();
    std::fs::write(temp.path().join("ok.yaml"), deployment("", LIMITS)).unwrap();

    let mut child = Command::new(bin())
        .args(["validate", temp.path().to_str().unwrap()])
        .env("NO_COLOR", "1")
        .env_remove("AUTOFIX_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let finished = wait_until("autofix validate to finish", PATIENCE, || {
        child.try_wait().unwrap()
    });
    let out = child.wait_with_output().unwrap();
    assert_eq!(finished.code(), Some(2), "{}{}", stdout(&out), stderr(&out));
    let report = stdout(&out);
    for file in ["bomb.yaml", "broken.yml"] {
        let shown = temp.path().join(file).display().to_string();
        assert!(
            report.contains(&format!("{shown}  yaml  not valid YAML")),
            "{report}"
        );
        assert!(stderr(&out).contains(&shown), "{}", stderr(&out));
    }
    assert!(
        report.contains("3 files, 1 objects: 1 passed, 0 failed, 0 skipped, 2 unreadable files"),
        "{report}"
    );
}

#[test]
fn json_lists_every_result_and_its_counts_add_up() {
    let (code, report) = validate_json(&[&repo("deploy/kustomize")]);
    assert_eq!(code, Some(0), "{report:#}");
    let summary = &report["summary"];
    let objects: Vec<&Value> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["objects"].as_array().unwrap())
        .collect();
    let count = |status: &str| objects.iter().filter(|o| o["status"] == status).count();
    assert_eq!(summary["files"], report["files"].as_array().unwrap().len());
    assert_eq!(summary["objects"], objects.len());
    assert_eq!(summary["passed"], count("passed"));
    assert_eq!(summary["failed"], 0);
    assert_eq!(summary["skipped"], count("skipped"));
    // The dry-run component's Deployment patch is a partial object, not a broken one.
    let skipped: Vec<&Value> = objects
        .iter()
        .copied()
        .filter(|o| o["status"] == "skipped")
        .collect();
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert!(
        skipped[0]["reason"]
            .as_str()
            .unwrap()
            .contains("kustomize patch"),
        "{skipped:?}"
    );
    assert!(count("passed") >= 10, "{objects:?}");
}

#[test]
fn the_example_gitops_trees_fail_only_where_their_manifests_break_policy() {
    let scenarios = repo("examples/scenarios");
    let mut trees: Vec<PathBuf> = std::fs::read_dir(&scenarios)
        .unwrap()
        .flatten()
        .map(|e| e.path().join("gitops"))
        .filter(|p| p.is_dir())
        .collect();
    trees.sort();
    let paths: Vec<&Path> = trees.iter().map(PathBuf::as_path).collect();
    let (code, report) = validate_json(&paths);
    assert_eq!(code, Some(1), "{report:#}");

    let mut failures = BTreeSet::new();
    for file in report["files"].as_array().unwrap() {
        assert_eq!(file["error"], Value::Null, "{file:#}");
        let path = file["path"].as_str().unwrap();
        let scenario = Path::new(path)
            .strip_prefix(&scenarios)
            .unwrap()
            .iter()
            .next()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        for object in file["objects"].as_array().unwrap() {
            for v in object["violations"].as_array().unwrap() {
                let at = v["path"].as_str().unwrap_or_default();
                let resource = at.rsplit('.').next().unwrap_or_default();
                failures.insert(format!(
                    "{scenario} {}/{} {} {resource}",
                    object["kind"].as_str().unwrap(),
                    object["name"].as_str().unwrap(),
                    v["rule"].as_str().unwrap()
                ));
            }
        }
    }
    // No schema error anywhere: the manifests are well formed. What fails is policy: most
    // workloads set no cpu limit, two ask for more memory than the 8Gi ceiling, and CoreDNS
    // adds NET_BIND_SERVICE.
    let expected: BTreeSet<String> = [
        "app-env-regression-billing Deployment/billing limits-missing cpu",
        "configmap-volume-missing-renderer Deployment/renderer limits-missing cpu",
        "denied-namespace-coredns Deployment/coredns capabilities-add add",
        "denied-namespace-coredns Deployment/coredns limits-missing cpu",
        "image-kustomize-newtag-ledger Deployment/ledger limits-missing cpu",
        "insufficient-memory-etl Deployment/etl limits-ceiling memory",
        "job-failed-report-export Job/export-20261124 limits-missing cpu",
        "nodeselector-typo-gpu-inference Deployment/inference limits-ceiling memory",
        "nodeselector-typo-gpu-inference Deployment/inference limits-missing cpu",
        "oom-statefulset-search-cache StatefulSet/redis-cache limits-missing cpu",
        "readiness-port-not-exposed-gateway Deployment/gateway limits-missing cpu",
        "rollout-stuck-search-api Deployment/search-api limits-missing cpu",
        "secret-name-typo-orders Deployment/orders limits-missing cpu",
        "unknown-replicas-mismatch-ledger-sync Deployment/ledger-sync limits-missing cpu",
    ]
    .map(String::from)
    .into();
    assert_eq!(failures, expected);

    let summary = &report["summary"];
    // 107 files, of which 22 are kustomization.yaml.
    assert_eq!(summary["files"], 85, "{summary}");
    assert_eq!(summary["failed"], 12, "{summary}");
    assert_eq!(summary["unreadable"], 0, "{summary}");
    // Custom resources (Flux, Argo CD, External Secrets) and the ledger overlay's patch.
    let skipped = summary["skipped"].as_u64().unwrap();
    let passed = summary["passed"].as_u64().unwrap();
    assert_eq!(skipped + passed + 12, summary["objects"].as_u64().unwrap());
    assert!(passed > skipped, "{summary}");
}

/// Many files are checked on several threads, yet reported in walk order; a patch reached
/// through a symbolic link is still known as the patch its kustomization lists.
#[test]
fn many_files_come_back_in_walk_order_and_linked_patches_are_still_patches() {
    let dir = tempfile::TempDir::new().unwrap();
    let app = dir.path().join("app");
    std::fs::create_dir_all(app.join("real")).unwrap();
    let names: Vec<String> = (0..100).map(|n| format!("d{n:03}.yaml")).collect();
    for (n, name) in names.iter().enumerate() {
        let manifest = deployment("", LIMITS).replacen("name: cart", &format!("name: cart-{n}"), 1);
        std::fs::write(app.join(name), manifest).unwrap();
    }
    std::fs::write(
        app.join("kustomization.yaml"),
        "resources: [d000.yaml]\npatches:\n  - path: real/patch.yaml\n",
    )
    .unwrap();
    // A partial Deployment: checked as an object it would fail (no containers, no selector).
    let patch = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: cart-0}\n\
                 spec: {replicas: 3}\n";
    std::fs::write(app.join("real/patch.yaml"), patch).unwrap();
    std::os::unix::fs::symlink("real/patch.yaml", app.join("zz-linked-patch.yaml")).unwrap();

    let (code, report) = validate_json(&[dir.path()]);
    assert_eq!(code, Some(0), "{report:#}");
    let files: Vec<&str> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    let mut expected: Vec<String> = names
        .iter()
        .map(|name| app.join(name).display().to_string())
        .collect();
    expected.push(app.join("real/patch.yaml").display().to_string());
    expected.push(app.join("zz-linked-patch.yaml").display().to_string());
    assert_eq!(files, expected);
    for file in report["files"].as_array().unwrap().iter().rev().take(2) {
        let reason = file["objects"][0]["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("kustomize patch"), "{file:#}");
    }
}

/// Folders are listed by every core at once, yet files and Helm charts come back in the order
/// of one depth-first walk by name, files and folders interleaved, however deep.
#[test]
fn a_deep_tree_comes_back_in_walk_order() {
    let dir = tempfile::TempDir::new().unwrap();
    // Each folder holds `0.yaml`, `0d/`, `1.yaml`, `1d/`, ... (in name order), down to depth 3.
    fn grow(at: &Path, depth: usize, files: &mut Vec<String>, charts: &mut Vec<String>) {
        std::fs::create_dir_all(at).unwrap();
        if depth == 2 && at.ends_with("1d") {
            std::fs::write(at.join("Chart.yaml"), "name: chart\n").unwrap();
            std::fs::write(at.join("a0.yaml"), "not: checked\n").unwrap();
            charts.push(at.display().to_string());
            return;
        }
        for n in 0..3 {
            let file = at.join(format!("{n}.yaml"));
            let manifest =
                deployment("", LIMITS).replacen("name: cart", &format!("name: cart-{n}"), 1);
            std::fs::write(&file, manifest).unwrap();
            files.push(file.display().to_string());
            if depth < 3 {
                grow(&at.join(format!("{n}d")), depth + 1, files, charts);
            }
        }
    }
    let (mut files, mut charts) = (Vec::new(), Vec::new());
    grow(dir.path(), 0, &mut files, &mut charts);

    let (code, report) = validate_json(&[dir.path()]);
    assert_eq!(code, Some(0), "{report:#}");
    let paths = |key: &str, field: Option<&str>| -> Vec<String> {
        report[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| field.map_or(v, |f| &v[f]).as_str().unwrap().to_string())
            .collect()
    };
    assert!(
        files.len() > 80 && charts.len() == 3,
        "a tree big enough to split"
    );
    assert_eq!(paths("files", Some("path")), files);
    assert_eq!(paths("charts_skipped", None), charts);
}
