//! One scenario end to end: its `gitops/` becomes a fresh repository, the pipeline runs twice
//! (the second run must change nothing), and every expectation becomes a named check.

use crate::repo::{at_branch, branches, files, git_repo_from, tip};
use crate::{EvalError, Scenario};
use autofix_cluster::SnapshotSource;
use autofix_core::FieldPath;
use autofix_diagnose::Diagnoser;
use autofix_forge::LocalForge;
use autofix_pipeline::{Config, Pipeline, RunReport, Target};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Name of the check that the pipeline ran at all.
pub const RUN: &str = "run";
/// Name of the category check.
pub const CATEGORY: &str = "category";
/// Name of the action check.
pub const ACTION: &str = "action";
/// Name of the check that no `must_not_contain` string shows in any output.
pub const NO_LEAK: &str = "no_leak";
/// Prefix of the names of `fix_checks[]` checks (`fix:<file> <path>`).
pub const FIX_PREFIX: &str = "fix:";

/// One expectation of a scenario and whether the run met it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// What is checked, e.g. `category`, `fix:apps/cart/deployment.yaml spec...`, `no_leak`.
    pub name: String,
    /// True when met.
    pub passed: bool,
    /// What was found (never a `must_not_contain` string).
    pub detail: String,
}

impl Check {
    fn new(name: impl Into<String>, result: Result<String, String>) -> Check {
        let (passed, detail) = match result {
            Ok(detail) => (true, detail),
            Err(detail) => (false, detail),
        };
        Check {
            name: name.into(),
            passed,
            detail,
        }
    }
}

/// The score of one scenario.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioScore {
    /// The scenario folder's name.
    pub scenario: String,
    /// The scenario folder.
    pub dir: PathBuf,
    /// Category `expected.json` names.
    pub expected_category: String,
    /// Category diagnosed (`None` when the pipeline failed).
    pub category: Option<String>,
    /// Action `expected.json` names.
    pub expected_action: String,
    /// Action taken (`None` when the pipeline failed).
    pub action: Option<String>,
    /// Which analyzer answered, e.g. `rules/oom`.
    pub diagnoser: Option<String>,
    /// Every check, in order.
    pub checks: Vec<Check>,
    /// Fix checks met.
    pub fix_checks_passed: usize,
    /// Fix checks `expected.json` lists.
    pub fix_checks_total: usize,
    /// True when every check passed.
    pub passed: bool,
    /// Milliseconds of the first run (sum of its stages; wall clock when it failed).
    pub latency_ms: f64,
    /// LLM tokens (prompt + completion) of the first run; 0 for the rules.
    pub tokens: u64,
}

impl ScenarioScore {
    /// The check of this name.
    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.passed)
    }

    /// True when the category was right.
    pub fn category_correct(&self) -> bool {
        self.check(CATEGORY).is_some_and(|c| c.passed)
    }

    /// True when the action was right.
    pub fn action_correct(&self) -> bool {
        self.check(ACTION).is_some_and(|c| c.passed)
    }

    /// True when a `must_not_contain` string showed in an output.
    pub fn leaked(&self) -> bool {
        self.check(NO_LEAK).is_some_and(|c| !c.passed)
    }
}

