//! The durable intake store of kube-autofix: alerts, incidents and the work queue.
//!
//! Every Alertmanager delivery is committed here, in one transaction, before the webhook replies,
//! so nothing accepted is lost. Alerts are deduplicated by (fingerprint, startsAt, status), which
//! is how Alertmanager's re-deliveries are recognised, and grouped into one incident per workload
//! ([`autofix_core::workload_hint`]). Workers claim incidents under a lease with an atomic
//! `UPDATE`, so no two runs touch one workload at once and a process killed mid-run has its work
//! resumed once the lease expires.
//!
//! Two backends share one schema and one set of queries (sqlx's `Any` driver, `$1` placeholders,
//! which both understand; the intake's long multi-row statements use plain `?` on SQLite):
//! SQLite in WAL mode in the data directory, the embedded default for
//! one replica, and PostgreSQL for several replicas, where claims also skip rows another replica
//! holds (`FOR UPDATE SKIP LOCKED`). Layout: `backend.rs` (opening either, their differences),
//! `model.rs` (the types handed out), `intake.rs` (recording deliveries), `queue.rs` (claims,
//! completion, retries), `outcomes.rs` (what became of each fix: merged, rejected, reverted,
//! resolved, recurred), this file (the store, listing, health).

mod backend;
mod exec;
mod group;
mod intake;
mod model;
mod outcomes;
mod queue;

pub use autofix_calibrate::Outcome;
pub use backend::Backend;
pub use group::GroupCommitStats;
pub use model::{
    Claim, ClaimedIncident, DeliveryOutcome, FailOutcome, IncidentId, IncidentRecord,
    IncidentState, RetryPolicy,
};
pub use outcomes::{Fix, NewOutcome, OutcomeRecord};
pub use queue::RUN_ALERT_LIMIT;

use backend::Durability;
use group::GroupCommit;
use sqlx::AnyPool;
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Default recurrence window: a new firing alert this long after a merge is a recurrence.
const RECURRENCE_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL cannot be parsed.
    #[error("invalid database URL {url:?}: {source}")]
    Url {
        /// The URL given.
        url: String,
        /// The parser's complaint.
        #[source]
        source: sqlx::Error,
    },
    /// The directory holding the database cannot be created.
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The URL names a database this build does not speak.
    #[error("unsupported database URL {url:?}: expected sqlite://PATH or postgres://USER@HOST/DB")]
    Scheme {
        /// The URL given, password removed.
        url: String,
    },
    /// The schema cannot be brought up to date.
    #[error("cannot migrate the database schema: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// An error of the group commit's own SQLite connection.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Stored JSON cannot be read back.
    #[error("stored {what} is not readable JSON: {source}")]
    Json {
        /// What was being read.
        what: &'static str,
        /// The decoder's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// Accepting the delivery would put more incidents in the queue than allowed.
    #[error("the work queue is full ({depth} incidents queued, limit {limit})")]
    QueueFull {
        /// Incidents queued now.
        depth: u64,
        /// The configured limit.
        limit: u64,
    },
    /// The group commit that held this delivery failed as a whole; nothing of it was kept.
    #[error("database error, the delivery was not recorded: {0}")]
    GroupCommit(String),
    /// The task that commits deliveries stopped before answering: the delivery is not
    /// acknowledged, so its sender delivers it again.
    #[error("the store's writer stopped before answering; the delivery is not acknowledged")]
    WriterGone,
    /// The claim is stale: the lease expired and another worker claimed the incident.
    #[error("incident {0} is no longer held by this claim (its lease expired and was taken over)")]
    LeaseLost(IncidentId),
}

impl StoreError {
    /// True for a transaction that lost a race with a concurrent one (PostgreSQL: unique
    /// violation, serialization failure, deadlock) and is worth running again.
    fn is_conflict(&self) -> bool {
        match self {
            StoreError::Db(sqlx::Error::Database(e)) => {
                matches!(e.code().as_deref(), Some("23505" | "40001" | "40P01"))
            }
            _ => false,
        }
    }
}

/// The store: its pools, the retry policy and the recurrence window.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
    /// Where writes go: one connection for SQLite (one writer at a time anyway), the shared pool
    /// for PostgreSQL.
    writer: AnyPool,
    /// Where listing and health checks go.
    reader: AnyPool,
    retry: RetryPolicy,
    recurrence_window: Duration,
    /// SQLite's group commit of deliveries; `None` on PostgreSQL, whose replicas write at once.
    group: Option<GroupCommit>,
}

