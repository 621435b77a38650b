//! What can fail while reading the base branch, committing a fix or talking to the remote.

use std::path::PathBuf;

/// A failure of [`commit_fix`](crate::commit_fix), [`read_base_file`](crate::read_base_file) or
/// a [`Mirror`](crate::Mirror) operation, naming the repository, URL, branch or file it concerns.
/// URLs are shown without credentials.
#[derive(Debug, thiserror::Error)]
pub enum GitopsError {
    /// The work tree is not a git repository, or it cannot be opened.
    #[error("cannot open the git repository at {}", path.display())]
    Open {
        /// The path given.
        path: PathBuf,
        /// What libgit2 reported.
        #[source]
        source: git2::Error,
    },
    /// `HEAD` does not name a local branch, so there is no base branch.
    #[error("HEAD of {} is detached; check out the base branch", path.display())]
    DetachedHead {
        /// The repository.
        path: PathBuf,
    },
    /// `HEAD` names a branch that has no commit yet.
    #[error("the base branch {branch} of {} has no commit yet", path.display())]
    UnbornBranch {
        /// The repository.
        path: PathBuf,
        /// The branch `HEAD` names.
        branch: String,
    },
    /// The base branch, its tip commit or its tree cannot be read.
    #[error("cannot read the base branch of {}", path.display())]
    ReadBase {
        /// The repository.
        path: PathBuf,
        /// What libgit2 reported.
        #[source]
        source: git2::Error,
    },
    /// The branch name cannot be used for the fix.
    #[error("invalid branch name {branch:?}: {reason}")]
    InvalidBranch {
        /// The name given.
        branch: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A file path is not a plain relative path inside the repository.
    #[error("invalid file path {path:?}: {reason}")]
    InvalidPath {
        /// The path given.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The same file is listed twice, or listed both as a file and as a directory.
    #[error("file path {path:?} is listed twice or also used as a directory")]
    DuplicatePath {
        /// The path listed again.
        path: String,
    },
    /// The base has something other than a regular file at this path.
    #[error("{path:?} is {found} at the base, not a regular file")]
    NotAFile {
        /// The path.
        path: String,
        /// What the base has there: a directory, a symbolic link or a submodule.
        found: &'static str,
    },
    /// The base has a file where the path needs a directory.
    #[error("{path:?} is a file at the base, but a listed path needs it to be a directory")]
    NotADirectory {
        /// The path of the file in the way.
        path: String,
    },
    /// The file at the base is not UTF-8 text.
    #[error("{path:?} at the base is not UTF-8 text")]
    NotUtf8 {
        /// The path.
        path: String,
    },
    /// A blob or tree for this path cannot be written to the object database.
    #[error("cannot write the git object for {path:?}")]
    WriteObject {
        /// The file, or the directory for a tree (`""` is the root).
        path: String,
        /// What libgit2 reported.
        #[source]
        source: git2::Error,
    },
    /// The author name or email is not accepted by git.
    #[error("invalid commit author {name:?} <{email}>")]
    Author {
        /// The name given.
        name: String,
        /// The email given.
        email: String,
        /// What libgit2 reported.
        #[source]
        source: git2::Error,
    },
    /// The existing fix branch cannot be read.
    #[error("cannot read the existing branch {branch}")]
    ReadBranch {
        /// The fix branch.
        branch: String,
        /// What libgit2 reported.
        #[source]
        source: git2::Error,
    },
    /// The commit cannot be created.
    #[error("cannot create the commit for branch {branch}")]
    Commit {
        /// The fix branch.
        branch: String,
        /// What libgit2 reported.
        #[source]
        source: git2::Error,
    },
    /// The branch cannot be pointed at the new commit (for example it moved meanwhile).
    #[error("cannot point branch {branch} at the new commit")]
    UpdateBranch {
        /// The fix branch.
        branch: String,
        /// What libgit2 reported.
        #[source]
        source: git2::Error,
    },
    /// Every listed file already has its new content at the base.
    #[error(
        "nothing to commit on branch {branch}: every file already has this content at the base"
    )]
    NothingToCommit {
        /// The fix branch.
        branch: String,
    },
    /// The mirror directory cannot be prepared (removing a stale clone, creating the repository,
    /// pointing the base branch or checking it out).
    #[error("cannot prepare the mirror of {url} at {}", path.display())]
    Mirror {
        /// The mirror directory.
        path: PathBuf,
        /// The remote URL, without credentials.
        url: String,
        /// What failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Fetching from the remote failed (network, protocol or a missing repository).
    #[error("cannot fetch from {url}")]
    Fetch {
        /// The remote URL, without credentials.
        url: String,
        /// What libgit2 reported.
        #[source]
        source: git2::Error,
    },
    /// The remote refused the credentials, or asked for some when none are configured.
    #[error("authentication to {url} failed; check the token or key")]
    Auth {
        /// The remote URL, without credentials.
        url: String,
        /// What libgit2 reported (never the secret).
        #[source]
        source: git2::Error,
    },
    /// The base branch does not exist on the remote.
    #[error("the base branch {base} does not exist on {url}")]
    BaseMissing {
        /// The remote URL, without credentials.
        url: String,
        /// The base branch.
        base: String,
    },
    /// The fix could not be rebuilt on the moved base (reading the commits or writing the new
    /// one failed; conflicts are a [`PushOutcome`](crate::PushOutcome), not an error).
    #[error("cannot rebuild branch {branch} on the new base")]
    Rebase {
        /// The fix branch.
        branch: String,
        /// What libgit2 reported.
        #[source]
        source: git2::Error,
    },
    /// Pushing the branch failed for another reason than a rejected ref.
    #[error("cannot push branch {branch} to {url}")]
    Push {
        /// The remote URL, without credentials.
        url: String,
        /// The fix branch.
        branch: String,
        /// What libgit2 reported.
        #[source]
        source: git2::Error,
    },
    /// The remote kept rejecting the branch update (a hook, branch protection or a branch that
    /// kept moving), after the retries.
    #[error("{url} rejected the update of branch {branch}: {message}")]
    PushRejected {
        /// The remote URL, without credentials.
        url: String,
        /// The fix branch.
        branch: String,
        /// The remote's reason.
        message: String,
    },
}
