//! The dry-run client against a fake Kubernetes API over real HTTP: what it sends, and how each
//! kind of answer becomes a verdict or an error.

use autofix_cluster::{ClusterError, DryRunConfig, DryRunVerdict, DryRunner};
use autofix_testkit::FakeKube;
use serde_json::{Value, json};
use std::time::Duration;

const KYVERNO_DENIAL: &str = "admission webhook \"validate.kyverno.svc-fail\" denied the \
request: \n\nresource Deployment/shop/cart was blocked due to the following policies\n\n\
require-requests-limits:\n  validate-resources: 'validation error: CPU and memory resource \
requests and limits are required. rule validate-resources failed at path \
/spec/template/spec/containers/0/resources/limits/'";

/// The corrected Deployment a fix would propose.
fn corrected_cart() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "cart", "namespace": "shop"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "cart"}},
            "template": {
                "metadata": {"labels": {"app": "cart"}},
                "spec": {"containers": [{
                    "name": "app",
                    "image": "registry.example.com/cart:1.4.2",
                    "resources": {"limits": {"memory": "512Mi"}}
                }]}
            }
        }
    })
}

/// A fake serving an empty cluster: a dry run needs no stored object (apply creates).
async fn empty_fake() -> (tempfile::TempDir, FakeKube) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("cluster")).unwrap();
    let fake = FakeKube::start(dir.path()).await.unwrap();
    (dir, fake)
}

fn param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
}

#[tokio::test]
async fn an_accepted_dry_run_is_one_forced_apply_of_the_corrected_object() {
    let (_dir, fake) = empty_fake().await;
    let verdict = DryRunner::new(fake.client())
        .check(&corrected_cart())
        .await
        .unwrap();
    assert_eq!(verdict, DryRunVerdict::Accepted { warnings: vec![] });

    let requests = fake.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let patch = &requests[0];
    assert_eq!(patch.method, "PATCH");
    assert_eq!(patch.path, "/apis/apps/v1/namespaces/shop/deployments/cart");
    let query = patch.query.as_deref().unwrap_or_default();
    assert_eq!(param(query, "dryRun"), Some("All"), "{query}");
    assert_eq!(
        param(query, "fieldManager"),
        Some("kube-autofix"),
        "{query}"
    );
    assert_eq!(param(query, "force"), Some("true"), "{query}");
    assert_eq!(
        patch.content_type.as_deref(),
        Some("application/apply-patch+yaml")
    );
    let sent: Value = serde_json::from_slice(&patch.body).unwrap();
    assert_eq!(sent, corrected_cart());
}

#[tokio::test]
async fn warnings_come_through_with_an_acceptance() {
    let (_dir, fake) = empty_fake().await;
    let warning = "policy \"disallow-latest\": image tag \"latest\" is \\discouraged\\";
    fake.warn_on_dry_run("Deployment", "cart", warning);
    fake.warn_on_dry_run("Deployment", "cart", "spec.replicas is ignored by the HPA");
    let verdict = DryRunner::new(fake.client())
        .check(&corrected_cart())
        .await
        .unwrap();
    let expected = vec![
        warning.to_string(),
        "spec.replicas is ignored by the HPA".to_string(),
    ];
    assert_eq!(verdict, DryRunVerdict::Accepted { warnings: expected });
}

#[tokio::test]
async fn a_webhook_denial_is_denied_with_its_exact_message() {
    let (_dir, fake) = empty_fake().await;
    fake.deny_dry_run("Deployment", "cart", 400, KYVERNO_DENIAL);
    let verdict = DryRunner::new(fake.client())
        .check(&corrected_cart())
        .await
        .unwrap();
    assert_eq!(
        verdict,
        DryRunVerdict::Denied {
            code: 400,
            reason: "BadRequest".into(),
            message: KYVERNO_DENIAL.into(),
        }
    );
    assert!(verdict.to_markdown().contains(KYVERNO_DENIAL));
}

#[tokio::test]
async fn an_invalid_object_is_denied() {
    let (_dir, fake) = empty_fake().await;
    let message = "Deployment.apps \"cart\" is invalid: spec.template.spec.containers[0].\
                   resources.requests: Invalid value: \"1Gi\": must be less than or equal to \
                   memory limit of 512Mi";
    fake.deny_dry_run("Deployment", "cart", 422, message);
    let verdict = DryRunner::new(fake.client())
        .check(&corrected_cart())
        .await
        .unwrap();
    assert!(
        matches!(&verdict, DryRunVerdict::Denied { code: 422, reason, message: m }
            if reason == "Invalid" && m == message),
        "{verdict:?}"
    );
    assert!(
        verdict
            .to_string()
            .contains("denied by the cluster (422 Invalid)")
    );
}

