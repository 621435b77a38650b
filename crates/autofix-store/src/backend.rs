//! Opening the store on SQLite or PostgreSQL, and the few places where the two differ.
//!
//! Both run the same queries through sqlx's `Any` driver. What differs is set up here: SQLite
//! gets its pragmas on every connection and a single writer connection; PostgreSQL gets one pool
//! shared by readers and writers, and its own copy of the migrations (identity columns).

use crate::StoreError;
use serde::Serialize;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::pool::MaybePoolConnection;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Any, AnyPool, Transaction};
use sqlx::{Executor, SqlStr};
use std::str::FromStr;
use std::time::Duration;

/// A schema migration: version, name and SQL.
type Step = (i64, &'static str, &'static str);

/// The SQLite schema, applied in order when the store opens.
const SQLITE_MIGRATIONS: [Step; 5] = [
    (
        1,
        "intake",
        include_str!("../migrations/sqlite/0001_intake.sql"),
    ),
    (
        2,
        "outcomes",
        include_str!("../migrations/sqlite/0002_outcomes.sql"),
    ),
    (
        3,
        "fix columns",
        include_str!("../migrations/sqlite/0003_fix_columns.sql"),
    ),
    (
        4,
        "fix source",
        include_str!("../migrations/sqlite/0004_fix_source.sql"),
    ),
    (
        5,
        "alert labels once",
        include_str!("../migrations/sqlite/0005_alert_labels_once.sql"),
    ),
];

/// The same schema for PostgreSQL.
const POSTGRES_MIGRATIONS: [Step; 5] = [
    (
        1,
        "intake",
        include_str!("../migrations/postgres/0001_intake.sql"),
    ),
    (
        2,
        "outcomes",
        include_str!("../migrations/postgres/0002_outcomes.sql"),
    ),
    (
        3,
        "fix columns",
        include_str!("../migrations/postgres/0003_fix_columns.sql"),
    ),
    (
        4,
        "fix source",
        include_str!("../migrations/postgres/0004_fix_source.sql"),
    ),
    (
        5,
        "alert labels once",
        include_str!("../migrations/postgres/0005_alert_labels_once.sql"),
    ),
];

/// Set on every SQLite connection: WAL so readers never block the writer, FULL so a commit
/// survives power loss and not only a killed process, a wait for the write lock instead of an
/// immediate failure, and enforced foreign keys. Statement journals (the undo copy of the pages
/// one statement of a longer transaction changes) stay in memory: on disk they were a temporary
/// file written on every group commit, a sixth of the SQLite thread's time under load.
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL;
     PRAGMA synchronous = FULL;
     PRAGMA busy_timeout = 5000;
     PRAGMA foreign_keys = ON;
     PRAGMA temp_store = MEMORY;";

/// SQLite read connections (listing, health); writes go through one connection.
const SQLITE_READERS: u32 = 4;

/// PostgreSQL connections per replica, shared by the webhook, the workers and the readers.
const POSTGRES_CONNECTIONS: u32 = 16;

/// How long a caller waits for a free connection before the request fails.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// The database engine behind a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// An embedded SQLite file: one replica.
    Sqlite,
    /// A PostgreSQL server: any number of replicas.
    Postgres,
}

impl Backend {
    /// The backend a URL names, by its scheme.
    pub fn of_url(url: &str) -> Option<Backend> {
        let scheme = url.split_once(':')?.0;
        match scheme {
            "sqlite" => Some(Backend::Sqlite),
            "postgres" | "postgresql" => Some(Backend::Postgres),
            _ => None,
        }
    }

    /// `sqlite` or `postgres`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How soon a write transaction must be on disk once it commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// Before the commit returns: the caller acknowledges what it wrote (a webhook's 2xx).
    Acknowledged,
    /// With the next acknowledged commit or checkpoint: a worker's claims and results. A
    /// machine crash (not a killed process) may forget the last of them, which only makes a
    /// run happen again, and a run is idempotent (same branch, same pull request).
    Bookkeeping,
}

