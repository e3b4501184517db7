//! Recording CDS calls as prediction records: the seam between the call path and whatever
//! makes records durable (the store directly, or the serving runtime's group-commit
//! recorder), and the per-feature account written into each record.

use std::future::Future;
use std::pin::Pin;

use vigil_cds::fhir::Mapped;
use vigil_domain::FeatureContract;
use vigil_domain::prediction::{FeatureRecord, PredictionRecord};
use vigil_inference::contract::{FeatureOutcome, FeatureStatus};

use crate::{Result, Vigil};

/// A CDS call as recorded: a prediction record on channel `cds` whose context holds the
/// hookInstance, the card uuids, the mapping's account, the fetched keys and the client.
pub type CdsPrediction = PredictionRecord;
/// One input as recorded, with its source and observation time.
pub type CdsFeature = FeatureRecord;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where CDS calls are recorded; `record` returns once the records are durable.
pub trait PredictionSink: Send + Sync {
    fn record(&self, records: Vec<CdsPrediction>) -> BoxFuture<'_, Result<()>>;
    /// The keyed hash of a patient or encounter identifier (`kind` is `patient` or `encounter`).
    fn pseudonymise(&self, kind: &str, raw: &str) -> String;
}

/// Records through the store (`Vigil::record_predictions`), one transaction per call.
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
        Box::pin(async move { self.vigil.record_predictions(&records).await })
    }

    fn pseudonymise(&self, kind: &str, raw: &str) -> String {
        self.vigil.pseudonymise(kind, raw)
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
        (FeatureStatus::Missing | FeatureStatus::Filled, Some(m)) if m.reason.is_some() => {
            m.reason.clone()
        }
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
                status: if input.is_some() {
                    "not_scored"
                } else {
                    "missing"
                }
                .to_string(),
                reason: m.and_then(|m| m.reason.clone()),
                source: input.and_then(|i| i.source.clone()),
                observed_at: input.and_then(|i| i.observed_at),
            }
        })
        .collect()
}