impl Store {
    /// Opens the database at `url` and brings its schema up to date.
    ///
    /// `sqlite://PATH?mode=rwc` (see [`Store::sqlite_url`]) opens or creates an SQLite file, its
    /// directory included, in WAL mode; `postgres://user@host/db` connects to PostgreSQL, whose
    /// database must exist (replicas starting together migrate one at a time).
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let (backend, writer, reader) = backend::open(url).await?;
        let group = match backend {
            Backend::Sqlite => Some(GroupCommit::start(
                writer.clone(),
                backend::open_local(url)?,
            )),
            Backend::Postgres => None,
        };
        Ok(Store {
            backend,
            writer,
            reader,
            retry: RetryPolicy::default(),
            recurrence_window: RECURRENCE_WINDOW,
            group,
        })
    }

    /// The SQLite URL of `autofix.db` in a data directory, created if missing.
    pub fn sqlite_url(data_dir: &std::path::Path) -> String {
        format!(
            "sqlite://{}?mode=rwc",
            data_dir.join("autofix.db").display()
        )
    }

    /// Begins a write transaction as durable as `durability` asks.
    async fn begin_write(
        &self,
        durability: Durability,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        backend::begin_write(&self.writer, self.backend, durability).await
    }

    /// Which database this store runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Uses this retry policy for failed runs (default: [`RetryPolicy::default`]).
    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Store {
        self.retry = retry;
        self
    }

    /// Counts a firing alert this long after a merge as a recurrence (default 7 days).
    pub fn with_recurrence_window(mut self, window: Duration) -> Store {
        self.recurrence_window = window;
        self
    }

    /// The retry policy in use.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    /// How deliveries were grouped into commits so far; `None` on PostgreSQL, where each
    /// delivery commits on its own.
    pub fn group_commit_stats(&self) -> Option<GroupCommitStats> {
        self.group.as_ref().map(GroupCommit::stats)
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    /// Incidents waiting for a worker (including those waiting out a retry backoff).
    pub async fn queue_depth(&self) -> Result<u64, StoreError> {
        let mut conn = self.reader.acquire().await?;
        let n = intake::queued_now(&mut conn).await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// How many incidents are in each state (every state present, possibly 0).
    pub async fn count_by_state(&self) -> Result<BTreeMap<IncidentState, u64>, StoreError> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM incidents GROUP BY state")
            .fetch_all(&self.reader)
            .await?;
        let mut counts: BTreeMap<IncidentState, u64> =
            IncidentState::ALL.into_iter().map(|s| (s, 0)).collect();
        for row in rows {
            let state: String = row.try_get("state")?;
            let n: i64 = row.try_get("n")?;
            if let Some(state) = IncidentState::parse(&state) {
                counts.insert(state, u64::try_from(n).unwrap_or(0));
            }
        }
        Ok(counts)
    }

    /// Every incident, newest first.
    pub async fn list_incidents(&self) -> Result<Vec<IncidentRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT i.*,
                (SELECT COUNT(*) FROM alerts f WHERE f.incident_id = i.id AND f.status = 'firing'
                   AND NOT EXISTS (SELECT 1 FROM alerts r WHERE r.fingerprint = f.fingerprint
                                   AND r.starts_at = f.starts_at AND r.status = 'resolved'))
                  AS alerts_firing,
                (SELECT COUNT(*) FROM alerts r WHERE r.incident_id = i.id AND r.status = 'resolved')
                  AS alerts_resolved,
                (SELECT o.outcome FROM outcomes o WHERE o.incident_id = i.id
                  ORDER BY o.id DESC LIMIT 1) AS outcome
             FROM incidents i ORDER BY i.id DESC",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(record_from_row).collect()
    }
}

/// Reads one row of the `list_incidents` query.
fn record_from_row(row: &AnyRow) -> Result<IncidentRecord, StoreError> {
    let state: String = row.try_get("state")?;
    let last_report = row
        .try_get::<Option<String>, _>("last_report")?
        .map(|text| serde_json::from_str(&text))
        .transpose()
        .map_err(|source| StoreError::Json {
            what: "run report",
            source,
        })?;
    let outcome = row
        .try_get::<Option<String>, _>("outcome")?
        .map(|name| name.parse())
        .transpose()
        .map_err(|e: autofix_calibrate::UnknownOutcome| {
            StoreError::Db(sqlx::Error::Decode(e.into()))
        })?;
    let count = |name: &str| -> Result<u64, StoreError> {
        Ok(u64::try_from(row.try_get::<i64, _>(name)?).unwrap_or(0))
    };
    Ok(IncidentRecord {
        id: row.try_get("id")?,
        key: row.try_get("incident_key")?,
        cluster: row.try_get("cluster")?,
        namespace: row.try_get("namespace")?,
        workload_kind: row.try_get("workload_kind")?,
        workload_name: row.try_get("workload_name")?,
        state: IncidentState::parse(&state).ok_or_else(|| {
            StoreError::Db(sqlx::Error::Decode(
                format!("unknown incident state {state:?}").into(),
            ))
        })?,
        attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(0),
        last_error: row.try_get("last_error")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        lease_owner: row.try_get("lease_owner")?,
        lease_until: row.try_get("lease_until")?,
        resolved: row.try_get::<i64, _>("resolved")? != 0,
        alerts_firing: count("alerts_firing")?,
        alerts_resolved: count("alerts_resolved")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        last_report,
        outcome,
    })
}

/// Now, in milliseconds since the Unix epoch (the unit of every stored time).
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, millis)
}

/// A duration in milliseconds, saturating.
fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
