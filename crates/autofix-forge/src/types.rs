//! What the pipeline asks of a forge and what it answers.

/// A pull request to open or update.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullRequest {
    /// The branch holding the fix.
    pub head: String,
    /// The branch to merge into.
    pub base: String,
    /// One-line title.
    pub title: String,
    /// Markdown body.
    pub body: String,
    /// Labels; on update they replace the previous ones.
    pub labels: Vec<String>,
    /// Open it as a draft. Only applies on creation: GitHub's REST API cannot change the draft
    /// state of an existing pull request, so an update leaves it as it is.
    pub draft: bool,
    /// Logins whose review is requested, once, right after creation (not on update).
    pub reviewers: Vec<String>,
    /// Team slugs whose review is requested, once, right after creation (not on update).
    pub team_reviewers: Vec<String>,
}

/// Something a human must handle, published as an issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalation {
    /// Stable incident key or hash: there is one open issue per key.
    pub key: String,
    /// One-line title.
    pub title: String,
    /// Markdown body.
    pub body: String,
    /// Labels; on update they replace the previous ones.
    pub labels: Vec<String>,
}

/// The pull request a request landed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrRecord {
    /// Its number, shared with issues.
    pub number: u64,
    /// Where a human can see it.
    pub url: String,
    /// False when an open pull request for the same head and base existed and was updated.
    pub created: bool,
}

/// The issue an escalation landed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscalationRecord {
    /// Its number, shared with pull requests.
    pub number: u64,
    /// Where a human can see it.
    pub url: String,
    /// False when an open issue with the same key existed and was updated.
    pub created: bool,
}

/// A pull request that was closed without being merged: a fix a human turned down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclinedPr {
    /// Its number.
    pub number: u64,
    /// Where a human can see it.
    pub url: String,
    /// Its Markdown body as it was when closed.
    pub body: String,
}
