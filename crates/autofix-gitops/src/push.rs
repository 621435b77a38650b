//! Publishing a fix branch to the remote: fetch, decide, rebuild on a moved base, push, check
//! every ref the remote reports, and retry when someone raced us.
//!
//! Rules, as Renovate plays them: never push to the base branch; force-update only a branch
//! whose remote commits are all the bot's; leave a branch alone once anyone else committed on
//! it; rebuild the single fix commit on the current base rather than merge it; answer
//! [`PushOutcome::Conflict`] instead of overwriting lines the base changed meanwhile.

use crate::commit::branch_ref;
use crate::credentials::{AuthState, callbacks};
use crate::timeouts::set_network_timeouts;
use crate::{Author, Credentials, GitopsError, Mirror};
use git2::{Commit, Error, ErrorCode, Index, Oid, PushOptions, Repository, Signature, Sort};
use std::cell::RefCell;

/// How many times a push rejected because the remote moved is redone from a fresh fetch.
const RETRIES: usize = 3;
/// Marks the error the push negotiation answers when the remote branch moved since the fetch
/// (a force-with-lease), so the push is retried rather than failed.
const STALE: &str = "stale info: the remote branch moved since the fetch";
/// Messages of libgit2 and git servers meaning "the branch moved, fetch and try again".
const RACE_MARKERS: [&str; 4] = [
    STALE,
    "non-fast-forward",
    "fetch first",
    "not present locally",
];

/// What [`Mirror::push_fix`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// The remote branch now holds `commit` on top of `base_commit`; `rebased` when the base had
    /// moved and the fix was rebuilt on the new base.
    Pushed {
        /// The pushed fix commit (hex).
        commit: String,
        /// Its parent, the remote base tip (hex).
        base_commit: String,
        /// Whether the fix was rebuilt on a base that moved since it was committed.
        rebased: bool,
    },
    /// The remote branch already held this fix on the current remote base: nothing pushed.
    UpToDate {
        /// The remote branch's commit (hex).
        commit: String,
    },
    /// Someone other than the bot committed on the remote branch: left alone.
    HumanEdited {
        /// The remote branch's tip (hex).
        remote_commit: String,
        /// `Name <email>` of the author of the first foreign commit.
        author: String,
    },
    /// The base moved and the fix no longer applies on it (the lines it changes were changed
    /// there): nothing pushed.
    Conflict {
        /// The remote base tip the fix was tried on (hex).
        base_commit: String,
        /// The conflicting paths.
        files: Vec<String>,
    },
    /// The new base already contains the fix's content: nothing to propose.
    AlreadyOnBase {
        /// The remote base tip (hex).
        base_commit: String,
    },
}

/// What to do after looking at the fetched state.
enum Plan {
    /// Nothing to push; answer this.
    Done(PushOutcome),
    /// Push `commit` over the remote branch, which was `expected` at the fetch.
    Push {
        commit: Oid,
        base: Oid,
        rebased: bool,
        expected: Option<Oid>,
        force: bool,
    },
}

impl Mirror {
    /// Publishes the local branch `branch` (committed by [`commit_fix`](crate::commit_fix) in
    /// this work tree) to the remote, as a single commit by `bot` on the remote base tip.
    ///
    /// Fetches first. A remote branch with any commit (since the base) not authored and
    /// committed by `bot.email` is left alone ([`PushOutcome::HumanEdited`]). When the base moved,
    /// the fix is cherry-picked onto it and the local branch moved to the new commit, unless
    /// that conflicts or changes nothing. The push is forced only over the bot's own commits,
    /// and only when the remote branch is still what was fetched; a rejected ref or a race is
    /// redone from a new fetch up to three times, then reported as
    /// [`GitopsError::PushRejected`]. Refuses the base branch itself
    /// ([`GitopsError::InvalidBranch`]).
    pub fn push_fix(
        &self,
        branch: &str,
        bot: &Author,
        credentials: &Credentials,
    ) -> Result<PushOutcome, GitopsError> {
        let refname = branch_ref(branch)?;
        if branch == self.spec().base {
            return Err(GitopsError::InvalidBranch {
                branch: branch.to_string(),
                reason: "it is the base branch of the remote",
            });
        }
        let repo = self.open()?;
        let mut rejection = String::new();
        for attempt in 0..=RETRIES {
            self.fetch(&repo, credentials)?;
            let (commit, base, rebased, expected, force) =
                match self.plan(&repo, branch, &refname, bot)? {
                    Plan::Done(outcome) => return Ok(outcome),
                    Plan::Push {
                        commit,
                        base,
                        rebased,
                        expected,
                        force,
                    } => (commit, base, rebased, expected, force),
                };
            match self.push(&repo, branch, &refname, expected, force, credentials)? {
                None => {
                    repo.reference(
                        &format!("refs/remotes/origin/{branch}"),
                        commit,
                        true,
                        "kube-autofix: pushed",
                    )
                    .map_err(|source| self.local_err(source))?;
                    tracing::info!(branch, %commit, %base, rebased, force, "pushed fix");
                    return Ok(PushOutcome::Pushed {
                        commit: commit.to_string(),
                        base_commit: base.to_string(),
                        rebased,
                    });
                }
                Some(message) => {
                    tracing::warn!(branch, attempt, %message, "push rejected; fetching again");
                    rejection = message;
                }
            }
        }
        Err(GitopsError::PushRejected {
            url: self.shown_url(),
            branch: branch.to_string(),
            message: rejection,
        })
    }

