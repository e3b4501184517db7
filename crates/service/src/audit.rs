//! Verifying and listing the audit chain.

use rayon::prelude::*;
use serde::Serialize;
use vigil_domain::{AuditEvent, ChainBreak, ChainVerifier, Digest, RawEvent};
use vigil_store::{AuditFilter, PACKED_FIELD_SEP, PACKED_RECORD_SEP};

use crate::{Result, Vigil};

/// Events read per page while verifying: large enough to amortise the query, small enough
/// to keep memory flat for any length of chain.
const PAGE: i64 = 20_000;

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
    /// link; stops at the first event where the chain fails.
    ///
    /// Pages are read as packed text (one query each) and the next page is fetched while the
    /// current one is hashed, in parallel, so that reading and hashing overlap.
    pub async fn verify_audit(&self) -> Result<VerifyReport> {
        let mut v = ChainVerifier::new();
        let fetch = |store: vigil_store::Store, after: i64| {
            tokio::spawn(async move { store.audit_packed(after, PAGE).await })
        };
        let mut pending = fetch(self.store.clone(), 0);
        loop {
            let text = pending.await.map_err(|e| crate::Error::internal(e.to_string()))??;
            if text.is_empty() {
                break;
            }
            let last_seq = text
                .rsplit(PACKED_RECORD_SEP)
                .next()
                .and_then(|r| r.split(PACKED_FIELD_SEP).next())
                .and_then(|s| s.parse::<i64>().ok());
            let full = text.matches(PACKED_RECORD_SEP).count() as i64 + 1 >= PAGE;
            if let (Some(last), true) = (last_seq, full) {
                pending = fetch(self.store.clone(), last);
            } else {
                pending = tokio::spawn(async { Ok(String::new()) });
            }
            let (verifier, outcome) = tokio::task::spawn_blocking(move || {
                let r = verify_packed(&mut v, &text);
                (v, r)
            })
            .await
            .map_err(|e| crate::Error::internal(e.to_string()))?;
            v = verifier;
            if let Err((at, message)) = outcome {
                pending.abort();
                return Ok(VerifyReport {
                    verified: v.verified(),
                    head: (v.verified() > 0).then(|| v.head()),
                    outcome: VerifyOutcome::Broken { at, message },
                });
            }
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
}

/// Checks one packed page: splits it into events, hashes them in parallel, then checks the
/// links in order.
fn verify_packed(v: &mut ChainVerifier, text: &str) -> Result<(), (ChainBreak, String)> {
    let mut events = Vec::with_capacity(PAGE as usize);
    for record in text.split(PACKED_RECORD_SEP) {
        let next = v.verified() + 1 + events.len() as i64;
        let unreadable = || {
            let at = ChainBreak::HashMismatch { seq: next };
            let message = format!("event {next} cannot be read: the stored row was altered outside vigil");
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
