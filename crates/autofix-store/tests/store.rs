//! The store's test suite, run against both backends: a real SQLite file in a temporary
//! directory, and a fresh database on the real PostgreSQL server the test script starts
//! (`AUTOFIX_TEST_POSTGRES`; skipped without it unless `AUTOFIX_REQUIRE_POSTGRES` is set).

use autofix_core::alert::{Alert, AlertStatus, WebhookPayload};
use autofix_store::{
    FailOutcome, IncidentRecord, IncidentState, NewOutcome, Outcome, RUN_ALERT_LIMIT, RetryPolicy,
    Store, StoreError,
};
use autofix_testkit::pod_suffix;
use std::collections::BTreeSet;
use std::time::Duration;
use tempfile::TempDir;

const STARTS: &str = "2026-11-25T14:33:56.572572961Z";
const LEASE: Duration = Duration::from_secs(60);

/// A database for one test: opened as often as the test likes (a restart, a second replica).
struct Db {
    url: String,
    _dir: Option<TempDir>,
}

impl Db {
    fn sqlite() -> Db {
        let dir = TempDir::new().unwrap();
        Db {
            url: Store::sqlite_url(dir.path()),
            _dir: Some(dir),
        }
    }

    async fn postgres() -> Option<Db> {
        Some(Db {
            url: autofix_testkit::fresh_postgres_database().await?,
            _dir: None,
        })
    }

    async fn open(&self) -> Store {
        Store::open(&self.url).await.unwrap()
    }
}

/// Runs each named test once per backend, as `sqlite::NAME` and `postgres::NAME`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                super::$name(super::Db::sqlite()).await;
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                if let Some(db) = super::Db::postgres().await {
                    super::$name(db).await;
                }
            })*
        }
    };
}

fn alert(fingerprint: &str, status: AlertStatus, labels: &[(&str, &str)]) -> Alert {
    Alert {
        status,
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        annotations: Default::default(),
        starts_at: STARTS.into(),
        ends_at: "0001-01-01T00:00:00Z".into(),
        generator_url: String::new(),
        fingerprint: fingerprint.into(),
    }
}

fn crashloop(pod: &str, status: AlertStatus) -> Alert {
    alert(
        &format!("fp-{pod}"),
        status,
        &[
            ("alertname", "KubePodCrashLooping"),
            ("namespace", "shop"),
            ("pod", pod),
            ("container", "app"),
        ],
    )
}

fn payload(alerts: Vec<Alert>) -> WebhookPayload {
    WebhookPayload {
        version: "4".into(),
        group_key: "{}:{alertname=\"KubePodCrashLooping\"}".into(),
        truncated_alerts: 0,
        receiver: "autofix".into(),
        status: AlertStatus::Firing,
        alerts,
        group_labels: Default::default(),
        common_labels: Default::default(),
        common_annotations: Default::default(),
        external_url: String::new(),
    }
}

fn two_cart_pods() -> WebhookPayload {
    payload(vec![
        crashloop("cart-6868cd956-49v8m", AlertStatus::Firing),
        crashloop("cart-6868cd956-kqwcv", AlertStatus::Firing),
    ])
}

async fn only_incident(store: &Store) -> IncidentRecord {
    let mut all = store.list_incidents().await.unwrap();
    assert_eq!(all.len(), 1, "{all:#?}");
    all.remove(0)
}

async fn two_pods_of_one_deployment_are_one_incident_and_redelivery_is_no_work(db: Db) {
    let store = db.open().await;
    let first = store.record_delivery(&two_cart_pods(), None).await.unwrap();
    assert_eq!((first.new_alerts, first.duplicates), (2, 0));
    assert_eq!(first.incidents_queued, 1);
    assert_eq!(first.incidents_touched.len(), 1);

    let again = store.record_delivery(&two_cart_pods(), None).await.unwrap();
    assert_eq!((again.new_alerts, again.duplicates), (0, 2));
    assert_eq!(again.incidents_queued, 0);
    assert!(again.incidents_touched.is_empty());

    let incident = only_incident(&store).await;
    assert_eq!(incident.key, "default/shop/Deployment/cart");
    assert_eq!(incident.state, IncidentState::Queued);
    assert_eq!(incident.alerts_firing, 2);
    assert_eq!(store.queue_depth().await.unwrap(), 1);

    let claimed = store.claim_next("w1", LEASE).await.unwrap().unwrap();
    assert_eq!(claimed.alerts.len(), 2);
    assert_eq!(claimed.attempts, 1);
    assert!(store.claim_next("w2", LEASE).await.unwrap().is_none());
}

