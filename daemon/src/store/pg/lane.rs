//! A group-commit lane: one connection, one task, one transaction for whatever queued up.
//!
//! Like the embedded writer (`commit.rs`): block for the first op, drain what else is queued
//! (up to `MAX_BATCH_ROWS` rows), run one transaction, answer every op. While one COMMIT waits
//! for its WAL flush the next batch queues, so under load batches grow by themselves and the
//! cost per notification falls.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio_postgres::Client;

use super::MAX_BATCH_ROWS;
use super::connect::Reconnect;
use crate::store::{StoreError, StoreFuture};

/// Ops waiting for a lane before callers are told the store is full.
const QUEUE: usize = 4096;

pub(super) type BatchFuture<'a, A> =
    Pin<Box<dyn Future<Output = Result<Vec<A>, StoreError>> + Send + 'a>>;

/// One lane's work: a transaction for many items, one answer per item, in order.
pub(super) trait Batch<T, A>: Send + Sync + 'static {
    fn run<'a>(&'a self, client: &'a mut Client, items: Vec<T>) -> BatchFuture<'a, A>;
}

type Op<T, A> = (Vec<T>, oneshot::Sender<Result<Vec<A>, StoreError>>);

pub(super) struct Lane<T, A> {
    tx: mpsc::Sender<Op<T, A>>,
}

impl<T: Send + 'static, A: Send + 'static> Lane<T, A> {
    pub(super) fn start(
        rt: &tokio::runtime::Handle,
        name: &'static str,
        client: Client,
        reconnect: Reconnect,
        batch: Arc<dyn Batch<T, A>>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        rt.spawn(serve(name, client, reconnect, batch, rx));
        Lane { tx }
    }

    pub(super) fn submit(&self, items: Vec<T>) -> StoreFuture<Vec<A>> {
        if items.is_empty() {
            return StoreFuture::ready(Ok(Vec::new()));
        }
        let (reply, rx) = oneshot::channel();
        match self.tx.try_send((items, reply)) {
            Ok(()) => StoreFuture::from_receiver(rx),
            Err(mpsc::error::TrySendError::Full(_)) => StoreFuture::ready(Err(StoreError::Full)),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                StoreFuture::ready(Err(StoreError::Closed))
            }
        }
    }
}

async fn serve<T: Send + 'static, A: Send + 'static>(
    name: &'static str,
    mut client: Client,
    reconnect: Reconnect,
    batch: Arc<dyn Batch<T, A>>,
    mut rx: mpsc::Receiver<Op<T, A>>,
) {
    while let Some(first) = rx.recv().await {
        let mut rows = first.0.len();
        let mut ops = vec![first];
        while rows < MAX_BATCH_ROWS {
            match rx.try_recv() {
                Ok(op) => {
                    rows += op.0.len();
                    ops.push(op);
                }
                Err(_) => break,
            }
        }
        let mut lens = Vec::with_capacity(ops.len());
        let mut items = Vec::with_capacity(rows);
        let mut replies = Vec::with_capacity(ops.len());
        for (op_items, reply) in ops {
            lens.push(op_items.len());
            items.extend(op_items);
            replies.push(reply);
        }
        if client.is_closed() {
            match reconnect.client().await {
                Ok(fresh) => client = fresh,
                Err(e) => {
                    tracing::warn!(lane = name, error = %e, "PostgreSQL lane cannot reconnect");
                    for reply in replies {
                        let _ = reply.send(Err(e.clone()));
                    }
                    continue;
                }
            }
        }
        match batch.run(&mut client, items).await {
            Ok(answers) if answers.len() == rows => {
                let mut answers = answers.into_iter();
                for (reply, len) in replies.into_iter().zip(lens) {
                    let _ = reply.send(Ok(answers.by_ref().take(len).collect()));
                }
            }
            Ok(answers) => {
                let e = StoreError::Backend(format!(
                    "the {name} lane answered {} of {rows} rows",
                    answers.len()
                ));
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
            Err(e) => {
                tracing::warn!(lane = name, error = %e, rows, "PostgreSQL batch failed");
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}
