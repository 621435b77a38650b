//! Recording a webhook delivery: dedup, grouping into incidents, queueing new work.

use crate::backend::{Durability, Setting, begin_on};
use crate::outcomes::follow_merge;
use crate::{Backend, DeliveryOutcome, IncidentId, IncidentState, Store, StoreError, now_ms};
use autofix_core::alert::{Alert, AlertStatus, WebhookPayload};
use autofix_core::incident::DEFAULT_CLUSTER;
use autofix_core::workload_hint;
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, AssertSqlSafe};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

/// Workload kind recorded for incidents of alerts that name a namespace but no workload.
const NAMESPACE_KIND: &str = "Namespace";

/// Why an `ignored` incident is not acted on.
const IGNORED_REASON: &str =
    "the alerts name a namespace but no workload or pod: recorded, not acted on";

/// How many times a delivery is recorded before a conflict with another replica is an error.
const CONFLICT_TRIES: u32 = 8;

/// Most bind parameters one statement carries: a group of deliveries is a handful of statements,
/// well under SQLite's limit of 32,766 and PostgreSQL's of 65,535.
const MOST_PARAMETERS: usize = 4000;

/// Where a new alert goes.
#[derive(Clone)]
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
    /// records `resolved` ([`DeliveryOutcome::outcomes`]). With `max_queued`, a delivery that
    /// would make more incidents wait than that is refused as a whole ([`StoreError::QueueFull`]).
    ///
    /// On SQLite, deliveries arriving together share one transaction and one `fsync` (group
    /// commit, [`crate::group`]); a refused one leaves the others in. On PostgreSQL two replicas may record overlapping deliveries at once; the
    /// one that loses the race on a unique key (or a deadlock) rolls back and records again,
    /// then finding the other's rows.
    pub async fn record_delivery(
        &self,
        payload: &WebhookPayload,
        max_queued: Option<u64>,
    ) -> Result<DeliveryOutcome, StoreError> {
        let mut delivery = Delivery::prepare(payload, max_queued, self.recurrence_window)?;
        if let Some(group) = &self.group {
            match group.submit(delivery).await {
                Ok(answer) => return answer,
                Err(back) => delivery = back,
            }
        }
        let mut tries = 1;
        loop {
            match self.record_alone(delivery.clone()).await {
                Err(e) if tries < CONFLICT_TRIES && e.is_conflict() => tries += 1,
                result => return result,
            }
        }
    }

    /// One delivery in a transaction of its own.
    async fn record_alone(&self, delivery: Delivery) -> Result<DeliveryOutcome, StoreError> {
        let mut conn = self.writer.acquire().await?;
        let mut answers =
            record_together(&mut conn, self.backend, vec![delivery], Setting::Unknown).await?;
        answers.pop().expect("one answer per delivery")
    }
}

/// One delivery to record, its alerts already worked out, with the limits that apply to it.
#[derive(Clone)]
pub(crate) struct Delivery {
    /// The delivery's alerts, in the order of the webhook body.
    alerts: Vec<PreparedAlert>,
    /// Refuse the delivery if more incidents than this would wait.
    max_queued: Option<u64>,
    /// A firing alert this long after a merge is a recurrence.
    recurrence_window: Duration,
}

/// An alert as the writer needs it: its identity, its incident, and its row if it is new.
#[derive(Clone)]
struct PreparedAlert {
    key: AlertKey,
    target: Option<Target>,
    status: AlertStatus,
    alertname: String,
    /// The alert as stored (JSON).
    body: String,
}

