//! What a CDS call writes, committed with the serving runtime's group commit (or in a
//! transaction of its own when the service runs without one): the token id that must never
//! be accepted again, the alert-fatigue decision (suppression window and daily budget are
//! read under the store's write lock, so concurrent calls cannot both take the last alert of
//! the budget), the shown cards and the call's prediction record.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{Value, json};
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
#[derive(Debug, Default)]
pub(crate) struct SeenTokens(Mutex<Seen>);

#[derive(Debug, Default)]
struct Seen {
    ids: HashMap<(String, String), i64>,
    /// The size at which expired ids are dropped next: at least [`SEEN_PRUNE_AT`], and twice
    /// what survived the last pruning, so that a busy server with many live tokens does not
    /// scan them all on every call.
    prune_at: usize,
}

/// Above this many remembered ids, expired ones are dropped before the next insert.
const SEEN_PRUNE_AT: usize = 50_000;

impl SeenTokens {
    /// `false` if `(iss, jti)` was accepted before and has not expired.
    pub fn claim(&self, iss: &str, jti: &str, expires_at: i64, now: i64) -> bool {
        let mut seen = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let Seen { ids: m, prune_at } = &mut *seen;
        if m.len() >= (*prune_at).max(SEEN_PRUNE_AT) {
            m.retain(|_, exp| *exp >= now);
            *prune_at = (2 * m.len()).max(SEEN_PRUNE_AT);
        }
        match m.entry((iss.to_string(), jti.to_string())) {
            std::collections::hash_map::Entry::Occupied(mut e) => {
                if *e.get() >= now {
                    false
                } else {
                    e.insert(expires_at);
                    true
                }
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(expires_at);
                true
            }
        }
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
}
