//! Where pull requests and escalations go: the [`Forge`] trait and the offline [`LocalForge`].
//!
//! The publish stage hands a forge the pull request for a fix branch, or an escalation (an
//! issue) for what a human must handle. Both calls are open-or-update: there is at most one open
//! pull request per head and base branch and one open issue per escalation key, so a
//! re-delivered alert refreshes the record instead of duplicating it. [`LocalForge`] keeps the
//! records as files, for offline runs, tests and demos; [`GithubForge`] implements the same trait
//! against the GitHub REST API, as a token's owner or as a GitHub App installation
//! ([`GithubAuth`]); [`GithubForge::git_token`] gives the matching password for git pushes.
//!
//! A pull request may be opened as a draft and ask for reviewers (users and teams), both only on
//! creation. [`Forge::declined`] lists the pull requests for a head and base that a human closed
//! without merging, so the pipeline does not propose a declined fix again.
//!
//! # Local layout
//!
//! ```text
//! <dir>/                     usually <git dir>/autofix (LocalForge::for_git_dir)
//!   pulls/<N>/pr.json        the record: number, state, head, base, title, body, labels,
//!                            draft, reviewers, team_reviewers (absent in older records:
//!                            false and empty), created_at, updated_at (RFC 3339, UTC)
//!   pulls/<N>/title.txt      the title and a newline
//!   pulls/<N>/body.md        the Markdown body as given
//!   pulls/<N>/labels.txt     one label per line
//!   issues/<N>/issue.json    number, state, key, title, body, labels, created_at, updated_at
//!   issues/<N>/title.txt, body.md, labels.txt
//! ```
//!
//! Numbers start at 1 and are shared by pulls and issues, like GitHub's. The JSON file is the
//! record; the others are views for people and shell tools. Each file is written under a
//! temporary name and renamed into place, and a new record is assembled in a staging directory
//! that is renamed into place whole, so a crash never leaves a partial file or record. Setting
//! `"state": "closed"` in a JSON file closes that record: the next request for the same head or
//! key opens a new one, and a closed pull request counts as declined. `"state": "merged"` marks a
//! pull request closed by merging: it takes no more updates either, but is not declined. One
//! process at a time should own a directory; within a process the calls on one [`LocalForge`]
//! (and its clones) are serialised.
//!
//! Modules: `types` (requests and answers), `error`, `github` (the GitHub forge), `github::auth`
//! (tokens and GitHub App installation tokens), `local` (the local forge), `local::record`
//! (stored records), `local::store` (files), `local::time` (timestamps).

mod error;
mod github;
mod local;
mod types;

pub use error::ForgeError;
pub use github::{ESCALATION_LABEL, GithubAuth, GithubConfig, GithubForge, RetryPolicy};
pub use local::LocalForge;
pub use local::record::{RecordState, StoredIssue, StoredPull};
pub use types::{DeclinedPr, Escalation, EscalationRecord, PrRecord, PullRequest};

use async_trait::async_trait;

/// Where pull requests and escalations are published.
#[async_trait]
pub trait Forge: Send + Sync {
    /// Opens a pull request from `pr.head` into `pr.base`, or updates the title, body and labels
    /// of the open one for that head and base (`created: false`).
    async fn open_or_update_pr(&self, pr: &PullRequest) -> Result<PrRecord, ForgeError>;

    /// Opens an issue for `escalation`, or updates the open one with the same key
    /// (`created: false`).
    async fn escalate(&self, escalation: &Escalation) -> Result<EscalationRecord, ForgeError>;

    /// Pull requests from `head` into `base` that were closed without being merged, newest first.
    async fn declined(&self, head: &str, base: &str) -> Result<Vec<DeclinedPr>, ForgeError>;
}
