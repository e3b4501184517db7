//! What a CDS call writes, committed with the serving runtime's group commit (or in a
//! transaction of its own when the service runs without one): the token id that must never
//! be accepted again, the alert-fatigue decision (suppression window and daily budget are
//! read under the store's write lock, so concurrent calls cannot both take the last alert of
//! the budget), the shown cards and the call's prediction record.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use vigil_cds::card::Indicator;
use vigil_domain::prediction::PredictionRecord;
use vigil_domain::{CdsNoScore, CdsSettings, Timestamp};
use vigil_store::{CdsCardRecord, Tx};

use super::clients::ClientCheck;
use crate::governance::BoxFuture;
use crate::serving::{Applied, BatchWork, Checked};
use crate::{Error, Result};

/// A token id to remember until it expires, when the call came, and the client registration
/// the token was verified against.
#[derive(Debug, Clone)]
pub(crate) struct JtiClaim {
    pub id: vigil_store::JtiClaim,
    pub now: Timestamp,
    pub client: Option<ClientCheck>,
}

/// The cards of an answer, the rows recording them, and how the record describes them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Shown {
    pub cards: Vec<Value>,
    pub rows: Vec<CdsCardRecord>,
    pub decision: Option<String>,
    /// Why an alert was held back (no card shown).
    pub suppressed: Option<&'static str>,
}

/// An alert that is shown only if neither the suppression window nor the daily budget
/// holds it back.
#[derive(Debug, Clone)]
pub(crate) struct AlertCheck {
    pub model: String,
    pub patient_key: Option<String>,
    pub indicator: Indicator,
    pub now: Timestamp,
    pub settings: CdsSettings,
    /// The alert as it is shown.
    pub alert: Shown,
    /// The same risk as an info card (past the budget with `over_budget = "info_card"`).
    pub info: Shown,
}

/// What decides the cards of a call.
#[derive(Debug, Clone)]
pub(crate) enum Cards {
    Fixed(Shown),
    Alert(Box<AlertCheck>),
}

/// The answer to the call once its writes are durable.
#[derive(Debug, Clone)]
pub(crate) enum Reply {
    Cards(Vec<Value>),
    /// The token turned out not to stand: its id was seen already (by another server sharing
    /// the store), or its client was removed (or the key that signed it withdrawn) after it
    /// was verified. Nothing of the call but its token id was written.
    Refused(Error),
}

/// Everything a call writes.
pub(crate) struct CdsWork {
    pub jti: Option<JtiClaim>,
    pub cards: Cards,
    /// The live record (none in silent mode): its `decision` and `context.cards` /
    /// `context.suppressed` are set from the cards decided.
    pub record: Option<PredictionRecord>,
}

/// Whether an alert at `ind` is held back by the suppression window or the daily budget,
/// and what is shown instead.
async fn held_back(
    tx: &mut Tx,
    model: &str,
    patient_key: &Option<String>,
    ind: Indicator,
    now: Timestamp,
    s: &CdsSettings,
) -> Result<Option<(&'static str, CdsNoScore)>> {
    if let (Some(w), Some(pk)) = (s.suppression_window, patient_key)
        && let Some(rank) = tx.cds_last_alert_rank(model, pk, now.minus(w)).await?
        && rank >= ind as i64
    {
        return Ok(Some(("suppression_window", CdsNoScore::NoCard)));
    }
    if let Some(budget) = s.daily_alert_budget {
        let (y, m, d) = now.date();
        let day = Timestamp::parse(&format!("{y:04}-{m:02}-{d:02}"))
            .map_err(|e| Error::internal(e.to_string()))?;
        if tx.cds_alerts_since(model, day).await? >= i64::from(budget) {
            return Ok(Some(("daily_budget", s.over_budget)));
        }
    }
    Ok(None)
}

impl CdsWork {
    async fn run(self, tx: &mut Tx, checked: Checked) -> Result<Applied> {
        let refusal = if checked.replayed {
            Some(super::clients::replayed())
        } else {
            self.jti
                .as_ref()
                .and_then(|j| j.client.as_ref())
                .and_then(|c| c.still_registered(checked.client.as_deref()).err())
        };
        if let Some(e) = refusal {
            return Ok(Applied {
                records: Vec::new(),
                reply: Box::new(Reply::Refused(e)),
            });
        }
        let shown = match self.cards {
            Cards::Fixed(s) => s,
            Cards::Alert(a) => {
                let ind = a.indicator.as_str();
                match held_back(
                    tx,
                    &a.model,
                    &a.patient_key,
                    a.indicator,
                    a.now,
                    &a.settings,
                )
                .await?
                {
                    None => a.alert,
                    Some((why, CdsNoScore::InfoCard)) => Shown {
                        decision: Some(format!("{ind}:{why}")),
                        ..a.info
                    },
                    Some((why, CdsNoScore::NoCard)) => Shown {
                        decision: Some(format!("{ind}:{why}")),
                        suppressed: Some(why),
                        ..Shown::default()
                    },
                }
            }
        };
        if !shown.rows.is_empty() {
            tx.insert_cds_cards(&shown.rows).await?;
        }
        let mut records = Vec::new();
        if let Some(mut record) = self.record {
            if shown.decision.is_some() {
                record.decision = shown.decision;
            }
            record.context["cards"] = json!(shown.rows.iter().map(|c| &c.uuid).collect::<Vec<_>>());
            if let Some(why) = shown.suppressed {
                record.context["suppressed"] = json!(why);
            }
            records.push(record);
        }
        Ok(Applied {
            records,
            reply: Box::new(Reply::Cards(shown.cards)),
        })
    }
}