/// Runs the pipeline on a scenario in a scratch repository, with this diagnoser and config
/// (the target is always the scratch repository and its local forge), and scores it. A wrong
/// answer or a failing pipeline is a failed score; `Err` is the harness failing.
pub async fn score(
    scenario: &Scenario,
    diagnoser: Arc<dyn Diagnoser>,
    config: &Config,
) -> Result<ScenarioScore, EvalError> {
    let expected = &scenario.expected;
    let temp = tempfile::tempdir().map_err(|source| EvalError::Copy {
        path: std::env::temp_dir(),
        source,
    })?;
    let work = temp.path().join("gitops");
    let repo = git_repo_from(&scenario.name, &scenario.dir.join("gitops"), &work)?;
    let mut before = Vec::new();
    files(&work, "", &mut before);
    let git_dir = autofix_gitops::git_dir(&work).map_err(|source| EvalError::Gitops {
        scenario: scenario.name.clone(),
        source,
    })?;
    let source = SnapshotSource::open(&scenario.dir).map_err(|source| EvalError::Snapshot {
        path: scenario.dir.clone(),
        source: Box::new(source),
    })?;
    let pipeline = Pipeline {
        source: Arc::new(source),
        diagnoser,
        target: Target::local(work.clone(), Arc::new(LocalForge::for_git_dir(&git_dir))),
        dry_run: None,
        strategies: None,
        config: config.clone(),
    };
    let mut score = ScenarioScore {
        scenario: scenario.name.clone(),
        dir: scenario.dir.clone(),
        expected_category: expected.category.clone(),
        category: None,
        expected_action: expected.action.clone(),
        action: None,
        diagnoser: None,
        checks: Vec::new(),
        fix_checks_passed: 0,
        fix_checks_total: expected.fix_checks.len(),
        passed: false,
        latency_ms: 0.0,
        tokens: 0,
    };
    let started = Instant::now();
    let report = match pipeline.run(&scenario.incident).await {
        Ok(report) => report,
        Err(e) => {
            score.latency_ms = started.elapsed().as_secs_f64() * 1000.0;
            score.checks.push(Check::new(RUN, Err(format!("run: {e}"))));
            return Ok(score);
        }
    };
    score.latency_ms = report.stage_ms.values().sum();
    score.tokens = report
        .attempts
        .iter()
        .map(|a| a.prompt_tokens.unwrap_or(0) + a.completion_tokens.unwrap_or(0))
        .sum();
    score.category = Some(report.category.to_string());
    score.action = Some(report.action.to_string());
    score.diagnoser = Some(report.diagnoser.clone());
    let checks = &mut score.checks;
    checks.push(Check::new(RUN, Ok(String::new())));
    let (category, action) = (report.category.to_string(), report.action.to_string());
    checks.push(Check::new(
        CATEGORY,
        same(&category, &expected.category).map_err(|e| format!("category {e}")),
    ));
    checks.push(Check::new(
        ACTION,
        same(&action, &expected.action)
            .map_err(|e| format!("action {e} ({:?})", report.escalation_reason)),
    ));
    let workload = &expected.workload;
    checks.push(Check::new(
        "workload",
        if report.workload.name == workload.name && report.workload.namespace == workload.namespace
        {
            Ok(report.workload.to_string())
        } else {
            Err(format!(
                "workload {} != {}/{} {}",
                report.workload, workload.namespace, workload.name, workload.kind
            ))
        },
    ));
    let mut after = Vec::new();
    files(&work, "", &mut after);
    checks.push(Check::new(
        "work_tree_unchanged",
        if before == after {
            Ok(String::new())
        } else {
            Err("the work tree changed (fixes must only go to the branch)".into())
        },
    ));

    if action == "pr" {
        let branch = report.branch.clone().unwrap_or_default();
        match tip(&repo, &branch) {
            None => checks.push(Check::new(
                "fix_branch",
                Err(format!("branch {branch:?} not found")),
            )),
            Some(commit) => {
                let main = tip(&repo, "main").map(|c| c.id());
                checks.push(Check::new(
                    "one_commit_on_main",
                    if commit.parent_count() == 1 && commit.parent_id(0).ok() == main {
                        Ok(branch.clone())
                    } else {
                        Err("the fix branch is not exactly one commit on main".into())
                    },
                ));
                for check in &expected.fix_checks {
                    let result = fix_check(&repo, &branch, check, workload);
                    score.fix_checks_passed += usize::from(result.is_ok());
                    checks.push(Check::new(
                        format!("{FIX_PREFIX}{} {}", check.file, check.path),
                        result,
                    ));
                }
                if expected.unchanged_lines_outside_fix {
                    checks.push(Check::new(
                        "unchanged_lines",
                        unchanged_lines(&repo, &branch, &before, &report),
                    ));
                }
            }
        }
        checks.push(Check::new(
            "pr_recorded",
            report
                .pr
                .as_ref()
                .map(|pr| format!("#{}", pr.number))
                .ok_or_else(|| "no PR recorded".to_string()),
        ));
    } else {
        let names = branches(&repo);
        checks.push(Check::new(
            "no_branch",
            if names == ["main"] {
                Ok(String::new())
            } else {
                Err(format!(
                    "branches {names:?}: no branch may be created for {action}"
                ))
            },
        ));
        checks.push(Check::new(
            "escalation_record",
            if (action == "escalate") == report.escalation.is_some() {
                Ok(String::new())
            } else {
                Err("escalation record does not match the action".into())
            },
        ));
    }

    // Secrets never show: report, prompts and replies, PR, commit message, forge records.
    let mut shown = serde_json::to_string(&report).map_err(EvalError::Json)?;
    for a in &report.attempts {
        shown.extend(a.prompt.iter().chain(&a.reply).map(String::as_str));
    }
    if let Some(commit) = report.branch.as_deref().and_then(|b| tip(&repo, b)) {
        shown.push_str(commit.message().unwrap_or(""));
    }
    let mut records = Vec::new();
    files(&git_dir.join("autofix"), "", &mut records);
    for (_, bytes) in &records {
        shown.push_str(&String::from_utf8_lossy(bytes));
    }
    // The detail names the index only: the eval's own output must not leak the string either.
    let leaked: Vec<String> = expected
        .must_not_contain
        .iter()
        .enumerate()
        .filter(|(_, s)| shown.contains(s.as_str()))
        .map(|(i, _)| format!("must_not_contain[{i}]"))
        .collect();
    checks.push(Check::new(
        NO_LEAK,
        if leaked.is_empty() {
            Ok(String::new())
        } else {
            Err(format!("{} appears in the output", leaked.join(", ")))
        },
    ));

    checks.push(Check::new(
        "idempotent",
        match pipeline.run(&scenario.incident).await {
            Ok(again) => idempotent(&report, &again),
            Err(e) => Err(format!("second run: {e}")),
        },
    ));
    score.passed = score.checks.iter().all(|c| c.passed);
    Ok(score)
}