/// What a connection's durability setting is known to be when a transaction begins on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Setting {
    /// Not known: the connection may have run another kind of transaction since.
    Unknown,
    /// Already the one asked for: the connection's last transaction, by the same caller, asked
    /// for the same durability. SQLite then skips its `PRAGMA synchronous`, one round trip to
    /// the connection's thread fewer (about 0.7 ms under load).
    AsAsked,
}

/// Begins a write transaction on a connection of `writer`; see [`begin_on`].
pub(crate) async fn begin_write(
    writer: &AnyPool,
    backend: Backend,
    durability: Durability,
) -> Result<Transaction<'static, Any>, StoreError> {
    let conn = writer.acquire().await?;
    begin_on(conn, backend, durability, Setting::Unknown).await
}

/// Begins a write transaction on `conn` that commits as durably as `durability` asks: SQLite's
/// `synchronous` is set before each transaction (FULL waits for the disk, NORMAL leaves the WAL
/// to be synced by the next FULL commit or checkpoint), PostgreSQL's `synchronous_commit` is
/// turned off for bookkeeping. `setting` tells whether SQLite's is already right.
pub(crate) async fn begin_on<'c>(
    conn: impl Into<MaybePoolConnection<'c, Any>>,
    backend: Backend,
    durability: Durability,
    setting: Setting,
) -> Result<Transaction<'c, Any>, StoreError> {
    match (backend, durability) {
        (Backend::Sqlite, _) if setting == Setting::AsAsked => {
            Ok(Transaction::begin(conn, None).await?)
        }
        (Backend::Sqlite, durability) => {
            // SQLite refuses to change it inside a transaction; every writer sets its own. (Not
            // in one statement with the `BEGIN`: sqlx refuses a custom `BEGIN` on a connection
            // whose last commit failed with a full disk, which SQLite had already rolled back.)
            let mut conn = conn.into();
            let level = match durability {
                Durability::Acknowledged => "PRAGMA synchronous = FULL",
                Durability::Bookkeeping => "PRAGMA synchronous = NORMAL",
            };
            sqlx::query(level).execute(&mut *conn).await?;
            Ok(Transaction::begin(conn, None).await?)
        }
        (Backend::Postgres, Durability::Acknowledged) => Ok(Transaction::begin(conn, None).await?),
        (Backend::Postgres, Durability::Bookkeeping) => {
            let mut tx = Transaction::begin(conn, None).await?;
            sqlx::query("SET LOCAL synchronous_commit = off")
                .execute(&mut *tx)
                .await?;
            Ok(tx)
        }
    }
}

/// Opens the writer and reader pools for `url` and migrates the schema.
pub(crate) async fn open(url: &str) -> Result<(Backend, AnyPool, AnyPool), StoreError> {
    sqlx::any::install_default_drivers();
    let backend = Backend::of_url(url).ok_or_else(|| StoreError::Scheme {
        url: redact_url(url),
    })?;
    let (writer, reader) = match backend {
        Backend::Sqlite => open_sqlite(url).await?,
        Backend::Postgres => {
            let pool = AnyPoolOptions::new()
                .max_connections(POSTGRES_CONNECTIONS)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect(url)
                .await?;
            (pool.clone(), pool)
        }
    };
    let steps = match backend {
        Backend::Sqlite => &SQLITE_MIGRATIONS,
        Backend::Postgres => &POSTGRES_MIGRATIONS,
    };
    let migrations = steps
        .iter()
        .map(|(version, name, sql)| {
            Migration::new(
                *version,
                (*name).into(),
                MigrationType::Simple,
                SqlStr::from_static(sql),
                false,
            )
        })
        .collect();
    // On PostgreSQL the migrator holds an advisory lock: replicas starting together take turns.
    Migrator::with_migrations(migrations)
        .run(&writer)
        .await
        .map_err(StoreError::Migrate)?;
    Ok((backend, writer, reader))
}