impl Delivery {
    /// Works out each alert's identity, incident and stored form. This runs in the caller's
    /// task, beside other callers, so that the writer, whom deliveries wait for in turn, does
    /// only the part that must be serial.
    pub(crate) fn prepare(
        payload: &WebhookPayload,
        max_queued: Option<u64>,
        recurrence_window: Duration,
    ) -> Result<Delivery, StoreError> {
        let alerts = payload
            .alerts
            .iter()
            .map(|alert| {
                let key = alert_key(alert);
                let body = if alert.fingerprint == key.0 {
                    json(alert, "alert")?
                } else {
                    let stored = Alert {
                        fingerprint: key.0.clone(),
                        ..alert.clone()
                    };
                    json(&stored, "alert")?
                };
                Ok(PreparedAlert {
                    target: target_of(alert),
                    status: alert.status,
                    alertname: alert.name().to_string(),
                    body,
                    key,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Delivery {
            alerts,
            max_queued,
            recurrence_window,
        })
    }
}

/// Records several deliveries in one transaction: the answers come in the order of
/// `deliveries`, and a refused delivery leaves no row behind.
///
/// The number of statements does not grow with the number of alerts: one read finds which of
/// the group's alerts are already recorded, one the incidents they belong to; every delivery is
/// then planned in memory in arrival order ([`Plan`]), and the plan is written with a few
/// multi-row statements. Merge follow-ups (`resolved`, `recurred`) are judged on the state the
/// whole group leaves.
pub(crate) async fn record_together(
    conn: &mut AnyConnection,
    backend: Backend,
    deliveries: Vec<Delivery>,
    setting: Setting,
) -> Result<Vec<Result<DeliveryOutcome, StoreError>>, StoreError> {
    let now = now_ms();
    let windows: Vec<Duration> = deliveries.iter().map(|d| d.recurrence_window).collect();
    let mut tx = begin_on(conn, backend, Durability::Acknowledged, setting).await?;
    let mut plan = Plan::load(&mut tx, backend, &deliveries).await?;
    let planned: Vec<Result<Planned, StoreError>> = deliveries
        .into_iter()
        .map(|delivery| {
            let share = plan.share_of(delivery)?;
            Ok(plan.accept(share))
        })
        .collect();
    let ids = plan.write(&mut tx, now).await?;
    let merged = merged_among(&mut tx, backend, ids.values().copied()).await?;
    let mut answers = Vec::with_capacity(planned.len());
    for (planned, window) in planned.into_iter().zip(windows) {
        let Ok(Planned {
            mut outcome,
            touched,
            fired,
        }) = planned
        else {
            answers.push(planned.map(|p| p.outcome));
            continue;
        };
        let id_of = |key: &String| ids.get(key).copied();
        let touched: BTreeSet<IncidentId> = touched.iter().filter_map(id_of).collect();
        let fired: BTreeSet<IncidentId> = fired.iter().filter_map(id_of).collect();
        for id in touched.iter().filter(|id| merged.contains(id)) {
            let told = follow_merge(&mut tx, window, *id, fired.contains(id), now).await?;
            outcome.outcomes.extend(told);
        }
        outcome.incidents_touched = touched.into_iter().collect();
        answers.push(Ok(outcome));
    }
    tx.commit().await?;
    Ok(answers)
}

/// An alert notification's identity (fingerprint, startsAt, status): Alertmanager re-sends it
/// unchanged.
type AlertKey = (String, String, &'static str);

/// An incident as the plan sees it.
#[derive(Debug, Clone, Copy)]
struct PlannedIncident {
    /// `None` for an incident the group creates.
    id: Option<IncidentId>,
    /// `None` for a stored state this build does not know (left alone).
    state: Option<IncidentState>,
    /// An existing incident the group puts back in the queue.
    requeued: bool,
}

/// A new alert row; `incident` is its incident's key.
struct NewAlert {
    key: AlertKey,
    alertname: String,
    body: String,
    incident: Option<String>,
}

/// What a group of deliveries will write, built in memory from one read of the store.
struct Plan {
    /// How this backend numbers bound values.
    backend: Backend,
    /// Incidents queued now.
    depth: i64,
    /// Alerts recorded before or planned by an earlier delivery.
    seen: HashSet<AlertKey>,
    /// The incidents of the group's alerts, by key: stored or planned.
    incidents: HashMap<String, PlannedIncident>,
    /// Incidents to create, in order.
    created: Vec<Target>,
    /// Alerts to insert, in order.
    alerts: Vec<NewAlert>,
}

/// One delivery's part of the plan, kept apart until the delivery is accepted.
struct Share {
    planned: Planned,
    depth: i64,
    seen: HashSet<AlertKey>,
    incidents: HashMap<String, PlannedIncident>,
    created: Vec<Target>,
    alerts: Vec<NewAlert>,
}

/// What an accepted delivery will have done, incidents named by key until they have ids.
struct Planned {
    outcome: DeliveryOutcome,
    /// The incidents its new alerts joined.
    touched: BTreeSet<String>,
    /// Those of them with a new firing alert.
    fired: BTreeSet<String>,
}

impl Plan {
    /// Reads the queue's length, which of the group's alerts are recorded and the incidents
    /// they belong to.
    async fn load(
        conn: &mut AnyConnection,
        backend: Backend,
        deliveries: &[Delivery],
    ) -> Result<Plan, StoreError> {
        let alerts = || deliveries.iter().flat_map(|d| &d.alerts);
        let keys: Vec<&AlertKey> = alerts().map(|alert| &alert.key).collect();
        let targets: BTreeSet<&str> = alerts()
            .filter_map(|alert| Some(alert.target.as_ref()?.key.as_str()))
            .collect();
        Ok(Plan {
            backend,
            depth: queued_now(conn).await?,
            seen: recorded_among(conn, backend, &keys).await?,
            incidents: incidents_among(conn, backend, &targets).await?,
            created: Vec::new(),
            alerts: Vec::new(),
        })
    }

    /// Plans one delivery against what earlier ones planned; a refusal changes nothing.
    fn share_of(&self, delivery: Delivery) -> Result<Share, StoreError> {
        let mut share = Share {
            planned: Planned {
                outcome: DeliveryOutcome::default(),
                touched: BTreeSet::new(),
                fired: BTreeSet::new(),
            },
            depth: self.depth,
            seen: HashSet::new(),
            incidents: HashMap::new(),
            created: Vec::new(),
            alerts: Vec::new(),
        };
        for alert in delivery.alerts {
            if self.seen.contains(&alert.key) || share.seen.contains(&alert.key) {
                share.planned.outcome.duplicates += 1;
                continue;
            }
            share.planned.outcome.new_alerts += 1;
            if alert.target.as_ref().is_none_or(|t| !t.actionable) {
                share.planned.outcome.ignored += 1;
            }
            let incident = match alert.target {
                None => None,
                Some(target) => {
                    self.place(&mut share, target, alert.status, delivery.max_queued)?
                }
            };
            if let Some(incident) = &incident {
                share.planned.touched.insert(incident.clone());
                if alert.status == AlertStatus::Firing {
                    share.planned.fired.insert(incident.clone());
                }
            }
            share.seen.insert(alert.key.clone());
            share.alerts.push(NewAlert {
                key: alert.key,
                alertname: alert.alertname,
                body: alert.body,
                incident,
            });
        }
        Ok(share)
    }

    /// Attaches a new alert to its workload's incident, creating or re-queueing it; the key of
    /// the incident, or `None` for a resolved alert with no incident to join.
    fn place(
        &self,
        share: &mut Share,
        target: Target,
        status: AlertStatus,
        max_queued: Option<u64>,
    ) -> Result<Option<String>, StoreError> {
        let known = share
            .incidents
            .get(&target.key)
            .or_else(|| self.incidents.get(&target.key))
            .copied();
        match (known, status) {
            (Some(mut incident), AlertStatus::Firing) => {
                if matches!(
                    incident.state,
                    Some(IncidentState::Done | IncidentState::Parked)
                ) {
                    admit(&mut share.depth, max_queued)?;
                    share.planned.outcome.incidents_queued += 1;
                    incident.state = Some(IncidentState::Queued);
                    incident.requeued = incident.id.is_some();
                    share.incidents.insert(target.key.clone(), incident);
                }
                Ok(Some(target.key))
            }
            (Some(_), AlertStatus::Resolved) => Ok(Some(target.key)),
            (None, AlertStatus::Firing) => {
                let state = if target.actionable {
                    admit(&mut share.depth, max_queued)?;
                    share.planned.outcome.incidents_queued += 1;
                    IncidentState::Queued
                } else {
                    IncidentState::Ignored
                };
                let planned = PlannedIncident {
                    id: None,
                    state: Some(state),
                    requeued: false,
                };
                share.incidents.insert(target.key.clone(), planned);
                let key = target.key.clone();
                share.created.push(target);
                Ok(Some(key))
            }
            // Resolved before any incident existed: nothing to act on.
            (None, AlertStatus::Resolved) => Ok(None),
        }
    }

    /// Takes an accepted delivery's share into the plan.
    fn accept(&mut self, share: Share) -> Planned {
        self.depth = share.depth;
        self.seen.extend(share.seen);
        self.incidents.extend(share.incidents);
        self.created.extend(share.created);
        self.alerts.extend(share.alerts);
        share.planned
    }

    /// Writes the plan: new incidents, re-queued ones, the alerts, and the resolved flag of
    /// every incident that got alerts. Returns the id of every incident the plan knows, by key.
    async fn write(
        &mut self,
        conn: &mut AnyConnection,
        now: i64,
    ) -> Result<HashMap<String, IncidentId>, StoreError> {
        let mut ids: HashMap<String, IncidentId> = self
            .incidents
            .iter()
            .filter_map(|(key, incident)| Some((key.clone(), incident.id?)))
            .collect();
        ids.extend(create(conn, self.backend, &self.created, now).await?);
        let requeued: Vec<IncidentId> = self
            .incidents
            .values()
            .filter(|incident| incident.requeued)
            .filter_map(|incident| incident.id)
            .collect();
        requeue(conn, self.backend, &requeued, now).await?;
        insert_alerts(conn, self.backend, &self.alerts, &ids, now).await?;
        let joined: BTreeSet<IncidentId> = self
            .alerts
            .iter()
            .filter_map(|alert| ids.get(alert.incident.as_ref()?))
            .copied()
            .collect();
        refresh_resolved(conn, self.backend, &joined, now).await?;
        Ok(ids)
    }
}

/// How many incidents wait in the queue now.
pub(crate) async fn queued_now(conn: &mut AnyConnection) -> Result<i64, StoreError> {
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

/// The alert's identity as stored.
fn alert_key(alert: &Alert) -> AlertKey {
    let status = match alert.status {
        AlertStatus::Firing => "firing",
        AlertStatus::Resolved => "resolved",
    };
    (fingerprint_of(alert), alert.starts_at.clone(), status)
}

/// `value` as JSON text for a column.
fn json<T: serde::Serialize>(value: &T, what: &'static str) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|source| StoreError::Json { what, source })
}

/// Placeholders for bound values, in the order the values are bound. PostgreSQL numbers them
/// (`$1`); SQLite gets plain `?`, because it looks a numbered one up by a walk over the
/// statement's list of them, which makes binding cost grow with the square of their count.
struct Params {
    numbered: bool,
    bound: usize,
}

impl Params {
    /// Placeholders for a statement on `backend`, starting from the first value.
    fn new(backend: Backend) -> Params {
        Params {
            numbered: backend == Backend::Postgres,
            bound: 0,
        }
    }

    /// The next value's placeholder.
    fn one(&mut self) -> String {
        self.bound += 1;
        match self.numbered {
            true => format!("${}", self.bound),
            false => "?".to_string(),
        }
    }

    /// `count` placeholders separated by commas: `$1, $2`.
    fn list(&mut self, count: usize) -> String {
        let items: Vec<String> = (0..count).map(|_| self.one()).collect();
        items.join(", ")
    }

    /// `rows` parenthesised lists of `columns` placeholders: `($1, $2), ($3, $4)`.
    fn rows(&mut self, rows: usize, columns: usize) -> String {
        let rows: Vec<String> = (0..rows)
            .map(|_| format!("({})", self.list(columns)))
            .collect();
        rows.join(", ")
    }
}

/// A statement built from literal SQL and [`Params`] alone: nothing from a delivery is spliced
/// in, every value is bound.
fn audited(sql: String) -> AssertSqlSafe<String> {
    AssertSqlSafe(sql)
}

/// Which of `keys` are recorded already.
async fn recorded_among(
    conn: &mut AnyConnection,
    backend: Backend,
    keys: &[&AlertKey],
) -> Result<HashSet<AlertKey>, StoreError> {
    let mut recorded = HashSet::new();
    // By fingerprint alone, which the unique index leads with; the few rows of other startsAt
    // or status are dropped below. (Adding `starts_at IN (...)` made SQLite probe the index once
    // per pair of values: quadratic in the group's size.)
    for chunk in keys.chunks(MOST_PARAMETERS) {
        let fingerprints: BTreeSet<&str> = chunk.iter().map(|k| k.0.as_str()).collect();
        let sql = format!(
            "SELECT fingerprint, starts_at, status FROM alerts WHERE fingerprint IN ({})",
            Params::new(backend).list(fingerprints.len()),
        );
        let mut query = sqlx::query_as::<_, (String, String, String)>(audited(sql));
        for value in &fingerprints {
            query = query.bind(*value);
        }
        let wanted: HashSet<&AlertKey> = chunk.iter().copied().collect();
        for (fingerprint, starts_at, status) in query.fetch_all(&mut *conn).await? {
            let status = if status == "firing" {
                "firing"
            } else {
                "resolved"
            };
            let key = (fingerprint, starts_at, status);
            if wanted.contains(&key) {
                recorded.insert(key);
            }
        }
    }
    Ok(recorded)
}

/// The stored incidents among `keys`.
async fn incidents_among(
    conn: &mut AnyConnection,
    backend: Backend,
    keys: &BTreeSet<&str>,
) -> Result<HashMap<String, PlannedIncident>, StoreError> {
    let keys: Vec<&str> = keys.iter().copied().collect();
    let mut incidents = HashMap::new();
    for chunk in keys.chunks(MOST_PARAMETERS) {
        let sql = format!(
            "SELECT incident_key, id, state FROM incidents WHERE incident_key IN ({})",
            Params::new(backend).list(chunk.len())
        );
        let mut query = sqlx::query_as::<_, (String, i64, String)>(audited(sql));
        for key in chunk {
            query = query.bind(*key);
        }
        for (key, id, state) in query.fetch_all(&mut *conn).await? {
            let incident = PlannedIncident {
                id: Some(id),
                state: IncidentState::parse(&state),
                requeued: false,
            };
            incidents.insert(key, incident);
        }
    }
    Ok(incidents)
}

/// Creates incidents, queued when they name a workload and `ignored` otherwise; their ids by
/// key.
async fn create(
    conn: &mut AnyConnection,
    backend: Backend,
    targets: &[Target],
    now: i64,
) -> Result<Vec<(String, IncidentId)>, StoreError> {
    const COLUMNS: usize = 10;
    let mut ids = Vec::with_capacity(targets.len());
    for chunk in targets.chunks(MOST_PARAMETERS / COLUMNS) {
        let sql = format!(
            "INSERT INTO incidents (incident_key, cluster, namespace, workload_kind, workload_name,
                                    state, last_error, next_attempt_at, created_at, updated_at)
             VALUES {} RETURNING incident_key, id",
            Params::new(backend).rows(chunk.len(), COLUMNS)
        );
        let mut query = sqlx::query_as::<_, (String, i64)>(audited(sql));
        for target in chunk {
            let (state, reason) = if target.actionable {
                (IncidentState::Queued, None)
            } else {
                (IncidentState::Ignored, Some(IGNORED_REASON))
            };
            query = query
                .bind(target.key.as_str())
                .bind(target.cluster.as_str())
                .bind(target.namespace.as_str())
                .bind(target.kind.as_str())
                .bind(target.name.as_str())
                .bind(state.as_str())
                .bind(reason)
                .bind(now)
                .bind(now)
                .bind(now);
        }
        ids.extend(query.fetch_all(&mut *conn).await?);
    }
    Ok(ids)
}

/// Puts finished or parked incidents back in the queue for a new round of work.
async fn requeue(
    conn: &mut AnyConnection,
    backend: Backend,
    ids: &[IncidentId],
    now: i64,
) -> Result<(), StoreError> {
    for chunk in ids.chunks(MOST_PARAMETERS) {
        let mut params = Params::new(backend);
        let sql = format!(
            "UPDATE incidents SET state = 'queued', attempts = 0, last_error = NULL,
                    next_attempt_at = {}, updated_at = {}
             WHERE id IN ({})",
            params.one(),
            params.one(),
            params.list(chunk.len())
        );
        let mut query = sqlx::query(audited(sql)).bind(now).bind(now);
        for id in chunk {
            query = query.bind(*id);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Inserts the new alerts, each with its incident's id.
async fn insert_alerts(
    conn: &mut AnyConnection,
    backend: Backend,
    alerts: &[NewAlert],
    ids: &HashMap<String, IncidentId>,
    now: i64,
) -> Result<(), StoreError> {
    const COLUMNS: usize = 7;
    for chunk in alerts.chunks(MOST_PARAMETERS / COLUMNS) {
        let sql = format!(
            "INSERT INTO alerts
               (fingerprint, starts_at, status, alertname, alert, received_at, incident_id)
             VALUES {}",
            Params::new(backend).rows(chunk.len(), COLUMNS)
        );
        let mut query = sqlx::query(audited(sql));
        for alert in chunk {
            let (fingerprint, starts_at, status) = &alert.key;
            let incident = alert
                .incident
                .as_ref()
                .and_then(|key| ids.get(key))
                .copied();
            query = query
                .bind(fingerprint.as_str())
                .bind(starts_at.as_str())
                .bind(*status)
                .bind(alert.alertname.as_str())
                .bind(alert.body.as_str())
                .bind(now)
                .bind(incident);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Sets each incident's resolved flag: every firing alert of it has a resolved notification.
async fn refresh_resolved(
    conn: &mut AnyConnection,
    backend: Backend,
    ids: &BTreeSet<IncidentId>,
    now: i64,
) -> Result<(), StoreError> {
    let ids: Vec<IncidentId> = ids.iter().copied().collect();
    for chunk in ids.chunks(MOST_PARAMETERS) {
        let mut params = Params::new(backend);
        let sql = format!(
            "UPDATE incidents SET updated_at = {}, resolved = CASE WHEN EXISTS (
                 SELECT 1 FROM alerts f WHERE f.incident_id = incidents.id AND f.status = 'firing'
                   AND NOT EXISTS (SELECT 1 FROM alerts r WHERE r.fingerprint = f.fingerprint
                                   AND r.starts_at = f.starts_at AND r.status = 'resolved'))
               THEN 0 ELSE 1 END
             WHERE id IN ({})",
            params.one(),
            params.list(chunk.len())
        );
        let mut query = sqlx::query(audited(sql)).bind(now);
        for id in chunk {
            query = query.bind(*id);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The incidents among `ids` with a merged fix, whose new alerts may tell how the fix went.
async fn merged_among(
    conn: &mut AnyConnection,
    backend: Backend,
    ids: impl Iterator<Item = IncidentId>,
) -> Result<HashSet<IncidentId>, StoreError> {
    let ids: Vec<IncidentId> = ids.collect();
    let mut merged = HashSet::new();
    for chunk in ids.chunks(MOST_PARAMETERS) {
        let sql = format!(
            "SELECT DISTINCT incident_id FROM outcomes
             WHERE outcome = 'merged' AND incident_id IN ({})",
            Params::new(backend).list(chunk.len())
        );
        let mut query = sqlx::query_scalar::<_, i64>(audited(sql));
        for id in chunk {
            query = query.bind(*id);
        }
        merged.extend(query.fetch_all(&mut *conn).await?);
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::Params;
    use crate::Backend;

    #[test]
    fn placeholders_are_numbered_on_postgres_in_the_order_values_are_bound() {
        let mut params = Params::new(Backend::Postgres);
        assert_eq!(params.one(), "$1");
        assert_eq!(params.rows(2, 2), "($2, $3), ($4, $5)");
        assert_eq!(params.list(2), "$6, $7");
    }

    #[test]
    fn placeholders_are_plain_on_sqlite() {
        let mut params = Params::new(Backend::Sqlite);
        assert_eq!(params.one(), "?");
        assert_eq!(params.rows(2, 2), "(?, ?), (?, ?)");
        assert_eq!(params.list(2), "?, ?");
    }
}
