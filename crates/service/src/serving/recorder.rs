//! Group commit of prediction records: requests hand their records to one writer task, which
//! commits whatever is pending (up to a batch limit) in one transaction and then tells each
//! request whether its record is durable. A request answers only after that.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use vigil_domain::prediction::PredictionRecord;

use super::metrics::Metrics;
use crate::{Error, ErrorKind, Result, Vigil};

/// The outcome of a write, shared by every record of the batch.
pub type Durable = Result<(), Error>;

struct Pending {
    record: PredictionRecord,
    done: Option<oneshot::Sender<Durable>>,
}

/// A handle to the writer task. Cloning is cheap; the task ends when every handle is gone.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Pending>,
}

/// A record handed to the writer, not yet known to be durable.
pub struct Ticket(oneshot::Receiver<Durable>);

impl Ticket {
    /// Waits until the record's transaction committed (or failed).
    pub async fn durable(self) -> Durable {
        self.0
            .await
            .unwrap_or_else(|_| Err(unavailable("the prediction record writer stopped")))
    }
}

fn unavailable(m: &str) -> Error {
    Error::new(ErrorKind::Unavailable, "prediction_not_recorded", m)
}

impl Recorder {
    /// Starts the writer on the current tokio runtime. `max_batch` bounds one transaction.
    pub fn start(vigil: Vigil, metrics: Arc<Metrics>, max_batch: usize) -> Recorder {
        let (tx, rx) = mpsc::channel(max_batch.max(1) * 64);
        tokio::spawn(writer(vigil, metrics, rx, max_batch.max(1)));
        Recorder { tx }
    }

    /// Queues a record whose request waits for it.
    pub async fn submit(&self, record: PredictionRecord) -> Ticket {
        let (done, rx) = oneshot::channel();
        // A closed channel drops `done`, and the ticket then reports the writer stopped.
        let _ = self
            .tx
            .send(Pending {
                record,
                done: Some(done),
            })
            .await;
        Ticket(rx)
    }

    /// Queues a record nobody waits for (a shadow prediction); its write is still counted
    /// in the metrics, and a failure is logged.
    pub async fn submit_detached(&self, record: PredictionRecord) {
        let _ = self.tx.send(Pending { record, done: None }).await;
    }
}

async fn writer(
    vigil: Vigil,
    metrics: Arc<Metrics>,
    mut rx: mpsc::Receiver<Pending>,
    max_batch: usize,
) {
    let mut pending = Vec::with_capacity(max_batch);
    let mut records = Vec::with_capacity(max_batch);
    let mut waiters = Vec::with_capacity(max_batch);
    loop {
        // Whatever queued up while the previous batch was being committed goes in this one.
        if rx.recv_many(&mut pending, max_batch).await == 0 {
            break;
        }
        for p in pending.drain(..) {
            records.push(p.record);
            waiters.push(p.done);
        }
        let result = vigil.record_predictions(&records).await;
        metrics.records(records.len(), result.is_ok());
        let outcome: Durable = match result {
            Ok(()) => Ok(()),
            Err(e) => {
                eprintln!(
                    "prediction records not written ({} records, {}): {}",
                    records.len(),
                    e.code,
                    e.message
                );
                Err(unavailable(
                    "the prediction could not be recorded, so it is not answered; retry later",
                ))
            }
        };
        for w in waiters.drain(..).flatten() {
            let _ = w.send(outcome.clone());
        }
        records.clear();
    }
}
