//! A scenario's `gitops/` folder as a fresh git repository (one commit on `main`), and reading
//! files back from it.

use crate::EvalError;
use std::path::Path;

/// Copies `from` to `to` and commits it as the only commit of `main`.
pub(crate) fn git_repo_from(
    scenario: &str,
    from: &Path,
    to: &Path,
) -> Result<git2::Repository, EvalError> {
    copy_dir(from, to)?;
    let git = |source| EvalError::Git {
        scenario: scenario.to_string(),
        source,
    };
    let repo =
        git2::Repository::init_opts(to, git2::RepositoryInitOptions::new().initial_head("main"))
            .map_err(git)?;
    {
        let mut index = repo.index().map_err(git)?;
        index
            .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
            .map_err(git)?;
        index.write().map_err(git)?;
        let tree = repo
            .find_tree(index.write_tree().map_err(git)?)
            .map_err(git)?;
        let who = git2::Signature::now("autofix-eval", "eval@example.invalid").map_err(git)?;
        repo.commit(Some("HEAD"), &who, &who, "import", &tree, &[])
            .map_err(git)?;
    }
    Ok(repo)
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), EvalError> {
    let fail = |path: &Path| {
        let path = path.to_path_buf();
        move |source| EvalError::Copy { path, source }
    };
    std::fs::create_dir_all(to).map_err(fail(to))?;
    for e in std::fs::read_dir(from).map_err(fail(from))?.flatten() {
        let target = to.join(e.file_name());
        if e.file_type().map_err(fail(&e.path()))?.is_dir() {
            copy_dir(&e.path(), &target)?;
        } else {
            std::fs::copy(e.path(), &target).map_err(fail(&e.path()))?;
        }
    }
    Ok(())
}

/// Every file below `dir` (relative path, bytes), skipping `.git`; unreadable entries are left
/// out.
pub(crate) fn files(dir: &Path, prefix: &str, out: &mut Vec<(String, Vec<u8>)>) {
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
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            files(&e.path(), &rel, out);
        } else if let Ok(bytes) = std::fs::read(e.path()) {
            out.push((rel, bytes));
        }
    }
}

/// The commit at the tip of a local branch.
pub(crate) fn tip<'r>(repo: &'r git2::Repository, branch: &str) -> Option<git2::Commit<'r>> {
    repo.find_branch(branch, git2::BranchType::Local)
        .ok()?
        .get()
        .peel_to_commit()
        .ok()
}

/// The file's content at the tip of `branch`.
pub(crate) fn at_branch(repo: &git2::Repository, branch: &str, file: &str) -> Option<String> {
    let entry = tip(repo, branch)?
        .tree()
        .ok()?
        .get_path(Path::new(file))
        .ok()?;
    let blob = repo.find_blob(entry.id()).ok()?;
    Some(String::from_utf8_lossy(blob.content()).into_owned())
}

/// The local branch names.
pub(crate) fn branches(repo: &git2::Repository) -> Vec<String> {
    repo.branches(Some(git2::BranchType::Local))
        .map(|b| {
            b.flatten()
                .filter_map(|(b, _)| b.name().ok().flatten().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
