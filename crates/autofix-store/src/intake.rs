//! Recording a webhook delivery: dedup, grouping into incidents, queueing new work.

use crate::backend::{Durability, Setting, begin_on};
use crate::exec::{Bound, Exec, Local, Sqlx};
use crate::outcomes::follow_merge;
use crate::{Backend, DeliveryOutcome, IncidentId, IncidentState, Store, StoreError, now_ms};
use autofix_core::alert::{Alert, AlertStatus, WebhookPayload};
use autofix_core::incident::DEFAULT_CLUSTER;
use autofix_core::workload_hint;
use sha2::{Digest, Sha256};
use sqlx::AnyConnection;
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
    let mut exec = Sqlx {
        conn: &mut tx,
        backend,
    };
    let plan = Plan::load(&mut exec, &deliveries).await?;
    let written = plan.record(&mut exec, deliveries, now).await?;
    let mut answers = Vec::with_capacity(written.planned.len());
    for (planned, window) in written.planned.into_iter().zip(windows) {
        let Ok(planned) = planned else {
            answers.push(planned.map(|p| p.outcome));
            continue;
        };
        let (mut outcome, touched, fired) = planned.with_ids(&written.ids);
        for id in touched.iter().filter(|id| written.merged.contains(id)) {
            let told = follow_merge(&mut tx, window, *id, fired.contains(id), now).await?;
            outcome.outcomes.extend(told);
        }
        answers.push(Ok(outcome));
    }
    tx.commit().await?;
    Ok(answers)
}

/// What [`record_on_local`] did with a group.
pub(crate) enum LocalResult {
    /// Recorded and committed: an answer per delivery, in order.
    Recorded(Vec<Result<DeliveryOutcome, StoreError>>),
    /// Not recorded, because an alert of the group joins an incident whose fix was merged: its
    /// follow-up (`resolved`, `recurred`) is [`record_together`]'s to judge.
    Merged(Vec<Delivery>),
}