    /// Decides from the fetched state whether and what to push, rebuilding the fix on a moved
    /// base.
    fn plan(
        &self,
        repo: &Repository,
        branch: &str,
        refname: &str,
        bot: &Author,
    ) -> Result<Plan, GitopsError> {
        let read_err = |source| GitopsError::ReadBranch {
            branch: branch.to_string(),
            source,
        };
        let base_tip = self.remote_base(repo)?;
        let base = repo.find_commit(base_tip).map_err(read_err)?;
        let local = repo
            .find_reference(refname)
            .and_then(|reference| reference.peel_to_commit())
            .map_err(read_err)?;
        if local.parent_count() != 1 {
            return Err(GitopsError::InvalidBranch {
                branch: branch.to_string(),
                reason: "the branch does not end in a single fix commit",
            });
        }
        let remote = match repo.find_reference(&format!("refs/remotes/origin/{branch}")) {
            Ok(reference) => Some(reference.peel_to_commit().map_err(read_err)?),
            Err(e) if e.code() == ErrorCode::NotFound => None,
            Err(e) => return Err(read_err(e)),
        };
        if let Some(remote) = &remote
            && let Some(author) =
                first_foreign_commit(repo, remote.id(), base_tip, bot).map_err(read_err)?
        {
            tracing::info!(branch, %author, "branch edited by someone else; leaving it alone");
            return Ok(Plan::Done(PushOutcome::HumanEdited {
                remote_commit: remote.id().to_string(),
                author,
            }));
        }
        let up_to_date = |tree: Oid| {
            remote
                .as_ref()
                .filter(|remote| is_fix_on(remote, tree, base_tip))
                .map(|remote| {
                    Plan::Done(PushOutcome::UpToDate {
                        commit: remote.id().to_string(),
                    })
                })
        };
        if let Some(done) = up_to_date(local.tree_id()) {
            return Ok(done);
        }
        let (commit, rebased) = if local.parent_id(0).map_err(read_err)? == base_tip {
            (local.id(), false)
        } else {
            match self.rebuild(repo, branch, refname, &local, &base, bot)? {
                Ok(commit) => (commit, true),
                Err(outcome) => return Ok(Plan::Done(outcome)),
            }
        };
        if rebased {
            let tree = repo.find_commit(commit).map_err(read_err)?.tree_id();
            if let Some(done) = up_to_date(tree) {
                return Ok(done);
            }
        }
        let force = match &remote {
            Some(remote) => {
                remote.id() != commit
                    && !repo
                        .graph_descendant_of(commit, remote.id())
                        .map_err(read_err)?
            }
            None => false,
        };
        Ok(Plan::Push {
            commit,
            base: base_tip,
            rebased,
            expected: remote.map(|remote| remote.id()),
            force,
        })
    }

    /// Cherry-picks the fix onto the moved base as a new commit by the bot and moves the local
    /// branch to it; answers the outcome instead when it conflicts or changes nothing.
    fn rebuild(
        &self,
        repo: &Repository,
        branch: &str,
        refname: &str,
        fix: &Commit<'_>,
        base: &Commit<'_>,
        bot: &Author,
    ) -> Result<Result<Oid, PushOutcome>, GitopsError> {
        let rebase_err = |source| GitopsError::Rebase {
            branch: branch.to_string(),
            source,
        };
        let mut index = repo
            .cherrypick_commit(fix, base, 0, None)
            .map_err(rebase_err)?;
        if index.has_conflicts() {
            let files = conflicting_paths(&index).map_err(rebase_err)?;
            tracing::info!(branch, ?files, "fix conflicts with the moved base");
            return Ok(Err(PushOutcome::Conflict {
                base_commit: base.id().to_string(),
                files,
            }));
        }
        let tree = index.write_tree_to(repo).map_err(rebase_err)?;
        if tree == base.tree_id() {
            return Ok(Err(PushOutcome::AlreadyOnBase {
                base_commit: base.id().to_string(),
            }));
        }
        let signature =
            Signature::now(&bot.name, &bot.email).map_err(|source| GitopsError::Author {
                name: bot.name.clone(),
                email: bot.email.clone(),
                source,
            })?;
        let tree = repo.find_tree(tree).map_err(rebase_err)?;
        let message = String::from_utf8_lossy(fix.message_raw_bytes());
        let commit = repo
            .commit(None, &signature, &signature, &message, &tree, &[base])
            .map_err(rebase_err)?;
        repo.reference_matching(
            refname,
            commit,
            true,
            fix.id(),
            "kube-autofix: fix rebuilt on the moved base",
        )
        .map_err(|source| GitopsError::UpdateBranch {
            branch: branch.to_string(),
            source,
        })?;
        tracing::info!(branch, %commit, base = %base.id(), "rebuilt fix on the moved base");
        Ok(Ok(commit))
    }

