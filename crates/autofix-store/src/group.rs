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
//!
//! A group is recorded on a rusqlite connection of the writer's own, on a blocking thread, in one
//! call ([`record_on_local`]); sqlx's write connection, which the task holds meanwhile, keeps
//! every other writer out. Through sqlx each of a group's ten or so statements would be a round
//! trip between the task and sqlx's SQLite thread, and under load those waits, not SQLite's
//! work, made up half of a group's time. A group that meets an incident with a merged fix goes
//! through sqlx ([`record_together`]), which follows the merge up.

use crate::backend::Setting;
use crate::intake::{Delivery, LocalResult, record_on_local, record_together};
use crate::{Backend, DeliveryOutcome, StoreError};
use serde::Serialize;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
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
    /// Starts the writer task on the store's writer pool, recording on `local` when there is
    /// one (an SQLite file; not an in-memory database, which only sqlx's connection sees).
    pub(crate) fn start(writer: AnyPool, local: Option<rusqlite::Connection>) -> GroupCommit {
        let (pending, waiting) = mpsc::channel(QUEUE);
        let counts = Arc::new(Counts::default());
        let local = local.map(|conn| Arc::new(Mutex::new(conn)));
        tokio::spawn(write_groups(writer, local, waiting, counts.clone()));
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
async fn write_groups(
    writer: AnyPool,
    local: Option<Arc<Mutex<rusqlite::Connection>>>,
    mut waiting: mpsc::Receiver<Pending>,
    counts: Arc<Counts>,
) {
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
        let outcomes = match &local {
            Some(local) => record_held(local, &mut conn, deliveries, setting).await,
            None => record_together(&mut conn, Backend::Sqlite, deliveries, setting).await,
        };
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

/// Records a group on the local connection while `held`, sqlx's write connection, keeps other
/// writers out; a group that meets a merged fix is recorded on `held` instead.
async fn record_held(
    local: &Arc<Mutex<rusqlite::Connection>>,
    held: &mut PoolConnection<Any>,
    deliveries: Vec<Delivery>,
    setting: Setting,
) -> Result<Vec<Result<DeliveryOutcome, StoreError>>, StoreError> {
    let local = local.clone();
    let recorded = tokio::task::spawn_blocking(move || {
        // A panic in an earlier group leaves the lock poisoned, not the connection: a
        // transaction it left open is rolled back first thing.
        let mut conn = local.lock().unwrap_or_else(PoisonError::into_inner);
        record_on_local(&mut conn, deliveries)
    })
    .await;
    match recorded {
        Ok(Ok(LocalResult::Recorded(answers))) => Ok(answers),
        Ok(Ok(LocalResult::Merged(deliveries))) => {
            record_together(held, Backend::Sqlite, deliveries, setting).await
        }
        Ok(Err(e)) => Err(e),
        Err(e) => Err(StoreError::GroupCommit(format!(
            "the group commit's thread failed: {e}"
        ))),
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
    use crate::backend::{Durability, begin_write, open, open_local};
    use autofix_core::alert::WebhookPayload;

    /// A delivery of one firing alert of the `cart` Deployment in `shop`.
    fn cart_alert(fingerprint: &str) -> Delivery {
        let body = format!(
            r#"{{"version": "4", "status": "firing", "alerts": [{{"status": "firing",
                "labels": {{"alertname": "KubePodCrashLooping", "namespace": "shop",
                            "pod": "cart-6868cd956-49v8m"}},
                "startsAt": "2026-11-26T10:00:00Z", "fingerprint": "{fingerprint}"}}]}}"#
        );
        let payload = WebhookPayload::from_json(body.as_bytes()).unwrap();
        Delivery::prepare(&payload, None, Duration::from_secs(3600)).unwrap()
    }

    /// What `record_on_local` answered for a group it recorded.
    fn recorded(result: LocalResult) -> Vec<DeliveryOutcome> {
        match result {
            LocalResult::Recorded(answers) => answers.into_iter().map(Result::unwrap).collect(),
            LocalResult::Merged(_) => panic!("no fix was merged"),
        }
    }

    async fn count(writer: &AnyPool, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(writer).await.unwrap()
    }

    /// The group commit's own connection waits for the disk, and what it commits is what
    /// sqlx's connections read: deliveries in order, a re-delivery within the group included.
    #[tokio::test]
    async fn a_group_recorded_on_the_local_connection_is_what_sqlx_reads() {
        let dir = tempfile::TempDir::new().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let (_backend, writer, _reader) = open(&url).await.unwrap();
        let mut local = open_local(&url).unwrap().expect("a file, not memory");
        let level: i64 = local
            .query_row("PRAGMA synchronous", [], |row| row.get(0))
            .unwrap();
        assert_eq!(level, 2, "FULL");

        let group = vec![cart_alert("f1"), cart_alert("f2"), cart_alert("f1")];
        let answers = recorded(record_on_local(&mut local, group).unwrap());
        let counts: Vec<(u64, u64, u64)> = answers
            .iter()
            .map(|a| (a.new_alerts, a.duplicates, a.incidents_queued))
            .collect();
        assert_eq!(counts, [(1, 0, 1), (1, 0, 0), (0, 1, 0)]);
        assert_eq!(answers[0].incidents_touched, answers[1].incidents_touched);
        assert_eq!(count(&writer, "SELECT COUNT(*) FROM alerts").await, 2);
        let queued = "SELECT COUNT(*) FROM incidents WHERE state = 'queued'";
        assert_eq!(count(&writer, queued).await, 1);
        assert!(local.is_autocommit(), "no transaction left open");
    }

    /// A group with an alert for an incident whose fix was merged is given back unwritten: the
    /// follow-up it may mean (`resolved`, `recurred`) is judged on sqlx's path.
    #[tokio::test]
    async fn a_group_meeting_a_merged_fix_is_given_back_unwritten() {
        let dir = tempfile::TempDir::new().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let (_backend, writer, _reader) = open(&url).await.unwrap();
        let mut local = open_local(&url).unwrap().unwrap();
        recorded(record_on_local(&mut local, vec![cart_alert("f1")]).unwrap());
        sqlx::query(
            "INSERT INTO outcomes (incident_id, incident_hash, branch, outcome, pr_number,
                                   delivery_id, recorded_at)
             SELECT id, 'h', 'autofix/b', 'merged', 7, 'd', 0 FROM incidents",
        )
        .execute(&writer)
        .await
        .unwrap();

        match record_on_local(&mut local, vec![cart_alert("f2")]).unwrap() {
            LocalResult::Merged(back) => assert_eq!(back.len(), 1),
            LocalResult::Recorded(_) => panic!("recorded past a merged fix"),
        }
        assert_eq!(count(&writer, "SELECT COUNT(*) FROM alerts").await, 1);
        assert!(local.is_autocommit(), "rolled back");
    }

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
        let group = GroupCommit::start(writer.clone(), None);
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