async fn cluster_wide_alerts_are_recorded_and_ignored(db: Db) {
    let store = db.open().await;
    let overcommit = alert(
        "fp-overcommit",
        AlertStatus::Firing,
        &[
            ("alertname", "KubeMemoryOvercommit"),
            ("severity", "warning"),
        ],
    );
    let outcome = store
        .record_delivery(&payload(vec![overcommit.clone()]), None)
        .await
        .unwrap();
    assert_eq!((outcome.new_alerts, outcome.ignored), (1, 1));
    assert!(outcome.incidents_touched.is_empty());
    assert!(store.list_incidents().await.unwrap().is_empty());
    let again = store
        .record_delivery(&payload(vec![overcommit]), None)
        .await
        .unwrap();
    assert_eq!(again.duplicates, 1);

    let quota = alert(
        "fp-quota",
        AlertStatus::Firing,
        &[("alertname", "KubeQuotaExceeded"), ("namespace", "shop")],
    );
    let outcome = store
        .record_delivery(&payload(vec![quota]), None)
        .await
        .unwrap();
    assert_eq!((outcome.ignored, outcome.incidents_queued), (1, 0));
    let incident = only_incident(&store).await;
    assert_eq!(incident.state, IncidentState::Ignored);
    assert!(store.claim_next("w", LEASE).await.unwrap().is_none());
}

async fn resolved_alerts_are_recorded_on_the_incident(db: Db) {
    let store = db.open().await;
    store.record_delivery(&two_cart_pods(), None).await.unwrap();
    let claimed = store.claim_next("w", LEASE).await.unwrap().unwrap();

    let one_resolved = payload(vec![
        crashloop("cart-6868cd956-49v8m", AlertStatus::Resolved),
        crashloop("cart-6868cd956-kqwcv", AlertStatus::Firing),
    ]);
    let outcome = store.record_delivery(&one_resolved, None).await.unwrap();
    assert_eq!((outcome.new_alerts, outcome.duplicates), (1, 1));
    let incident = only_incident(&store).await;
    assert_eq!(incident.state, IncidentState::Running);
    assert_eq!((incident.alerts_firing, incident.alerts_resolved), (1, 1));
    assert!(!incident.resolved);

    let all_resolved = payload(vec![
        crashloop("cart-6868cd956-49v8m", AlertStatus::Resolved),
        crashloop("cart-6868cd956-kqwcv", AlertStatus::Resolved),
    ]);
    store.record_delivery(&all_resolved, None).await.unwrap();
    let incident = only_incident(&store).await;
    assert!(incident.resolved);
    assert_eq!(incident.state, IncidentState::Running);

    store
        .complete(&claimed.claim, &serde_json::json!({"action": "pr"}))
        .await
        .unwrap();
    let incident = only_incident(&store).await;
    assert_eq!(incident.state, IncidentState::Done);
    assert!(incident.resolved);
    assert_eq!(
        incident.last_report,
        Some(serde_json::json!({"action": "pr"}))
    );
}

async fn a_new_firing_alert_requeues_a_done_incident_a_redelivery_does_not(db: Db) {
    let store = db.open().await;
    store.record_delivery(&two_cart_pods(), None).await.unwrap();
    let claimed = store.claim_next("w", LEASE).await.unwrap().unwrap();
    store
        .complete(&claimed.claim, &serde_json::json!({}))
        .await
        .unwrap();

    store.record_delivery(&two_cart_pods(), None).await.unwrap();
    assert_eq!(only_incident(&store).await.state, IncidentState::Done);

    let third_pod = payload(vec![crashloop("cart-6868cd956-zz2x9", AlertStatus::Firing)]);
    let outcome = store.record_delivery(&third_pod, None).await.unwrap();
    assert_eq!(outcome.incidents_queued, 1);
    let incident = only_incident(&store).await;
    assert_eq!(
        (incident.state, incident.attempts),
        (IncidentState::Queued, 0)
    );
    let claimed = store.claim_next("w", LEASE).await.unwrap().unwrap();
    assert_eq!(claimed.alerts.len(), 3);
}

