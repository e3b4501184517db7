//! Verifying and listing the audit chain.

use serde::Serialize;
use vigil_domain::{AuditEvent, ChainBreak, ChainVerifier, Digest, RawEvent};
use vigil_store::{AuditFilter, PACKED_FIELD_SEP, PACKED_RECORD_SEP};

use crate::{Result, Vigil};

/// Events per range while verifying: large enough to amortise the query, small enough to
/// keep memory flat for any length of chain.
const RANGE: i64 = 20_000;

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum VerifyOutcome {
    Intact,
    Broken {
        #[serde(flatten)]
        at: ChainBreak,
        message: String,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// Events checked and found good.
    pub verified: i64,
    /// The hash of the last good event (the head when intact).
    pub head: Option<Digest>,
    pub outcome: VerifyOutcome,
}

impl VerifyReport {
    pub fn is_intact(&self) -> bool {
        matches!(self.outcome, VerifyOutcome::Intact)
    }
}

impl Vigil {
    /// Walks the whole chain, recomputing every hash and checking every link, and names the
    /// first event where the chain fails. Events appended while it runs (after the head it
    /// started from) are left for the next run.
    pub async fn verify_audit(&self) -> Result<VerifyReport> {
        self.verify_audit_in_ranges(RANGE).await
    }

    /// [`Vigil::verify_audit`] with ranges of `range` sequence numbers (for tests of the
    /// range boundaries).
    ///
    /// The head is read first; the sequence numbers up to it are cut into ranges, and each
    /// range is read as packed text (one query) and checked on its own, several at a time,
    /// while the results are taken in order. A range's query also returns the event just
    /// before it, whose stored hash starts that range's verifier; the range before checks
    /// that this stored hash is right, so the ranges together check every link. A range
    /// that ends before its last sequence number reports the gap; a range whose first
    /// event's predecessor is missing is never reached, as the range before reports the gap.
    #[doc(hidden)]
    pub async fn verify_audit_in_ranges(&self, range: i64) -> Result<VerifyReport> {
        let range = range.max(1);
        let head_seq = self.store.audit_head().await?.map_or(0, |(seq, _)| seq);
        let in_flight = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 6)) + 1;
        let check = |store: vigil_store::Store, after: i64, last: i64| {
            tokio::spawn(async move {
                let text = store.audit_packed_range(after, last).await?;
                tokio::task::spawn_blocking(move || check_range(after, last, &text))
                    .await
                    .map_err(|e| crate::Error::internal(e.to_string()))
            })
        };
        let mut pending = std::collections::VecDeque::new();
        let mut next_after = 0;
        let mut verified = 0;
        let mut head = None;
        loop {
            while next_after < head_seq && pending.len() < in_flight {
                let last = (next_after + range).min(head_seq);
                pending.push_back(check(self.store.clone(), next_after, last));
                next_after = last;
            }
            let Some(task) = pending.pop_front() else {
                break;
            };
            let outcome = task
                .await
                .map_err(|e| crate::Error::internal(e.to_string()))??;
            let broken = match outcome {
                RangeOutcome::Intact { last, hash } => {
                    verified = last;
                    head = Some(hash);
                    continue;
                }
                RangeOutcome::Broken {
                    verified: v,
                    head: h,
                    at,
                    message,
                } => {
                    verified = v;
                    head = h.or(head);
                    (at, message)
                }
                RangeOutcome::EndsShort {
                    verified: v,
                    head: h,
                } => {
                    verified = v;
                    head = h.or(head);
                    let found = self.store.audit_seq_after(v).await?.unwrap_or(head_seq);
                    let at = ChainBreak::Gap {
                        expected: v + 1,
                        found,
                    };
                    let message = at.to_string();
                    (at, message)
                }
                RangeOutcome::Unanchored { after } => {
                    // Unreachable in order: the range before ends short. Reported all the same.
                    let found = self.store.audit_seq_after(after).await?.unwrap_or(head_seq);
                    let at = ChainBreak::Gap {
                        expected: after,
                        found,
                    };
                    let message = at.to_string();
                    (at, message)
                }
            };
            for t in &pending {
                t.abort();
            }
            let (at, message) = broken;
            return Ok(VerifyReport {
                verified,
                head: (verified > 0).then_some(head).flatten(),
                outcome: VerifyOutcome::Broken { at, message },
            });
        }
        Ok(VerifyReport {
            verified,
            head: (verified > 0).then_some(head).flatten(),
            outcome: VerifyOutcome::Intact,
        })
    }

    pub async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>> {
        Ok(self.store.list_audit(filter).await?)
    }

    /// The newest `n` audit events, oldest first.
    pub async fn recent_audit(&self, n: i64) -> Result<Vec<AuditEvent>> {
        let head = self.store.audit_head().await?.map_or(0, |(seq, _)| seq);
        self.list_audit(&AuditFilter {
            after_seq: (head - n).max(0),
            limit: n,
            ..AuditFilter::default()
        })
        .await
    }
}

/// What checking one range of the chain found.
#[derive(Debug)]
enum RangeOutcome {
    /// Every event up to `last` is good; `hash` is the last one's.
    Intact { last: i64, hash: Digest },
    /// The range fails at `at`; `verified` events (counted from the start of the chain) are
    /// good, the last of them with hash `head` when it is in this range.
    Broken {
        verified: i64,
        head: Option<Digest>,
        at: ChainBreak,
        message: String,
    },
    /// Every event read is good, but the range stops before its last sequence number.
    EndsShort { verified: i64, head: Option<Digest> },
    /// The event before the range (`after`) is missing or unreadable.
    Unanchored { after: i64 },
}

/// Splits one packed record into its fields, without allocating.
fn fields(record: &str) -> Option<RawEvent<'_>> {
    let mut it = record.split(PACKED_FIELD_SEP);
    let mut f = [""; 8];
    for slot in &mut f {
        *slot = it.next()?;
    }
    if it.next().is_some() {
        return None;
    }
    Some(RawEvent {
        seq: f[0].parse().ok()?,
        at: f[1],
        actor: f[2],
        action: f[3],
        subject: f[4],
        payload: f[5],
        prev_hash: f[6],
        hash: f[7],
    })
}

/// Checks the events `after + 1 ..= last` from their packed text, which starts with event
/// `after` itself unless `after` is 0 (the chain's start).
fn check_range(after: i64, last: i64, text: &str) -> RangeOutcome {
    let mut records = text.split(PACKED_RECORD_SEP).filter(|r| !r.is_empty());
    let mut v = if after == 0 {
        ChainVerifier::new()
    } else {
        let anchor = records
            .next()
            .and_then(fields)
            .filter(|e| e.seq == after)
            .and_then(|e| Digest::parse(e.hash).ok());
        match anchor {
            Some(hash) => ChainVerifier::after(after, hash),
            None => return RangeOutcome::Unanchored { after },
        }
    };
    let mut head = None;
    for record in records {
        let next = v.verified() + 1;
        let checked = match fields(record) {
            Some(e) => v.check_raw(&e, &e.computed_hash()).map_err(|b| {
                let m = b.to_string();
                (b, m)
            }),
            None => Err((
                ChainBreak::HashMismatch { seq: next },
                format!("event {next} cannot be read: the stored row was altered outside vigil"),
            )),
        };
        if let Err((at, message)) = checked {
            return RangeOutcome::Broken {
                verified: v.verified(),
                head,
                at,
                message,
            };
        }
        head = Some(v.head());
    }
    if v.verified() < last {
        return RangeOutcome::EndsShort {
            verified: v.verified(),
            head,
        };
    }
    RangeOutcome::Intact {
        last,
        hash: v.head(),
    }
}
