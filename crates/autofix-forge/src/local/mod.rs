//! The offline forge: pull requests and issues as files in a directory (layout in the crate doc).

pub(crate) mod record;
mod store;
mod time;

use crate::{DeclinedPr, Escalation, EscalationRecord, Forge, ForgeError, PrRecord, PullRequest};
use async_trait::async_trait;
use record::{Record, RecordState, StoredIssue, StoredPull};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

/// The name of the forge's directory inside a git directory.
const DIR_IN_GIT_DIR: &str = "autofix";

/// A [`Forge`] keeping pull requests and issues as files under one directory.
///
/// Clones share the directory and the lock that serialises their calls.
#[derive(Clone)]
pub struct LocalForge {
    dir: PathBuf,
    clock: Arc<dyn Fn() -> SystemTime + Send + Sync>,
    lock: Arc<Mutex<()>>,
}

impl LocalForge {
    /// A forge keeping its records under `dir`, created on first write. A relative `dir` is
    /// made absolute against the current directory, so record URLs are absolute.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        LocalForge {
            dir: std::path::absolute(&dir).unwrap_or(dir),
            clock: Arc::new(SystemTime::now),
            lock: Arc::new(Mutex::new(())),
        }
    }

    /// A forge keeping its records in `<git_dir>/autofix`, beside the repository's own data.
    /// Pass the common git directory (e.g. from `autofix_gitops::git_dir`), so that every
    /// worktree of a repository shares one forge.
    pub fn for_git_dir(git_dir: &Path) -> Self {
        Self::new(git_dir.join(DIR_IN_GIT_DIR))
    }

    /// The same forge reading timestamps from `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The directory holding the records.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every pull request, open or closed, by number.
    pub fn list_pulls(&self) -> Result<Vec<StoredPull>, ForgeError> {
        store::list(&self.dir)
    }

    /// Every issue, open or closed, by number.
    pub fn list_issues(&self) -> Result<Vec<StoredIssue>, ForgeError> {
        store::list(&self.dir)
    }

    fn upsert_pull(&self, pr: &PullRequest) -> Result<PrRecord, ForgeError> {
        let (number, url, created) = self.upsert(
            |stored: &StoredPull| stored.head == pr.head && stored.base == pr.base,
            |stored, now| {
                stored.title.clone_from(&pr.title);
                stored.body.clone_from(&pr.body);
                stored.labels.clone_from(&pr.labels);
                stored.updated_at = now;
            },
            |number, now| StoredPull {
                number,
                state: RecordState::Open,
                head: pr.head.clone(),
                base: pr.base.clone(),
                title: pr.title.clone(),
                body: pr.body.clone(),
                labels: pr.labels.clone(),
                draft: pr.draft,
                reviewers: pr.reviewers.clone(),
                team_reviewers: pr.team_reviewers.clone(),
                created_at: now.clone(),
                updated_at: now,
            },
        )?;
        Ok(PrRecord {
            number,
            url,
            created,
        })
    }

    /// The closed (not merged) pull requests from `head` into `base`, newest first.
    fn declined_pulls(&self, head: &str, base: &str) -> Result<Vec<DeclinedPr>, ForgeError> {
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        let mut declined: Vec<DeclinedPr> = store::list::<StoredPull>(&self.dir)?
            .into_iter()
            .filter(|p| p.state == RecordState::Closed && p.head == head && p.base == base)
            .map(|p| DeclinedPr {
                number: p.number,
                url: url_of(&store::record_dir::<StoredPull>(&self.dir, p.number)),
                body: p.body,
            })
            .collect();
        declined.sort_by_key(|d| std::cmp::Reverse(d.number));
        Ok(declined)
    }

    fn upsert_issue(&self, escalation: &Escalation) -> Result<EscalationRecord, ForgeError> {
        let (number, url, created) = self.upsert(
            |stored: &StoredIssue| stored.key == escalation.key,
            |stored, now| {
                stored.title.clone_from(&escalation.title);
                stored.body.clone_from(&escalation.body);
                stored.labels.clone_from(&escalation.labels);
                stored.updated_at = now;
            },
            |number, now| StoredIssue {
                number,
                state: RecordState::Open,
                key: escalation.key.clone(),
                title: escalation.title.clone(),
                body: escalation.body.clone(),
                labels: escalation.labels.clone(),
                created_at: now.clone(),
                updated_at: now,
            },
        )?;
        Ok(EscalationRecord {
            number,
            url,
            created,
        })
    }

    /// Updates the open record that `matches`, or creates one with the next number.
    /// Answers its number, URL and whether it was created.
    fn upsert<R: Record>(
        &self,
        matches: impl Fn(&R) -> bool,
        update: impl FnOnce(&mut R, String),
        create: impl FnOnce(u64, String) -> R,
    ) -> Result<(u64, String, bool), ForgeError> {
        // The guarded data is `()`, so a panic elsewhere cannot have left it inconsistent.
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        let now = time::rfc3339((self.clock)());
        let existing = store::list::<R>(&self.dir)?
            .into_iter()
            .find(|stored| stored.is_open() && matches(stored));
        let (number, dir, created) = match existing {
            Some(mut stored) => {
                update(&mut stored, now);
                (stored.number(), store::update(&self.dir, &stored)?, false)
            }
            None => {
                let stored = create(store::next_number(&self.dir)?, now);
                (stored.number(), store::create(&self.dir, &stored)?, true)
            }
        };
        Ok((number, url_of(&dir), created))
    }
}

/// The URL of a record directory.
fn url_of(dir: &Path) -> String {
    format!("file://{}", dir.display())
}

impl std::fmt::Debug for LocalForge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalForge")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Forge for LocalForge {
    async fn open_or_update_pr(&self, pr: &PullRequest) -> Result<PrRecord, ForgeError> {
        let (forge, pr) = (self.clone(), pr.clone());
        tokio::task::spawn_blocking(move || forge.upsert_pull(&pr))
            .await
            .map_err(|source| ForgeError::Task { source })?
    }

    async fn escalate(&self, escalation: &Escalation) -> Result<EscalationRecord, ForgeError> {
        let (forge, escalation) = (self.clone(), escalation.clone());
        tokio::task::spawn_blocking(move || forge.upsert_issue(&escalation))
            .await
            .map_err(|source| ForgeError::Task { source })?
    }

    async fn declined(&self, head: &str, base: &str) -> Result<Vec<DeclinedPr>, ForgeError> {
        let (forge, head, base) = (self.clone(), head.to_string(), base.to_string());
        tokio::task::spawn_blocking(move || forge.declined_pulls(&head, &base))
            .await
            .map_err(|source| ForgeError::Task { source })?
    }
}