async fn each_incident_is_claimed_once_under_concurrency(db: Db) {
    let store = db.open().await;
    let alerts: Vec<Alert> = (0..20)
        .map(|i| crashloop(&format!("app{i}-6868cd956-49v8m"), AlertStatus::Firing))
        .collect();
    let outcome = store.record_delivery(&payload(alerts), None).await.unwrap();
    assert_eq!(outcome.incidents_queued, 20);

    // Two replicas (two stores on one database), eight workers each.
    let replicas = [store, db.open().await];
    let mut tasks = Vec::new();
    for worker in 0..16 {
        let store = replicas[worker % 2].clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while let Some(c) = store
                .claim_next(&format!("w{worker}"), LEASE)
                .await
                .unwrap()
            {
                mine.push(c.claim.incident_id);
            }
            mine
        }));
    }
    let mut claimed = Vec::new();
    for task in tasks {
        claimed.extend(task.await.unwrap());
    }
    let distinct: BTreeSet<_> = claimed.iter().copied().collect();
    assert_eq!(claimed.len(), 20, "{claimed:?}");
    assert_eq!(distinct.len(), 20);
}

async fn one_workload_is_never_run_twice_at_once_even_under_two_kinds(db: Db) {
    let store = db.open().await;
    let by_pod = crashloop("migrate-4f5xz", AlertStatus::Firing);
    let by_job = alert(
        "fp-job",
        AlertStatus::Firing,
        &[
            ("alertname", "KubeJobFailed"),
            ("namespace", "shop"),
            ("job_name", "migrate"),
        ],
    );
    let outcome = store
        .record_delivery(&payload(vec![by_pod, by_job]), None)
        .await
        .unwrap();
    assert_eq!(outcome.incidents_touched.len(), 2);
    let first = store.claim_next("w1", LEASE).await.unwrap().unwrap();
    assert!(store.claim_next("w2", LEASE).await.unwrap().is_none());
    store
        .complete(&first.claim, &serde_json::json!({}))
        .await
        .unwrap();
    let second = store.claim_next("w2", LEASE).await.unwrap().unwrap();
    assert_ne!(first.key, second.key);
}

