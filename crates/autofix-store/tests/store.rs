//! The store against a real SQLite file in a temporary directory.

use autofix_core::alert::{Alert, AlertStatus, WebhookPayload};
use autofix_store::{FailOutcome, IncidentRecord, IncidentState, RetryPolicy, Store, StoreError};
use std::collections::BTreeSet;
use std::time::Duration;
use tempfile::TempDir;

const STARTS: &str = "2026-11-25T14:33:56.572572961Z";
const LEASE: Duration = Duration::from_secs(60);

async fn store(dir: &TempDir) -> Store {
    Store::open(&Store::sqlite_url(dir.path())).await.unwrap()
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

#[tokio::test]
async fn two_pods_of_one_deployment_are_one_incident_and_redelivery_is_no_work() {
    let dir = TempDir::new().unwrap();
    let store = store(&dir).await;
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

#[tokio::test]
async fn cluster_wide_alerts_are_recorded_and_ignored() {
    let dir = TempDir::new().unwrap();
    let store = store(&dir).await;
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

#[tokio::test]
async fn resolved_alerts_are_recorded_on_the_incident() {
    let dir = TempDir::new().unwrap();
    let store = store(&dir).await;
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

#[tokio::test]
async fn a_new_firing_alert_requeues_a_done_incident_a_redelivery_does_not() {
    let dir = TempDir::new().unwrap();
    let store = store(&dir).await;
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

#[tokio::test]
async fn each_incident_is_claimed_once_under_concurrency() {
    let dir = TempDir::new().unwrap();
    let store = store(&dir).await;
    let alerts: Vec<Alert> = (0..20)
        .map(|i| crashloop(&format!("app{i}-6868cd956-49v8m"), AlertStatus::Firing))
        .collect();
    let outcome = store.record_delivery(&payload(alerts), None).await.unwrap();
    assert_eq!(outcome.incidents_queued, 20);

    let mut tasks = Vec::new();
    for worker in 0..16 {
        let store = store.clone();
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

#[tokio::test]
async fn one_workload_is_never_run_twice_at_once_even_under_two_kinds() {
    let dir = TempDir::new().unwrap();
    let store = store(&dir).await;
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

#[tokio::test]
async fn an_expired_lease_is_resumed_after_a_restart_and_the_stale_claim_refused() {
    let dir = TempDir::new().unwrap();
    let stale = {
        let store = store(&dir).await;
        store.record_delivery(&two_cart_pods(), None).await.unwrap();
        // A worker that claims and then dies (kill -9): the lease runs out.
        store
            .claim_next("dead", Duration::ZERO)
            .await
            .unwrap()
            .unwrap()
    };
    let store = store(&dir).await;
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

#[tokio::test]
async fn failures_back_off_then_park_and_bad_input_parks_at_once() {
    let dir = TempDir::new().unwrap();
    let store = store(&dir).await.with_retry_policy(RetryPolicy {
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

#[tokio::test]
async fn a_run_abandoned_on_its_last_attempt_is_parked() {
    let dir = TempDir::new().unwrap();
    let store = store(&dir).await.with_retry_policy(RetryPolicy {
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

#[tokio::test]
async fn a_full_queue_refuses_new_work_but_not_redeliveries() {
    let dir = TempDir::new().unwrap();
    let store = store(&dir).await;
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

#[tokio::test]
async fn release_requeues_without_counting_the_attempt() {
    let dir = TempDir::new().unwrap();
    let store = store(&dir).await;
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
    assert_eq!(store.next_work_in().await.unwrap(), Some(Duration::ZERO));
    store.ping().await.unwrap();
}
