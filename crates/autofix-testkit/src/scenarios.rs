//! Where the scenario folders are: the repository's own examples and the outside set.

use crate::TestkitError;
use std::path::{Path, PathBuf};

/// Every scenario folder (one with an `expected.json`), sorted: `examples/scenarios/*`, plus the
/// folder `AUTOFIX_SCENARIOS` names (CI points it at `../shared/scenarios`), or, when the
/// variable is unset, `../shared/scenarios` beside the checkout if it exists.
pub fn scenario_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let outside = std::env::var_os("AUTOFIX_SCENARIOS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/scenarios"));
    let mut out = Vec::new();
    for folder in [root.join("examples/scenarios"), outside] {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.path().join("expected.json").is_file() {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    out
}

/// The example the rules cannot fix (they answer `unknown`), for tests of the LLM path.
pub const LONG_TAIL_SCENARIO: &str = "unknown-replicas-mismatch-ledger-sync";

/// A model's patch for [`LONG_TAIL_SCENARIO`] that the pipeline accepts: a longer termination
/// grace period (30 -> 60 s) so drained pods finish their batches. As the fake OpenAI server's
/// reply content (see `FakeOpenAi`, `Reply::Patch`).
pub fn long_tail_patch() -> serde_json::Value {
    serde_json::json!({
        "category": "unknown",
        "root_cause": "Pods are stopped during node drains before they finish their batches.",
        "reasoning": "Killing events on drained nodes; long image pulls on replacements.",
        "fix_summary": "longer termination grace period",
        "confidence": 0.55,
        "changes": [{
            "path": "spec.template.spec.terminationGracePeriodSeconds",
            "value_json": "60",
            "reason": "let in-flight batches finish during a drain"
        }],
        "evidence": ["Killing ledger-sync on prod-worker-2"]
    })
}

/// Copies the folder `from` to `to`, recursively (test support: panics on failure).
pub fn copy_dir(from: &Path, to: &Path) {
    try_copy_dir(from, to).unwrap_or_else(|e| panic!("{e}"));
}

/// Copies the folder `from` to `to`, recursively.
pub fn try_copy_dir(from: &Path, to: &Path) -> Result<(), TestkitError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TestkitError::Io { path, source }
    };
    std::fs::create_dir_all(to).map_err(io(to))?;
    for entry in std::fs::read_dir(from).map_err(io(from))? {
        let entry = entry.map_err(io(from))?;
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            try_copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target).map_err(io(&entry.path()))?;
        }
    }
    Ok(())
}

/// A scenario's `gitops/` folder (`from`) as a fresh git repository at `to` with one commit on
/// `main`, as a GitOps repository is before an incident (test support: panics on failure).
pub fn git_repo_from(from: &Path, to: &Path) -> git2::Repository {
    try_git_repo_from(from, to).unwrap_or_else(|e| panic!("git repo at {}: {e}", to.display()))
}

/// The folder `from` as a new git work tree at `to`, with one commit on `main`.
pub fn try_git_repo_from(from: &Path, to: &Path) -> Result<git2::Repository, TestkitError> {
    try_copy_dir(from, to)?;
    let repo =
        git2::Repository::init_opts(to, git2::RepositoryInitOptions::new().initial_head("main"))?;
    {
        let mut index = repo.index()?;
        index.add_all(["*"], git2::IndexAddOption::DEFAULT, None)?;
        index.write()?;
        let tree = repo.find_tree(index.write_tree()?)?;
        let who = git2::Signature::now("test", "test@example.com")?;
        repo.commit(Some("HEAD"), &who, &who, "import", &tree, &[])?;
    }
    Ok(repo)
}
