//! The HTTP routes: the Alertmanager and GitHub webhooks, the incident list, health and metrics.

use crate::AppState;
use crate::error::AppError;
use crate::outcomes;
use autofix_core::alert::{AlertStatus, WebhookPayload};
use autofix_store::{DeliveryOutcome, IncidentRecord, StoreError};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tower_http::trace::TraceLayer;

/// Content type of `GET /metrics` (OpenMetrics text, which Prometheus scrapes natively).
const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The service's routes; binding a socket is the caller's business.
///
/// `POST /webhooks/alertmanager` and `GET /incidents` need credentials;
/// `POST /webhooks/github` needs GitHub's signature instead; `GET /healthz`, `GET /readyz` and
/// `GET /metrics` are open for probes and scrapers.
pub fn app(state: AppState) -> Router {
    let protected = Router::new()
        .route(
            "/webhooks/alertmanager",
            post(alertmanager).layer(DefaultBodyLimit::max(state.limits.body_limit_bytes)),
        )
        .route("/incidents", get(incidents))
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate));
    Router::new()
        .merge(protected)
        .route(
            "/webhooks/github",
            post(outcomes::github_webhook)
                .layer(DefaultBodyLimit::max(state.limits.body_limit_bytes)),
        )
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Refuses requests without valid credentials, before their body is read.
async fn authenticate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if state
        .auth
        .allows(request.headers().get(header::AUTHORIZATION))
    {
        return next.run(request).await;
    }
    if request.uri().path() == "/webhooks/alertmanager" {
        state.metrics.delivery("unauthorized");
    }
    AppError::Unauthorized {
        challenges: state.auth.challenges(),
    }
    .into_response()
}

/// Records a delivery durably, then answers 200 with what it changed.
async fn alertmanager(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<DeliveryOutcome>, AppError> {
    let result = accept(&state, body).await;
    state.metrics.delivery(match &result {
        Ok(_) => "accepted",
        Err(e) => e.kind(),
    });
    result.map(Json)
}

/// Parses and stores one delivery.
async fn accept(
    state: &AppState,
    body: Result<Bytes, BytesRejection>,
) -> Result<DeliveryOutcome, AppError> {
    let body = body.map_err(AppError::Body)?;
    let payload = WebhookPayload::from_json(&body)?;
    let retry_after = state.limits.retry_after_secs;
    let outcome = state
        .store
        .record_delivery(&payload, Some(state.limits.max_queued))
        .await
        .map_err(|e| match e {
            StoreError::QueueFull { depth, .. } => AppError::QueueFull { depth, retry_after },
            source => AppError::Store {
                source,
                retry_after,
            },
        })?;
    let firing = payload
        .alerts
        .iter()
        .filter(|a| a.status == AlertStatus::Firing)
        .count() as u64;
    let resolved = payload.alerts.len() as u64 - firing;
    state.metrics.alerts(
        firing,
        resolved,
        outcome.duplicates,
        outcome.ignored,
        payload.truncated_alerts,
    );
    if payload.truncated_alerts > 0 {
        tracing::warn!(
            truncated = payload.truncated_alerts,
            group = %payload.group_key,
            "Alertmanager truncated this notification (max_alerts): some alerts were not sent"
        );
    }
    outcomes::told(state, &outcome.outcomes);
    if outcome.incidents_queued > 0 {
        state.wake.notify_waiters();
    }
    tracing::info!(
        new = outcome.new_alerts,
        duplicates = outcome.duplicates,
        queued = outcome.incidents_queued,
        "delivery recorded"
    );
    Ok(outcome)
}

/// Every incident, newest first.
async fn incidents(State(state): State<AppState>) -> Result<Json<Vec<IncidentRecord>>, AppError> {
    let retry_after = state.limits.retry_after_secs;
    state
        .store
        .list_incidents()
        .await
        .map(Json)
        .map_err(|source| AppError::Store {
            source,
            retry_after,
        })
}

/// Liveness: the process answers.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: the store answers.
async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("store unavailable: {e}\n"),
        )
            .into_response(),
    }
}

/// The metrics, with the queue gauges read from the store at scrape time.
async fn metrics(State(state): State<AppState>) -> Response {
    match (
        state.store.queue_depth().await,
        state.store.count_by_state().await,
    ) {
        (Ok(depth), Ok(by_state)) => state.metrics.set_queue(depth, &by_state),
        (Err(e), _) | (_, Err(e)) => tracing::warn!(error = %e, "cannot read queue gauges"),
    }
    if let Some(stats) = state.store.group_commit_stats() {
        state.metrics.set_group_commit(stats);
    }
    (
        [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
        state.metrics.render(),
    )
        .into_response()
}
