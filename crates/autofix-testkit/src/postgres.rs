//! A fresh PostgreSQL database per test, in the server `scripts/postgres-server.sh` started.
//!
//! The server's URL comes from `AUTOFIX_TEST_POSTGRES` (`postgres://postgres@127.0.0.1:PORT/postgres`).
//! Without it, PostgreSQL tests skip, unless `AUTOFIX_REQUIRE_POSTGRES` is set (as
//! `scripts/test-all.sh` does), in which case they fail: CI never silently skips a backend.

use sqlx::migrate::MigrateDatabase;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The variable naming the test PostgreSQL server.
pub const POSTGRES_ENV: &str = "AUTOFIX_TEST_POSTGRES";

/// Creates an empty database on the test server and returns its URL; `None` (with a note on
/// stderr) when no server is configured and none is required.
///
/// # Panics
/// When the server is required but not configured, or cannot create the database.
pub async fn fresh_postgres_database() -> Option<String> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let Ok(server) = std::env::var(POSTGRES_ENV) else {
        assert!(
            std::env::var_os("AUTOFIX_REQUIRE_POSTGRES").is_none(),
            "AUTOFIX_REQUIRE_POSTGRES is set but {POSTGRES_ENV} is not: start one with scripts/postgres-server.sh"
        );
        eprintln!(
            "skipping the PostgreSQL case: {POSTGRES_ENV} is not set (scripts/test-all.sh sets it)"
        );
        return None;
    };
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let name = format!(
        "autofix_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let base = server
        .rsplit_once('/')
        .map_or(server.as_str(), |(base, _)| base);
    let url = format!("{base}/{name}");
    sqlx::any::install_default_drivers();
    sqlx::Any::create_database(&url)
        .await
        .unwrap_or_else(|e| panic!("cannot create database {name} on {server}: {e}"));
    Some(url)
}
