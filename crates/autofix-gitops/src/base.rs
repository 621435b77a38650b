//! The base branch: the branch checked out in the work tree, and reading files from its tip.

use crate::{GitopsError, repo_path, tree};
use git2::{Commit, ErrorCode, Repository};
use std::path::{Path, PathBuf};

/// The branch checked out in a work tree and its tip commit.
pub(crate) struct Base<'repo> {
    /// Short branch name, e.g. `main`.
    pub branch: String,
    /// The commit the branch points at.
    pub tip: Commit<'repo>,
}

/// Opens the repository of a work tree.
pub(crate) fn open(work_tree: &Path) -> Result<Repository, GitopsError> {
    Repository::open(work_tree).map_err(|source| GitopsError::Open {
        path: work_tree.to_path_buf(),
        source,
    })
}

/// Finds the base branch: the local branch `HEAD` names, which must have a commit.
pub(crate) fn resolve<'repo>(
    repo: &'repo Repository,
    work_tree: &Path,
) -> Result<Base<'repo>, GitopsError> {
    let read_err = |source| GitopsError::ReadBase {
        path: work_tree.to_path_buf(),
        source,
    };
    let head = repo.find_reference("HEAD").map_err(read_err)?;
    let Some(branch) = head
        .symbolic_target()
        .map_err(read_err)?
        .and_then(|target| target.strip_prefix("refs/heads/"))
    else {
        return Err(GitopsError::DetachedHead {
            path: work_tree.to_path_buf(),
        });
    };
    let reference = match repo.find_reference(&format!("refs/heads/{branch}")) {
        Ok(reference) => reference,
        Err(e) if e.code() == ErrorCode::NotFound => {
            return Err(GitopsError::UnbornBranch {
                path: work_tree.to_path_buf(),
                branch: branch.to_string(),
            });
        }
        Err(e) => return Err(read_err(e)),
    };
    let tip = reference.peel_to_commit().map_err(read_err)?;
    Ok(Base {
        branch: branch.to_string(),
        tip,
    })
}

/// Reads a file as the tip of the base branch has it, ignoring uncommitted changes in the work
/// tree. `path` is relative to the repository root with `/` separators.
///
/// Answers `None` when the base has no such file; fails when the path is invalid, names a
/// directory, symbolic link or submodule, or the content is not UTF-8.
pub fn read_base_file(work_tree: &Path, path: &str) -> Result<Option<String>, GitopsError> {
    repo_path::components(path)?;
    let repo = open(work_tree)?;
    let base = resolve(&repo, work_tree)?;
    let read_err = |source| GitopsError::ReadBase {
        path: work_tree.to_path_buf(),
        source,
    };
    let root = base.tip.tree().map_err(read_err)?;
    let entry = match root.get_path(Path::new(path)) {
        Ok(entry) => entry,
        Err(e) if e.code() == ErrorCode::NotFound => return Ok(None),
        Err(e) => return Err(read_err(e)),
    };
    tree::regular_file_mode(&entry, path)?;
    let blob = repo.find_blob(entry.id()).map_err(read_err)?;
    String::from_utf8(blob.content().to_vec())
        .map(Some)
        .map_err(|_| GitopsError::NotUtf8 {
            path: path.to_string(),
        })
}

/// The git directory shared by every work tree of the repository at `work_tree` (for a linked
/// worktree, the main repository's `.git`, not `.git/worktrees/<name>`); for a bare repository,
/// the repository itself. Local records such as the offline forge's belong there.
pub fn git_dir(work_tree: &Path) -> Result<PathBuf, GitopsError> {
    Ok(open(work_tree)?.commondir().to_path_buf())
}
