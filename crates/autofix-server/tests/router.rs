//! The router called directly, without a socket.

use autofix_server::{AppState, Auth, Limits, Metrics, app};
use autofix_store::Store;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use std::sync::Arc;
use tokio::sync::Notify;
use tower::ServiceExt;

#[tokio::test]
async fn the_router_answers_without_a_socket() {
    let dir = tempfile::TempDir::new().unwrap();
    let state = AppState {
        store: Store::open(&Store::sqlite_url(dir.path())).await.unwrap(),
        auth: Arc::new(Auth::Disabled),
        metrics: Arc::new(Metrics::new()),
        wake: Arc::new(Notify::new()),
        limits: Limits {
            body_limit_bytes: 64,
            max_queued: 10,
            retry_after_secs: 5,
        },
        github: None,
        marker: None,
        strategies: None,
    };
    let router = app(state);
    let get = |uri: &str| Request::get(uri).body(Body::empty()).unwrap();
    let response = router.clone().oneshot(get("/healthz")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = router.clone().oneshot(get("/readyz")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let big = Request::post("/webhooks/alertmanager")
        .body(Body::from(vec![b' '; 65]))
        .unwrap();
    let response = router.clone().oneshot(big).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let empty = Request::post("/webhooks/alertmanager")
        .body(Body::from(
            r#"{"version":"4","status":"firing","alerts":[]}"#,
        ))
        .unwrap();
    let response = router.oneshot(empty).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