/// Creates the SQLite file's directory, then opens one writer and a few read-only readers.
async fn open_sqlite(url: &str) -> Result<(AnyPool, AnyPool), StoreError> {
    let options = SqliteConnectOptions::from_str(url).map_err(|source| StoreError::Url {
        url: redact_url(url),
        source,
    })?;
    if let Some(dir) = options.get_filename().parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
            path: dir.display().to_string(),
            source,
        })?;
    }
    let writer = AnyPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .after_connect(|conn, _| {
            Box::pin(async move { conn.execute(SQLITE_PRAGMAS).await.map(drop) })
        })
        .connect(url)
        .await?;
    let reader = AnyPoolOptions::new()
        .max_connections(SQLITE_READERS)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute(SQLITE_PRAGMAS).await?;
                conn.execute("PRAGMA query_only = ON").await.map(drop)
            })
        })
        .connect(url)
        .await?;
    Ok((writer, reader))
}

/// Set on the group commit's own connection to the SQLite file (WAL is the file's already).
const LOCAL_PRAGMAS: &str = "PRAGMA synchronous = FULL;
     PRAGMA busy_timeout = 5000;
     PRAGMA foreign_keys = ON;
     PRAGMA temp_store = MEMORY;";

/// The group commit's own connection to the SQLite file at `url`, once sqlx has created and
/// migrated it; `None` for an in-memory database, which only sqlx's connection sees.
pub(crate) fn open_local(url: &str) -> Result<Option<rusqlite::Connection>, StoreError> {
    let options = SqliteConnectOptions::from_str(url).map_err(|source| StoreError::Url {
        url: redact_url(url),
        source,
    })?;
    let path = options.get_filename();
    if path.as_os_str().is_empty() || path.as_os_str() == ":memory:" || !path.is_file() {
        return Ok(None);
    }
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.execute_batch(LOCAL_PRAGMAS)?;
    Ok(Some(conn))
}

/// The URL with its password, if any, replaced by `***`, for error messages and logs.
pub(crate) fn redact_url(url: &str) -> String {
    let (Some(start), Some(at)) = (url.find("://"), url.rfind('@')) else {
        return url.to_string();
    };
    match url
        .get(start + 3..at)
        .and_then(|creds| creds.split_once(':'))
    {
        Some((user, _)) => format!("{}{user}:***{}", &url[..start + 3], &url[at..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_are_told_by_scheme() {
        assert_eq!(
            Backend::of_url("sqlite:///data/autofix.db?mode=rwc"),
            Some(Backend::Sqlite)
        );
        assert_eq!(
            Backend::of_url("postgres://autofix@db/autofix"),
            Some(Backend::Postgres)
        );
        assert_eq!(
            Backend::of_url("postgresql://db/autofix"),
            Some(Backend::Postgres)
        );
        assert_eq!(Backend::of_url("mysql://db/autofix"), None);
        assert_eq!(Backend::of_url("autofix.db"), None);
    }

    /// The one writer connection is shared: each transaction sets its own `synchronous`, so an
    /// acknowledged commit after bookkeeping still waits for the disk.
    #[tokio::test]
    async fn each_write_transaction_commits_as_durably_as_it_asks() {
        let dir = tempfile::TempDir::new().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let (backend, writer, _reader) = open(&url).await.unwrap();
        let synchronous = |durability| {
            let writer = writer.clone();
            async move {
                let mut tx = begin_write(&writer, backend, durability).await.unwrap();
                let level: i64 = sqlx::query_scalar("PRAGMA synchronous")
                    .fetch_one(&mut *tx)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                level
            }
        };
        // SQLite numbers the levels: 1 NORMAL, 2 FULL.
        assert_eq!(synchronous(Durability::Bookkeeping).await, 1);
        assert_eq!(synchronous(Durability::Acknowledged).await, 2);
        assert_eq!(synchronous(Durability::Bookkeeping).await, 1);
        assert_eq!(synchronous(Durability::Acknowledged).await, 2);
    }

    #[test]
    fn passwords_never_reach_error_messages() {
        assert_eq!(
            redact_url("postgres://autofix:s3cret@db:5432/autofix"),
            "postgres://autofix:***@db:5432/autofix"
        );
        assert_eq!(
            redact_url("postgres://autofix@db/autofix"),
            "postgres://autofix@db/autofix"
        );
    }
}
