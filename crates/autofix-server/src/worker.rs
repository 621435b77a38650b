//! The worker pool: N workers claim incidents from the store and run them, one run per worker.

use crate::metrics::{Metrics, RunOutcome};
use crate::runner::{RunError, Runner};
use autofix_core::Incident;
use autofix_store::{Claim, ClaimedIncident, FailOutcome, Store, StoreError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

/// Longest idle wait between looks at the queue when nothing signals new work.
const IDLE_POLL: Duration = Duration::from_secs(5);

/// Wait after a store error before trying again.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// What every worker shares.
#[derive(Clone)]
pub struct WorkerContext {
    /// The queue.
    pub store: Store,
    /// What runs an incident.
    pub runner: Arc<dyn Runner>,
    /// Where outcomes are counted.
    pub metrics: Arc<Metrics>,
    /// Signalled when a delivery queued new work.
    pub wake: Arc<Notify>,
    /// Lease taken on each claim, renewed at a third of it.
    pub lease: Duration,
    /// On shutdown, how long a run may still take before its lease is released.
    pub grace: Duration,
}

/// Starts `count` workers; they stop claiming once `shutdown` turns true.
pub fn spawn_workers(
    count: usize,
    context: &WorkerContext,
    shutdown: &watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    (0..count)
        .map(|n| {
            let context = context.clone();
            let shutdown = shutdown.clone();
            let name = format!("{}/worker-{n}", replica_name());
            tokio::spawn(async move { work(name, context, shutdown).await })
        })
        .collect()
}

/// This process among the replicas sharing a database: the pod name (`HOSTNAME`) and the pid,
/// recorded as the owner of the incidents it claims.
fn replica_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "autofix".to_string());
    format!("{host}-{}", std::process::id())
}

/// One worker's loop: claim, run, record; wait for a signal when the queue is empty.
async fn work(name: String, ctx: WorkerContext, mut shutdown: watch::Receiver<bool>) {
    while !*shutdown.borrow() {
        // Registered before looking, so a delivery between the look and the wait is not missed.
        let woken = ctx.wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let idle = match ctx.store.claim_next(&name, ctx.lease).await {
            Ok(Some(claimed)) => {
                let span = tracing::info_span!(
                    "run",
                    worker = %name,
                    incident = claimed.claim.incident_id,
                    key = %claimed.key,
                    attempt = claimed.attempts
                );
                run_one(&ctx, claimed, &mut shutdown).instrument(span).await;
                continue;
            }
            // Due now but not claimable: its workload is busy; the run ending will wake us.
            Ok(None) => match ctx.store.next_work_in().await {
                Ok(Some(due)) if !due.is_zero() => due.min(IDLE_POLL),
                _ => IDLE_POLL,
            },
            Err(e) => {
                tracing::warn!(worker = %name, error = %e, "cannot claim work");
                STORE_RETRY
            }
        };
        tokio::select! {
            () = woken => {}
            () = tokio::time::sleep(idle) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Runs one claimed incident and records the result; gives it back if shutdown outlasts grace.
async fn run_one(
    ctx: &WorkerContext,
    claimed: ClaimedIncident,
    shutdown: &mut watch::Receiver<bool>,
) {
    let claim = claimed.claim.clone();
    let incident = match Incident::from_alerts(claimed.alerts) {
        Ok(incident) => Incident {
            alerts_left_out: claimed.alerts_left_out,
            ..incident
        },
        Err(e) => {
            let error = RunError::bad_input(format!("cannot rebuild the incident: {e}"));
            record(ctx, &claim, Err(error), Duration::ZERO).await;
            return;
        }
    };
    let started = Instant::now();
    let runner = ctx.runner.clone();
    let mut run = tokio::spawn(async move { runner.run(&incident).await });
    let deadline = async {
        let _ = shutdown.wait_for(|stop| *stop).await;
        tokio::time::sleep(ctx.grace).await;
    };
    let result = tokio::select! {
        joined = &mut run => joined.unwrap_or_else(|e| Err(RunError::transient(format!("the run panicked or was cancelled: {e}")))),
        lost = keep_lease(ctx, &claim) => {
            run.abort();
            tracing::warn!(error = %lost, "lease lost; run abandoned");
            return;
        }
        () = deadline => {
            // A git operation in flight runs on in the blocking pool, unwaited for when the
            // `autofix` binary exits; the next run starts again from a fresh fetch.
            run.abort();
            tracing::warn!(
                grace = ?ctx.grace,
                "shutting down: run interrupted after the grace period; giving it back to the queue"
            );
            match ctx.store.release(&claim).await {
                Ok(()) => ctx.metrics.run(RunOutcome::Released, started.elapsed()),
                Err(e) => tracing::warn!(error = %e, "cannot release the lease; it will expire"),
            }
            return;
        }
    };
    record(ctx, &claim, result, started.elapsed()).await;
}

/// Renews the lease at a third of its length; returns only when it is lost.
async fn keep_lease(ctx: &WorkerContext, claim: &Claim) -> StoreError {
    let every = ctx.lease / 3;
    loop {
        tokio::time::sleep(every).await;
        match ctx.store.renew(claim, ctx.lease).await {
            Ok(()) => {}
            Err(e @ StoreError::LeaseLost(_)) => return e,
            Err(e) => tracing::warn!(error = %e, "cannot renew the lease; trying again"),
        }
    }
}

/// Stores the result of a run and counts it.
async fn record(
    ctx: &WorkerContext,
    claim: &Claim,
    result: Result<crate::runner::RunOutput, RunError>,
    took: Duration,
) {
    let stored = match result {
        Ok(output) => {
            if let Some(kind) = output.published {
                ctx.metrics.published(kind.as_str());
            }
            ctx.metrics.stages(&output.report);
            ctx.metrics.llm_attempts(&output.report);
            ctx.store
                .complete(claim, &output.report)
                .await
                .map(|()| RunOutcome::Done)
        }
        Err(error) => {
            tracing::warn!(error = %error.message, retryable = error.retryable, "run failed");
            ctx.store
                .fail(claim, &error.message, error.retryable)
                .await
                .map(|outcome| match outcome {
                    FailOutcome::Retry { .. } => RunOutcome::Retry,
                    FailOutcome::Parked => RunOutcome::Parked,
                })
        }
    };
    match stored {
        Ok(outcome) => {
            ctx.metrics.run(outcome, took);
            // A retry may be due soon: let idle workers recompute their wait.
            ctx.wake.notify_waiters();
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot record the run; its lease will expire and it will run again")
        }
    }
}
