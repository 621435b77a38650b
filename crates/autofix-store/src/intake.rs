//! Recording a webhook delivery: dedup, grouping into incidents, queueing new work.

use crate::outcomes::follow_merge;
use crate::{DeliveryOutcome, IncidentId, IncidentState, Store, StoreError, now_ms};
use autofix_core::alert::{Alert, AlertStatus, WebhookPayload};
use autofix_core::incident::DEFAULT_CLUSTER;
use autofix_core::workload_hint;
use sha2::{Digest, Sha256};
use sqlx::{Acquire, AnyConnection, AnyPool};
use std::collections::BTreeSet;
use std::time::Duration;

/// Workload kind recorded for incidents of alerts that name a namespace but no workload.
const NAMESPACE_KIND: &str = "Namespace";

/// Why an `ignored` incident is not acted on.
const IGNORED_REASON: &str =
    "the alerts name a namespace but no workload or pod: recorded, not acted on";

/// How many times a delivery is recorded before a conflict with another replica is an error.
const CONFLICT_TRIES: u32 = 8;

/// Where a new alert goes.
struct Target {
    key: String,
    cluster: String,
    namespace: String,
    kind: String,
    name: String,
    /// False for namespace-level alerts, which get an `ignored` incident.
    actionable: bool,
}

impl Store {
    /// Records one delivery, committed before this returns.
    ///
    /// New alerts are attached to their workload's incident: a firing one creates the incident
    /// (queued) or puts a `done`/`parked` one back in the queue; a resolved one is recorded on
    /// it. Re-deliveries change nothing. For an incident whose fix was merged, a new firing
    /// alert within the recurrence window records `recurred`, and the last alert resolving
    /// records `resolved` ([`DeliveryOutcome::outcomes`]). With `max_queued`, a delivery that would make more
    /// incidents wait than that is refused as a whole ([`StoreError::QueueFull`]).
    ///
    /// On SQLite, deliveries arriving together share one transaction and one `fsync` (group
    /// commit, [`crate::group`]), each in its own savepoint so that one refused delivery leaves
    /// the others in. On PostgreSQL two replicas may record overlapping deliveries at once; the
    /// one that loses the race on a unique key (or a deadlock) rolls back and records again,
    /// then finding the other's rows.
    pub async fn record_delivery(
        &self,
        payload: &WebhookPayload,
        max_queued: Option<u64>,
    ) -> Result<DeliveryOutcome, StoreError> {
        if let Some(group) = &self.group
            && let Some(answer) = group
                .submit(payload, max_queued, self.recurrence_window)
                .await
        {
            return answer;
        }
        let mut tries = 1;
        loop {
            match self.record_alone(payload, max_queued).await {
                Err(e) if tries < CONFLICT_TRIES && e.is_conflict() => tries += 1,
                result => return result,
            }
        }
    }

    /// One delivery in a transaction of its own.
    async fn record_alone(
        &self,
        payload: &WebhookPayload,
        max_queued: Option<u64>,
    ) -> Result<DeliveryOutcome, StoreError> {
        let mut tx = self.writer.begin().await?;
        let mut depth = queued_now(&mut tx).await?;
        let delivery = Delivery {
            payload,
            max_queued,
            recurrence_window: self.recurrence_window,
        };
        let outcome = record_in(&mut tx, &delivery, &mut depth).await?;
        tx.commit().await?;
        Ok(outcome)
    }
}

/// One delivery to record, with the limits that apply to it.
#[derive(Clone, Copy)]
pub(crate) struct Delivery<'a> {
    /// The webhook body.
    pub payload: &'a WebhookPayload,
    /// Refuse the delivery if more incidents than this would wait.
    pub max_queued: Option<u64>,
    /// A firing alert this long after a merge is a recurrence.
    pub recurrence_window: Duration,
}

