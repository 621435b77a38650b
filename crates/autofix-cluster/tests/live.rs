//! The live source and the snapshot writer against a fake Kubernetes API over real HTTP.

use autofix_cluster::{
    ClusterError, DryRunConfig, DryRunner, EvidenceSource, LiveOptions, LiveSource, SnapshotSource,
    write_snapshot,
};
use autofix_core::Incident;
use autofix_core::alert::{Alert, AlertStatus};
use autofix_testkit::FakeKube;
use serde_json::{Value, json};
use std::path::Path;

const NS: &str = "shop";
const POD: &str = "cart-5d9f7c-abcde";
const PLANTED_ENV: &str = "hunter2-planted-env";
const PLANTED_TOKEN: &str = "planted.bearer.token";
const PLANTED_LOG_PASSWORD: &str = "planted-url-password";
const PLANTED_SECRET_VALUE: &str = "cGxhbnRlZC1zZWNyZXQ=";

fn owner(kind: &str, name: &str) -> Value {
    json!([{"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": format!("uid-{name}"),
            "controller": true, "blockOwnerDeletion": true}])
}

fn pod_template() -> Value {
    json!({
        "metadata": {"labels": {"app": "cart"}},
        "spec": {"containers": [{
            "name": "app",
            "image": "registry.example.com/cart:1.4.2",
            "env": [
                {"name": "DB_PASSWORD", "value": PLANTED_ENV},
                {"name": "LOG_LEVEL", "value": "info"}
            ]
        }]}
    })
}

/// A crash-looping Deployment with secrets planted in env, an event, a log and a Secret.
fn objects() -> Vec<Value> {
    let mut pod = pod_template();
    pod["apiVersion"] = json!("v1");
    pod["kind"] = json!("Pod");
    pod["metadata"] = json!({"name": POD, "namespace": NS, "uid": "uid-pod",
        "labels": {"app": "cart", "pod-template-hash": "5d9f7c"},
        "ownerReferences": owner("ReplicaSet", "cart-5d9f7c")});
    pod["status"] = json!({"phase": "Running", "containerStatuses": [{
        "name": "app", "ready": false, "restartCount": 4,
        "image": "registry.example.com/cart:1.4.2", "imageID": "",
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}}]});
    vec![
        json!({"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": NS, "labels": {"environment": "production"}}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "cart", "namespace": NS, "uid": "uid-cart",
                            "annotations": {"deployment.kubernetes.io/revision": "3"}},
               "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "cart"}},
                        "template": pod_template()}}),
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
               "metadata": {"name": "cart-5d9f7c", "namespace": NS, "uid": "uid-cart-5d9f7c",
                            "annotations": {"deployment.kubernetes.io/revision": "3"},
                            "ownerReferences": owner("Deployment", "cart")},
               "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "cart"}},
                        "template": pod_template()}}),
        pod,
        json!({"apiVersion": "v1", "kind": "Event",
               "metadata": {"name": format!("{POD}.1"), "namespace": NS},
               "involvedObject": {"kind": "Pod", "name": POD, "namespace": NS},
               "reason": "BackOff", "type": "Warning", "count": 7,
               "message": format!("probe sent Authorization: Bearer {PLANTED_TOKEN} and failed")}),
        json!({"apiVersion": "v1", "kind": "Event",
               "metadata": {"name": "other.1", "namespace": NS},
               "involvedObject": {"kind": "Pod", "name": "other", "namespace": NS},
               "reason": "Pulled", "type": "Normal", "message": "unrelated"}),
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "cart-db", "namespace": NS},
               "data": {"password": PLANTED_SECRET_VALUE}, "type": "Opaque"}),
        json!({"apiVersion": "v1", "kind": "Node",
               "metadata": {"name": "node-1"},
               "status": {"allocatable": {"cpu": "4", "memory": "16Gi"}}}),
    ]
}

/// Writes the scenario folder the fake serves: `cluster/all.yaml` (JSON is YAML) and one log.
fn write_scenario(dir: &Path) {
    std::fs::create_dir_all(dir.join("cluster")).unwrap();
    let list = json!({"apiVersion": "v1", "kind": "List", "items": objects()});
    std::fs::write(dir.join("cluster/all.yaml"), list.to_string()).unwrap();
    let logs = dir.join("logs").join(NS).join(POD);
    std::fs::create_dir_all(&logs).unwrap();
    let log = format!(
        "démarrage cart\nconnecting to postgres://cart:{PLANTED_LOG_PASSWORD}@db:5432/cart\nfatal: connection refused\n"
    );
    std::fs::write(logs.join("app.log"), log).unwrap();
}

