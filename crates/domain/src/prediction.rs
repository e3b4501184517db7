//! Prediction records: what was asked of a release, what it answered and why — one record
//! per scored row, active or shadow, written before the answer leaves the server.
//!
//! Patient and encounter keys are pseudonymised before they reach this type (a keyed hash;
//! the raw identifiers are never stored). Feature values are the ones given to the model,
//! after unit conversion, with the status of each.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Error, ReleaseId, Result, Timestamp};

/// Whether the answer was shown (active: the production release) or only recorded (shadow).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PredictionMode {
    Active,
    Shadow,
}

impl PredictionMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PredictionMode::Active => "active",
            PredictionMode::Shadow => "shadow",
        }
    }
}

impl fmt::Display for PredictionMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PredictionMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<PredictionMode> {
        match s {
            "active" => Ok(PredictionMode::Active),
            "shadow" => Ok(PredictionMode::Shadow),
            other => Err(Error::invalid(format!(
                "unknown prediction mode `{other}` (expected active or shadow)"
            ))),
        }
    }
}

/// One input as the model saw it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureRecord {
    pub name: String,
    /// The value given to the model (after unit conversion); `None` when missing or invalid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// `ok`, `missing`, `invalid`, `filled`, `stale`, `unconvertible`, …
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Where the value came from (`request`, `prefetch:vitals`, `fhir`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<Timestamp>,
}

/// One scored (or abstained) row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PredictionRecord {
    /// Assigned by the store; `None` before the record is written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
    pub request_id: String,
    pub recorded_at: Timestamp,
    pub model: String,
    pub release: ReleaseId,
    pub mode: PredictionMode,
    /// `predict`, `oip`, `cds`, `batch`, `simulate`.
    pub channel: String,
    /// Pseudonymised (keyed hash, hex); never the raw identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encounter_key: Option<String>,
    pub features: Vec<FeatureRecord>,
    /// `None` when the model abstained (see `fallback_reason`). Never invented.
    pub score: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
    pub latency_us: i64,
    /// What the channel adds: a CDS hookInstance and card uuids, a batch run id, ….
    #[serde(default)]
    pub context: serde_json::Value,
}

impl PredictionRecord {
    /// Checks what the store relies on: a request id, a finite probability or a reason.
    pub fn validate(&self) -> Result<()> {
        if self.request_id.is_empty() || self.request_id.len() > 200 {
            return Err(Error::invalid(
                "a prediction record needs a request id of 1 to 200 characters",
            ));
        }
        if self.channel.is_empty() {
            return Err(Error::invalid("a prediction record needs a channel"));
        }
        match self.score {
            Some(s) if !(0.0..=1.0).contains(&s) => {
                return Err(Error::invalid(format!(
                    "prediction {}: score {s} is not a probability",
                    self.request_id
                )));
            }
            None if self.fallback_reason.is_none() => {
                return Err(Error::invalid(format!(
                    "prediction {}: a record without a score must give its fallback reason",
                    self.request_id
                )));
            }
            _ => {}
        }
        if self.latency_us < 0 {
            return Err(Error::invalid(format!(
                "prediction {}: negative latency",
                self.request_id
            )));
        }
        Ok(())
    }
}

/// Which records to read back. Every field narrows; all `None` reads everything.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PredictionFilter {
    pub model: Option<String>,
    pub release: Option<ReleaseId>,
    pub mode: Option<PredictionMode>,
    pub channel: Option<String>,
    /// Recorded at or after.
    pub since: Option<Timestamp>,
    /// Recorded strictly before.
    pub until: Option<Timestamp>,
    /// Only records with a larger sequence number (for paging and tailing).
    pub after_seq: Option<i64>,
    pub limit: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Digest;

    fn record() -> PredictionRecord {
        PredictionRecord {
            seq: None,
            request_id: "r-1".into(),
            recorded_at: Timestamp::from_micros(1_700_000_000_000_000),
            model: "m".into(),
            release: ReleaseId::from_digest(Digest::of(b"x")),
            mode: PredictionMode::Active,
            channel: "predict".into(),
            patient_key: None,
            encounter_key: None,
            features: vec![],
            score: Some(0.3),
            decision: None,
            fallback_reason: None,
            latency_us: 10,
            context: serde_json::Value::Null,
        }
    }

    #[test]
    fn a_record_needs_a_probability_or_a_reason() {
        assert!(record().validate().is_ok());
        let mut r = record();
        r.score = Some(1.5);
        assert!(r.validate().is_err());
        r.score = None;
        assert!(r.validate().is_err());
        r.fallback_reason = Some("missing_required".into());
        assert!(r.validate().is_ok());
        r.request_id.clear();
        assert!(r.validate().is_err());
    }

    #[test]
    fn modes_round_trip() {
        for m in [PredictionMode::Active, PredictionMode::Shadow] {
            assert_eq!(m.as_str().parse::<PredictionMode>().unwrap(), m);
            assert_eq!(serde_json::to_string(&m).unwrap(), format!("\"{m}\""));
        }
        assert!("live".parse::<PredictionMode>().is_err());
    }
}
