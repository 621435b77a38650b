//! Conformance: every scenario folder, end to end on the offline default, checked against its
//! `expected.json` (category, action, every fix check, unchanged lines, secrets never shown).
//!
//! Scenarios come from `examples/scenarios/` and the outside set (`AUTOFIX_SCENARIOS`, CI points
//! it at `../shared/scenarios`): see `autofix_testkit::scenario_dirs`.

use autofix_cluster::SnapshotSource;
use autofix_core::alert::WebhookPayload;
use autofix_core::quantity::Quantity;
use autofix_core::{FieldPath, Incident};
use autofix_diagnose::RuleDiagnoser;
use autofix_forge::LocalForge;
use autofix_pipeline::{Config, Pipeline, RunReport, Target};
use autofix_testkit::scenario_dirs;
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;

/// Copies `from` to `to` and commits it as the only commit of `main`.
fn git_repo_from(from: &Path, to: &Path) {
    copy_dir(from, to);
    let repo =
        git2::Repository::init_opts(to, git2::RepositoryInitOptions::new().initial_head("main"))
            .unwrap();
    let mut index = repo.index().unwrap();
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let who = git2::Signature::now("test", "test@example.com").unwrap();
    repo.commit(Some("HEAD"), &who, &who, "import", &tree, &[])
        .unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// Every file below `dir` (relative path, bytes), skipping `.git`.
fn files(dir: &Path, prefix: &str, out: &mut Vec<(String, Vec<u8>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name == ".git" {
            continue;
        }
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        if e.file_type().unwrap().is_dir() {
            files(&e.path(), &rel, out);
        } else {
            out.push((rel, std::fs::read(e.path()).unwrap()));
        }
    }
}

/// The file's content at the tip of `branch`.
fn at_branch(repo: &git2::Repository, branch: &str, file: &str) -> Option<String> {
    let tip = repo
        .find_branch(branch, git2::BranchType::Local)
        .ok()?
        .get()
        .peel_to_commit()
        .ok()?;
    let entry = tip.tree().ok()?.get_path(Path::new(file)).ok()?;
    let blob = repo.find_blob(entry.id()).ok()?;
    Some(String::from_utf8_lossy(blob.content()).into_owned())
}

fn check_value(op: &str, got: Option<&Value>, want: &Value) -> Result<(), String> {
    let quantity = |v: &Value| Quantity::from_value(v).map(|q| q.0);
    let ok = match op {
        "equals" => {
            got == Some(want)
                || got.zip(Some(want)).is_some_and(|(g, w)| {
                    g.to_string().trim_matches('"') == w.to_string().trim_matches('"')
                })
        }
        "not_equals" => got != Some(want),
        "quantity_gt" => got
            .and_then(quantity)
            .zip(quantity(want))
            .is_some_and(|(g, w)| g > w),
        "quantity_lt" => got
            .and_then(quantity)
            .zip(quantity(want))
            .is_some_and(|(g, w)| g < w),
        "absent" => got.is_none(),
        "present" => got.is_some(),
        other => return Err(format!("unknown op {other}")),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{op} {want}: got {got:?}"))
    }
}

/// Runs the whole pipeline on a scenario in a fresh repo and checks it against expected.json.
async fn conform(dir: &Path) -> Result<(), String> {
    let expected: Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    let temp = tempfile::tempdir().unwrap();
    let work = temp.path().join("gitops");
    git_repo_from(&dir.join("gitops"), &work);
    let mut before = Vec::new();
    files(&work, "", &mut before);

    let payload =
        WebhookPayload::from_json(&std::fs::read(dir.join("alert.json")).unwrap()).unwrap();
    let incident = Incident::from_payload(&payload).unwrap();
    let git_dir = autofix_gitops::git_dir(&work).unwrap();
    let pipeline = Pipeline {
        source: Arc::new(SnapshotSource::open(dir).map_err(|e| e.to_string())?),
        diagnoser: Arc::new(RuleDiagnoser::default()),
        target: Target::local(work.clone(), Arc::new(LocalForge::for_git_dir(&git_dir))),
        config: Config::default(),
    };
    let report: RunReport = pipeline
        .run(&incident)
        .await
        .map_err(|e| format!("run: {e}"))?;
    let mut errors = Vec::new();
    let want = |k: &str| expected[k].as_str().unwrap_or("").to_string();
    if report.category.to_string() != want("category") {
        errors.push(format!(
            "category {} != {}",
            report.category,
            want("category")
        ));
    }
    if report.action.to_string() != want("action") {
        errors.push(format!(
            "action {} != {} ({:?})",
            report.action,
            want("action"),
            report.escalation_reason
        ));
    }
    let workload = &expected["workload"];
    if report.workload.name != workload["name"]
        || report.workload.namespace != workload["namespace"]
    {
        errors.push(format!("workload {} != {workload}", report.workload));
    }

    let repo = git2::Repository::open(&work).unwrap();
    let branches: Vec<String> = repo
        .branches(Some(git2::BranchType::Local))
        .unwrap()
        .flatten()
        .filter_map(|(b, _)| b.name().ok().flatten().map(str::to_string))
        .collect();
    let mut after = Vec::new();
    files(&work, "", &mut after);
    if before != after {
        errors.push("the work tree changed (fixes must only go to the branch)".into());
    }

    if report.action.to_string() == "pr" {
        let branch = report.branch.clone().unwrap_or_default();
        let tip = repo
            .find_branch(&branch, git2::BranchType::Local)
            .map_err(|e| format!("branch {branch}: {e}"))?;
        let commit = tip.get().peel_to_commit().unwrap();
        let main = repo
            .find_branch("main", git2::BranchType::Local)
            .unwrap()
            .get()
            .peel_to_commit()
            .unwrap();
        if commit.parent_id(0).ok() != Some(main.id()) || commit.parent_count() != 1 {
            errors.push("the fix branch is not exactly one commit on main".into());
        }
        for check in expected["fix_checks"].as_array().unwrap() {
            let file = check["file"].as_str().unwrap();
            let Some(text) = at_branch(&repo, &branch, file) else {
                errors.push(format!("{file} missing on the fix branch"));
                continue;
            };
            let docs = autofix_core::yaml::parse_documents(&text).unwrap();
            let doc = docs
                .iter()
                .find(|d| {
                    d["kind"] == workload["kind"] && d["metadata"]["name"] == workload["name"]
                })
                .or(docs.first())
                .unwrap();
            let path: FieldPath = check["path"].as_str().unwrap().parse().unwrap();
            if let Err(e) = check_value(
                check["op"].as_str().unwrap(),
                path.get(doc),
                &check["value"],
            ) {
                errors.push(format!("{file} {path}: {e}"));
            }
        }
        // Only the values of existing lines may change (or new lines be added): every removed
        // line comes back with the same indentation and key, and no more lines than changes.
        for (file, original) in &before {
            let original = String::from_utf8_lossy(original);
            let fixed = at_branch(&repo, &branch, file).unwrap_or_default();
            let diff = similar::TextDiff::from_lines(original.as_ref(), &fixed);
            let removed: Vec<&str> = diff
                .iter_all_changes()
                .filter(|c| c.tag() == similar::ChangeTag::Delete)
                .map(|c| c.value())
                .collect();
            let added: Vec<&str> = diff
                .iter_all_changes()
                .filter(|c| c.tag() == similar::ChangeTag::Insert)
                .map(|c| c.value())
                .collect();
            if removed.len() > report.changes.len() {
                errors.push(format!(
                    "{file}: {} lines removed for {} changes",
                    removed.len(),
                    report.changes.len()
                ));
            }
            let key_of = |line: &str| line.split_once(':').map(|(k, _)| k.to_string());
            for line in &removed {
                if !added
                    .iter()
                    .any(|a| key_of(a).is_some() && key_of(a) == key_of(line))
                {
                    errors.push(format!("{file}: line outside the fix changed: {line:?}"));
                }
            }
        }
        if report.pr.is_none() {
            errors.push("no PR recorded".into());
        }
    } else {
        if branches != ["main"] {
            errors.push(format!(
                "branches {branches:?}: no branch may be created for {}",
                report.action
            ));
        }
        if (report.action.to_string() == "escalate") != report.escalation.is_some() {
            errors.push("escalation record does not match the action".into());
        }
    }

    // Secrets never show: report, PR, commit message, forge records.
    let mut shown = serde_json::to_string(&report).unwrap();
    if let Some(branch) = &report.branch {
        let tip = repo
            .find_branch(branch, git2::BranchType::Local)
            .unwrap()
            .get()
            .peel_to_commit()
            .unwrap();
        shown.push_str(tip.message().unwrap_or(""));
    }
    let mut records = Vec::new();
    files(&git_dir.join("autofix"), "", &mut records);
    for (_, bytes) in &records {
        shown.push_str(&String::from_utf8_lossy(bytes));
    }
    for secret in expected["must_not_contain"].as_array().unwrap() {
        if shown.contains(secret.as_str().unwrap()) {
            errors.push(format!("secret {secret} appears in the output"));
        }
    }

    // Idempotent: a second run changes nothing and updates the same record.
    let again = pipeline
        .run(&incident)
        .await
        .map_err(|e| format!("second run: {e}"))?;
    if again.commit != report.commit || again.branch != report.branch {
        errors.push("a second run made a different branch or commit".into());
    }
    if let (Some(a), Some(b)) = (&again.pr, &report.pr)
        && (a.number != b.number || a.created)
    {
        errors.push("a second run opened a second PR".into());
    }
    if let (Some(a), Some(b)) = (&again.escalation, &report.escalation)
        && (a.number != b.number || a.created)
    {
        errors.push("a second run recorded a second escalation".into());
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n    "))
    }
}

#[tokio::test]
async fn every_scenario_conforms() {
    let dirs = scenario_dirs();
    assert!(!dirs.is_empty(), "no scenarios found");
    let mut failures = Vec::new();
    for dir in &dirs {
        match conform(dir).await {
            Ok(()) => println!("ok   {}", dir.display()),
            Err(e) => {
                println!("FAIL {}\n    {e}", dir.display());
                failures.push(format!("{}:\n    {e}", dir.display()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} scenarios fail:\n{}",
        failures.len(),
        dirs.len(),
        failures.join("\n")
    );
}
