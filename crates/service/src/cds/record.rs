//! Recording CDS calls as prediction records: the per-feature account written into each
//! record.

use vigil_cds::fhir::Mapped;
use vigil_domain::FeatureContract;
use vigil_domain::prediction::{FeatureRecord, PredictionRecord};
use vigil_inference::contract::{FeatureOutcome, FeatureStatus};

/// A CDS call as recorded: a prediction record on channel `cds` whose context holds the
/// hookInstance, the card uuids, the mapping's account, the fetched keys and the client.
pub type CdsPrediction = PredictionRecord;
/// One input as recorded, with its source and observation time.
pub type CdsFeature = FeatureRecord;

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