/// Records a group of deliveries as [`record_together`] does, on a rusqlite connection to the
/// same SQLite file, in one synchronous call: no statement waits for a thread hop. The caller
/// keeps sqlx's write connection meanwhile, so no other transaction writes. A group that
/// touches an incident with a merged fix is given back untouched.
pub(crate) fn record_on_local(
    conn: &mut rusqlite::Connection,
    deliveries: Vec<Delivery>,
) -> Result<LocalResult, StoreError> {
    if !conn.is_autocommit() {
        conn.execute_batch("ROLLBACK")?;
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = crate::exec::at_once(async {
        let mut exec = Local(conn);
        let plan = Plan::load(&mut exec, &deliveries).await?;
        if plan.meets_a_merge(&deliveries) {
            return Ok(LocalResult::Merged(deliveries));
        }
        let written = plan.record(&mut exec, deliveries, now_ms()).await?;
        let answers = written
            .planned
            .into_iter()
            .map(|planned| planned.map(|p| p.with_ids(&written.ids).0))
            .collect();
        Ok(LocalResult::Recorded(answers))
    });
    match result {
        Ok(LocalResult::Recorded(answers)) => match conn.execute_batch("COMMIT") {
            Ok(()) => Ok(LocalResult::Recorded(answers)),
            Err(e) => {
                roll_back(conn);
                Err(e.into())
            }
        },
        given_back_or_failed => {
            roll_back(conn);
            given_back_or_failed
        }
    }
}

/// Ends a transaction left open. SQLite has already rolled back one that failed on a full disk
/// (and then refuses `ROLLBACK`); what went wrong is the caller's error, not this one's.
fn roll_back(conn: &rusqlite::Connection) {
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
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
    /// A stored incident with a merged fix, whose new alerts may tell how the fix went.
    merged: bool,
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

/// What a group wrote, for the answers.
struct Written {
    /// Each delivery's part, or why it was refused.
    planned: Vec<Result<Planned, StoreError>>,
    /// The id of every incident the plan knows, by key.
    ids: HashMap<String, IncidentId>,
    /// The stored incidents with a merged fix.
    merged: HashSet<IncidentId>,
}

impl Planned {
    /// The delivery's outcome with the incidents it touched, and those it fired, by id.
    fn with_ids(
        self,
        ids: &HashMap<String, IncidentId>,
    ) -> (DeliveryOutcome, BTreeSet<IncidentId>, BTreeSet<IncidentId>) {
        let id_of = |key: &String| ids.get(key).copied();
        let touched: BTreeSet<IncidentId> = self.touched.iter().filter_map(id_of).collect();
        let fired: BTreeSet<IncidentId> = self.fired.iter().filter_map(id_of).collect();
        let mut outcome = self.outcome;
        outcome.incidents_touched = touched.iter().copied().collect();
        (outcome, touched, fired)
    }
}

impl Plan {
    /// Reads the queue's length, which of the group's alerts are recorded and the incidents
    /// they belong to.
    async fn load(exec: &mut impl Exec, deliveries: &[Delivery]) -> Result<Plan, StoreError> {
        let alerts = || deliveries.iter().flat_map(|d| &d.alerts);
        let keys: Vec<&AlertKey> = alerts().map(|alert| &alert.key).collect();
        let targets: BTreeSet<&str> = alerts()
            .filter_map(|alert| Some(alert.target.as_ref()?.key.as_str()))
            .collect();
        Ok(Plan {
            depth: queued_in(exec).await?,
            seen: recorded_among(exec, &keys).await?,
            incidents: incidents_among(exec, &targets).await?,
            created: Vec::new(),
            alerts: Vec::new(),
        })
    }

    /// Whether an alert of `deliveries` belongs to a stored incident with a merged fix.
    fn meets_a_merge(&self, deliveries: &[Delivery]) -> bool {
        let alerts = deliveries.iter().flat_map(|d| &d.alerts);
        alerts
            .filter_map(|alert| self.incidents.get(&alert.target.as_ref()?.key))
            .any(|incident| incident.merged)
    }

    /// Plans every delivery in order and writes what the accepted ones planned.
    async fn record(
        mut self,
        exec: &mut impl Exec,
        deliveries: Vec<Delivery>,
        now: i64,
    ) -> Result<Written, StoreError> {
        let planned = deliveries
            .into_iter()
            .map(|delivery| {
                let share = self.share_of(delivery)?;
                Ok(self.accept(share))
            })
            .collect();
        let merged = self
            .incidents
            .values()
            .filter(|incident| incident.merged)
            .filter_map(|incident| incident.id)
            .collect();
        let ids = self.write(exec, now).await?;
        Ok(Written {
            planned,
            ids,
            merged,
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
                    merged: false,
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
        exec: &mut impl Exec,
        now: i64,
    ) -> Result<HashMap<String, IncidentId>, StoreError> {
        let mut ids: HashMap<String, IncidentId> = self
            .incidents
            .iter()
            .filter_map(|(key, incident)| Some((key.clone(), incident.id?)))
            .collect();
        ids.extend(create(exec, &self.created, now).await?);
        let requeued: Vec<IncidentId> = self
            .incidents
            .values()
            .filter(|incident| incident.requeued)
            .filter_map(|incident| incident.id)
            .collect();
        requeue(exec, &requeued, now).await?;
        insert_alerts(exec, &self.alerts, &ids, now).await?;
        let joined: BTreeSet<IncidentId> = self
            .alerts
            .iter()
            .filter_map(|alert| ids.get(alert.incident.as_ref()?))
            .copied()
            .collect();
        refresh_resolved(exec, &joined, now).await?;
        Ok(ids)
    }
}

/// How many incidents wait in the queue now.
pub(crate) async fn queued_now(conn: &mut AnyConnection) -> Result<i64, StoreError> {
    let depth = sqlx::query_scalar(QUEUED).fetch_one(conn).await?;
    Ok(depth)
}

/// Counts the incidents waiting in the queue.
const QUEUED: &str = "SELECT COUNT(*) FROM incidents WHERE state = 'queued'";

/// How many incidents wait in the queue now, on either connection.
async fn queued_in(exec: &mut impl Exec) -> Result<i64, StoreError> {
    let rows: Vec<(i64,)> = exec.fetch(QUEUED.to_string(), Vec::new()).await?;
    Ok(rows.first().map_or(0, |row| row.0))
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

/// Which of `keys` are recorded already.
async fn recorded_among(
    exec: &mut impl Exec,
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
            Params::new(exec.backend()).list(fingerprints.len()),
        );
        let values = fingerprints.iter().map(|f| Bound::from(*f)).collect();
        let rows: Vec<(String, String, String)> = exec.fetch(sql, values).await?;
        let wanted: HashSet<&AlertKey> = chunk.iter().copied().collect();
        for (fingerprint, starts_at, status) in rows {
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

/// The stored incidents among `keys`, and whether each has a merged fix.
async fn incidents_among(
    exec: &mut impl Exec,
    keys: &BTreeSet<&str>,
) -> Result<HashMap<String, PlannedIncident>, StoreError> {
    let keys: Vec<&str> = keys.iter().copied().collect();
    let mut incidents = HashMap::new();
    for chunk in keys.chunks(MOST_PARAMETERS) {
        let sql = format!(
            "SELECT incident_key, id, state,
                    CAST(CASE WHEN EXISTS (SELECT 1 FROM outcomes WHERE incident_id = incidents.id
                                             AND outcome = 'merged') THEN 1 ELSE 0 END AS BIGINT)
             FROM incidents WHERE incident_key IN ({})",
            Params::new(exec.backend()).list(chunk.len())
        );
        let values = chunk.iter().map(|key| Bound::from(*key)).collect();
        let rows: Vec<(String, i64, String, i64)> = exec.fetch(sql, values).await?;
        for (key, id, state, merged) in rows {
            let incident = PlannedIncident {
                id: Some(id),
                state: IncidentState::parse(&state),
                requeued: false,
                merged: merged == 1,
            };
            incidents.insert(key, incident);
        }
    }
    Ok(incidents)
}

/// Creates incidents, queued when they name a workload and `ignored` otherwise; their ids by
/// key.
async fn create(
    exec: &mut impl Exec,
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
            Params::new(exec.backend()).rows(chunk.len(), COLUMNS)
        );
        let mut values = Vec::with_capacity(chunk.len() * COLUMNS);
        for target in chunk {
            let (state, reason) = if target.actionable {
                (IncidentState::Queued, None)
            } else {
                (IncidentState::Ignored, Some(IGNORED_REASON))
            };
            values.extend([
                Bound::from(target.key.as_str()),
                Bound::from(target.cluster.as_str()),
                Bound::from(target.namespace.as_str()),
                Bound::from(target.kind.as_str()),
                Bound::from(target.name.as_str()),
                Bound::from(state.as_str()),
                Bound::from(reason),
                Bound::from(now),
                Bound::from(now),
                Bound::from(now),
            ]);
        }
        ids.extend(exec.fetch::<(String, i64)>(sql, values).await?);
    }
    Ok(ids)
}

/// Puts finished or parked incidents back in the queue for a new round of work.
async fn requeue(exec: &mut impl Exec, ids: &[IncidentId], now: i64) -> Result<(), StoreError> {
    for chunk in ids.chunks(MOST_PARAMETERS) {
        let mut params = Params::new(exec.backend());
        let sql = format!(
            "UPDATE incidents SET state = 'queued', attempts = 0, last_error = NULL,
                    next_attempt_at = {}, updated_at = {}
             WHERE id IN ({})",
            params.one(),
            params.one(),
            params.list(chunk.len())
        );
        let mut values = vec![Bound::from(now), Bound::from(now)];
        values.extend(chunk.iter().map(|id| Bound::from(*id)));
        exec.execute(sql, values).await?;
    }
    Ok(())
}

/// Inserts the new alerts, each with its incident's id.
async fn insert_alerts(
    exec: &mut impl Exec,
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
            Params::new(exec.backend()).rows(chunk.len(), COLUMNS)
        );
        let mut values = Vec::with_capacity(chunk.len() * COLUMNS);
        for alert in chunk {
            let (fingerprint, starts_at, status) = &alert.key;
            let incident = alert
                .incident
                .as_ref()
                .and_then(|key| ids.get(key))
                .copied();
            values.extend([
                Bound::from(fingerprint.as_str()),
                Bound::from(starts_at.as_str()),
                Bound::from(*status),
                Bound::from(alert.alertname.as_str()),
                Bound::from(alert.body.as_str()),
                Bound::from(now),
                Bound::from(incident),
            ]);
        }
        exec.execute(sql, values).await?;
    }
    Ok(())
}

/// Sets each incident's resolved flag: every firing alert of it has a resolved notification.
async fn refresh_resolved(
    exec: &mut impl Exec,
    ids: &BTreeSet<IncidentId>,
    now: i64,
) -> Result<(), StoreError> {
    let ids: Vec<IncidentId> = ids.iter().copied().collect();
    for chunk in ids.chunks(MOST_PARAMETERS) {
        let mut params = Params::new(exec.backend());
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
        let mut values = vec![Bound::from(now)];
        values.extend(chunk.iter().map(|id| Bound::from(*id)));
        exec.execute(sql, values).await?;
    }
    Ok(())
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
