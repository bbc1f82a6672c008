//! Group commit: one thread owns the run-lifecycle writes. It takes every operation waiting
//! in its channel, applies them in one transaction, fsyncs once, then answers each caller.
//! Under load a commit carries many completions; idle, a lone operation commits at once.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::Metrics;
use crate::store::{RunOp, RunOpOutcome, Store, StoreError};

type Reply = oneshot::Sender<Result<RunOpOutcome, StoreError>>;

/// The most operations one commit carries.
const MAX_BATCH: usize = 4096;

#[derive(Clone)]
pub struct Committer {
    tx: mpsc::UnboundedSender<(RunOp, Reply)>,
}

impl Committer {
    pub fn start(store: Arc<Store>, metrics: Arc<Metrics>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("baton-committer".into())
            .spawn(move || commit_loop(&store, &metrics, rx))
            .map(|_| ())
            .unwrap_or_else(|e| tracing::error!("cannot start the committer thread: {e}"));
        Self { tx }
    }

    /// Queues `op` for the next commit without waiting for it (live log lines; the run's
    /// completion, committed after, is what callers wait for).
    pub fn send(&self, op: RunOp) {
        let (reply, _) = oneshot::channel();
        if self.tx.send((op, reply)).is_err() {
            tracing::error!("the committer has stopped; a log flush was dropped");
        }
    }

    /// Applies `op` durably; resolves once its commit is on disk.
    pub async fn submit(&self, op: RunOp) -> Result<RunOpOutcome, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send((op, reply))
            .map_err(|_| StoreError::Db("the committer has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Db("the committer has stopped".into()))?
    }
}

fn commit_loop(store: &Store, metrics: &Metrics, mut rx: mpsc::UnboundedReceiver<(RunOp, Reply)>) {
    let mut ops = Vec::with_capacity(MAX_BATCH);
    let mut replies = Vec::with_capacity(MAX_BATCH);
    while let Some((op, reply)) = rx.blocking_recv() {
        ops.push(op);
        replies.push(reply);
        while ops.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok((op, reply)) => {
                    ops.push(op);
                    replies.push(reply);
                }
                Err(_) => break,
            }
        }
        metrics.commits.fetch_add(1, Ordering::Relaxed);
        metrics
            .committed_ops
            .fetch_add(ops.len() as u64, Ordering::Relaxed);
        match store.apply(&ops) {
            Ok(results) => {
                for (reply, result) in replies.drain(..).zip(results) {
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                tracing::error!("commit of {} operations failed: {e}", ops.len());
                let msg = e.to_string();
                for reply in replies.drain(..) {
                    let _ = reply.send(Err(StoreError::Db(msg.clone())));
                }
            }
        }
        ops.clear();
    }
}
