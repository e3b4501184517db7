//! The evidence gates read from the store: recorded evaluations (their JSON reports read
//! back from the artifact store and verified), recorded data checks, and the prediction records
//! a release made in shadow mode.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;
use vigil_blobs::BlobStore;
use vigil_domain::policy::{DataCheckSummary, EvaluationSummary, SubgroupMetrics};
use vigil_domain::prediction::{PredictionFilter, PredictionMode};
use vigil_domain::{ReleaseId, Timestamp};
use vigil_store::Store;

use super::{BoxFuture, EvidenceSource};
use crate::{Error, Result};

/// Evidence as recorded in this Vigil's store.
pub struct StoreEvidence {
    pub store: Store,
    pub blobs: Arc<dyn BlobStore>,
}

/// Flattens the metrics a gate may name from an evaluation report: `auroc`, `auroc.ci_low`,
/// `auroc.ci_high`, `auprc`, `brier`, `prevalence`, `calibration.intercept`,
/// `calibration.slope`, `calibration.ece`. Values that were not estimable are left out, so
/// a gate on them is unmet rather than passed.
pub fn flat_metrics(report: &Value) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: &Value| {
        if let Some(x) = v.as_f64() {
            m.insert(k.to_owned(), x);
        }
    };
    put("auroc", &report["auroc"]["value"]);
    put("auroc.ci_low", &report["auroc"]["ci_low"]);
    put("auroc.ci_high", &report["auroc"]["ci_high"]);
    put("auprc", &report["auprc"]["value"]);
    put("auprc.ci_low", &report["auprc"]["ci_low"]);
    put("brier", &report["brier"]);
    put("prevalence", &report["prevalence"]);
    put("calibration.intercept", &report["calibration"]["intercept"]);
    put("calibration.slope", &report["calibration"]["slope"]);
    put("calibration.ece", &report["calibration"]["ece"]);
    m
}

/// The same metric names from a subgroup's report, whose fields are flat
/// (`auroc`, `auroc_ci_low`, `calibration_slope`, `ece`, …).
fn group_metrics(g: &Value) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    for (name, key) in [
        ("auroc", "auroc"),
        ("auroc.ci_low", "auroc_ci_low"),
        ("auroc.ci_high", "auroc_ci_high"),
        ("auprc", "auprc"),
        ("brier", "brier"),
        ("prevalence", "prevalence"),
        ("calibration.intercept", "calibration_intercept"),
        ("calibration.slope", "calibration_slope"),
        ("calibration.ece", "ece"),
    ] {
        if let Some(x) = g[key].as_f64() {
            m.insert(name.to_owned(), x);
        }
    }
    m
}

fn subgroups(report: &Value) -> Vec<SubgroupMetrics> {
    let mut out = Vec::new();
    let Some(cols) = report["subgroups"].as_object() else {
        return out;
    };
    for (column, groups) in cols {
        let Some(groups) = groups.as_object() else {
            continue;
        };
        for (group, g) in groups {
            out.push(SubgroupMetrics {
                column: column.clone(),
                group: group.clone(),
                n: g["n"].as_u64().unwrap_or(0),
                too_small: !g["suppressed_reason"].is_null(),
                metrics: group_metrics(g),
            });
        }
    }
    out
}

impl EvidenceSource for StoreEvidence {
    fn evaluations<'a>(
        &'a self,
        release: &'a ReleaseId,
    ) -> BoxFuture<'a, Result<Vec<EvaluationSummary>>> {
        Box::pin(async move {
            let mut out = Vec::new();
            for e in self.store.list_evaluations(Some(release)).await? {
                let bytes = self.blobs.get(&e.manifest.report.digest)?;
                let report: Value = serde_json::from_slice(&bytes)
                    .map_err(|err| Error::internal(format!("evaluation {} report: {err}", e.id)))?;
                out.push(EvaluationSummary {
                    id: e.id.to_string(),
                    digest: e.manifest.report.digest,
                    dataset: Some(e.manifest.dataset),
                    at: e.created_at,
                    metrics: flat_metrics(&report),
                    subgroups: subgroups(&report),
                });
            }
            Ok(out)
        })
    }

    fn data_checks<'a>(
        &'a self,
        release: &'a ReleaseId,
    ) -> BoxFuture<'a, Result<Vec<DataCheckSummary>>> {
        Box::pin(async move { Ok(self.store.data_check_summaries_for_release(release).await?) })
    }

    fn shadow_predictions<'a>(
        &'a self,
        release: &'a ReleaseId,
        since: Timestamp,
    ) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move {
            let n = self
                .store
                .count_predictions(&PredictionFilter {
                    release: Some(*release),
                    mode: Some(PredictionMode::Shadow),
                    since: Some(since),
                    ..PredictionFilter::default()
                })
                .await?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }
}
