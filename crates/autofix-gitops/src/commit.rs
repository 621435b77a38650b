//! Puts a fix as a single commit on top of the base tip and points its branch at it.

use crate::{GitopsError, base, tree};
use git2::{ErrorCode, Oid, Reference, Signature};
use std::path::Path;

/// Who the fix commit is by (author and committer alike).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    /// Display name.
    pub name: String,
    /// Email address.
    pub email: String,
}

impl Default for Author {
    /// `kube-autofix <autofix@localhost>`.
    fn default() -> Self {
        Author {
            name: "kube-autofix".to_string(),
            email: "autofix@localhost".to_string(),
        }
    }
}

/// A fix to commit: the branch, the message and the new file contents.
#[derive(Debug, Clone, Copy)]
pub struct FixCommit<'a> {
    /// Short branch name, e.g. `autofix/shop/cart-oom-killed-1a2b3c4d`; never the base branch.
    pub branch: &'a str,
    /// The full commit message, trailers included, used as given.
    pub message: &'a str,
    /// `(path, new content)` pairs; paths are relative to the repository root with `/`
    /// separators. Files missing at the base are created with mode 644; existing files keep
    /// their mode.
    pub files: &'a [(String, String)],
    /// Author and committer.
    pub author: &'a Author,
}

/// Where a fix landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitOutcome {
    /// The fix branch (short name).
    pub branch: String,
    /// The base branch the commit sits on (short name).
    pub base_branch: String,
    /// The fix commit's id in hex.
    pub commit: String,
    /// False when the branch already held this exact fix on the current base tip.
    pub created: bool,
    /// The listed paths whose content differs from the base, in listed order.
    pub files_changed: Vec<String>,
}

/// Commits `fix` on its branch as exactly one commit whose parent is the tip of the branch
/// checked out in `work_tree`, without touching the work tree, the index or `HEAD`.
///
/// When the branch already holds a single commit on the current base tip with the same tree,
/// that commit is answered with `created: false`. Otherwise (new branch, different content or
/// a base that moved) a new commit is made and the branch is moved to it, replacing what it
/// held. Fails when `HEAD` is detached or unborn, the branch name is invalid or is the base
/// branch, a path is invalid, or no listed file changes ([`GitopsError::NothingToCommit`]).
pub fn commit_fix(work_tree: &Path, fix: &FixCommit<'_>) -> Result<CommitOutcome, GitopsError> {
    let refname = branch_ref(fix.branch)?;
    let repo = base::open(work_tree)?;
    let base = base::resolve(&repo, work_tree)?;
    if base.branch == fix.branch {
        return Err(GitopsError::InvalidBranch {
            branch: fix.branch.to_string(),
            reason: "it is the base branch checked out in the work tree",
        });
    }
    let base_tree = base.tip.tree().map_err(|source| GitopsError::ReadBase {
        path: work_tree.to_path_buf(),
        source,
    })?;
    let built = tree::build(&repo, &base_tree, fix.files)?;
    if built.changed.is_empty() {
        return Err(GitopsError::NothingToCommit {
            branch: fix.branch.to_string(),
        });
    }
    let outcome = |commit: Oid, created| CommitOutcome {
        branch: fix.branch.to_string(),
        base_branch: base.branch.clone(),
        commit: commit.to_string(),
        created,
        files_changed: built.changed.clone(),
    };

    let read_branch_err = |source| GitopsError::ReadBranch {
        branch: fix.branch.to_string(),
        source,
    };
    let existing = match repo.find_reference(&refname) {
        Ok(reference) => Some(reference),
        Err(e) if e.code() == ErrorCode::NotFound => None,
        Err(e) => return Err(read_branch_err(e)),
    };
    if let Some(reference) = &existing {
        let tip = reference.peel_to_commit().map_err(read_branch_err)?;
        if tip.tree_id() == built.tree
            && tip.parent_count() == 1
            && tip.parent_id(0).map_err(read_branch_err)? == base.tip.id()
        {
            tracing::debug!(branch = fix.branch, commit = %tip.id(), "fix already committed");
            return Ok(outcome(tip.id(), false));
        }
    }

    let signature = Signature::now(&fix.author.name, &fix.author.email).map_err(|source| {
        GitopsError::Author {
            name: fix.author.name.clone(),
            email: fix.author.email.clone(),
            source,
        }
    })?;
    let commit_err = |source| GitopsError::Commit {
        branch: fix.branch.to_string(),
        source,
    };
    let tree = repo.find_tree(built.tree).map_err(commit_err)?;
    clear_stale_lock(&repo, &refname);
    let commit = repo
        .commit(
            None,
            &signature,
            &signature,
            fix.message,
            &tree,
            &[&base.tip],
        )
        .map_err(commit_err)?;
    move_branch(&repo, &refname, existing.as_ref(), commit, &base.branch).map_err(|source| {
        GitopsError::UpdateBranch {
            branch: fix.branch.to_string(),
            source,
        }
    })?;
    tracing::info!(
        branch = fix.branch,
        base = %base.branch,
        commit = %commit,
        files = built.changed.len(),
        "committed fix"
    );
    Ok(outcome(commit, true))
}

/// `refs/heads/<branch>`, when that is a valid branch ref.
pub(crate) fn branch_ref(branch: &str) -> Result<String, GitopsError> {
    let invalid = |reason| GitopsError::InvalidBranch {
        branch: branch.to_string(),
        reason,
    };
    if branch.starts_with('-') {
        return Err(invalid("a branch name cannot start with `-`"));
    }
    if branch == "HEAD" {
        return Err(invalid("`HEAD` is not a branch name"));
    }
    let refname = format!("refs/heads/{branch}");
    if !Reference::is_valid_name(&refname) {
        return Err(invalid("not a valid git ref name"));
    }
    Ok(refname)
}

/// Removes the branch ref's lock file left by a process killed while it updated the ref: without
/// this, every later update fails until someone deletes it by hand. The caller owns the branch
/// (the service leases each workload to one worker; a remote clone is held by one run), so a
/// lock present before this update starts has no live writer.
fn clear_stale_lock(repo: &git2::Repository, refname: &str) {
    let lock = repo.commondir().join(format!("{refname}.lock"));
    if lock.is_file() {
        tracing::warn!(lock = %lock.display(), "removing a stale ref lock left by a killed process");
        if let Err(e) = std::fs::remove_file(&lock) {
            tracing::warn!(lock = %lock.display(), error = %e, "cannot remove the stale ref lock");
        }
    }
}

/// Points the branch at `commit`, refusing to overwrite it if it moved since it was read.
fn move_branch(
    repo: &git2::Repository,
    refname: &str,
    existing: Option<&Reference<'_>>,
    commit: Oid,
    base_branch: &str,
) -> Result<(), git2::Error> {
    let log = format!("kube-autofix: fix on top of {base_branch}");
    match existing.and_then(Reference::target) {
        Some(old) => repo.reference_matching(refname, commit, true, old, &log)?,
        None => repo.reference(refname, commit, false, &log)?,
    };
    Ok(())
}
