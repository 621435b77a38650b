//! The fake answers like an apiserver: Status bodies for errors, selectors, paging, and it
//! records (and refuses) writes.

use autofix_testkit::FakeKube;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Pod};
use kube::api::{Api, ListParams, LogParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::path::{Path, PathBuf};

/// Namespace of the served scenario.
const NS: &str = "marketplace";

fn oom_cart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/scenarios/resolved-oom-cart")
}

fn status_code(err: kube::Error) -> (u16, String) {
    match err {
        kube::Error::Api(status) => (status.code, status.reason),
        other => panic!("not an API error: {other}"),
    }
}

#[tokio::test]
async fn writes_are_recorded_and_refused() {
    let fake = FakeKube::start(&oom_cart()).await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(fake.client(), NS);
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some("new".into());
    let err = api.create(&PostParams::default(), &cm).await.unwrap_err();
    assert_eq!(status_code(err), (405, "MethodNotAllowed".into()));
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "POST");
    assert_eq!(
        requests[0].path,
        "/api/v1/namespaces/marketplace/configmaps"
    );
}

fn deployment(name: &str) -> serde_json::Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": name, "namespace": NS},
           "spec": {"selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}},
                                 "spec": {"containers": [{"name": "app", "image": "x"}]}}}})
}

#[tokio::test]
async fn a_patch_without_dry_run_is_recorded_and_refused() {
    let fake = FakeKube::start(&oom_cart()).await.unwrap();
    let api: Api<Deployment> = Api::namespaced(fake.client(), NS);
    let apply = PatchParams::apply("kube-autofix").force();
    let err = api
        .patch("cart", &apply, &Patch::Apply(deployment("cart")))
        .await
        .unwrap_err();
    assert_eq!(status_code(err), (405, "MethodNotAllowed".into()));
    let merge = Patch::Merge(json!({"spec": {"replicas": 3}}));
    let err = api
        .patch("cart", &PatchParams::default(), &merge)
        .await
        .unwrap_err();
    assert_eq!(status_code(err).0, 405);
    let methods: Vec<String> = fake.requests().into_iter().map(|r| r.method).collect();
    assert_eq!(methods, ["PATCH", "PATCH"]);
}

#[tokio::test]
async fn an_apply_dry_run_is_echoed_with_server_metadata() {
    let fake = FakeKube::start(&oom_cart()).await.unwrap();
    let api: Api<Deployment> = Api::namespaced(fake.client(), NS);
    let params = PatchParams::apply("kube-autofix").dry_run().force();
    let answer = api
        .patch("cart", &params, &Patch::Apply(deployment("cart")))
        .await
        .unwrap();
    assert_eq!(answer.metadata.resource_version.as_deref(), Some("2"));
    let managers: Vec<_> = answer
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .map(|m| (m.manager, m.operation))
        .collect();
    assert_eq!(
        managers,
        [(Some("kube-autofix".into()), Some("Apply".into()))]
    );
    let request = &fake.requests()[0];
    assert_eq!(
        request.content_type.as_deref(),
        Some("application/apply-patch+yaml")
    );
    let sent: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(sent, deployment("cart"));

    let other_manager = PatchParams::apply("kubectl").dry_run();
    let err = api
        .patch("cart", &other_manager, &Patch::Apply(deployment("cart")))
        .await
        .unwrap_err();
    assert_eq!(status_code(err).0, 422);
    let err = api
        .patch("cart", &params, &Patch::Apply(deployment("other")))
        .await
        .unwrap_err();
    assert_eq!(status_code(err), (400, "BadRequest".into()));
}

