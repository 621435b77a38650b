//! The records kept on disk, one JSON file per pull request or issue.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Whether a record still takes updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordState {
    /// Requests for the same head (or key) update it.
    Open,
    /// Set by hand: closed without merging (for a pull request, declined); requests for the
    /// same head (or key) open a new record.
    Closed,
    /// Set by hand on a pull request: closed and merged; like `Closed`, but not declined.
    Merged,
}

/// A pull request as `pulls/<N>/pr.json` holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPull {
    /// Number, shared with issues.
    pub number: u64,
    /// Open, closed (declined) or merged.
    pub state: RecordState,
    /// The branch holding the fix.
    pub head: String,
    /// The branch to merge into.
    pub base: String,
    /// One-line title.
    pub title: String,
    /// Markdown body.
    pub body: String,
    /// Labels.
    pub labels: Vec<String>,
    /// Whether it was opened as a draft (false in records written before drafts existed).
    #[serde(default)]
    pub draft: bool,
    /// Logins whose review was requested on creation.
    #[serde(default)]
    pub reviewers: Vec<String>,
    /// Team slugs whose review was requested on creation.
    #[serde(default)]
    pub team_reviewers: Vec<String>,
    /// When it was opened, RFC 3339 in UTC.
    pub created_at: String,
    /// When it was last opened or updated, RFC 3339 in UTC.
    pub updated_at: String,
}

/// An escalation as `issues/<N>/issue.json` holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredIssue {
    /// Number, shared with pull requests.
    pub number: u64,
    /// Open or closed.
    pub state: RecordState,
    /// The escalation key: one open issue per key.
    pub key: String,
    /// One-line title.
    pub title: String,
    /// Markdown body.
    pub body: String,
    /// Labels.
    pub labels: Vec<String>,
    /// When it was opened, RFC 3339 in UTC.
    pub created_at: String,
    /// When it was last opened or updated, RFC 3339 in UTC.
    pub updated_at: String,
}

/// What the store needs to know about a kind of record.
pub(crate) trait Record: Serialize + DeserializeOwned {
    /// The directory under the forge's directory holding one directory per record.
    const DIR: &'static str;
    /// The JSON file inside a record's directory.
    const FILE: &'static str;

    /// The record's number.
    fn number(&self) -> u64;
    /// True while it takes updates.
    fn is_open(&self) -> bool;
    /// The title, body and labels, written out as plain views.
    fn views(&self) -> (&str, &str, &[String]);
}

impl Record for StoredPull {
    const DIR: &'static str = "pulls";
    const FILE: &'static str = "pr.json";

    fn number(&self) -> u64 {
        self.number
    }

    fn is_open(&self) -> bool {
        self.state == RecordState::Open
    }

    fn views(&self) -> (&str, &str, &[String]) {
        (&self.title, &self.body, &self.labels)
    }
}

impl Record for StoredIssue {
    const DIR: &'static str = "issues";
    const FILE: &'static str = "issue.json";

    fn number(&self) -> u64 {
        self.number
    }

    fn is_open(&self) -> bool {
        self.state == RecordState::Open
    }

    fn views(&self) -> (&str, &str, &[String]) {
        (&self.title, &self.body, &self.labels)
    }
}
