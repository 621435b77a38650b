//! The work queue: claiming incidents under a lease, finishing, retrying and releasing them.

use crate::{Claim, ClaimedIncident, FailOutcome, Store, StoreError, millis, now_ms};
use autofix_core::alert::Alert;
use std::collections::HashMap;
use std::time::Duration;

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
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "UPDATE incidents SET state = 'parked', lease_owner = NULL, lease_until = NULL,
                    updated_at = ?,
                    last_error = 'abandoned: every allowed run stopped without finishing ' ||
                                 '(the process was killed or stopped); last error: ' ||
                                 COALESCE(last_error, 'none')
             WHERE state = 'running' AND lease_until <= ? AND attempts >= ?",
        )
        .bind(now)
        .bind(now)
        .bind(max_attempts)
        .execute(&mut *tx)
        .await?;
        let claimed: Option<(i64, i64, i64, String)> = sqlx::query_as(
            "UPDATE incidents
                SET state = 'running', lease_owner = ?, lease_until = ?,
                    attempts = attempts + 1, run_token = run_token + 1, updated_at = ?
              WHERE id = (
                    SELECT i.id FROM incidents i
                     WHERE ((i.state = 'queued' AND i.next_attempt_at <= ?)
                            OR (i.state = 'running' AND i.lease_until <= ?))
                       AND NOT EXISTS (
                           SELECT 1 FROM incidents r
                            WHERE r.id <> i.id AND r.state = 'running' AND r.lease_until > ?
                              AND r.cluster = i.cluster AND r.namespace = i.namespace
                              AND r.workload_name = i.workload_name)
                     ORDER BY i.next_attempt_at, i.id
                     LIMIT 1)
                AND (state = 'queued' OR lease_until <= ?)
             RETURNING id, run_token, attempts, incident_key",
        )
        .bind(worker)
        .bind(now.saturating_add(millis(lease)))
        .bind(now)
        .bind(now)
        .bind(now)
        .bind(now)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((id, token, attempts, key)) = claimed else {
            tx.commit().await?;
            return Ok(None);
        };
        let stored: Vec<String> =
            sqlx::query_scalar("SELECT alert FROM alerts WHERE incident_id = ? ORDER BY id")
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(Some(ClaimedIncident {
            claim: Claim {
                incident_id: id,
                token,
            },
            key,
            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            alerts: latest_per_alert(&stored)?,
        }))
    }

    /// Extends the lease of a run in progress; fails when the claim is stale.
    pub async fn renew(&self, claim: &Claim, lease: Duration) -> Result<(), StoreError> {
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE incidents SET lease_until = ?
             WHERE id = ? AND run_token = ? AND state = 'running'",
        )
        .bind(now.saturating_add(millis(lease)))
        .bind(claim.incident_id)
        .bind(claim.token)
        .execute(&self.writer)
        .await?;
        held(claim, done.rows_affected())
    }

    /// Marks a run finished, storing its report.
    pub async fn complete(
        &self,
        claim: &Claim,
        report: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE incidents SET state = 'done', last_report = ?, last_error = NULL,
                    lease_owner = NULL, lease_until = NULL, updated_at = ?
             WHERE id = ? AND run_token = ? AND state = 'running'",
        )
        .bind(report.to_string())
        .bind(now_ms())
        .bind(claim.incident_id)
        .bind(claim.token)
        .execute(&self.writer)
        .await?;
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
        let mut tx = self.writer.begin().await?;
        let attempts: Option<i64> = sqlx::query_scalar(
            "SELECT attempts FROM incidents WHERE id = ? AND run_token = ? AND state = 'running'",
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
            "UPDATE incidents SET state = ?, last_error = ?, next_attempt_at = ?,
                    lease_owner = NULL, lease_until = NULL, updated_at = ?
             WHERE id = ?",
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

    /// Gives a run back unfinished (shutdown): queued again at once, the attempt not counted.
    pub async fn release(&self, claim: &Claim) -> Result<(), StoreError> {
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE incidents SET state = 'queued', lease_owner = NULL, lease_until = NULL,
                    attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END,
                    next_attempt_at = ?, updated_at = ?
             WHERE id = ? AND run_token = ? AND state = 'running'",
        )
        .bind(now)
        .bind(now)
        .bind(claim.incident_id)
        .bind(claim.token)
        .execute(&self.writer)
        .await?;
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

/// The latest notification of each alert (by fingerprint), in order of first arrival.
fn latest_per_alert(stored: &[String]) -> Result<Vec<Alert>, StoreError> {
    let mut order: Vec<String> = Vec::new();
    let mut latest: HashMap<String, Alert> = HashMap::new();
    for text in stored {
        let alert: Alert = serde_json::from_str(text).map_err(|source| StoreError::Json {
            what: "alert",
            source,
        })?;
        if !latest.contains_key(&alert.fingerprint) {
            order.push(alert.fingerprint.clone());
        }
        latest.insert(alert.fingerprint.clone(), alert);
    }
    Ok(order
        .into_iter()
        .filter_map(|fingerprint| latest.remove(&fingerprint))
        .collect())
}
