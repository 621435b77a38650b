//! Commits a fix on an incident branch of the GitOps repository and publishes it to the remote,
//! with git2.
//!
//! [`commit_fix`] takes the tip of the branch checked out in a local work tree (the base branch),
//! writes the new file contents as blobs, rebuilds only the trees on their paths and records
//! exactly one commit on top of the base tip, pointed at by `refs/heads/<branch>`. The work tree,
//! the index and `HEAD` are never touched, so a human's checkout stays as it was. Running the same
//! fix again answers the existing commit; a changed fix or a moved base re-creates the single
//! commit and moves the branch. [`read_base_file`] reads a file as the base tip has it.
//!
//! A [`Mirror`] is the clone of a remote ([`RemoteSpec`]) kept in the data dir: [`Mirror::sync`]
//! clones once, then fetches before each incident and resets the work tree to the remote base;
//! [`Mirror::push_fix`] publishes the committed branch Renovate-style: never to the base, forced
//! only over the bot's own commits, left alone once a human committed on it, rebuilt on a moved
//! base or reported as a [`PushOutcome::Conflict`], and every ref the remote reports checked.
//! [`Credentials`] (a token over HTTPS or an SSH key) are offered once per connection.
//!
//! Layout: `base` resolves the base branch and reads from it, `repo_path` validates the paths
//! callers give, `tree` builds the new tree, `commit` puts the commit on its branch,
//! `credentials` answers libgit2's credential requests, `remote` keeps the mirror, `push`
//! publishes a branch, `timeouts` bounds how long the remote may stay silent, and `error` says
//! what failed. Everything here blocks: async callers use
//! `spawn_blocking`.

mod base;
mod commit;
mod credentials;
mod error;
mod push;
mod remote;
mod repo_path;
mod timeouts;
mod tree;

pub use base::{git_dir, read_base_file};
pub use commit::{Author, CommitOutcome, FixCommit, commit_fix};
pub use credentials::Credentials;
pub use error::GitopsError;
pub use push::PushOutcome;
pub use remote::{Mirror, RemoteSpec};
