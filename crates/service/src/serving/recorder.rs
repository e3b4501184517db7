//! Group commit of prediction records: requests hand their records to one writer task, which
//! commits whatever is pending (up to a batch limit) in one transaction and then tells each
//! request whether its record is durable. A request answers only after that.
//!
//! Besides plain records, a request may hand in [`BatchWork`]: writes that must be decided
//! under the store's write lock and committed with the records (a CDS call's token id, its
//! alert-fatigue checks and its card rows). The work runs inside the batch's transaction, in
//! submission order, so it sees what earlier requests of the same batch wrote.

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{mpsc, oneshot};
use vigil_domain::Timestamp;
use vigil_domain::prediction::PredictionRecord;
use vigil_store::{CdsClientRecord, JtiClaim, Tx};

use super::metrics::Metrics;
use crate::governance::BoxFuture;
use crate::predictions::write_error;
use crate::{Error, ErrorKind, Result, Vigil};

/// The outcome of a write, shared by every record of the batch.
pub type Durable = Result<(), Error>;

/// What a piece of [`BatchWork`] wrote: the prediction records to insert with the batch, and
/// a reply for the request that submitted it (handed back once the batch is durable).
pub struct Applied {
    pub records: Vec<PredictionRecord>,
    pub reply: Box<dyn Any + Send>,
}

/// What the batch transaction found for a piece of work before running it.
pub struct Checked {
    /// Whether the store (or earlier work of the batch) held its token id already.
    pub replayed: bool,
    /// The client named by [`BatchWork::client`] as the store holds it now (`None`: not
    /// registered, or removed).
    pub client: Option<Arc<CdsClientRecord>>,
}

/// Writes decided inside the batch transaction (under the store's write lock).
pub trait BatchWork: Send + 'static {
    /// A token id to remember before the work runs, and the time of the call: the batch
    /// remembers the ids of all its work in one statement.
    fn token(&self) -> Option<(&JtiClaim, Timestamp)> {
        None
    }

    /// The CDS client whose registration the work depends on: the batch reads each client
    /// named by its work once.
    fn client(&self) -> Option<&str> {
        None
    }

    /// Runs in the batch's transaction, with what the batch found for it. An error fails the
    /// whole batch, as a failed insert does; a refusal that concerns this request only
    /// belongs in the reply.
    fn apply<'a>(
        self: Box<Self>,
        tx: &'a mut Tx,
        checked: Checked,
    ) -> BoxFuture<'a, Result<Applied>>;
}

// Records are the common case on the hot path; boxing them would cost an allocation each.
#[allow(clippy::large_enum_variant)]
enum Item {
    Record(PredictionRecord),
    Work(Box<dyn BatchWork>),
}

type Reply = Result<Option<Box<dyn Any + Send>>, Error>;

struct Pending {
    item: Item,
    done: Option<oneshot::Sender<Reply>>,
}

/// A handle to the writer task. Cloning is cheap; the task ends when every handle is gone.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Pending>,
    restart_due: Arc<AtomicBool>,
}

/// A record handed to the writer, not yet known to be durable.
pub struct Ticket(oneshot::Receiver<Reply>);

impl Ticket {
    /// Waits until the record's transaction committed (or failed).
    pub async fn durable(self) -> Durable {
        self.reply().await.map(|_| ())
    }

    /// Waits until the transaction committed, and gives the work's reply (`None` for a
    /// plain record).
    pub async fn reply(self) -> Result<Option<Box<dyn Any + Send>>> {
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
        let restart_due = Arc::new(AtomicBool::new(false));
        tokio::spawn(writer(
            vigil,
            metrics,
            rx,
            max_batch.max(1),
            restart_due.clone(),
        ));
        Recorder { tx, restart_due }
    }

    /// Asks the writer to restart the store's log after its next batch (see
    /// [`vigil_store::Store::checkpoint_restart`]): called right after a passive checkpoint,
    /// so that what is left to copy is what was committed meanwhile.
    pub fn restart_log(&self) {
        self.restart_due.store(true, Ordering::Release);
    }

    async fn send(&self, item: Item, wait: bool) -> Ticket {
        let (done, rx) = oneshot::channel();
        // A closed channel drops `done`, and the ticket then reports the writer stopped.
        let _ = self
            .tx
            .send(Pending {
                item,
                done: wait.then_some(done),
            })
            .await;
        Ticket(rx)
    }

    /// Queues a record whose request waits for it.
    pub async fn submit(&self, record: PredictionRecord) -> Ticket {
        self.send(Item::Record(record), true).await
    }

    /// Queues work for the next batch transaction; its reply comes with the ticket.
    pub async fn submit_work(&self, work: Box<dyn BatchWork>) -> Ticket {
        self.send(Item::Work(work), true).await
    }

