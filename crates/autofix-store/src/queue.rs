//! The work queue: claiming incidents under a lease, finishing, retrying and releasing them.

use crate::backend::Durability;
use crate::{Backend, Claim, ClaimedIncident, FailOutcome, Store, StoreError, millis, now_ms};
use autofix_core::alert::Alert;
use std::time::Duration;

/// The claim: the claimable incident that has waited longest becomes `running` under a new lease
/// and run token. `$1` is the worker, `$2` the lease's end, `$3` now; the lock clause goes after
/// the inner `LIMIT`.
macro_rules! claim_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE incidents
                SET state = 'running', lease_owner = $1, lease_until = $2,
                    attempts = attempts + 1, run_token = run_token + 1, updated_at = $3
              WHERE id = (
                    SELECT i.id FROM incidents i
                     WHERE ((i.state = 'queued' AND i.next_attempt_at <= $3)
                            OR (i.state = 'running' AND i.lease_until <= $3))
                       AND NOT EXISTS (
                           SELECT 1 FROM incidents r
                            WHERE r.id <> i.id AND r.state = 'running' AND r.lease_until > $3
                              AND r.cluster = i.cluster AND r.namespace = i.namespace
                              AND r.workload_name = i.workload_name)
                     ORDER BY i.next_attempt_at, i.id
                     LIMIT 1",
            $lock,
            ")
                AND (state = 'queued' OR lease_until <= $3)
             RETURNING id, run_token, attempts, incident_key"
        )
    };
}

/// SQLite has a single writer: nothing to skip.
const CLAIM_SQLITE: &str = claim_sql!("");

/// PostgreSQL: an incident row another transaction holds (an intake updating it) is skipped, not
/// waited for; the next claimable one is taken instead.
const CLAIM_POSTGRES: &str = claim_sql!(" FOR UPDATE SKIP LOCKED");

/// The most alerts a run reads of its incident: the latest notification of each, firing ones
/// first, then in the order they first came. An incident with more (an alert rule with a label
/// of unbounded values, say) is still handled, from these; the others are only counted, so a
/// run's memory and time do not grow with them.
pub const RUN_ALERT_LIMIT: usize = 1000;

/// The advisory lock key that serializes claims across PostgreSQL replicas.
const CLAIM_LOCK: i64 = 0x0061_7574_6f66_6978; // "autofix" in ASCII

impl Store {
    /// Claims the incident that has waited longest, for `worker`, until `lease` has passed.
    ///
    /// Claimable: queued incidents whose backoff is over, and running ones whose lease expired
    /// (their worker died). Never an incident whose workload (same cluster, namespace and name)
    /// is held under a live lease, so two runs never touch one workload at once. A running
    /// incident whose lease expired on its last allowed attempt is parked instead.
    pub async fn claim_next(
        &self,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<ClaimedIncident>, StoreError> {
        let now = now_ms();
        let max_attempts = i64::from(self.retry.max_attempts);
        let mut tx = self.begin_write(Durability::Bookkeeping).await?;
        if self.backend == Backend::Postgres {
            // Replicas claim one at a time, so the same-workload check below sees every live
            // claim; the lock ends with the transaction. (SQLite has one writer anyway.)
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(CLAIM_LOCK)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "UPDATE incidents SET state = 'parked', lease_owner = NULL, lease_until = NULL,
                    updated_at = $1,
                    last_error = 'abandoned: every allowed run stopped without finishing ' ||
                                 '(the process was killed or stopped); last error: ' ||
                                 COALESCE(last_error, 'none')
             WHERE state = 'running' AND lease_until <= $1 AND attempts >= $2",
        )
        .bind(now)
        .bind(max_attempts)
        .execute(&mut *tx)
        .await?;
        let claim_sql = match self.backend {
            Backend::Sqlite => CLAIM_SQLITE,
            Backend::Postgres => CLAIM_POSTGRES,
        };
        let claimed: Option<(i64, i64, i64, String)> = sqlx::query_as(claim_sql)
            .bind(worker)
            .bind(now.saturating_add(millis(lease)))
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        let Some((id, token, attempts, key)) = claimed else {
            return Ok(None);
        };
        // Read outside the claim, so that the writer is not held meanwhile: alerts are only
        // ever added, and any that came in since the claim belong to this run too. Only the
        // latest notification of each alert (by fingerprint) is read, firing ones first, then
        // in the order the alerts first came: a flapping alert's earlier notifications stay in
        // the store. Each row carries the number of alerts, counted before the limit.
        let stored: Vec<(String, i64)> = sqlx::query_as(
            "SELECT a.alert, COUNT(*) OVER () FROM alerts a
             JOIN (SELECT MIN(id) AS first, MAX(id) AS latest FROM alerts
                   WHERE incident_id = $1 GROUP BY fingerprint) per_alert ON a.id = per_alert.latest
             ORDER BY CASE WHEN a.status = 'firing' THEN 0 ELSE 1 END, per_alert.first
             LIMIT $2",
        )
        .bind(id)
        .bind(RUN_ALERT_LIMIT as i64)
        .fetch_all(&self.reader)
        .await?;
        let total = stored.first().map_or(0, |(_, total)| *total);
        Ok(Some(ClaimedIncident {
            claim: Claim {
                incident_id: id,
                token,
            },
            key,
            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            alerts_left_out: usize::try_from(total)
                .unwrap_or(0)
                .saturating_sub(stored.len()),
            alerts: stored
                .iter()
                .map(|(text, _)| parse_alert(text))
                .collect::<Result<_, _>>()?,
        }))
    }

    /// Extends the lease of a run in progress; fails when the claim is stale.
    pub async fn renew(&self, claim: &Claim, lease: Duration) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.begin_write(Durability::Bookkeeping).await?;
        let done = sqlx::query(
            "UPDATE incidents SET lease_until = $1
             WHERE id = $2 AND run_token = $3 AND state = 'running'",
        )
        .bind(now.saturating_add(millis(lease)))
        .bind(claim.incident_id)
        .bind(claim.token)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        held(claim, done.rows_affected())
    }