fn incident(pod: &str) -> Incident {
    let labels = [
        ("alertname", "KubePodCrashLooping"),
        ("namespace", NS),
        ("pod", pod),
        ("container", "app"),
    ];
    Incident::from_alerts(vec![Alert {
        status: AlertStatus::Firing,
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        annotations: Default::default(),
        starts_at: "2026-11-20T08:14:03Z".to_string(),
        ends_at: "0001-01-01T00:00:00Z".to_string(),
        generator_url: String::new(),
        fingerprint: String::new(),
    }])
    .unwrap()
}

async fn serve_scenario() -> (tempfile::TempDir, FakeKube) {
    let dir = tempfile::tempdir().unwrap();
    write_scenario(dir.path());
    let fake = FakeKube::start(dir.path()).await.unwrap();
    (dir, fake)
}

fn with_secrets() -> LiveOptions {
    LiveOptions {
        read_secrets: true,
        ..LiveOptions::default()
    }
}

#[tokio::test]
async fn planted_secrets_never_reach_the_evidence() {
    let (_dir, fake) = serve_scenario().await;
    let source = LiveSource::new(fake.client()).with_options(with_secrets());
    let evidence = source.collect(&incident(POD)).await.unwrap();
    let text = serde_json::to_string(&evidence).unwrap();
    for planted in [
        PLANTED_ENV,
        PLANTED_TOKEN,
        PLANTED_LOG_PASSWORD,
        PLANTED_SECRET_VALUE,
    ] {
        assert!(!text.contains(planted), "{planted} leaked into {text}");
    }
    // What was redacted is still there as evidence, without its secret.
    assert!(text.contains("fatal: connection refused"), "{text}");
    assert!(
        text.contains("probe sent Authorization: [REDACTED]"),
        "{text}"
    );
    assert_eq!(evidence.secrets.len(), 1);
    assert_eq!(evidence.secrets[0].keys, ["password"]);
    assert_eq!(evidence.events.len(), 1, "only the pod's event is evidence");
}

#[tokio::test]
async fn a_missing_pod_is_pod_not_found() {
    let (_dir, fake) = serve_scenario().await;
    let source = LiveSource::new(fake.client());
    let err = source
        .collect(&incident("cart-gone-xyz"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClusterError::PodNotFound { pod, .. } if pod == "cart-gone-xyz"),
        "{err}"
    );
}

#[tokio::test]
async fn no_previous_log_is_not_an_error() {
    let (_dir, fake) = serve_scenario().await;
    let source = LiveSource::new(fake.client());
    let evidence = source.collect(&incident(POD)).await.unwrap();
    let previous_asked = fake.requests().iter().any(|r| {
        r.path.ends_with(&format!("/pods/{POD}/log"))
            && r.query
                .as_deref()
                .is_some_and(|q| q.contains("previous=true"))
    });
    assert!(previous_asked, "the previous log was never asked for");
    let logs: Vec<(bool, usize)> = evidence
        .logs
        .iter()
        .map(|l| (l.previous, l.lines.len()))
        .collect();
    assert_eq!(logs, [(false, 3)], "only the current log exists");
}

#[tokio::test]
async fn only_get_requests_reach_the_api() {
    let (_dir, fake) = serve_scenario().await;
    let out = tempfile::tempdir().unwrap();
    let client = fake.client();
    LiveSource::new(client.clone())
        .with_options(with_secrets())
        .collect(&incident(POD))
        .await
        .unwrap();
    write_snapshot(client, NS, POD, out.path(), &with_secrets())
        .await
        .unwrap();
    let requests = fake.requests();
    assert!(requests.len() > 10, "{requests:?}");
    assert!(requests.iter().all(|r| r.method == "GET"), "{requests:?}");
}