impl BatchWork for CdsWork {
    fn token(&self) -> Option<(&vigil_store::JtiClaim, Timestamp)> {
        self.jti.as_ref().map(|j| (&j.id, j.now))
    }

    fn client(&self) -> Option<&str> {
        self.jti.as_ref()?.client.as_ref().map(|c| c.iss())
    }

    fn apply<'a>(
        self: Box<Self>,
        tx: &'a mut Tx,
        checked: Checked,
    ) -> BoxFuture<'a, Result<Applied>> {
        Box::pin(self.run(tx, checked))
    }
}

/// Token ids accepted by this process and not yet expired: a replay is refused at once,
/// even while the first use is still in a batch that has not committed. The store's table
/// (written with the batch) catches replays across processes and restarts.
///
/// Ids are kept by when they expire, one set per [`SLOT_SECS`] of expiry time: a set whose
/// time has passed is emptied and kept for reuse, so forgetting scans nothing and a busy
/// server's sets, once each has been used, keep their size instead of growing (and
/// rehashing, with every call waiting on the lock) again. Each id is held as a 128-bit
/// digest of its issuer and value.
#[derive(Debug, Default)]
pub(crate) struct SeenTokens(Mutex<Seen>);

#[derive(Debug, Default)]
struct Seen {
    /// By slot (expiry time / [`SLOT_SECS`]): each id with its exact expiry time.
    live: BTreeMap<i64, IdMap>,
    /// Emptied sets, keeping their capacity.
    spare: Vec<IdMap>,
}

/// The width of one slot of expiry time, in seconds.
const SLOT_SECS: i64 = 16;

type IdMap = HashMap<u128, i64, BuildHasherDefault<DigestHasher>>;

/// The keys are digests already: their low bits are as good a hash as any.
#[derive(Debug, Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u128(&mut self, v: u128) {
        self.0 = v as u64;
    }
}

fn token_key(iss: &str, jti: &str) -> u128 {
    let mut h = Sha256::new();
    h.update((iss.len() as u64).to_le_bytes());
    h.update(iss.as_bytes());
    h.update(jti.as_bytes());
    let d = h.finalize();
    u128::from_le_bytes(d[..16].try_into().expect("a SHA-256 digest has 32 bytes"))
}

impl SeenTokens {
    /// `false` if `(iss, jti)` was accepted before and has not expired (`expires_at` is not
    /// before `now`).
    pub fn claim(&self, iss: &str, jti: &str, expires_at: i64, now: i64) -> bool {
        let key = token_key(iss, jti);
        let mut seen = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let Seen { live, spare } = &mut *seen;
        // Slots whose every id has expired.
        while let Some(entry) = live.first_entry() {
            if (entry.key() + 1) * SLOT_SECS > now {
                break;
            }
            let mut ids = entry.remove();
            ids.clear();
            spare.push(ids);
        }
        for ids in live.values_mut() {
            match ids.get(&key) {
                Some(&exp) if exp >= now => return false,
                Some(_) => {
                    ids.remove(&key);
                }
                None => {}
            }
        }
        live.entry(expires_at.div_euclid(SLOT_SECS))
            .or_insert_with(|| spare.pop().unwrap_or_default())
            .insert(key, expires_at);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_id_is_claimed_once_until_it_expires() {
        let s = SeenTokens::default();
        assert!(s.claim("iss", "a", 100, 10));
        assert!(!s.claim("iss", "a", 100, 50));
        assert!(s.claim("other", "a", 100, 50), "ids are per issuer");
        assert!(s.claim("iss", "b", 100, 50));
        assert!(
            s.claim("iss", "a", 300, 101),
            "an expired id may be used again"
        );
        assert!(!s.claim("iss", "a", 300, 102));
    }

    #[test]
    fn expired_slots_are_reused_and_live_ids_in_other_slots_still_count() {
        let s = SeenTokens::default();
        // Three slots of expiry time.
        assert!(s.claim("iss", "x", 10, 0));
        assert!(s.claim("iss", "y", 40, 0));
        assert!(s.claim("iss", "z", 70, 0));
        // `x` is found whichever slot a replay's claimed expiry falls in.
        assert!(!s.claim("iss", "x", 70, 5));
        // At 33 the first slot is gone, its set kept.
        assert!(s.claim("iss", "w", 75, 33));
        assert_eq!(s.0.lock().unwrap().spare.len(), 1);
        assert!(s.claim("iss", "x", 90, 33), "expired with its slot");
        assert_eq!(s.0.lock().unwrap().spare.len(), 0, "the kept set took it");
        assert!(!s.claim("iss", "y", 90, 33), "still live in its slot");
        assert!(!s.claim("iss", "z", 90, 60));
        assert!(s.claim("iss", "z", 90, 71));
    }
}
