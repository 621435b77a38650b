//! The shared incident scenarios: each `pr` scenario's fix lands in the expected file, changes
//! exactly the fix line, and renders to the expected value; every scenario's workload is located.

use autofix_core::quantity::Quantity;
use autofix_core::{FieldChange, FieldPath, Remediation, WorkloadKind, WorkloadRef};
use autofix_remedy::{GitopsRepo, plan_edits};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn scenarios_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("AUTOFIX_SCENARIOS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/scenarios")
        });
    if dir.is_dir() {
        Some(dir)
    } else {
        println!(
            "skipped: no scenarios at {} (set AUTOFIX_SCENARIOS)",
            dir.display()
        );
        None
    }
}

fn read_json(path: PathBuf) -> Value {
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

struct Scenario {
    repo: GitopsRepo,
    cluster: String,
    workload: WorkloadRef,
    expected: Value,
}

fn scenario(dir: &std::path::Path, name: &str) -> Scenario {
    let expected = read_json(dir.join(name).join("expected.json"));
    let alert = read_json(dir.join(name).join("alert.json"));
    let w = &expected["workload"];
    Scenario {
        repo: GitopsRepo::load(&dir.join(name).join("gitops")).unwrap(),
        cluster: alert["alerts"][0]["labels"]["cluster"]
            .as_str()
            .unwrap()
            .to_string(),
        workload: WorkloadRef {
            kind: WorkloadKind::parse(w["kind"].as_str().unwrap()).unwrap(),
            namespace: w["namespace"].as_str().unwrap().to_string(),
            name: w["name"].as_str().unwrap().to_string(),
        },
        expected,
    }
}

/// The fix each `pr` scenario implies: its (only) fix check's path on the live object and a
/// value that satisfies the check.
const FIXES: &[(&str, &str)] = &[
    ("oom-cart", "\"256Mi\""),
    ("cpu-throttled-search", "\"1\""),
    (
        "image-tag-typo-web",
        "\"registry.example.com/storefront:2.14.0\"",
    ),
    ("configmap-key-typo-api", "\"database_url\""),
    ("liveness-wrong-port-checkout", "8080"),
    ("readiness-path-regression-frontend", "\"/ready\""),
    ("insufficient-cpu-batch", "\"3500m\""),
];

fn check_holds(op: &str, actual: &Value, wanted: &Value) -> bool {
    let quantity = |v: &Value| Quantity::from_value(v).map(|q| q.0);
    match op {
        "equals" => actual == wanted,
        "quantity_gt" => quantity(actual) > quantity(wanted),
        "quantity_lt" => quantity(actual)
            .zip(quantity(wanted))
            .is_some_and(|(a, w)| a < w),
        other => panic!("unexpected op {other}"),
    }
}

#[test]
fn pr_scenarios_edit_exactly_the_fix_line() {
    let Some(dir) = scenarios_dir() else { return };
    for (name, to) in FIXES {
        let s = scenario(&dir, name);
        assert_eq!(s.expected["action"], "pr", "{name}");
        let check = &s.expected["fix_checks"][0];
        let path = FieldPath::must(check["path"].as_str().unwrap());
        let to: Value = serde_json::from_str(to).unwrap();
        let sources = s
            .repo
            .locate(&s.cluster, &s.workload)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let before = s.repo.render(&sources, &BTreeMap::new()).unwrap();
        let remediation = Remediation {
            strategy: "scenario fix".into(),
            changes: vec![FieldChange {
                path: path.clone(),
                from: path.get(&before).cloned(),
                to: to.clone(),
                reason: "test".into(),
            }],
        };
        let edits =
            plan_edits(&s.repo, &sources, &remediation).unwrap_or_else(|e| panic!("{name}: {e}"));

        let files: Vec<&str> = edits.iter().map(|e| e.file.as_str()).collect();
        assert_eq!(files, [check["file"].as_str().unwrap()], "{name}");
        let edit = &edits[0];
        assert_eq!(
            Some(edit.before.as_str()),
            s.repo.text(&edit.file),
            "{name}"
        );
        assert_eq!(edit.paths, std::slice::from_ref(&path), "{name}");
        let old: Vec<&str> = edit.before.split('\n').collect();
        let new: Vec<&str> = edit.after.split('\n').collect();
        assert_eq!(old.len(), new.len(), "{name}: lines added or removed");
        let changed: Vec<usize> = (0..old.len()).filter(|i| old[*i] != new[*i]).collect();
        assert_eq!(changed.len(), 1, "{name}: {changed:?}");
        let (line_old, line_new) = (old[changed[0]], new[changed[0]]);
        // The key, its indentation and any trailing comment survive.
        let key = path.0.last().map(|s| format!("{s:?}")).unwrap_or_default();
        assert_eq!(
            line_old.split(':').next(),
            line_new.split(':').next(),
            "{name}: {key}"
        );
        if let Some((_, comment)) = line_old.split_once(" #") {
            assert!(
                line_new.ends_with(&format!(" #{comment}")),
                "{name}: {line_new}"
            );
        }

        let overrides = BTreeMap::from([(edit.file.clone(), edit.after.clone())]);
        let after = s.repo.render(&sources, &overrides).unwrap();
        assert_eq!(path.get(&after), Some(&to), "{name}");
        let op = check["op"].as_str().unwrap();
        assert!(
            check_holds(op, &to, &check["value"]),
            "{name}: {op} {}",
            check["value"]
        );
        assert!(
            !check_holds(op, path.get(&before).unwrap(), &check["value"])
                || op == "equals" && before != after,
            "{name}: check already held"
        );
    }
}

#[test]
fn oom_cart_keeps_the_sizing_comment() {
    let Some(dir) = scenarios_dir() else { return };
    let s = scenario(&dir, "oom-cart");
    let sources = s.repo.locate(&s.cluster, &s.workload).unwrap();
    let path = FieldPath::must("spec.template.spec.containers[name=cart].resources.limits.memory");
    let remediation = Remediation {
        strategy: "raise memory limit".into(),
        changes: vec![FieldChange {
            path,
            from: Some(json!("128Mi")),
            to: json!("256Mi"),
            reason: "OOMKilled".into(),
        }],
    };
    let edits = plan_edits(&s.repo, &sources, &remediation).unwrap();
    assert!(
        edits[0]
            .after
            .contains("              memory: 256Mi # sized in March for ~40 req/s\n")
    );
    assert_eq!(
        edits[0].after.replace("256Mi #", "128Mi #"),
        edits[0].before
    );
}

#[test]
fn cpu_throttled_search_edits_the_prod_patch_only() {
    let Some(dir) = scenarios_dir() else { return };
    let s = scenario(&dir, "cpu-throttled-search");
    let sources = s.repo.locate("prod-eu-1", &s.workload).unwrap();
    assert_eq!(
        sources.entry.as_deref(),
        Some("clusters/prod-eu-1/search.yaml")
    );
    assert!(
        sources
            .files
            .contains("search/indexer/overlays/prod/patches/resources.yaml")
    );
    assert!(
        !sources.files.iter().any(|f| f.contains("staging")),
        "{:?}",
        sources.files
    );
    let rendered = s.repo.render(&sources, &BTreeMap::new()).unwrap();
    let container = &rendered["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["resources"],
        json!({"requests": {"cpu": "100m", "memory": "384Mi"}, "limits": {"cpu": "250m", "memory": "768Mi"}})
    );
    assert_eq!(rendered["metadata"]["namespace"], "search");

    let staging = s.repo.locate("staging-eu-1", &s.workload).unwrap();
    assert!(
        staging
            .files
            .contains("search/indexer/overlays/staging/patches/replicas.yaml")
    );
    assert_eq!(
        s.repo.render(&staging, &BTreeMap::new()).unwrap()["spec"]["replicas"],
        1
    );

    // A memory limit the prod patch does not set goes to the base, which defines it.
    let memory =
        FieldPath::must("spec.template.spec.containers[name=indexer].resources.limits.memory");
    let remediation = Remediation {
        strategy: "raise limits".into(),
        changes: vec![FieldChange {
            path: memory,
            from: Some(json!("768Mi")),
            to: json!("1Gi"),
            reason: "test".into(),
        }],
    };
    let edits = plan_edits(&s.repo, &sources, &remediation).unwrap();
    assert_eq!(edits[0].file, "search/indexer/base/deployment.yaml");
}

#[test]
fn every_scenario_workload_is_located() {
    let Some(dir) = scenarios_dir() else { return };
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("expected.json").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 10);
    let bases = BTreeMap::from([
        ("command-typo-worker", "jobs/report-worker/deployment.yaml"),
        ("job-backoff-migrate", "db/migrations/migrate-20261120.yaml"),
        ("storageclass-missing-postgres", "db/base/statefulset.yaml"),
    ]);
    for name in &names {
        let s = scenario(&dir, name);
        let sources = s
            .repo
            .locate(&s.cluster, &s.workload)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        if let Some(base) = bases.get(name.as_str()) {
            assert_eq!(sources.base.file, *base, "{name}");
        }
        let rendered = s.repo.render(&sources, &BTreeMap::new()).unwrap();
        assert_eq!(
            rendered["metadata"]["name"],
            s.workload.name.as_str(),
            "{name}"
        );
        assert_eq!(
            rendered["metadata"]["namespace"],
            s.workload.namespace.as_str(),
            "{name}"
        );
    }
}