async fn an_expired_lease_is_resumed_after_a_restart_and_the_stale_claim_refused(db: Db) {
    let stale = {
        let store = db.open().await;
        store.record_delivery(&two_cart_pods(), None).await.unwrap();
        // A worker that claims and then dies (kill -9): the lease runs out.
        store
            .claim_next("dead", Duration::ZERO)
            .await
            .unwrap()
            .unwrap()
    };
    let store = db.open().await;
    let resumed = store.claim_next("alive", LEASE).await.unwrap().unwrap();
    assert_eq!(resumed.claim.incident_id, stale.claim.incident_id);
    assert_eq!(resumed.attempts, 2);
    assert!(matches!(
        store.complete(&stale.claim, &serde_json::json!({})).await,
        Err(StoreError::LeaseLost(_))
    ));
    store.renew(&resumed.claim, LEASE).await.unwrap();
    store
        .complete(&resumed.claim, &serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!(only_incident(&store).await.state, IncidentState::Done);
    assert!(store.claim_next("alive", LEASE).await.unwrap().is_none());
}

async fn failures_back_off_then_park_and_bad_input_parks_at_once(db: Db) {
    let store = db.open().await.with_retry_policy(RetryPolicy {
        max_attempts: 3,
        backoff_initial: Duration::ZERO,
        backoff_max: Duration::ZERO,
    });
    store.record_delivery(&two_cart_pods(), None).await.unwrap();
    let mut outcomes = Vec::new();
    while let Some(claimed) = store.claim_next("w", LEASE).await.unwrap() {
        outcomes.push(
            store
                .fail(&claimed.claim, "forge timed out", true)
                .await
                .unwrap(),
        );
    }
    assert_eq!(
        outcomes,
        [
            FailOutcome::Retry {
                after: Duration::ZERO
            },
            FailOutcome::Retry {
                after: Duration::ZERO
            },
            FailOutcome::Parked
        ]
    );
    let incident = only_incident(&store).await;
    assert_eq!(
        (incident.state, incident.attempts),
        (IncidentState::Parked, 3)
    );
    assert_eq!(
        incident.last_error.as_deref(),
        Some("gave up after 3 attempts: forge timed out")
    );

    let other = payload(vec![crashloop("db-0", AlertStatus::Firing)]);
    store.record_delivery(&other, None).await.unwrap();
    let claimed = store.claim_next("w", LEASE).await.unwrap().unwrap();
    let outcome = store
        .fail(&claimed.claim, "broken snapshot", false)
        .await
        .unwrap();
    assert_eq!(outcome, FailOutcome::Parked);
    let parked = store.count_by_state().await.unwrap()[&IncidentState::Parked];
    assert_eq!(parked, 2);
}

async fn a_run_abandoned_on_its_last_attempt_is_parked(db: Db) {
    let store = db.open().await.with_retry_policy(RetryPolicy {
        max_attempts: 2,
        ..RetryPolicy::default()
    });
    store.record_delivery(&two_cart_pods(), None).await.unwrap();
    for _ in 0..2 {
        store
            .claim_next("dies", Duration::ZERO)
            .await
            .unwrap()
            .unwrap();
    }
    assert!(store.claim_next("w", LEASE).await.unwrap().is_none());
    let incident = only_incident(&store).await;
    assert_eq!(incident.state, IncidentState::Parked);
    assert!(incident.last_error.unwrap().starts_with("abandoned"));
}

async fn a_full_queue_refuses_new_work_but_not_redeliveries(db: Db) {
    let store = db.open().await;
    store
        .record_delivery(&two_cart_pods(), Some(1))
        .await
        .unwrap();
    let other = payload(vec![crashloop("db-0", AlertStatus::Firing)]);
    let err = store.record_delivery(&other, Some(1)).await.unwrap_err();
    assert!(
        matches!(err, StoreError::QueueFull { depth: 1, limit: 1 }),
        "{err}"
    );
    assert_eq!(store.list_incidents().await.unwrap().len(), 1);
    let again = store
        .record_delivery(&two_cart_pods(), Some(1))
        .await
        .unwrap();
    assert_eq!(again.duplicates, 2);
    // Refused alerts were rolled back: once there is room they count as new.
    store.record_delivery(&other, None).await.unwrap();
    assert_eq!(store.queue_depth().await.unwrap(), 2);
}

async fn release_requeues_without_counting_the_attempt(db: Db) {
    let store = db.open().await;
    store.record_delivery(&two_cart_pods(), None).await.unwrap();
    let claimed = store.claim_next("w", LEASE).await.unwrap().unwrap();
    assert_eq!(
        store
            .next_work_in()
            .await
            .unwrap()
            .map(|d| d > Duration::ZERO),
        Some(true)
    );
    store.release(&claimed.claim).await.unwrap();
    let incident = only_incident(&store).await;
    assert_eq!(
        (incident.state, incident.attempts),
        (IncidentState::Queued, 0)
    );
    assert!(incident.last_error.unwrap().starts_with("interrupted"));
    assert_eq!(store.next_work_in().await.unwrap(), Some(Duration::ZERO));
    store.ping().await.unwrap();
}

/// An incident whose run proposed a fix, as a completed run report describes it.
async fn completed_fix(store: &Store) -> autofix_store::Fix {
    store.record_delivery(&two_cart_pods(), None).await.unwrap();
    let claimed = store.claim_next("w", LEASE).await.unwrap().unwrap();
    let report = serde_json::json!({
        "incident": "3f9a1c2b",
        "branch": "autofix/shop-cart-3f9a1c2b",
        "commit": "0123456789abcdef0123456789abcdef01234567",
        "pr": {"number": 7},
        "risk": {"score": 0.25},
        "source": "revert-to-last-good",
        "category": "crash_loop_app",
    });
    store.complete(&claimed.claim, &report).await.unwrap();
    let fix = store
        .fix_by_branch("autofix/shop-cart-3f9a1c2b")
        .await
        .unwrap()
        .expect("the fix is found by its branch");
    assert_eq!(
        store.fix_by_hash("3f9a1c2b").await.unwrap(),
        Some(fix.clone())
    );
    assert_eq!(
        store.fix_by_commit("0123456").await.unwrap(),
        Some(fix.clone())
    );
    assert_eq!(store.fix_by_commit("abcdef0").await.unwrap(), None);
    fix
}

async fn outcomes_are_recorded_once_per_pull_request_and_follow_the_merge(db: Db) {
    let store = db.open().await;
    let fix = completed_fix(&store).await;
    assert_eq!(
        (fix.pr_number, fix.risk_score, fix.commit.as_deref()),
        (
            Some(7),
            Some(0.25),
            Some("0123456789abcdef0123456789abcdef01234567")
        )
    );
    let merged = NewOutcome {
        fix: &fix,
        outcome: Outcome::Merged,
        pr_number: None,
        commit_sha: Some("FEEDFACE00112233445566778899AABBCCDDEEFF"),
        delivery_id: "delivery-1",
    };
    let recorded = store.record_outcome(&merged).await.unwrap().unwrap();
    assert_eq!((recorded.pr_number, recorded.risk_score), (7, Some(0.25)));
    // What the strategy statistics learn from: which strategy, which category.
    assert_eq!(
        (recorded.source.as_deref(), recorded.category.as_deref()),
        (Some("revert-to-last-good"), Some("crash_loop_app"))
    );
    assert!(store.record_outcome(&merged).await.unwrap().is_none());
    assert!(store.delivery_recorded("delivery-1").await.unwrap());
    // The merge commit (stored lower-case) finds the fix too: a revert names it.
    assert_eq!(
        store.fix_by_commit("feedface").await.unwrap(),
        Some(fix.clone())
    );

    let all_resolved = payload(vec![
        crashloop("cart-6868cd956-49v8m", AlertStatus::Resolved),
        crashloop("cart-6868cd956-kqwcv", AlertStatus::Resolved),
    ]);
    let told = store.record_delivery(&all_resolved, None).await.unwrap();
    assert_eq!(told.outcomes.len(), 1, "{told:?}");
    assert_eq!(told.outcomes[0].outcome, Outcome::Resolved);

    let later = payload(vec![crashloop("cart-6868cd956-zz2x9", AlertStatus::Firing)]);
    let told = store.record_delivery(&later, None).await.unwrap();
    assert_eq!(told.outcomes[0].outcome, Outcome::Recurred);

    let listed: Vec<Outcome> = store
        .list_outcomes()
        .await
        .unwrap()
        .iter()
        .map(|o| o.outcome)
        .collect();
    assert_eq!(
        listed,
        [Outcome::Merged, Outcome::Resolved, Outcome::Recurred]
    );
    assert_eq!(only_incident(&store).await.outcome, Some(Outcome::Recurred));
}

/// Overlapping deliveries, all at once, into two replicas of the store.
async fn a_storm_loses_and_doubles_nothing(replicas: [Store; 2]) {
    // 10 workloads, each alerting from 3 pods; every pod's alert is delivered 4 times, to
    // either replica, all at once.
    let mut tasks = Vec::new();
    for round in 0..4 {
        for app in 0..10 {
            for (pod, suffix) in ["49v8m", "kqwcv", "zz2x9"].into_iter().enumerate() {
                let store = replicas[(round + app + pod) % 2].clone();
                let delivery = payload(vec![crashloop(
                    &format!("app{app}-6868cd956-{suffix}"),
                    AlertStatus::Firing,
                )]);
                tasks.push(tokio::spawn(async move {
                    store.record_delivery(&delivery, None).await
                }));
            }
        }
    }
    let (mut new_alerts, mut duplicates, mut queued) = (0, 0, 0);
    for task in tasks {
        let outcome = task.await.unwrap().expect("every delivery is recorded");
        new_alerts += outcome.new_alerts;
        duplicates += outcome.duplicates;
        queued += outcome.incidents_queued;
    }
    assert_eq!((new_alerts, duplicates, queued), (30, 90, 10));
    let incidents = replicas[0].list_incidents().await.unwrap();
    assert_eq!(incidents.len(), 10);
    assert!(
        incidents.iter().all(|i| i.alerts_firing == 3),
        "{incidents:#?}"
    );
}

/// One delivery larger than any single statement carries (alerts, incidents and lookups are
/// written in chunks): every alert and incident is there, and the re-delivery is all duplicates.
async fn a_delivery_of_thousands_of_alerts_is_recorded_whole(db: Db) {
    let store = db.open().await;
    let alerts: Vec<Alert> = (0..1200)
        .map(|n| {
            let pod = format!("app{}-6868cd956-{}", n % 300, pod_suffix(n / 300));
            crashloop(&pod, AlertStatus::Firing)
        })
        .collect();
    let delivery = payload(alerts);
    let outcome = store.record_delivery(&delivery, None).await.unwrap();
    assert_eq!(
        (
            outcome.new_alerts,
            outcome.duplicates,
            outcome.incidents_queued
        ),
        (1200, 0, 300)
    );
    assert_eq!(outcome.incidents_touched.len(), 300);
    let incidents = store.list_incidents().await.unwrap();
    assert_eq!(incidents.len(), 300);
    assert!(
        incidents.iter().all(|i| i.alerts_firing == 4),
        "{incidents:#?}"
    );
    let touched: BTreeSet<i64> = incidents.iter().map(|i| i.id).collect();
    assert_eq!(
        outcome.incidents_touched,
        touched.into_iter().collect::<Vec<_>>()
    );

    let again = store.record_delivery(&delivery, None).await.unwrap();
    assert_eq!((again.new_alerts, again.duplicates), (0, 1200));
    assert!(again.incidents_touched.is_empty());
}

/// Within one delivery an alert sent twice counts once, a second pod joins the incident the
/// first one created, and a resolved notification in the same body marks it resolved only when
/// every firing alert has one.
async fn one_delivery_repeating_an_alert_and_resolving_it_counts_each_once(db: Db) {
    let store = db.open().await;
    let first = crashloop("cart-6868cd956-49v8m", AlertStatus::Firing);
    let second = crashloop("cart-6868cd956-kqwcv", AlertStatus::Firing);
    let mut resolved_first = first.clone();
    resolved_first.status = AlertStatus::Resolved;
    let mut resolved_second = second.clone();
    resolved_second.status = AlertStatus::Resolved;

    let delivery = payload(vec![first.clone(), first.clone(), second, resolved_first]);
    let outcome = store.record_delivery(&delivery, None).await.unwrap();
    assert_eq!(
        (
            outcome.new_alerts,
            outcome.duplicates,
            outcome.incidents_queued
        ),
        (3, 1, 1)
    );
    let incident = only_incident(&store).await;
    assert_eq!((incident.alerts_firing, incident.alerts_resolved), (1, 1));
    assert!(!incident.resolved);
    assert_eq!(outcome.incidents_touched, vec![incident.id]);

    let outcome = store
        .record_delivery(
            &payload(vec![resolved_second.clone(), resolved_second]),
            None,
        )
        .await
        .unwrap();
    assert_eq!((outcome.new_alerts, outcome.duplicates), (1, 1));
    let incident = only_incident(&store).await;
    assert_eq!((incident.alerts_firing, incident.alerts_resolved), (0, 2));
    assert!(incident.resolved);
}

/// A run reads one notification per alert, its latest, firing ones first and each group in the
/// order the alerts first came: a flapping alert's history stays in the store, not in every
/// run's memory.
async fn a_run_reads_the_latest_notification_of_each_alert_firing_ones_first(db: Db) {
    let store = db.open().await;
    let (first, second, third) = (
        "cart-6868cd956-49v8m",
        "cart-6868cd956-kqwcv",
        "cart-6868cd956-zzzzz",
    );
    let mut refired = crashloop(second, AlertStatus::Firing);
    refired.starts_at = "2026-11-27T10:00:00Z".into();
    // The first alert's latest notification comes last, so the order of first arrival and the
    // order of latest notifications differ.
    for alert in [
        crashloop(first, AlertStatus::Firing),
        crashloop(second, AlertStatus::Firing),
        crashloop(third, AlertStatus::Firing),
        crashloop(second, AlertStatus::Resolved),
        refired,
        crashloop(first, AlertStatus::Resolved),
    ] {
        store
            .record_delivery(&payload(vec![alert]), None)
            .await
            .unwrap();
    }
    let claimed = store.claim_next("w", LEASE).await.unwrap().unwrap();
    let seen: Vec<(&str, AlertStatus, &str)> = claimed
        .alerts
        .iter()
        .map(|a| (a.label("pod").unwrap(), a.status, a.starts_at.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (second, AlertStatus::Firing, "2026-11-27T10:00:00Z"),
            (third, AlertStatus::Firing, STARTS),
            (first, AlertStatus::Resolved, STARTS),
        ]
    );
    assert_eq!(claimed.alerts_left_out, 0);
}

/// A run reads a bounded number of alerts, firing ones first: an incident with more distinct
/// alerts than that is still run, and the rest are counted. Here the resolved alerts came
/// first, and are the ones left out.
async fn a_run_reads_at_most_the_limit_of_alerts_firing_ones_first(db: Db) {
    let store = db.open().await;
    let pod = |n: usize| format!("cart-6868cd956-{}", pod_suffix(n));
    let resolved: Vec<String> = (0..5).map(pod).collect();
    for status in [AlertStatus::Firing, AlertStatus::Resolved] {
        let alerts = resolved.iter().map(|p| crashloop(p, status)).collect();
        store.record_delivery(&payload(alerts), None).await.unwrap();
    }
    let firing: Vec<String> = (5..RUN_ALERT_LIMIT + 10).map(pod).collect();
    let alerts = firing
        .iter()
        .map(|p| crashloop(p, AlertStatus::Firing))
        .collect();
    store.record_delivery(&payload(alerts), None).await.unwrap();

    let claimed = store.claim_next("w", LEASE).await.unwrap().unwrap();
    assert_eq!(claimed.alerts.len(), RUN_ALERT_LIMIT);
    assert_eq!(claimed.alerts_left_out, 5 + 5);
    let read: Vec<&str> = claimed
        .alerts
        .iter()
        .map(|a| a.label("pod").unwrap())
        .collect();
    assert_eq!(read, firing[..RUN_ALERT_LIMIT]);
}

on_both_backends!(
    a_run_reads_at_most_the_limit_of_alerts_firing_ones_first,
    a_run_reads_the_latest_notification_of_each_alert_firing_ones_first,
    two_pods_of_one_deployment_are_one_incident_and_redelivery_is_no_work,
    cluster_wide_alerts_are_recorded_and_ignored,
    resolved_alerts_are_recorded_on_the_incident,
    a_new_firing_alert_requeues_a_done_incident_a_redelivery_does_not,
    each_incident_is_claimed_once_under_concurrency,
    one_workload_is_never_run_twice_at_once_even_under_two_kinds,
    an_expired_lease_is_resumed_after_a_restart_and_the_stale_claim_refused,
    failures_back_off_then_park_and_bad_input_parks_at_once,
    a_run_abandoned_on_its_last_attempt_is_parked,
    a_full_queue_refuses_new_work_but_not_redeliveries,
    release_requeues_without_counting_the_attempt,
    outcomes_are_recorded_once_per_pull_request_and_follow_the_merge,
    a_delivery_of_thousands_of_alerts_is_recorded_whole,
    one_delivery_repeating_an_alert_and_resolving_it_counts_each_once,
);

/// Two replicas, each with its own pool, exist only on PostgreSQL.
#[tokio::test]
async fn a_storm_into_two_postgres_replicas_loses_and_doubles_nothing() {
    if let Some(db) = Db::postgres().await {
        a_storm_loses_and_doubles_nothing([db.open().await, db.open().await]).await;
    }
}

/// SQLite serves one process: the storm goes into one store through its single writer.
#[tokio::test]
async fn a_storm_into_one_sqlite_store_loses_and_doubles_nothing() {
    let db = Db::sqlite();
    let store = db.open().await;
    a_storm_loses_and_doubles_nothing([store.clone(), store]).await;
}

/// A database written by the previous release (schema 2, fixes only inside the JSON report) keeps
/// its fixes findable after the upgrade: migration 3 copies them into the fix columns.
#[tokio::test]
async fn an_sqlite_database_from_schema_2_keeps_its_fixes_after_the_upgrade() {
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    let db = Db::sqlite();
    let old_schema = [
        include_str!("../migrations/sqlite/0001_intake.sql"),
        include_str!("../migrations/sqlite/0002_outcomes.sql"),
    ];
    let migrations = old_schema
        .iter()
        .zip(1..)
        .map(|(sql, version)| {
            let name = if version == 1 { "intake" } else { "outcomes" };
            Migration::new(
                version,
                name.into(),
                MigrationType::Simple,
                sqlx::SqlStr::from_static(sql),
                false,
            )
        })
        .collect();
    {
        let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
        Migrator::with_migrations(migrations)
            .run(&pool)
            .await
            .unwrap();
        let report = r#"{"incident": "3f9a1c2b", "branch": "autofix/shop-cart-3f9a1c2b",
                         "commit": "0123456789abcdef", "pr": {"number": 7}, "risk": {"score": 0.5}}"#;
        sqlx::query(
            "INSERT INTO incidents (incident_key, cluster, namespace, workload_kind, workload_name,
                                    state, next_attempt_at, created_at, updated_at, last_report)
             VALUES ('default/shop/Deployment/cart', 'default', 'shop', 'Deployment', 'cart',
                     'done', 0, 0, 0, $1)",
        )
        .bind(report)
        .execute(&pool)
        .await
        .unwrap();
        let stored = crashloop("cart-6868cd956-x7k2p", AlertStatus::Firing);
        sqlx::query(
            "INSERT INTO alerts (fingerprint, starts_at, status, alertname, labels, alert,
                                 received_at, incident_id)
             VALUES ($1, $2, 'firing', 'KubePodCrashLooping', $3, $4, 0, 1)",
        )
        .bind(&stored.fingerprint)
        .bind(&stored.starts_at)
        .bind(serde_json::to_string(&stored.labels).unwrap())
        .bind(serde_json::to_string(&stored).unwrap())
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }
    let store = db.open().await;
    let fix = store.fix_by_hash("3f9a1c2b").await.unwrap().unwrap();
    assert_eq!(fix.branch, "autofix/shop-cart-3f9a1c2b");
    assert_eq!((fix.pr_number, fix.risk_score), (Some(7), Some(0.5)));
    assert_eq!(store.fix_by_commit("0123456").await.unwrap(), Some(fix));
    // The alert recorded under the old schema (labels in a column of their own, since dropped)
    // is still recognised: its re-delivery is a duplicate.
    let again = payload(vec![crashloop("cart-6868cd956-x7k2p", AlertStatus::Firing)]);
    let outcome = store.record_delivery(&again, None).await.unwrap();
    assert_eq!((outcome.new_alerts, outcome.duplicates), (0, 1));
}