    /// Marks a run finished, storing its report and the fix it describes (branch, incident
    /// hash, commit, pull request, risk score, the strategy that produced it and the category),
    /// by which outcomes are later matched.
    pub async fn complete(
        &self,
        claim: &Claim,
        report: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let text = |pointer: &str| report.pointer(pointer).and_then(|v| v.as_str());
        let mut tx = self.begin_write(Durability::Bookkeeping).await?;
        let done = sqlx::query(
            "UPDATE incidents SET state = 'done', last_report = $1, last_error = NULL,
                    lease_owner = NULL, lease_until = NULL, updated_at = $2,
                    fix_branch = $3, fix_hash = $4, fix_commit = $5, fix_pr = $6, fix_risk = $7,
                    fix_source = $8, fix_category = $9
             WHERE id = $10 AND run_token = $11 AND state = 'running'",
        )
        .bind(report.to_string())
        .bind(now_ms())
        .bind(text("/branch"))
        .bind(text("/incident"))
        .bind(text("/commit"))
        .bind(report.pointer("/pr/number").and_then(|v| v.as_i64()))
        .bind(report.pointer("/risk/score").and_then(|v| v.as_f64()))
        .bind(text("/source"))
        .bind(text("/category"))
        .bind(claim.incident_id)
        .bind(claim.token)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        held(claim, done.rows_affected())
    }

    /// Records a failed run: queued again after a backoff when `retryable` and attempts remain,
    /// parked with `error` otherwise.
    pub async fn fail(
        &self,
        claim: &Claim,
        error: &str,
        retryable: bool,
    ) -> Result<FailOutcome, StoreError> {
        let now = now_ms();
        let mut tx = self.begin_write(Durability::Bookkeeping).await?;
        let attempts: Option<i64> = sqlx::query_scalar(
            "SELECT attempts FROM incidents WHERE id = $1 AND run_token = $2 AND state = 'running'",
        )
        .bind(claim.incident_id)
        .bind(claim.token)
        .fetch_optional(&mut *tx)
        .await?;
        let attempts = attempts.ok_or(StoreError::LeaseLost(claim.incident_id))?;
        let failures = u32::try_from(attempts).unwrap_or(u32::MAX);
        let outcome = if retryable && failures < self.retry.max_attempts {
            FailOutcome::Retry {
                after: self.retry.backoff(failures),
            }
        } else {
            FailOutcome::Parked
        };
        let (state, next_attempt_at, error) = match outcome {
            FailOutcome::Retry { after } => (
                "queued",
                now.saturating_add(millis(after)),
                error.to_string(),
            ),
            FailOutcome::Parked if retryable => (
                "parked",
                now,
                format!("gave up after {failures} attempts: {error}"),
            ),
            FailOutcome::Parked => ("parked", now, error.to_string()),
        };
        sqlx::query(
            "UPDATE incidents SET state = $1, last_error = $2, next_attempt_at = $3,
                    lease_owner = NULL, lease_until = NULL, updated_at = $4
             WHERE id = $5",
        )
        .bind(state)
        .bind(error)
        .bind(next_attempt_at)
        .bind(now)
        .bind(claim.incident_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Gives a run back unfinished (shutdown): queued again at once, the attempt not counted,
    /// `last_error` saying it was interrupted.
    pub async fn release(&self, claim: &Claim) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.begin_write(Durability::Bookkeeping).await?;
        let done = sqlx::query(
            "UPDATE incidents SET state = 'queued', lease_owner = NULL, lease_until = NULL,
                    attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END,
                    last_error = 'interrupted: the service shut down before the run finished; \
                                  queued again',
                    next_attempt_at = $1, updated_at = $2
             WHERE id = $3 AND run_token = $4 AND state = 'running'",
        )
        .bind(now)
        .bind(now)
        .bind(claim.incident_id)
        .bind(claim.token)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        held(claim, done.rows_affected())
    }

    /// How long until some incident becomes claimable (zero if one is now); `None` when nothing
    /// is queued or running.
    pub async fn next_work_in(&self) -> Result<Option<Duration>, StoreError> {
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(t) FROM (
                 SELECT next_attempt_at AS t FROM incidents WHERE state = 'queued'
                 UNION ALL
                 SELECT lease_until AS t FROM incidents WHERE state = 'running'
             ) due",
        )
        .fetch_one(&self.reader)
        .await?;
        Ok(due.map(|at| {
            Duration::from_millis(u64::try_from(at.saturating_sub(now_ms())).unwrap_or(0))
        }))
    }
}

/// `Ok` when the claim's update hit its row, [`StoreError::LeaseLost`] otherwise.
fn held(claim: &Claim, rows: u64) -> Result<(), StoreError> {
    if rows == 0 {
        Err(StoreError::LeaseLost(claim.incident_id))
    } else {
        Ok(())
    }
}

/// A stored alert.
fn parse_alert(text: &str) -> Result<Alert, StoreError> {
    serde_json::from_str(text).map_err(|source| StoreError::Json {
        what: "alert",
        source,
    })
}
