//! Group commit. Every write transaction of the SQLite store runs on one writer thread with a
//! connection of its own. The thread takes all the writes that are waiting, runs each inside
//! its own savepoint of one IMMEDIATE transaction, and commits them together: one WAL sync for
//! the batch instead of one per write, and no writers sleeping in SQLite's busy handler for a
//! lock another connection holds. A write's caller gets its result only after the commit, so a
//! response still leaves only once its audit event is on disk (`synchronous = FULL`).
//!
//! A write that fails rolls back its own savepoint and nothing else; a commit that fails is
//! reported to every write of the batch, none of which then happened.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::Arc;

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

use crate::{ChainCell, Result, StoreError};

/// Writes taken into one transaction at most: enough to amortise the sync under any load this
/// server sees, few enough that one batch never holds the write lock long.
const MAX_BATCH: usize = 512;

/// A write as the writer thread runs it: the work, then (once the batch's fate is known) the
/// delivery of its result to the caller.
/// The connection is an error when the batch's transaction could not even begin.
type Job = Box<dyn FnOnce(std::result::Result<&Connection, &str>, &ChainCell) -> Delivery + Send>;
type Delivery = Box<dyn FnOnce(std::result::Result<(), String>) + Send>;

/// The handle the store keeps: sending a job to the writer thread. Dropping the last handle
/// ends the thread once it has finished the writes already sent.
pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer thread on `conn` (configured like the pool's connections).
    pub(super) fn start(conn: Connection, chain: Arc<ChainCell>) -> Result<Writer> {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("zf-sqlite-writer".into())
            .spawn(move || run(conn, &chain, &queue))
            .map_err(|e| StoreError::Worker(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer { jobs })
    }

    /// Runs `work` as one write and returns its result once the batch holding it has
    /// committed (or its own error, with nothing of it written).
    pub(super) async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &ChainCell) -> Result<T> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |conn, chain| {
            let outcome = match conn {
                Ok(conn) => catch_unwind(AssertUnwindSafe(|| in_savepoint(conn, chain, work)))
                    .unwrap_or_else(|_| {
                        Err(StoreError::Worker(
                            "a write panicked; it was rolled back".into(),
                        ))
                    }),
                Err(reason) => Err(StoreError::Worker(format!(
                    "cannot begin a write transaction: {reason}"
                ))),
            };
            Box::new(move |committed: std::result::Result<(), String>| {
                let result = match (outcome, committed) {
                    (Ok(value), Ok(())) => Ok(value),
                    (Ok(_), Err(e)) => Err(StoreError::Worker(format!("commit failed: {e}"))),
                    (Err(e), _) => Err(e),
                };
                let _ = answer.send(result);
            })
        });
        self.jobs
            .send(job)
            .map_err(|_| StoreError::Worker("the writer thread has stopped".into()))?;
        answered
            .await
            .map_err(|_| StoreError::Worker("the writer thread has stopped".into()))?
    }
}

/// Runs `work` inside a savepoint: kept on success, rolled back on error.
fn in_savepoint<T>(
    conn: &Connection,
    chain: &ChainCell,
    work: impl FnOnce(&Connection, &ChainCell) -> Result<T>,
) -> Result<T> {
    conn.execute_batch("SAVEPOINT zf_write")?;
    match work(conn, chain) {
        Ok(value) => {
            conn.execute_batch("RELEASE zf_write")?;
            Ok(value)
        }
        Err(e) => {
            conn.execute_batch("ROLLBACK TO zf_write; RELEASE zf_write")?;
            Err(e)
        }
    }
}

fn run(mut conn: Connection, chain: &ChainCell, queue: &mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(tx) => {
                let deliveries: Vec<Delivery> =
                    batch.into_iter().map(|job| job(Ok(&tx), chain)).collect();
                let committed = tx.commit().map_err(|e| e.to_string());
                for deliver in deliveries {
                    deliver(committed.clone());
                }
            }
            Err(e) => {
                // Not even begun (another connection held the lock past the busy timeout):
                // each write is told so, and none of them ran.
                let reason = e.to_string();
                for job in batch {
                    job(Err(&reason), chain)(Ok(()));
                }
            }
        }
    }
}