/// Deliveries for `apps` workloads, `pods` alerts each, one alert per delivery, all at once.
async fn deliver_at_once(
    store: &Store,
    apps: usize,
    pods: usize,
    max_queued: Option<u64>,
) -> Vec<Result<autofix_store::DeliveryOutcome, StoreError>> {
    let mut tasks = Vec::new();
    for app in 0..apps {
        for pod in 0..pods {
            let store = store.clone();
            let delivery = payload(vec![crashloop(
                &format!("app{app}-6868cd956-{}", pod_suffix(pod)),
                AlertStatus::Firing,
            )]);
            tasks.push(tokio::spawn(async move {
                store.record_delivery(&delivery, max_queued).await
            }));
        }
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

/// SQLite's writer groups deliveries that wait together into one transaction (one fsync), and
/// every delivery still gets its own answer and rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_deliveries_arriving_together_share_commits() {
    let db = Db::sqlite();
    let store = db.open().await;
    assert_eq!(
        store.group_commit_stats(),
        Some(autofix_store::GroupCommitStats::default())
    );
    let answers = deliver_at_once(&store, 10, 20, None).await;
    let queued: u64 = answers
        .into_iter()
        .map(|a| a.expect("every delivery is recorded").incidents_queued)
        .sum();
    assert_eq!(queued, 10);
    let stats = store.group_commit_stats().unwrap();
    assert_eq!(stats.deliveries, 200);
    assert!(
        stats.commits < 100,
        "200 deliveries at once took {} commits",
        stats.commits
    );
    let incidents = store.list_incidents().await.unwrap();
    assert_eq!(incidents.len(), 10);
    assert!(incidents.iter().all(|i| i.alerts_firing == 20));
    // A store opened again on the file sees every row: the answers came after the commit.
    drop(store);
    let reopened = db.open().await;
    assert_eq!(reopened.list_incidents().await.unwrap().len(), 10);
}

/// A delivery refused inside a group (queue full) is rolled back alone: exactly the limit gets
/// in, and the refused alerts count as new once there is room. (On PostgreSQL concurrent
/// replicas each check the limit in their own transaction, so there it is approximate.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_full_queue_refuses_exactly_the_deliveries_over_the_limit() {
    let db = Db::sqlite();
    let store = db.open().await;
    let answers = deliver_at_once(&store, 20, 1, Some(5)).await;
    let accepted = answers.iter().filter(|a| a.is_ok()).count();
    let refused = answers
        .iter()
        .filter(|a| matches!(a, Err(StoreError::QueueFull { limit: 5, .. })))
        .count();
    assert_eq!((accepted, refused), (5, 15), "{answers:?}");
    assert_eq!(store.list_incidents().await.unwrap().len(), 5);
    let again = deliver_at_once(&store, 20, 1, None).await;
    let (new, duplicates) = again.into_iter().fold((0, 0), |(n, d), a| {
        let a = a.unwrap();
        (n + a.new_alerts, d + a.duplicates)
    });
    assert_eq!((new, duplicates), (15, 5));
    assert_eq!(store.queue_depth().await.unwrap(), 20);
}
