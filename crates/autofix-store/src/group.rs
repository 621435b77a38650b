//! Group commit for SQLite: deliveries that arrive together share one transaction and one fsync.
//!
//! SQLite has one writer, and with `synchronous = FULL` every commit waits for the disk. One
//! transaction per delivery therefore caps intake at the disk's fsync rate, however many
//! webhooks wait. Instead each delivery is handed to one writer task, which takes every
//! delivery waiting at that moment (up to [`MOST_PER_COMMIT`]), records them in one transaction
//! ([`crate::intake`]), commits once and only then answers each caller. An answer still means
//! "on disk"; under light load a group is a single delivery and nothing waits.
//!
//! While deliveries keep coming, the writer task keeps the write connection from one group to
//! the next (bounded, so the workers' bookkeeping still gets in).

use crate::backend::Setting;
use crate::intake::{Delivery, record_together};
use crate::{Backend, DeliveryOutcome, StoreError};
use serde::Serialize;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Most deliveries one commit carries, so that one transaction stays short.
const MOST_PER_COMMIT: usize = 256;

/// Longest time the writer task keeps the write connection across groups while deliveries
/// keep coming; the workers' bookkeeping waits at most about this long.
const MOST_HELD: Duration = Duration::from_millis(100);

/// Deliveries that may wait for the writer before their senders wait too.
const QUEUE: usize = 4096;

/// Where a delivery's answer goes.
type Answer = oneshot::Sender<Result<DeliveryOutcome, StoreError>>;

/// A delivery waiting for the writer, and where its answer goes.
struct Pending {
    delivery: Delivery,
    answer: Answer,
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

    /// Records a delivery together with those waiting beside it. The delivery comes back when
    /// the writer task is gone (the runtime that started it ended), for the caller to record
    /// itself.
    pub(crate) async fn submit(
        &self,
        delivery: Delivery,
    ) -> Result<Result<DeliveryOutcome, StoreError>, Delivery> {
        let (answer, reply) = oneshot::channel();
        let pending = Pending { delivery, answer };
        if let Err(refused) = self.pending.send(pending).await {
            return Err(refused.0.delivery);
        }
        Ok(reply.await.unwrap_or(Err(StoreError::WriterGone)))
    }
}

/// The writer task: waits for a delivery, takes every other one already waiting, records them
/// in one transaction and answers each.
///
/// While deliveries keep coming, the task keeps the write connection for the next group, up to
/// [`MOST_HELD`]: the workers' bookkeeping, which shares the connection, then waits instead of
/// putting itself between every two groups. Once nothing waits, the connection goes back.
async fn write_groups(writer: AnyPool, mut waiting: mpsc::Receiver<Pending>, counts: Arc<Counts>) {
    let mut group: Vec<Pending> = Vec::with_capacity(MOST_PER_COMMIT);
    let mut held: Option<(PoolConnection<Any>, Instant)> = None;
    loop {
        if waiting.is_empty() {
            held = None;
        }
        if waiting.recv_many(&mut group, MOST_PER_COMMIT).await == 0 {
            return;
        }
        let (deliveries, answers): (Vec<Delivery>, Vec<_>) =
            group.drain(..).map(|p| (p.delivery, p.answer)).unzip();
        let (mut conn, since, setting) = match held.take() {
            // Kept from the last group, which committed as durably as this one will.
            Some((conn, since)) if since.elapsed() < MOST_HELD => (conn, since, Setting::AsAsked),
            expired => {
                // Give a held connection back before asking for one: the pool has only this
                // one, and bookkeeping waiting for it goes ahead of the next group.
                drop(expired);
                match writer.acquire().await {
                    Ok(conn) => (conn, Instant::now(), Setting::Unknown),
                    Err(e) => {
                        answer_failure(answers, &StoreError::from(e));
                        continue;
                    }
                }
            }
        };
        let outcomes = record_together(&mut conn, Backend::Sqlite, deliveries, setting).await;
        if outcomes.is_ok() {
            held = Some((conn, since));
        } else {
            // A failed commit (a full disk) can leave sqlx's idea of the connection's
            // transaction out of step with SQLite's: the pool opens a fresh one instead.
            conn.close_on_drop();
        }
        // A caller that went away (its client hung up) misses an answer, not its delivery.
        match outcomes {
            Ok(outcomes) => {
                counts.commits.fetch_add(1, Ordering::Relaxed);
                let carried = u64::try_from(outcomes.len()).unwrap_or(u64::MAX);
                counts.deliveries.fetch_add(carried, Ordering::Relaxed);
                for (answer, outcome) in answers.into_iter().zip(outcomes) {
                    let _ = answer.send(outcome);
                }
            }
            Err(e) => answer_failure(answers, &e),
        }
    }
}

/// Tells every delivery of a group that failed as a whole that it was not recorded.
fn answer_failure(answers: Vec<Answer>, error: &StoreError) {
    let message = error.to_string();
    for answer in answers {
        let _ = answer.send(Err(StoreError::GroupCommit(message.clone())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Durability, begin_write, open};
    use autofix_core::alert::WebhookPayload;

    /// The workers' bookkeeping leaves the shared connection at `synchronous = NORMAL`; a group
    /// that gets the connection after it must set FULL again (only a connection the writer kept
    /// from its own last group may skip that).
    #[tokio::test]
    async fn a_group_after_bookkeeping_still_waits_for_the_disk() {
        let dir = tempfile::TempDir::new().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let (backend, writer, _reader) = open(&url).await.unwrap();
        let bookkeeping = begin_write(&writer, backend, Durability::Bookkeeping);
        bookkeeping.await.unwrap().commit().await.unwrap();
        let payload = WebhookPayload::from_json(
            br#"{"version": "4", "status": "firing", "alerts": [{"status": "firing",
                "labels": {"alertname": "KubePodCrashLooping", "namespace": "shop",
                           "pod": "cart-6868cd956-49v8m"},
                "startsAt": "2026-11-26T10:00:00Z", "fingerprint": "f1"}]}"#,
        )
        .unwrap();
        let delivery = Delivery::prepare(&payload, None, Duration::from_secs(3600)).unwrap();
        let group = GroupCommit::start(writer.clone());
        let outcome = group.submit(delivery).await.ok().unwrap().unwrap();
        assert_eq!(outcome.new_alerts, 1);
        // The writer task gives the connection back once nothing waits; SQLite numbers the
        // levels 1 NORMAL, 2 FULL.
        let level: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&writer)
            .await
            .unwrap();
        assert_eq!(level, 2);
    }
}