fn same(got: &str, want: &str) -> Result<String, String> {
    if got == want {
        Ok(got.to_string())
    } else {
        Err(format!("{got} != {want}"))
    }
}

/// One `fix_checks[]` entry on the fix branch; the document is the one matching the workload
/// (else the file's first).
fn fix_check(
    repo: &git2::Repository,
    branch: &str,
    check: &crate::FixCheck,
    workload: &crate::ExpectedWorkload,
) -> Result<String, String> {
    let file = &check.file;
    let text =
        at_branch(repo, branch, file).ok_or_else(|| format!("{file} missing on the fix branch"))?;
    let docs = autofix_core::yaml::parse_documents(&text).map_err(|e| format!("{file}: {e}"))?;
    let doc = docs
        .iter()
        .find(|d| {
            d["kind"] == workload.kind.as_str() && d["metadata"]["name"] == workload.name.as_str()
        })
        .or(docs.first())
        .ok_or_else(|| format!("{file}: no YAML document"))?;
    let path: FieldPath = check
        .path
        .parse()
        .map_err(|e| format!("{file} {}: {e}", check.path))?;
    let got = path.get(doc);
    crate::ops::check_value(&check.op, got, &check.value)
        .map(|()| format!("{got:?}"))
        .map_err(|e| format!("{file} {path}: {e}"))
}

/// Only the values of existing lines may change (or new lines be added): every removed line
/// comes back with the same indentation and key, and no more lines than changes.
fn unchanged_lines(
    repo: &git2::Repository,
    branch: &str,
    before: &[(String, Vec<u8>)],
    report: &RunReport,
) -> Result<String, String> {
    let mut errors = Vec::new();
    for (file, original) in before {
        let original = String::from_utf8_lossy(original);
        let fixed = at_branch(repo, branch, file).unwrap_or_default();
        let diff = similar::TextDiff::from_lines(original.as_ref(), &fixed);
        let changed = |tag| -> Vec<&str> {
            diff.iter_all_changes()
                .filter(|c| c.tag() == tag)
                .map(|c| c.value())
                .collect()
        };
        let removed = changed(similar::ChangeTag::Delete);
        let added = changed(similar::ChangeTag::Insert);
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
    if errors.is_empty() {
        Ok(String::new())
    } else {
        Err(errors.join("; "))
    }
}

/// A second run changes nothing and updates the same record.
fn idempotent(first: &RunReport, again: &RunReport) -> Result<String, String> {
    if again.commit != first.commit || again.branch != first.branch {
        return Err("a second run made a different branch or commit".into());
    }
    if let (Some(a), Some(b)) = (&again.pr, &first.pr)
        && (a.number != b.number || a.created)
    {
        return Err("a second run opened a second PR".into());
    }
    if let (Some(a), Some(b)) = (&again.escalation, &first.escalation)
        && (a.number != b.number || a.created)
    {
        return Err("a second run recorded a second escalation".into());
    }
    Ok(String::new())
}