#[tokio::test]
async fn scripted_dry_run_answers_are_statuses_and_warnings() {
    let fake = FakeKube::start(&oom_cart()).await.unwrap();
    fake.deny_dry_run("Deployment", "cart", 403, "exceeded quota: compute");
    fake.deny_dry_run("Deployment", "broken", 500, "etcdserver: request timed out");
    let api: Api<Deployment> = Api::namespaced(fake.client(), NS);
    let params = PatchParams::apply("kube-autofix").dry_run().force();
    let denied = |name: &'static str| {
        let api = api.clone();
        let params = params.clone();
        async move {
            match api
                .patch(name, &params, &Patch::Apply(deployment(name)))
                .await
            {
                Err(kube::Error::Api(status)) => *status,
                other => panic!("not a Status: {other:?}"),
            }
        }
    };
    let quota = denied("cart").await;
    assert_eq!(
        (quota.code, quota.reason.as_str(), quota.message.as_str()),
        (403, "Forbidden", "exceeded quota: compute")
    );
    let broken = denied("broken").await;
    assert_eq!(
        (broken.code, broken.reason.as_str()),
        (500, "InternalError")
    );
    assert!(
        api.patch("fine", &params, &Patch::Apply(deployment("fine")))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn unknown_objects_are_404_with_a_status_body() {
    let fake = FakeKube::start(&oom_cart()).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(fake.client(), NS);
    let err = pods.get("nope").await.unwrap_err();
    assert_eq!(status_code(err), (404, "NotFound".into()));
    assert!(pods.get_opt("nope").await.unwrap().is_none());
}

#[tokio::test]
async fn lists_filter_by_fields_and_labels_and_page() {
    let fake = FakeKube::start(&oom_cart()).await.unwrap();
    let client = fake.client();
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let all = pods.list(&ListParams::default()).await.unwrap();
    assert!(all.items.len() >= 2, "{}", all.items.len());
    let first = all.items[0].metadata.name.clone().unwrap();

    let by_name = ListParams::default().fields(&format!("metadata.name={first}"));
    let one = pods.list(&by_name).await.unwrap();
    assert_eq!(one.items.len(), 1);
    let labels = all.items[0].metadata.labels.clone().unwrap_or_default();
    let (key, value) = labels.iter().next().unwrap();
    let by_label = pods
        .list(&ListParams::default().labels(&format!("{key}={value}")))
        .await
        .unwrap();
    assert!(
        by_label
            .items
            .iter()
            .all(|p| p.metadata.labels.as_ref().unwrap()[key] == *value)
    );
    let not_label = pods
        .list(&ListParams::default().labels(&format!("{key}!={value}")))
        .await
        .unwrap();
    assert_eq!(
        by_label.items.len() + not_label.items.len(),
        all.items.len()
    );

    let page = pods.list(&ListParams::default().limit(1)).await.unwrap();
    assert_eq!(page.items.len(), 1);
    let token = page.metadata.continue_.unwrap();
    let rest = pods
        .list(&ListParams::default().limit(100).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(rest.items.len(), all.items.len() - 1);
    assert!(rest.metadata.continue_.unwrap_or_default().is_empty());

    let events: Api<Event> = Api::namespaced(client, NS);
    let every = events.list(&ListParams::default()).await.unwrap().items;
    let about = |e: &Event| {
        (
            e.involved_object.kind.clone(),
            e.involved_object.name.clone(),
        )
    };
    let target = about(&every[0]);
    let (Some(kind), Some(name)) = target.clone() else {
        panic!("event without involvedObject")
    };
    let selector = format!("involvedObject.kind={kind},involvedObject.name={name}");
    let selected = events
        .list(&ListParams::default().fields(&selector))
        .await
        .unwrap();
    let want = every.iter().filter(|e| about(e) == target).count();
    assert_eq!(selected.items.len(), want);
    assert!(
        want < every.len(),
        "the selector must leave some events out"
    );
    let err = events
        .list(&ListParams::default().fields("spec.nodeName=x"))
        .await
        .unwrap_err();
    assert_eq!(status_code(err).0, 400);
}

#[tokio::test]
async fn logs_honour_previous_tail_and_limit() {
    let fake = FakeKube::start(&oom_cart()).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(fake.client(), NS);
    let logs_dir = oom_cart().join("logs").join(NS);
    let mut with_previous = None;
    let mut without_previous = None;
    for entry in std::fs::read_dir(&logs_dir).unwrap().flatten() {
        let pod = entry.file_name().to_string_lossy().to_string();
        for file in std::fs::read_dir(entry.path()).unwrap().flatten() {
            let file = file.file_name().to_string_lossy().to_string();
            match file.strip_suffix(".previous.log") {
                Some(c) => with_previous = Some((pod.clone(), c.to_string())),
                None => {
                    let c = file.trim_end_matches(".log").to_string();
                    if !entry.path().join(format!("{c}.previous.log")).exists() {
                        without_previous = Some((pod.clone(), c));
                    }
                }
            }
        }
    }
    let (pod, container) = with_previous.expect("a pod with a previous log");
    let params = |previous, tail| LogParams {
        container: Some(container.clone()),
        previous,
        tail_lines: tail,
        ..LogParams::default()
    };
    let full = pods.logs(&pod, &params(true, None)).await.unwrap();
    let file = std::fs::read_to_string(
        logs_dir
            .join(&pod)
            .join(format!("{container}.previous.log")),
    );
    assert_eq!(full, file.unwrap());
    let tail = pods.logs(&pod, &params(true, Some(2))).await.unwrap();
    let last_two: Vec<&str> = full.lines().rev().take(2).collect();
    assert_eq!(tail.lines().rev().collect::<Vec<_>>(), last_two);
    let limited = LogParams {
        limit_bytes: Some(10),
        ..params(true, None)
    };
    assert_eq!(pods.logs(&pod, &limited).await.unwrap().len(), 10);

    let (pod, container) = without_previous.expect("a container without a previous log");
    let previous = LogParams {
        container: Some(container.clone()),
        previous: true,
        ..LogParams::default()
    };
    let err = pods.logs(&pod, &previous).await.unwrap_err();
    let (code, _) = status_code(err);
    assert_eq!(code, 400);
}