    /// Pushes the branch; answers the remote's rejection (or a lost race) as `Some(message)`.
    fn push(
        &self,
        repo: &Repository,
        branch: &str,
        refname: &str,
        expected: Option<Oid>,
        force: bool,
        credentials: &Credentials,
    ) -> Result<Option<String>, GitopsError> {
        set_network_timeouts();
        let rejections = RefCell::new(Vec::new());
        let auth = AuthState::default();
        let mut callbacks = callbacks(credentials, &auth);
        callbacks.push_update_reference(|reference, status| {
            if let Some(message) = status {
                rejections
                    .borrow_mut()
                    .push(format!("{reference}: {message}"));
            }
            Ok(())
        });
        // A force-with-lease: only overwrite the remote branch as it was fetched.
        let expected = expected.unwrap_or(Oid::ZERO_SHA1);
        callbacks.push_negotiation(move |updates| {
            match updates
                .iter()
                .any(|update| update.dst_refname() == Ok(refname) && update.src() != expected)
            {
                true => Err(Error::from_str(STALE)),
                false => Ok(()),
            }
        });
        let mut options = PushOptions::new();
        options.remote_callbacks(callbacks);
        let refspec = format!("{}{refname}:{refname}", if force { "+" } else { "" });
        let mut remote = repo
            .find_remote("origin")
            .map_err(|source| self.local_err(source))?;
        if let Err(source) = remote.push(&[refspec.as_str()], Some(&mut options)) {
            let message = source.message().to_string();
            if auth.failed() || source.code() == ErrorCode::Auth {
                return Err(GitopsError::Auth {
                    url: self.shown_url(),
                    source,
                });
            }
            if source.code() == ErrorCode::NotFastForward
                || RACE_MARKERS.iter().any(|marker| message.contains(marker))
            {
                return Ok(Some(message));
            }
            return Err(GitopsError::Push {
                url: self.shown_url(),
                branch: branch.to_string(),
                source,
            });
        }
        drop(options);
        let rejections = rejections.into_inner();
        Ok((!rejections.is_empty()).then(|| rejections.join("; ")))
    }
}

/// `Name <email>` of the author of the oldest commit on `remote` (and not on `base`) that the bot
/// did not both author and commit.
fn first_foreign_commit(
    repo: &Repository,
    remote: Oid,
    base: Oid,
    bot: &Author,
) -> Result<Option<String>, Error> {
    let mut walk = repo.revwalk()?;
    walk.set_sorting(Sort::TOPOLOGICAL | Sort::REVERSE)?;
    walk.push(remote)?;
    walk.hide(base)?;
    let is_bot = |signature: &Signature<'_>| {
        signature
            .email()
            .is_ok_and(|email| email.eq_ignore_ascii_case(&bot.email))
    };
    for oid in walk {
        let commit = repo.find_commit(oid?)?;
        if !is_bot(&commit.author()) || !is_bot(&commit.committer()) {
            let author = commit.author();
            return Ok(Some(format!(
                "{} <{}>",
                String::from_utf8_lossy(author.name_bytes()),
                String::from_utf8_lossy(author.email_bytes())
            )));
        }
    }
    Ok(None)
}

/// Whether `commit` is a single commit with `tree` directly on `base`.
fn is_fix_on(commit: &Commit<'_>, tree: Oid, base: Oid) -> bool {
    commit.tree_id() == tree && commit.parent_count() == 1 && commit.parent_id(0).ok() == Some(base)
}

/// The paths in conflict in a merge index, sorted and deduplicated.
fn conflicting_paths(index: &Index) -> Result<Vec<String>, Error> {
    let mut files = Vec::new();
    for conflict in index.conflicts()? {
        let conflict = conflict?;
        if let Some(entry) = conflict.our.or(conflict.their).or(conflict.ancestor) {
            files.push(String::from_utf8_lossy(&entry.path).into_owned());
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}