#[test]
fn storageclass_postgres_is_located_per_cluster() {
    let Some(dir) = scenarios_dir() else { return };
    let s = scenario(&dir, "storageclass-missing-postgres");
    let us = s.repo.locate("prod-us-1", &s.workload).unwrap();
    assert_eq!(us.entry.as_deref(), Some("clusters/prod-us-1/db.yaml"));
    assert!(
        us.files
            .contains("db/overlays/prod-us-1/kustomization.yaml")
    );
    assert!(
        !us.files
            .contains("db/overlays/prod-eu-1/kustomization.yaml")
    );
    // Without an entry point for the cluster, the whole repo is searched: both overlays build
    // the same base without changes, so there is one answer.
    let any = s.repo.locate("prod-ap-1", &s.workload).unwrap();
    assert_eq!(
        (any.entry, any.base.file.as_str()),
        (None, "db/base/statefulset.yaml")
    );
}

#[test]
fn unknown_cluster_with_differing_overlays_is_an_error_not_a_guess() {
    let Some(dir) = scenarios_dir() else { return };
    let s = scenario(&dir, "cpu-throttled-search");
    let err = s
        .repo
        .locate("prod-ap-1", &s.workload)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "Deployment search/indexer for cluster prod-ap-1 is defined in several places \
         (search/indexer/base/deployment.yaml via search/indexer/overlays/prod/kustomization.yaml, \
         search/indexer/base/deployment.yaml via search/indexer/overlays/staging/kustomization.yaml); \
         no Flux Kustomization or Argo CD Application tells which one the cluster uses"
    );
}
