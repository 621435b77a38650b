//! Group commit for SQLite: deliveries that arrive together share one transaction and one fsync.
//!
//! SQLite has one writer, and with `synchronous = FULL` every commit waits for the disk. One
//! transaction per delivery therefore caps intake at the disk's fsync rate, however many
//! webhooks wait. Instead each delivery is handed to one writer task, which takes every
//! delivery waiting at that moment (up to [`MOST_PER_COMMIT`]), records them in one transaction
//! ([`crate::intake`]), commits once and only then answers each caller. An answer still means
//! "on disk"; under light load a group is a single delivery and nothing waits.

use crate::intake::{Delivery, record_together};
use crate::{Backend, DeliveryOutcome, StoreError};
use autofix_core::alert::WebhookPayload;
use serde::Serialize;
use sqlx::AnyPool;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Most deliveries one commit carries, so that one transaction stays short.
const MOST_PER_COMMIT: usize = 256;

/// Deliveries that may wait for the writer before their senders wait too.
const QUEUE: usize = 4096;

/// A delivery waiting for the writer, and where its answer goes.
struct Pending {
    payload: WebhookPayload,
    max_queued: Option<u64>,
    recurrence_window: Duration,
    answer: oneshot::Sender<Result<DeliveryOutcome, StoreError>>,
}

/// How much grouping happened since the store opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct GroupCommitStats {
    /// Transactions committed by the writer task.
    pub commits: u64,
    /// Deliveries they carried, refused ones included.
    pub deliveries: u64,
}

/// The writer task's running counts.
#[derive(Debug, Default)]
struct Counts {
    commits: AtomicU64,
    deliveries: AtomicU64,
}

/// The handle deliveries are submitted through; the writer task ends with the last handle.
#[derive(Debug, Clone)]
pub(crate) struct GroupCommit {
    pending: mpsc::Sender<Pending>,
    counts: Arc<Counts>,
}

impl GroupCommit {
    /// Starts the writer task on the store's writer pool.
    pub(crate) fn start(writer: AnyPool) -> GroupCommit {
        let (pending, waiting) = mpsc::channel(QUEUE);
        let counts = Arc::new(Counts::default());
        tokio::spawn(write_groups(writer, waiting, counts.clone()));
        GroupCommit { pending, counts }
    }

    /// Commits and deliveries so far.
    pub(crate) fn stats(&self) -> GroupCommitStats {
        GroupCommitStats {
            commits: self.counts.commits.load(Ordering::Relaxed),
            deliveries: self.counts.deliveries.load(Ordering::Relaxed),
        }
    }

    /// Records a delivery together with those waiting beside it; `None` when the writer task is
    /// gone (the runtime that started it ended), and the caller records the delivery itself.
    pub(crate) async fn submit(
        &self,
        payload: &WebhookPayload,
        max_queued: Option<u64>,
        recurrence_window: Duration,
    ) -> Option<Result<DeliveryOutcome, StoreError>> {
        let (answer, reply) = oneshot::channel();
        let pending = Pending {
            payload: payload.clone(),
            max_queued,
            recurrence_window,
            answer,
        };
        self.pending.send(pending).await.ok()?;
        Some(reply.await.unwrap_or(Err(StoreError::WriterGone)))
    }
}

/// The writer task: waits for a delivery, takes every other one already waiting, records them
/// in one transaction and answers each.
async fn write_groups(writer: AnyPool, mut waiting: mpsc::Receiver<Pending>, counts: Arc<Counts>) {
    let mut group: Vec<Pending> = Vec::with_capacity(MOST_PER_COMMIT);
    while waiting.recv_many(&mut group, MOST_PER_COMMIT).await > 0 {
        let deliveries: Vec<Delivery<'_>> = group
            .iter()
            .map(|p| Delivery {
                payload: &p.payload,
                max_queued: p.max_queued,
                recurrence_window: p.recurrence_window,
            })
            .collect();
        let outcomes = record_together(&writer, Backend::Sqlite, &deliveries).await;
        drop(deliveries);
        // A caller that went away (its client hung up) misses an answer, not its delivery.
        match outcomes {
            Ok(outcomes) => {
                counts.commits.fetch_add(1, Ordering::Relaxed);
                let carried = u64::try_from(outcomes.len()).unwrap_or(u64::MAX);
                counts.deliveries.fetch_add(carried, Ordering::Relaxed);
                for (pending, outcome) in group.drain(..).zip(outcomes) {
                    let _ = pending.answer.send(outcome);
                }
            }
            Err(e) => {
                let message = e.to_string();
                for pending in group.drain(..) {
                    let _ = pending
                        .answer
                        .send(Err(StoreError::GroupCommit(message.clone())));
                }
            }
        }
    }
}
