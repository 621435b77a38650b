//! A local mirror of the remote GitOps repository, kept in the data dir and fetched before each
//! incident instead of cloned again.

use crate::commit::branch_ref;
use crate::credentials::{AuthState, callbacks, redact_url};
use crate::timeouts::set_network_timeouts;
use crate::{Credentials, GitopsError};
use git2::build::CheckoutBuilder;
use git2::{AutotagOption, ErrorCode, FetchOptions, FetchPrune, Oid, Repository};
use std::path::{Path, PathBuf};

/// Every remote branch, mirrored under `refs/remotes/origin/`.
const FETCH_REFSPEC: &str = "+refs/heads/*:refs/remotes/origin/*";
/// The remote's name in the mirror.
const ORIGIN: &str = "origin";

/// A remote GitOps repository and its base branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSpec {
    /// Clone URL: `https://…`, `ssh://…`, `git@host:path`, `file://…` or a local path.
    pub url: String,
    /// The branch fixes are proposed against, e.g. `main`.
    pub base: String,
}

/// A clone kept in the data dir, its base branch checked out at the remote's tip.
#[derive(Debug)]
pub struct Mirror {
    work_tree: PathBuf,
    spec: RemoteSpec,
}

impl Mirror {
    /// Brings the clone in `dir` up to date with `spec`: clones `spec.url` (in full) when `dir`
    /// holds no clone of it yet, removing whatever is there first (a partial clone, or a clone
    /// of another URL after the mapping changed), else fetches every branch with pruning. Then
    /// points the local base branch at the remote's, checks it out and forces the work tree to
    /// equal it exactly, untracked files removed.
    ///
    /// Fails when the base is not a valid branch name ([`GitopsError::InvalidBranch`]), the
    /// remote cannot be reached ([`GitopsError::Fetch`]), refuses the credentials
    /// ([`GitopsError::Auth`]) or has no base branch ([`GitopsError::BaseMissing`]).
    pub fn sync(
        dir: &Path,
        spec: &RemoteSpec,
        credentials: &Credentials,
    ) -> Result<Mirror, GitopsError> {
        let base_ref = branch_ref(&spec.base)?;
        let mirror = Mirror {
            work_tree: dir.to_path_buf(),
            spec: spec.clone(),
        };
        let repo = mirror.open_or_clone()?;
        mirror.fetch(&repo, credentials)?;
        let tip = mirror.remote_base(&repo)?;
        let local_err = |source: git2::Error| mirror.local_err(source);
        let commit = repo.find_commit(tip).map_err(local_err)?;
        let mut checkout = CheckoutBuilder::new();
        checkout.force().remove_untracked(true);
        repo.checkout_tree(commit.as_object(), Some(&mut checkout))
            .map_err(local_err)?;
        repo.reference(
            &base_ref,
            tip,
            true,
            "kube-autofix: sync with the remote base",
        )
        .map_err(local_err)?;
        repo.set_head(&base_ref).map_err(local_err)?;
        tracing::info!(url = %redact_url(&spec.url), base = %spec.base, commit = %tip, "mirror synced");
        Ok(mirror)
    }

    /// The clone's work tree, where [`commit_fix`](crate::commit_fix) commits.
    pub fn work_tree(&self) -> &Path {
        &self.work_tree
    }

    /// The remote and base branch this mirror follows.
    pub fn spec(&self) -> &RemoteSpec {
        &self.spec
    }

    /// The remote base tip (hex) as of the last fetch ([`Mirror::sync`] or
    /// [`Mirror::push_fix`]).
    pub fn base_commit(&self) -> Result<String, GitopsError> {
        let repo = self.open()?;
        Ok(self.remote_base(&repo)?.to_string())
    }

    /// Opens the mirror's repository.
    pub(crate) fn open(&self) -> Result<Repository, GitopsError> {
        Repository::open(&self.work_tree).map_err(|source| self.local_err(source))
    }

    /// The URL without credentials, for errors and logs.
    pub(crate) fn shown_url(&self) -> String {
        redact_url(&self.spec.url)
    }

    /// Opens the clone in the mirror dir when it is one of `spec.url`, else starts a new one.
    fn open_or_clone(&self) -> Result<Repository, GitopsError> {
        let dir = &self.work_tree;
        // The clone is only ever used under its route's lock: a lock file left in it comes from
        // a process killed mid-update, and would make every later update fail.
        remove_lock_files(&dir.join(".git"));
        if let Ok(repo) = Repository::open(dir) {
            let same_url = repo
                .find_remote(ORIGIN)
                .is_ok_and(|remote| remote.url() == Ok(self.spec.url.as_str()));
            if same_url && !repo.is_bare() {
                return Ok(repo);
            }
            tracing::info!(path = %dir.display(), url = %self.shown_url(), "mirror dir holds another clone; cloning again");
        }
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|source| self.local_err(source))?;
        }
        // init + fetch is a full clone that survives interruption: a dir with the remote
        // configured is simply fetched again next time.
        let repo = Repository::init(dir).map_err(|source| self.local_err(source))?;
        repo.remote_with_fetch(ORIGIN, &self.spec.url, FETCH_REFSPEC)
            .map_err(|source| self.local_err(source))?;
        Ok(repo)
    }

    /// Fetches every branch of the remote into `refs/remotes/origin/`, pruning deleted ones.
    pub(crate) fn fetch(
        &self,
        repo: &Repository,
        credentials: &Credentials,
    ) -> Result<(), GitopsError> {
        set_network_timeouts();
        let mut remote = repo
            .find_remote(ORIGIN)
            .map_err(|source| self.local_err(source))?;
        let auth = AuthState::default();
        let mut options = FetchOptions::new();
        options
            .remote_callbacks(callbacks(credentials, &auth))
            .prune(FetchPrune::On)
            .download_tags(AutotagOption::None);
        remote
            .fetch(
                &[FETCH_REFSPEC],
                Some(&mut options),
                Some("kube-autofix: fetch"),
            )
            .map_err(|source| {
                let url = self.shown_url();
                if auth.failed() || source.code() == ErrorCode::Auth {
                    GitopsError::Auth { url, source }
                } else {
                    GitopsError::Fetch { url, source }
                }
            })
    }

    /// The remote base tip as last fetched.
    pub(crate) fn remote_base(&self, repo: &Repository) -> Result<Oid, GitopsError> {
        match repo.refname_to_id(&format!("refs/remotes/{ORIGIN}/{}", self.spec.base)) {
            Ok(oid) => Ok(oid),
            Err(e) if e.code() == ErrorCode::NotFound => Err(GitopsError::BaseMissing {
                url: self.shown_url(),
                base: self.spec.base.clone(),
            }),
            Err(source) => Err(self.local_err(source)),
        }
    }

    /// A failure of a local operation on the mirror.
    pub(crate) fn local_err(
        &self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> GitopsError {
        GitopsError::Mirror {
            path: self.work_tree.clone(),
            url: self.shown_url(),
            source: source.into(),
        }
    }
}

/// Removes every `*.lock` file below `dir` (index, HEAD, refs, packed-refs, config).
fn remove_lock_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            if entry.file_name() != "objects" {
                remove_lock_files(&path);
            }
        } else if path.extension().is_some_and(|e| e == "lock") {
            tracing::warn!(lock = %path.display(), "removing a stale lock left by a killed process");
            let _ = std::fs::remove_file(&path);
        }
    }
}