/// Records several deliveries in one transaction, each in a savepoint: the answers come in the
/// order of `deliveries`, and a refused delivery leaves no row behind.
pub(crate) async fn record_together(
    writer: &AnyPool,
    deliveries: &[Delivery<'_>],
) -> Result<Vec<Result<DeliveryOutcome, StoreError>>, StoreError> {
    let mut tx = writer.begin().await?;
    let mut depth = queued_now(&mut tx).await?;
    let mut answers = Vec::with_capacity(deliveries.len());
    for delivery in deliveries {
        let before = depth;
        let mut savepoint = (&mut *tx).begin().await?;
        match record_in(&mut savepoint, delivery, &mut depth).await {
            Ok(outcome) => {
                savepoint.commit().await?;
                answers.push(Ok(outcome));
            }
            Err(e) => {
                savepoint.rollback().await?;
                depth = before;
                answers.push(Err(e));
            }
        }
    }
    tx.commit().await?;
    Ok(answers)
}

/// Records one delivery inside the caller's transaction; `depth` is the queue's length, kept up
/// to date for the next delivery of the same transaction.
async fn record_in(
    conn: &mut AnyConnection,
    delivery: &Delivery<'_>,
    depth: &mut i64,
) -> Result<DeliveryOutcome, StoreError> {
    let Delivery {
        payload,
        max_queued,
        recurrence_window,
    } = *delivery;
    let now = now_ms();
    let mut outcome = DeliveryOutcome::default();
    let mut touched: BTreeSet<IncidentId> = BTreeSet::new();
    let mut fired: BTreeSet<IncidentId> = BTreeSet::new();
    for alert in &payload.alerts {
        let fingerprint = fingerprint_of(alert);
        let status = match alert.status {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
        };
        let seen: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM alerts WHERE fingerprint = $1 AND starts_at = $2 AND status = $3",
        )
        .bind(&fingerprint)
        .bind(&alert.starts_at)
        .bind(status)
        .fetch_optional(&mut *conn)
        .await?;
        if seen.is_some() {
            outcome.duplicates += 1;
            continue;
        }
        outcome.new_alerts += 1;
        let target = target_of(alert);
        if target.as_ref().is_none_or(|t| !t.actionable) {
            outcome.ignored += 1;
        }
        let incident = match &target {
            None => None,
            Some(target) => {
                let existing: Option<(i64, String)> =
                    sqlx::query_as("SELECT id, state FROM incidents WHERE incident_key = $1")
                        .bind(&target.key)
                        .fetch_optional(&mut *conn)
                        .await?;
                match (existing, alert.status) {
                    (Some((id, state)), AlertStatus::Firing) => {
                        let state = IncidentState::parse(&state);
                        if matches!(state, Some(IncidentState::Done | IncidentState::Parked)) {
                            admit(depth, max_queued)?;
                            requeue(conn, id, now).await?;
                            outcome.incidents_queued += 1;
                        }
                        Some(id)
                    }
                    (Some((id, _)), AlertStatus::Resolved) => Some(id),
                    (None, AlertStatus::Firing) => {
                        if target.actionable {
                            admit(depth, max_queued)?;
                            outcome.incidents_queued += 1;
                        }
                        Some(create(conn, target, now).await?)
                    }
                    // Resolved before any incident existed: nothing to act on.
                    (None, AlertStatus::Resolved) => None,
                }
            }
        };
        let labels = serde_json::to_string(&alert.labels).map_err(|source| StoreError::Json {
            what: "alert labels",
            source,
        })?;
        let stored = Alert {
            fingerprint: fingerprint.clone(),
            ..alert.clone()
        };
        let body = serde_json::to_string(&stored).map_err(|source| StoreError::Json {
            what: "alert",
            source,
        })?;
        sqlx::query(
            "INSERT INTO alerts
               (fingerprint, starts_at, status, alertname, labels, alert, received_at, incident_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&fingerprint)
        .bind(&alert.starts_at)
        .bind(status)
        .bind(alert.name())
        .bind(labels)
        .bind(body)
        .bind(now)
        .bind(incident)
        .execute(&mut *conn)
        .await?;
        touched.extend(incident);
        if alert.status == AlertStatus::Firing {
            fired.extend(incident);
        }
    }
    for id in &touched {
        refresh_resolved(conn, *id, now).await?;
        let told = follow_merge(conn, recurrence_window, *id, fired.contains(id), now).await?;
        outcome.outcomes.extend(told);
    }
    outcome.incidents_touched = touched.into_iter().collect();
    Ok(outcome)
}

/// How many incidents wait in the queue now.
async fn queued_now(conn: &mut AnyConnection) -> Result<i64, StoreError> {
    let depth = sqlx::query_scalar("SELECT COUNT(*) FROM incidents WHERE state = 'queued'")
        .fetch_one(conn)
        .await?;
    Ok(depth)
}

/// Counts one more queued incident, or refuses it when the queue is full.
fn admit(depth: &mut i64, max_queued: Option<u64>) -> Result<(), StoreError> {
    let queued = u64::try_from(*depth).unwrap_or(0);
    if let Some(limit) = max_queued
        && queued >= limit
    {
        return Err(StoreError::QueueFull {
            depth: queued,
            limit,
        });
    }
    *depth += 1;
    Ok(())
}

/// The incident a new alert belongs to; `None` for cluster-wide alerts (no namespace).
fn target_of(alert: &Alert) -> Option<Target> {
    let cluster = alert
        .label("cluster")
        .unwrap_or(DEFAULT_CLUSTER)
        .to_string();
    let namespace = alert.label("namespace")?.to_string();
    let (kind, name, actionable) = match workload_hint(&alert.labels) {
        Some(hint) => (hint.kind_str().to_string(), hint.name, true),
        None => (NAMESPACE_KIND.to_string(), namespace.clone(), false),
    };
    Some(Target {
        key: format!("{cluster}/{namespace}/{kind}/{name}"),
        cluster,
        namespace,
        kind,
        name,
        actionable,
    })
}

/// The alert's fingerprint; Alertmanager always sends one, a hash of the labels stands in if not.
fn fingerprint_of(alert: &Alert) -> String {
    if !alert.fingerprint.is_empty() {
        return alert.fingerprint.clone();
    }
    let mut hasher = Sha256::new();
    for (name, value) in &alert.labels {
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(value.as_bytes());
        hasher.update([0]);
    }
    let digest = hasher.finalize();
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("labels:{hex}")
}

/// Creates an incident: queued when it names a workload, `ignored` otherwise.
async fn create(
    conn: &mut AnyConnection,
    target: &Target,
    now: i64,
) -> Result<IncidentId, StoreError> {
    let (state, reason) = if target.actionable {
        (IncidentState::Queued, None)
    } else {
        (IncidentState::Ignored, Some(IGNORED_REASON))
    };
    let id = sqlx::query_scalar(
        "INSERT INTO incidents (incident_key, cluster, namespace, workload_kind, workload_name,
                                state, last_error, next_attempt_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
    )
    .bind(&target.key)
    .bind(&target.cluster)
    .bind(&target.namespace)
    .bind(&target.kind)
    .bind(&target.name)
    .bind(state.as_str())
    .bind(reason)
    .bind(now)
    .bind(now)
    .bind(now)
    .fetch_one(conn)
    .await?;
    Ok(id)
}

/// Puts a finished or parked incident back in the queue for a new round of work.
async fn requeue(conn: &mut AnyConnection, id: IncidentId, now: i64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE incidents SET state = 'queued', attempts = 0, last_error = NULL,
                next_attempt_at = $1, updated_at = $2
         WHERE id = $3",
    )
    .bind(now)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Sets the resolved flag: every firing alert of the incident has a resolved notification.
async fn refresh_resolved(
    conn: &mut AnyConnection,
    id: IncidentId,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE incidents SET updated_at = $1, resolved = CASE WHEN EXISTS (
             SELECT 1 FROM alerts f WHERE f.incident_id = $2 AND f.status = 'firing'
               AND NOT EXISTS (SELECT 1 FROM alerts r WHERE r.fingerprint = f.fingerprint
                               AND r.starts_at = f.starts_at AND r.status = 'resolved'))
           THEN 0 ELSE 1 END
         WHERE id = $3",
    )
    .bind(now)
    .bind(id)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}