    /// Queues a record nobody waits for (a shadow prediction); its write is still counted
    /// in the metrics, and a failure is logged.
    pub async fn submit_detached(&self, record: PredictionRecord) {
        let _ = self.send(Item::Record(record), false).await;
    }
}

/// One batch: the work items run in order, then every record is inserted, then one commit.
async fn commit_batch(
    vigil: &Vigil,
    items: Vec<Item>,
    records: &mut Vec<PredictionRecord>,
    replies: &mut Vec<Option<Box<dyn Any + Send>>>,
) -> Result<()> {
    if items.iter().all(|i| matches!(i, Item::Record(_))) {
        // Records alone: one exchange with the store (see `Store::insert_predictions`).
        for item in items {
            if let Item::Record(r) = item {
                records.push(r);
                replies.push(None);
            }
        }
        return vigil
            .store()
            .insert_predictions(records)
            .await
            .map_err(write_error);
    }
    let mut claims = Vec::new();
    let mut latest: Option<Timestamp> = None;
    let mut named: Vec<String> = Vec::new();
    for item in &items {
        if let Item::Work(w) = item {
            if let Some((claim, now)) = w.token() {
                claims.push(claim.clone());
                latest = Some(latest.map_or(now, |l| l.max(now)));
            }
            // Nearly every batch names one client (or none): a list is all the lookup needs.
            if let Some(iss) = w.client()
                && !named.iter().any(|i| i == iss)
            {
                named.push(iss.to_string());
            }
        }
    }
    let (mut tx, opened) = vigil.store().begin_batch(&claims, latest, &named).await?;
    let mut fresh = opened.fresh.into_iter();
    let clients: Vec<(String, Option<Arc<CdsClientRecord>>)> = named
        .into_iter()
        .zip(opened.clients)
        .map(|(iss, c)| (iss, c.map(Arc::new)))
        .collect();
    for item in items {
        match item {
            Item::Record(r) => {
                records.push(r);
                replies.push(None);
            }
            Item::Work(w) => {
                let replayed = w.token().is_some() && !fresh.next().unwrap_or(false);
                let client = w.client().and_then(|iss| {
                    clients
                        .iter()
                        .find(|(i, _)| i == iss)
                        .and_then(|(_, r)| r.clone())
                });
                let a = w.apply(&mut tx, Checked { replayed, client }).await?;
                records.extend(a.records);
                replies.push(Some(a.reply));
            }
        }
    }
    tx.commit_with_predictions(records)
        .await
        .map_err(write_error)
}

/// Runs one piece of work and its records in a transaction of its own (no group commit);
/// durable when this returns.
pub async fn commit_work(vigil: &Vigil, work: Box<dyn BatchWork>) -> Result<Box<dyn Any + Send>> {
    let mut records = Vec::new();
    let mut replies = Vec::new();
    commit_batch(vigil, vec![Item::Work(work)], &mut records, &mut replies).await?;
    replies
        .pop()
        .flatten()
        .ok_or_else(|| Error::internal("the work gave no reply"))
}

async fn writer(
    vigil: Vigil,
    metrics: Arc<Metrics>,
    mut rx: mpsc::Receiver<Pending>,
    max_batch: usize,
    restart_due: Arc<AtomicBool>,
) {
    let mut pending = Vec::with_capacity(max_batch);
    let mut records = Vec::with_capacity(max_batch);
    let mut replies = Vec::with_capacity(max_batch);
    let mut waiters = Vec::with_capacity(max_batch);
    let mut items = Vec::with_capacity(max_batch);
    loop {
        // Whatever queued up while the previous batch was being committed goes in this one.
        if rx.recv_many(&mut pending, max_batch).await == 0 {
            break;
        }
        for p in pending.drain(..) {
            items.push(p.item);
            waiters.push(p.done);
        }
        let result = commit_batch(
            &vigil,
            std::mem::take(&mut items),
            &mut records,
            &mut replies,
        )
        .await;
        metrics.records(records.len(), result.is_ok());
        match result {
            Ok(()) => {
                let mut replies = replies.drain(..);
                for w in waiters.drain(..) {
                    let reply = replies.next().flatten();
                    if let Some(w) = w {
                        let _ = w.send(Ok(reply));
                    }
                }
            }
            Err(e) => {
                eprintln!(
                    "prediction records not written ({} requests, {}): {}",
                    waiters.len(),
                    e.code,
                    e.message
                );
                let refused = unavailable(
                    "the prediction could not be recorded, so it is not answered; retry later",
                );
                replies.clear();
                for w in waiters.drain(..).flatten() {
                    let _ = w.send(Err(refused.clone()));
                }
            }
        }
        records.clear();
        // Between two batches no transaction of this writer is open, so the restart waits
        // for no commit of ours, and the next batch waits only for what is left to copy.
        if restart_due.swap(false, Ordering::AcqRel)
            && let Err(e) = vigil.store().checkpoint_restart().await
        {
            eprintln!("restart of the store's log failed (tried again later): {e}");
        }
    }
}
