//! What became of each fix: outcomes recorded from GitHub events and from Alertmanager after a
//! merge, looked up by the fix's branch, incident hash or commit as its last run report gives
//! them.

use crate::backend::Durability;
use crate::{IncidentId, Store, StoreError, millis, now_ms};
use autofix_calibrate::Outcome;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use std::time::Duration;

/// A query for fixes, read from the fix columns of incidents' last runs, with the given `WHERE`
/// clause (a literal, so the SQL stays static).
macro_rules! fixes_where {
    ($condition:literal) => {
        concat!(
            "SELECT id, fix_hash AS hash, fix_branch AS branch, fix_risk AS risk, fix_pr AS pr,
                    fix_commit AS sha, fix_source AS source, fix_category AS category
             FROM incidents WHERE fix_branch IS NOT NULL AND ",
            $condition
        )
    };
}

/// A proposed fix, as its incident's last run report describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Fix {
    /// The incident.
    pub incident_id: IncidentId,
    /// The incident key's short hash (`Autofix-Incident:` trailer, MLflow `incident` tag).
    pub incident_hash: String,
    /// The fix branch.
    pub branch: String,
    /// The risk score when the fix was proposed.
    pub risk_score: Option<f64>,
    /// The pull request, if one was opened.
    pub pr_number: Option<u64>,
    /// The fix commit on the branch.
    pub commit: Option<String>,
    /// The strategy that produced it (`rule`, `revert-to-last-good`, `llm`, `llm-narrowed`).
    pub source: Option<String>,
    /// The incident's category (`oom_killed`, ...).
    pub category: Option<String>,
}

/// An outcome to record for a fix.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOutcome<'a> {
    /// The fix.
    pub fix: &'a Fix,
    /// What became of it.
    pub outcome: Outcome,
    /// The pull request; `None` takes that of the fix's latest merge, else of its report.
    pub pr_number: Option<u64>,
    /// The merge commit of a merged pull request.
    pub commit_sha: Option<&'a str>,
    /// `X-GitHub-Delivery` of the event that told.
    pub delivery_id: &'a str,
}

/// A recorded outcome, as `GET /incidents` and the MLflow marking see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutcomeRecord {
    /// Row id.
    pub id: i64,
    /// The incident.
    pub incident_id: IncidentId,
    /// The incident key's short hash.
    pub incident_hash: String,
    /// The fix branch.
    pub branch: String,
    /// What became of the fix.
    pub outcome: Outcome,
    /// The fix's risk score when proposed, if known.
    pub risk_score: Option<f64>,
    /// The pull request (0 when unknown).
    pub pr_number: u64,
    /// The merge commit, for `merged`.
    pub commit_sha: Option<String>,
    /// The GitHub delivery, or `alertmanager:<ms>` for `resolved` and `recurred`.
    pub delivery_id: String,
    /// When it was recorded (ms since the Unix epoch).
    pub recorded_at: i64,
    /// The strategy that produced the fix, when known.
    pub source: Option<String>,
    /// The incident's category, when known.
    pub category: Option<String>,
}

impl Store {
    /// The fix whose branch is `branch`.
    pub async fn fix_by_branch(&self, branch: &str) -> Result<Option<Fix>, StoreError> {
        let row = sqlx::query(fixes_where!("fix_branch = $1"))
            .bind(branch)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(fix_from_row).transpose()
    }

    /// The fix of the incident with this short hash, if its last run proposed one.
    pub async fn fix_by_hash(&self, hash: &str) -> Result<Option<Fix>, StoreError> {
        let row = sqlx::query(fixes_where!("fix_hash = $1"))
            .bind(hash)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(fix_from_row).transpose()
    }

    /// The fix whose commit or recorded merge commit starts with `sha` (at least 7 hex digits).
    pub async fn fix_by_commit(&self, sha: &str) -> Result<Option<Fix>, StoreError> {
        if sha.len() < 7 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let pattern = format!("{}%", sha.to_ascii_lowercase());
        let row = sqlx::query(fixes_where!(
            "(fix_commit LIKE $1
              OR id IN (SELECT incident_id FROM outcomes WHERE commit_sha LIKE $1))"
        ))
        .bind(pattern)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(fix_from_row).transpose()
    }

    /// True when outcomes were already recorded from this GitHub delivery.
    pub async fn delivery_recorded(&self, delivery_id: &str) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outcomes WHERE delivery_id = $1")
            .bind(delivery_id)
            .fetch_one(&self.reader)
            .await?;
        Ok(n > 0)
    }

    /// Records an outcome; `None` when this outcome of this pull request was already recorded.
    pub async fn record_outcome(
        &self,
        new: &NewOutcome<'_>,
    ) -> Result<Option<OutcomeRecord>, StoreError> {
        let mut tx = self.begin_write(Durability::Acknowledged).await?;
        let pr_number = match new.pr_number {
            Some(n) => n,
            None => latest_merge(&mut tx, new.fix.incident_id)
                .await?
                .map(|(pr, _)| pr)
                .or(new.fix.pr_number)
                .unwrap_or(0),
        };
        let recorded = insert(
            &mut tx,
            new.fix,
            new.outcome,
            pr_number,
            new.commit_sha,
            new.delivery_id,
            now_ms(),
        )
        .await?;
        tx.commit().await?;
        Ok(recorded)
    }

    /// Every outcome, oldest first.
    pub async fn list_outcomes(&self) -> Result<Vec<OutcomeRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM outcomes ORDER BY id")
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(outcome_from_row).collect()
    }
}

