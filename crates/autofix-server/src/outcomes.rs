//! `POST /webhooks/github`: what became of each fix, recorded on its incident and marked on its
//! MLflow run.
//!
//! A closed pull request from an `autofix/` branch is `merged` or `rejected`; a pushed commit
//! reverting a fix is `reverted`. `resolved` and `recurred` come from Alertmanager deliveries
//! after a merge (see `autofix_store`). Marking the run happens in the background: MLflow being
//! slow or down never fails a delivery, it is logged and counted.

use crate::AppState;
use crate::error::AppError;
use crate::github::{FIX_BRANCH_PREFIX, GithubEvent, Reverted, reverts};
use crate::runner::Runner;
use autofix_store::{Fix, NewOutcome, OutcomeRecord, StoreError};
use autofix_tracking::outcome::Marked;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;
use std::sync::Arc;

/// Marks outcomes on MLflow runs through the runner, which owns the tracker.
#[derive(Clone)]
pub struct OutcomeMarker(pub Arc<dyn Runner>);

impl std::fmt::Debug for OutcomeMarker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OutcomeMarker")
    }
}

/// The reply to a GitHub delivery.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GithubReply {
    /// `pong`, `recorded`, `duplicate` or `ignored`.
    pub result: &'static str,
    /// Why it was ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// The outcomes this delivery recorded.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outcomes: Vec<OutcomeRecord>,
}

impl GithubReply {
    fn of(result: &'static str) -> (StatusCode, GithubReply) {
        let reply = GithubReply {
            result,
            reason: None,
            outcomes: Vec::new(),
        };
        (StatusCode::OK, reply)
    }

    fn ignored(reason: &'static str) -> (StatusCode, GithubReply) {
        let reply = GithubReply {
            result: "ignored",
            reason: Some(reason),
            outcomes: Vec::new(),
        };
        (StatusCode::ACCEPTED, reply)
    }
}

/// An outcome found in a delivery, before it is recorded.
struct Found {
    fix: Fix,
    outcome: autofix_store::Outcome,
    pr_number: Option<u64>,
    commit: Option<String>,
}

/// Verifies, reads and records one GitHub delivery.
pub async fn github_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<GithubReply>), AppError> {
    let result = handle(&state, &headers, body).await;
    state.metrics.github_delivery(match &result {
        Ok((_, reply)) => reply.result,
        Err(e) => e.kind(),
    });
    result.map(|(status, reply)| (status, Json(reply)))
}

