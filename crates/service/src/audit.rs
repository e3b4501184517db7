//! Verifying and listing the audit chain.

use rayon::prelude::*;
use serde::Serialize;
use vigil_domain::{AuditEvent, ChainBreak, ChainVerifier, Digest, RawEvent};
use vigil_store::{AuditFilter, PACKED_FIELD_SEP, PACKED_RECORD_SEP};

use crate::{Result, Vigil};

/// Events read per page while verifying: large enough to amortise the query, small enough
/// to keep memory flat for any length of chain.
const PAGE: i64 = 20_000;

/// Pages read ahead of the one being hashed.
const READ_AHEAD: usize = 2;

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
    /// Walks the whole chain from the first event, recomputing every hash and checking every
    /// link; stops at the first event where the chain fails. Events appended while it runs
    /// (after the head it started from) are left for the next run.
    ///
    /// Pages are read as packed text (one query each). In an intact chain sequence numbers
    /// are gapless, so page `k` starts after event `k × PAGE` and several pages are read ahead
    /// in parallel while the current one is hashed. A chain with gaps or duplicates makes the
    /// pages overlap or fall short, which the in-order link check reports as a break; a final
    /// comparison with the head catches pages that came back empty.
    pub async fn verify_audit(&self) -> Result<VerifyReport> {
        let mut v = ChainVerifier::new();
        let head_seq = self.store.audit_head().await?.map_or(0, |(seq, _)| seq);
        let pages = (head_seq + PAGE - 1) / PAGE;
        let fetch = |store: vigil_store::Store, page: i64| {
            tokio::spawn(async move { store.audit_packed(page * PAGE, PAGE).await })
        };
        let mut pending = std::collections::VecDeque::new();
        let mut next_page = 0;
        while next_page < pages && pending.len() < READ_AHEAD {
            pending.push_back(fetch(self.store.clone(), next_page));
            next_page += 1;
        }
        let broken = |v: &ChainVerifier, at: ChainBreak, message: String| VerifyReport {
            verified: v.verified(),
            head: (v.verified() > 0).then(|| v.head()),
            outcome: VerifyOutcome::Broken { at, message },
        };
        while let Some(task) = pending.pop_front() {
            if next_page < pages {
                pending.push_back(fetch(self.store.clone(), next_page));
                next_page += 1;
            }
            let text = task
                .await
                .map_err(|e| crate::Error::internal(e.to_string()))??;
            if text.is_empty() {
                break;
            }
            let (verifier, outcome) = tokio::task::spawn_blocking(move || {
                let r = verify_packed(&mut v, &text);
                (v, r)
            })
            .await
            .map_err(|e| crate::Error::internal(e.to_string()))?;
            v = verifier;
            if let Err((at, message)) = outcome {
                for t in &pending {
                    t.abort();
                }
                return Ok(broken(&v, at, message));
            }
        }
        if v.verified() < head_seq {
            let at = ChainBreak::Gap {
                expected: v.verified() + 1,
                found: head_seq,
            };
            let message = at.to_string();
            return Ok(broken(&v, at, message));
        }
        Ok(VerifyReport {
            verified: v.verified(),
            head: (v.verified() > 0).then(|| v.head()),
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

/// Checks one packed page: splits it into events, hashes them in parallel, then checks the
/// links in order.
fn verify_packed(v: &mut ChainVerifier, text: &str) -> Result<(), (ChainBreak, String)> {
    let mut events = Vec::with_capacity(PAGE as usize);
    for record in text.split(PACKED_RECORD_SEP) {
        let next = v.verified() + 1 + events.len() as i64;
        let unreadable = || {
            let at = ChainBreak::HashMismatch { seq: next };
            let message =
                format!("event {next} cannot be read: the stored row was altered outside vigil");
            (at, message)
        };
        let f: Vec<&str> = record.split(PACKED_FIELD_SEP).collect();
        if f.len() != 8 {
            return Err(unreadable());
        }
        let seq = f[0].parse::<i64>().map_err(|_| unreadable())?;
        events.push(RawEvent {
            seq,
            at: f[1],
            actor: f[2],
            action: f[3],
            subject: f[4],
            payload: f[5],
            prev_hash: f[6],
            hash: f[7],
        });
    }
    let hashes: Vec<Digest> = events.par_iter().map(RawEvent::computed_hash).collect();
    for (e, h) in events.iter().zip(&hashes) {
        v.check_raw(e, h).map_err(|b| {
            let m = b.to_string();
            (b, m)
        })?;
    }
    Ok(())
}