/// What a delivery told about an incident whose fix was merged: `recurred` when a new alert
/// fires within the recurrence window of the merge, else `resolved` when every alert has
/// resolved. Nothing once the fix was reverted; each outcome once per pull request.
pub(crate) async fn follow_merge(
    conn: &mut AnyConnection,
    recurrence_window: Duration,
    incident_id: IncidentId,
    fired: bool,
    now: i64,
) -> Result<Option<OutcomeRecord>, StoreError> {
    let Some((pr, merged_at)) = latest_merge(conn, incident_id).await? else {
        return Ok(None);
    };
    let reverted: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM outcomes WHERE incident_id = $1 AND pr_number = $2
           AND outcome = 'reverted'",
    )
    .bind(incident_id)
    .bind(i64::try_from(pr).unwrap_or(i64::MAX))
    .fetch_one(&mut *conn)
    .await?;
    if reverted > 0 {
        return Ok(None);
    }
    let outcome = if fired {
        if now.saturating_sub(merged_at) > millis(recurrence_window) {
            return Ok(None);
        }
        Outcome::Recurred
    } else {
        let resolved: i64 = sqlx::query_scalar("SELECT resolved FROM incidents WHERE id = $1")
            .bind(incident_id)
            .fetch_one(&mut *conn)
            .await?;
        if resolved == 0 {
            return Ok(None);
        }
        Outcome::Resolved
    };
    let Some(row) = sqlx::query(fixes_where!("id = $1"))
        .bind(incident_id)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let fix = fix_from_row(&row)?;
    let delivery = format!("alertmanager:{now}");
    insert(conn, &fix, outcome, pr, None, &delivery, now).await
}

/// The pull request and time of the incident's latest `merged` outcome.
async fn latest_merge(
    conn: &mut AnyConnection,
    incident_id: IncidentId,
) -> Result<Option<(u64, i64)>, StoreError> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "SELECT pr_number, recorded_at FROM outcomes WHERE incident_id = $1 AND outcome = 'merged'
         ORDER BY id DESC LIMIT 1",
    )
    .bind(incident_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|(pr, at)| (u64::try_from(pr).unwrap_or(0), at)))
}

/// Inserts an outcome unless this outcome of this pull request is already recorded.
async fn insert(
    conn: &mut AnyConnection,
    fix: &Fix,
    outcome: Outcome,
    pr_number: u64,
    commit_sha: Option<&str>,
    delivery_id: &str,
    now: i64,
) -> Result<Option<OutcomeRecord>, StoreError> {
    let row = sqlx::query(
        "INSERT INTO outcomes (incident_id, incident_hash, branch, outcome, risk_score, pr_number,
                               commit_sha, delivery_id, recorded_at, source, category)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (incident_id, pr_number, outcome) DO NOTHING
         RETURNING *",
    )
    .bind(fix.incident_id)
    .bind(&fix.incident_hash)
    .bind(&fix.branch)
    .bind(outcome.as_str())
    .bind(fix.risk_score)
    .bind(i64::try_from(pr_number).unwrap_or(i64::MAX))
    .bind(commit_sha.map(str::to_ascii_lowercase))
    .bind(delivery_id)
    .bind(now)
    .bind(fix.source.as_deref())
    .bind(fix.category.as_deref())
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(outcome_from_row).transpose()
}

/// Reads one `fixes_where!` row.
fn fix_from_row(row: &AnyRow) -> Result<Fix, StoreError> {
    Ok(Fix {
        incident_id: row.try_get("id")?,
        incident_hash: row
            .try_get::<Option<String>, _>("hash")?
            .unwrap_or_default(),
        branch: row
            .try_get::<Option<String>, _>("branch")?
            .unwrap_or_default(),
        risk_score: row.try_get("risk")?,
        pr_number: row
            .try_get::<Option<i64>, _>("pr")?
            .and_then(|n| u64::try_from(n).ok()),
        commit: row.try_get("sha")?,
        source: row.try_get("source")?,
        category: row.try_get("category")?,
    })
}

/// Reads one `outcomes` row.
fn outcome_from_row(row: &AnyRow) -> Result<OutcomeRecord, StoreError> {
    let outcome: String = row.try_get("outcome")?;
    Ok(OutcomeRecord {
        id: row.try_get("id")?,
        incident_id: row.try_get("incident_id")?,
        incident_hash: row.try_get("incident_hash")?,
        branch: row.try_get("branch")?,
        outcome: outcome
            .parse()
            .map_err(|e: autofix_calibrate::UnknownOutcome| {
                StoreError::Db(sqlx::Error::Decode(e.into()))
            })?,
        risk_score: row.try_get("risk_score")?,
        pr_number: u64::try_from(row.try_get::<i64, _>("pr_number")?).unwrap_or(0),
        commit_sha: row.try_get("commit_sha")?,
        delivery_id: row.try_get("delivery_id")?,
        recorded_at: row.try_get("recorded_at")?,
        source: row.try_get("source")?,
        category: row.try_get("category")?,
    })
}