async fn handle(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, GithubReply), AppError> {
    let secret = state.github.as_ref().ok_or(AppError::GithubDisabled)?;
    let body = body.map_err(AppError::Body)?;
    let signature = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    if !secret.verifies(signature, &body) {
        return Err(AppError::Signature);
    }
    let event = header(headers, "x-github-event")?;
    let delivery = header(headers, "x-github-delivery")?;
    let retry_after = state.limits.retry_after_secs;
    let store_error = |source: StoreError| AppError::Store {
        source,
        retry_after,
    };
    let store = &state.store;
    let found = match GithubEvent::parse(event, &body)? {
        GithubEvent::Ping => return Ok(GithubReply::of("pong")),
        GithubEvent::Other => {
            return Ok(GithubReply::ignored(
                "neither a closed pull request nor a push",
            ));
        }
        GithubEvent::PullClosed {
            number,
            branch,
            merged,
            merge_commit,
        } => {
            if !branch.starts_with(FIX_BRANCH_PREFIX) {
                return Ok(GithubReply::ignored("not an autofix branch"));
            }
            let mut fix = store.fix_by_branch(&branch).await.map_err(store_error)?;
            if fix.is_none()
                && let Some(hash) = hash_of_branch(&branch)
            {
                fix = store.fix_by_hash(hash).await.map_err(store_error)?;
            }
            let Some(fix) = fix else {
                return Ok(GithubReply::ignored("no incident has this fix branch"));
            };
            let outcome = if merged {
                autofix_store::Outcome::Merged
            } else {
                autofix_store::Outcome::Rejected
            };
            vec![Found {
                fix,
                outcome,
                pr_number: Some(number),
                commit: merge_commit,
            }]
        }
        GithubEvent::Push { commits } => {
            let mut found: Vec<Found> = Vec::new();
            for reverted in commits.iter().flat_map(|c| reverts(&c.message)) {
                let fix = match &reverted {
                    Reverted::Incident(hash) => store.fix_by_hash(hash).await,
                    Reverted::Commit(sha) => store.fix_by_commit(sha).await,
                }
                .map_err(store_error)?;
                if let Some(fix) = fix
                    && !found.iter().any(|f| f.fix.incident_id == fix.incident_id)
                {
                    found.push(Found {
                        fix,
                        outcome: autofix_store::Outcome::Reverted,
                        pr_number: None,
                        commit: None,
                    });
                }
            }
            if found.is_empty() {
                return Ok(GithubReply::ignored("no pushed commit reverts a known fix"));
            }
            found
        }
    };
    if store
        .delivery_recorded(delivery)
        .await
        .map_err(store_error)?
    {
        return Ok(GithubReply::of("duplicate"));
    }
    let mut recorded = Vec::new();
    for f in &found {
        let new = NewOutcome {
            fix: &f.fix,
            outcome: f.outcome,
            pr_number: f.pr_number,
            commit_sha: f.commit.as_deref(),
            delivery_id: delivery,
        };
        recorded.extend(store.record_outcome(&new).await.map_err(store_error)?);
    }
    told(state, &recorded);
    let result = if recorded.is_empty() {
        "duplicate"
    } else {
        "recorded"
    };
    tracing::info!(
        delivery,
        event,
        outcomes = recorded.len(),
        "GitHub delivery {result}"
    );
    let (status, mut reply) = GithubReply::of(result);
    reply.outcomes = recorded;
    Ok((status, reply))
}

/// Counts newly recorded outcomes and marks each on its MLflow run in the background.
pub fn told(state: &AppState, recorded: &[OutcomeRecord]) {
    if let Some(strategies) = state.strategies.clone()
        && !recorded.is_empty()
    {
        let store = state.store.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::learning::relearn(&store, &strategies).await {
                tracing::warn!("cannot relearn strategy statistics from outcomes: {e}");
            }
        });
    }
    for record in recorded {
        state.metrics.outcome(record.outcome.as_str());
        tracing::info!(
            incident = %record.incident_hash,
            branch = %record.branch,
            outcome = %record.outcome,
            "fix outcome recorded"
        );
        let Some(marker) = state.marker.clone() else {
            continue;
        };
        let metrics = state.metrics.clone();
        let record = record.clone();
        tokio::spawn(async move {
            let result = match marker.0.mark_outcome(&record).await {
                None => return,
                Some(Ok(Marked::Run(run_id))) => {
                    tracing::info!(%run_id, outcome = %record.outcome, "outcome marked on the MLflow run");
                    "marked"
                }
                Some(Ok(Marked::NoRun)) => {
                    tracing::warn!(incident = %record.incident_hash, branch = %record.branch, "no MLflow run to mark the outcome on");
                    "no_run"
                }
                Some(Err(e)) => {
                    tracing::warn!(incident = %record.incident_hash, "cannot mark the outcome on MLflow: {e}");
                    "failed"
                }
            };
            metrics.outcome_mark(result);
        });
    }
}

/// A required header, as text.
fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, AppError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .ok_or(AppError::MissingHeader(name))
}

/// The incident hash at the end of a fix branch (`autofix/<ns>/<workload>-<category>-<hash8>`).
fn hash_of_branch(branch: &str) -> Option<&str> {
    let (_, hash) = branch.rsplit_once('-')?;
    (hash.len() == 8 && hash.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hash)
}