#[tokio::test]
async fn a_server_error_is_an_error_not_a_denial() {
    let (_dir, fake) = empty_fake().await;
    let message = "Internal error occurred: failed calling webhook \"validate.kyverno.svc\": \
                   context deadline exceeded";
    fake.deny_dry_run("Deployment", "cart", 500, message);
    let err = DryRunner::new(fake.client())
        .check(&corrected_cart())
        .await
        .unwrap_err();
    let ClusterError::Api { what, source } = &err else {
        panic!("not an API error: {err}");
    };
    assert_eq!(what, "dry-run Deployment shop/cart");
    assert!(
        matches!(source, kube::Error::Api(s) if s.code == 500 && s.message == message),
        "{source:?}"
    );
}

#[tokio::test]
async fn an_unknown_token_is_an_error_not_a_denial() {
    let (_dir, fake) = empty_fake().await;
    fake.deny_dry_run("Deployment", "cart", 401, "Unauthorized");
    let err = DryRunner::new(fake.client())
        .check(&corrected_cart())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClusterError::Api { source: kube::Error::Api(s), .. } if s.code == 401),
        "{err}"
    );
}

#[tokio::test]
async fn an_unreachable_server_is_an_error_and_a_slow_one_times_out() {
    let (_dir, fake) = empty_fake().await;
    let client = fake.client();
    drop(fake);
    let err = DryRunner::new(client)
        .check(&corrected_cart())
        .await
        .unwrap_err();
    assert!(matches!(err, ClusterError::Api { .. }), "{err}");

    // Accepts connections, never answers.
    autofix_cluster::install_crypto_provider();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}", listener.local_addr().unwrap());
    let client = kube::Client::try_from(kube::Config::new(uri.parse().unwrap())).unwrap();
    let err = DryRunner::new(client)
        .with_timeout(Duration::from_millis(200))
        .check(&corrected_cart())
        .await
        .unwrap_err();
    assert!(matches!(err, ClusterError::Timeout { .. }), "{err}");
    drop(listener);
}

#[tokio::test]
async fn an_object_without_a_namespace_is_never_sent() {
    let (_dir, fake) = empty_fake().await;
    let mut object = corrected_cart();
    object["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("namespace");
    let err = DryRunner::new(fake.client())
        .check(&object)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClusterError::UnsupportedObject { .. }),
        "{err}"
    );
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn disabled_dry_run_builds_no_runner() {
    assert!(
        DryRunner::from_config(&DryRunConfig::default())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn the_token_file_replaces_every_other_credential() {
    let (_dir, fake) = empty_fake().await;
    let token = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token.path(), "dry-run-token\n").unwrap();
    let mut kube_config = kube::Config::new(fake.url().parse().unwrap());
    kube_config.auth_info.username = Some("collector".into());
    kube_config.auth_info.password = Some("collector-password".to_string().into());
    let config = DryRunConfig {
        enabled: true,
        token_file: Some(token.path().to_path_buf()),
        ..DryRunConfig::default()
    };
    let runner = DryRunner::from_kube_config(kube_config, &config).unwrap();
    runner.check(&corrected_cart()).await.unwrap();
    let requests = fake.requests();
    assert_eq!(
        requests[0].authorization.as_deref(),
        Some("Bearer dry-run-token")
    );

    let missing = DryRunConfig {
        token_file: Some(token.path().with_extension("missing")),
        ..config
    };
    let err = DryRunner::from_kube_config(kube::Config::new(fake.url().parse().unwrap()), &missing)
        .unwrap_err();
    assert!(matches!(err, ClusterError::Io { .. }), "{err}");
}

#[test]
fn the_config_section_parses_and_refuses_unknown_keys() {
    let config: DryRunConfig = serde_json::from_value(json!({
        "enabled": true,
        "token_file": "/var/run/secrets/kube-autofix-dry-run/token",
    }))
    .unwrap();
    assert!(config.enabled);
    assert_eq!(config.timeout_secs, 10);
    assert!(!DryRunConfig::default().enabled);
    let unknown = serde_json::from_value::<DryRunConfig>(json!({"enable": true}));
    assert!(unknown.is_err());
}