#[tokio::test]
async fn the_collector_never_patches_and_the_dry_run_uses_its_own_token() {
    let (_dir, fake) = serve_scenario().await;
    let evidence = LiveSource::new(fake.client())
        .collect(&incident(POD))
        .await
        .unwrap();
    let collected = fake.requests().len();
    let token = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token.path(), "dry-run-token").unwrap();
    let config = DryRunConfig {
        enabled: true,
        token_file: Some(token.path().to_path_buf()),
        ..DryRunConfig::default()
    };
    let kube_config = kube::Config::new(fake.url().parse().unwrap());
    let mut corrected = evidence.workload_object.clone();
    corrected["spec"]["replicas"] = json!(2);
    DryRunner::from_kube_config(kube_config, &config)
        .unwrap()
        .check(&corrected)
        .await
        .unwrap();

    let requests = fake.requests();
    let (collection, dry_run) = requests.split_at(collected);
    assert!(collection.len() > 5, "{collection:?}");
    assert!(
        collection
            .iter()
            .all(|r| r.method == "GET" && r.authorization.is_none()),
        "{collection:?}"
    );
    assert_eq!(dry_run.len(), 1, "{dry_run:?}");
    assert_eq!(dry_run[0].method, "PATCH");
    assert_eq!(
        dry_run[0].authorization.as_deref(),
        Some("Bearer dry-run-token")
    );
}

#[tokio::test]
async fn secrets_are_not_read_unless_enabled() {
    let (_dir, fake) = serve_scenario().await;
    let evidence = LiveSource::new(fake.client())
        .collect(&incident(POD))
        .await
        .unwrap();
    assert!(evidence.secrets.is_empty());
    assert!(!fake.requests().iter().any(|r| r.path.contains("/secrets")));
}

#[tokio::test]
async fn the_snapshot_written_reads_back_as_the_same_evidence_without_secret_values() {
    let (dir, fake) = serve_scenario().await;
    let out = tempfile::tempdir().unwrap();
    let summary = write_snapshot(fake.client(), NS, POD, out.path(), &with_secrets())
        .await
        .unwrap();
    assert_eq!(summary.workload.name, "cart");
    assert_eq!(summary.logs, 1);

    let secrets = std::fs::read_to_string(out.path().join("cluster/secrets.yaml")).unwrap();
    assert!(!secrets.contains(PLANTED_SECRET_VALUE), "{secrets}");
    assert!(secrets.contains("password: \"\""), "{secrets}");
    assert!(secrets.contains("kind: List"), "{secrets}");
    for file in &summary.files {
        let text = std::fs::read_to_string(out.path().join(file)).unwrap();
        for planted in [PLANTED_ENV, PLANTED_TOKEN, PLANTED_LOG_PASSWORD] {
            assert!(
                !text.contains(planted),
                "{planted} written to {}",
                file.display()
            );
        }
    }

    let incident = incident(POD);
    let original = SnapshotSource::open(dir.path())
        .unwrap()
        .collect(&incident)
        .await
        .unwrap();
    let replayed = SnapshotSource::open(out.path())
        .unwrap()
        .collect(&incident)
        .await
        .unwrap();
    let view = |e: &autofix_core::Evidence| {
        json!([
            e.workload,
            e.container,
            e.pods,
            e.replica_sets,
            e.events,
            e.nodes,
            e.config_maps,
            e.secrets,
            e.claims,
            e.logs,
            e.namespace_labels,
            e.workload_object
        ])
    };
    assert_eq!(view(&original), view(&replayed));

    // The folder is diagnosable as it is: alert.json names the pod.
    let alert = std::fs::read(out.path().join("alert.json")).unwrap();
    let payload = autofix_core::alert::WebhookPayload::from_json(&alert).unwrap();
    assert_eq!(payload.alerts[0].label("pod"), Some(POD));
}

#[tokio::test]
async fn snapshot_of_a_missing_pod_is_pod_not_found() {
    let (_dir, fake) = serve_scenario().await;
    let out = tempfile::tempdir().unwrap();
    let err = write_snapshot(
        fake.client(),
        NS,
        "nope",
        out.path(),
        &LiveOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ClusterError::PodNotFound { .. }), "{err}");
    let err = write_snapshot(
        fake.client(),
        "../etc",
        POD,
        out.path(),
        &LiveOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ClusterError::InvalidName(_)), "{err}");
}

#[tokio::test]
async fn a_byte_limit_that_cuts_a_character_keeps_the_log() {
    let (_dir, fake) = serve_scenario().await;
    let options = LiveOptions {
        log_limit_bytes: 2,
        ..LiveOptions::default()
    };
    let source = LiveSource::new(fake.client()).with_options(options);
    let evidence = source.collect(&incident(POD)).await.unwrap();
    // "dé" cut after the first byte of "é".
    assert_eq!(evidence.logs[0].lines, ["d\u{FFFD}"]);
}
