//! Verifying and listing the audit chain.

use rayon::prelude::*;
use serde::Serialize;
use vigil_domain::{AuditEvent, ChainBreak, ChainVerifier, Digest};
use vigil_store::AuditFilter;

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
    pub async fn verify_audit(&self) -> Result<VerifyReport> {
        let mut v = ChainVerifier::new();
        let mut after = 0;
        loop {
            let page = self
                .store
                .list_audit(&AuditFilter { after_seq: after, limit: PAGE, ..Default::default() })
                .await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            // Hashing dominates and each event's hash depends only on its own fields, so it
            // runs in parallel; the links are then checked in order.
            let hashes: Vec<Digest> = page.par_iter().map(AuditEvent::computed_hash).collect();
            for (e, h) in page.iter().zip(&hashes) {
                if let Err(b) = v.check(e, h) {
                    let message = b.to_string();
                    return Ok(VerifyReport {
                        verified: v.verified(),
                        head: (v.verified() > 0).then(|| v.head()),
                        outcome: VerifyOutcome::Broken { at: b, message },
                    });
                }
            }
            if (page.len() as i64) < PAGE {
                break;
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
