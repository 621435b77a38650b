//! Commits a fix on an incident branch of the GitOps repository with git2, idempotently.
//!
//! [`commit_fix`] takes the tip of the branch checked out in a local work tree (the base branch),
//! writes the new file contents as blobs, rebuilds only the trees on their paths and records
//! exactly one commit on top of the base tip, pointed at by `refs/heads/<branch>`. The work tree,
//! the index and `HEAD` are never touched, so a human's checkout stays as it was. Running the same
//! fix again answers the existing commit; a changed fix or a moved base re-creates the single
//! commit and moves the branch. [`read_base_file`] reads a file as the base tip has it.
//!
//! Layout: `base` resolves the base branch and reads from it, `repo_path` validates the paths
//! callers give, `tree` builds the new tree, `commit` puts the commit on its branch, and `error`
//! says what failed. Everything here blocks: async callers use `spawn_blocking`.

mod base;
mod commit;
mod error;
mod repo_path;
mod tree;

pub use base::{git_dir, read_base_file};
pub use commit::{Author, CommitOutcome, FixCommit, commit_fix};
pub use error::GitopsError;
