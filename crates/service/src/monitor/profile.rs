//! A release's reference profile: what its inputs and scores looked like before go-live.
//!
//! Computed once per release (at the first monitor run that needs it, or on demand) from the
//! training snapshot — per input the values, missing rate, quantiles and binned
//! distribution — and, from the validation snapshot (the release's latest evaluation, else
//! the training snapshot), the release's scores, labels, abstention and expected alert
//! rates. The samples are kept as one blob so that drift in production is measured by the
//! same code, on the same reference values, as `vigil drift` measures it between files.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;
use vigil_data::ColumnType;
use vigil_domain::{Digest, FeatureType, Release, SnapshotId, Timestamp, UserName};
use vigil_stats::FeatureValues;
use vigil_stats::numpy_compat::{linspace, percentile_sorted};
use vigil_store::ReferenceProfileRecord;

use crate::columns::{self, Role, spec};
use crate::{Error, Result, Vigil, audit_event};

const MAGIC: &[u8; 8] = b"VGLREF01";

/// One input's reference summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureSummary {
    /// `numeric` or `categorical`.
    pub kind: String,
    pub n: u64,
    pub missing_rate: f64,
    /// 1st, 5th, 25th, 50th, 75th, 95th, 99th percentiles (numeric).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quantiles: Vec<f64>,
    /// Decile edges and the share of values in each bin (numeric), or each level's share.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bin_edges: Vec<f64>,
    pub bin_shares: Vec<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub levels: Vec<String>,
}

/// The release's scores on the validation snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoreSummary {
    pub snapshot: SnapshotId,
    pub n: u64,
    pub abstention_rate: f64,
    pub threshold: f64,
    /// Share of scored rows at or above the first threshold.
    pub alert_share: f64,
    pub quantiles: Vec<f64>,
    /// Present when the snapshot has labels.
    pub prevalence: Option<f64>,
    pub auroc: Option<f64>,
    pub calibration_intercept: Option<f64>,
    pub calibration_slope: Option<f64>,
    pub ece: Option<f64>,
    pub oe_ratio: Option<f64>,
}

/// The profile's summary (stored as JSON beside the blob of samples).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProfileSummary {
    pub release: String,
    pub training: SnapshotId,
    pub features: BTreeMap<String, FeatureSummary>,
    pub scores: Option<ScoreSummary>,
    /// The sites in the training data's `site` column (empty when it has none): a
    /// deployment that starts scoring patients of another site is sent to revalidation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sites: Vec<String>,
}

/// The column (of the training data) and context key (of prediction records) naming a site.
pub const SITE_KEY: &str = "site";

/// A profile with its samples, ready to compare against.
#[derive(Clone, Debug)]
pub struct ReferenceProfile {
    pub summary: ProfileSummary,
    pub digest: Digest,
    pub computed_at: Timestamp,
    /// Each input's non-missing reference values (categories by level name).
    pub features: BTreeMap<String, FeatureValues>,
    pub scores: Vec<f64>,
    /// Labels of the scored validation rows (empty without labels).
    pub labels: Vec<bool>,
}

#[derive(Serialize, Deserialize)]
struct BlobHeader {
    numeric: Vec<(String, u64)>,
    categorical: BTreeMap<String, Vec<String>>,
    scores: u64,
    labels: Vec<bool>,
}

/// The blob: magic, header length (u64 LE), JSON header, then each numeric feature's values
/// and the scores as f64 LE, in header order.
fn encode(features: &BTreeMap<String, FeatureValues>, scores: &[f64], labels: &[bool]) -> Vec<u8> {
    let mut header = BlobHeader {
        numeric: Vec::new(),
        categorical: BTreeMap::new(),
        scores: scores.len() as u64,
        labels: labels.to_vec(),
    };
    let mut body = Vec::new();
    for (name, v) in features {
        match v {
            FeatureValues::Numeric(x) => {
                header.numeric.push((name.clone(), x.len() as u64));
                for f in x {
                    body.extend_from_slice(&f.to_le_bytes());
                }
            }
            FeatureValues::Categorical(c) => {
                header.categorical.insert(name.clone(), c.clone());
            }
        }
    }
    for f in scores {
        body.extend_from_slice(&f.to_le_bytes());
    }
    let h = serde_json::to_vec(&header).unwrap_or_default();
    let mut out = Vec::with_capacity(16 + h.len() + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(h.len() as u64).to_le_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(&body);
    out
}

type Samples = (BTreeMap<String, FeatureValues>, Vec<f64>, Vec<bool>);

fn decode(bytes: &[u8]) -> Result<Samples> {
    let bad = || Error::internal("the stored reference profile is not readable");
    if bytes.len() < 16 || &bytes[..8] != MAGIC {
        return Err(bad());
    }
    let hl = usize::try_from(u64::from_le_bytes(
        bytes[8..16].try_into().map_err(|_| bad())?,
    ))
    .map_err(|_| bad())?;
    let h: BlobHeader =
        serde_json::from_slice(bytes.get(16..16 + hl).ok_or_else(bad)?).map_err(|_| bad())?;
    let mut pos = 16 + hl;
    let mut take = |n: u64| -> Result<Vec<f64>> {
        let n = usize::try_from(n).map_err(|_| bad())?;
        let end = pos + n * 8;
        let s = bytes.get(pos..end).ok_or_else(bad)?;
        pos = end;
        Ok(s.chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect())
    };
    let mut features = BTreeMap::new();
    for (name, n) in &h.numeric {
        features.insert(name.clone(), FeatureValues::Numeric(take(*n)?));
    }
    let scores = take(h.scores)?;
    for (name, c) in h.categorical {
        features.insert(name, FeatureValues::Categorical(c));
    }
    Ok((features, scores, h.labels))
}

const QUANTILES: [f64; 7] = [1.0, 5.0, 25.0, 50.0, 75.0, 95.0, 99.0];

fn quantiles(sorted: &[f64]) -> Vec<f64> {
    if sorted.is_empty() {
        return Vec::new();
    }
    QUANTILES
        .iter()
        .map(|q| percentile_sorted(sorted, *q))
        .collect()
}

fn numeric_summary(values: &[f64], missing: u64) -> FeatureSummary {
    let mut s = values.to_vec();
    s.sort_unstable_by(f64::total_cmp);
    let total = values.len() as u64 + missing;
    let mut edges: Vec<f64> = if s.is_empty() {
        Vec::new()
    } else {
        linspace(0.0, 100.0, 11)
            .into_iter()
            .map(|q| percentile_sorted(&s, q))
            .collect()
    };
    edges.dedup();
    let mut shares = vec![0.0; edges.len().saturating_sub(1)];
    if !shares.is_empty() {
        let last = shares.len() - 1;
        for v in &s {
            let i = edges.partition_point(|e| e <= v).saturating_sub(1);
            shares[i.min(last)] += 1.0;
        }
        let n = s.len() as f64;
        shares.iter_mut().for_each(|x| *x /= n);
    }
    FeatureSummary {
        kind: "numeric".into(),
        n: s.len() as u64,
        missing_rate: if total == 0 {
            0.0
        } else {
            missing as f64 / total as f64
        },
        quantiles: quantiles(&s),
        bin_edges: edges,
        bin_shares: shares,
        levels: Vec::new(),
    }
}

fn categorical_summary(values: &[String], missing: u64) -> FeatureSummary {
    let mut counts: BTreeMap<&str, f64> = BTreeMap::new();
    for v in values {
        *counts.entry(v.as_str()).or_default() += 1.0;
    }
    let n = values.len() as f64;
    let total = values.len() as u64 + missing;
    FeatureSummary {
        kind: "categorical".into(),
        n: values.len() as u64,
        missing_rate: if total == 0 {
            0.0
        } else {
            missing as f64 / total as f64
        },
        quantiles: Vec::new(),
        bin_edges: Vec::new(),
        bin_shares: counts.values().map(|c| c / n.max(1.0)).collect(),
        levels: counts.keys().map(|k| (*k).to_owned()).collect(),
    }
}

fn ok(e: vigil_stats::Estimate<f64>) -> Option<f64> {
    e.ok().filter(|v| v.is_finite())
}

/// O/E: observed events over the sum of predicted probabilities.
pub fn oe_ratio(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let e: f64 = scores.iter().sum();
    let o = labels.iter().filter(|l| **l).count() as f64;
    (e > 0.0).then_some(o / e)
}

impl Vigil {
    /// The release's reference profile, computed and stored on first need.
    pub async fn reference_profile(
        &self,
        actor: &UserName,
        release: &str,
    ) -> Result<ReferenceProfile> {
        let r = self.get_release(release).await?;
        if let Some(rec) = self.store.reference_profile(&r.id).await? {
            return self.load_profile(rec);
        }
        let (summary, features, scores, labels) = self.compute_profile(&r).await?;
        let blob = encode(&features, &scores, &labels);
        let (digest, _) = self.blobs.put(&blob)?;
        let rec = ReferenceProfileRecord {
            release: r.id,
            digest,
            summary: serde_json::to_value(&summary).map_err(|e| Error::internal(e.to_string()))?,
            computed_at: self.clock.now(),
        };
        let mut tx = self.store.begin().await?;
        if let Some(existing) = tx.reference_profile(&r.id).await? {
            // Another server computed it first: theirs stands.
            tx.rollback().await?;
            return self.load_profile(existing);
        }
        tx.insert_reference_profile(&rec).await?;
        let ev = audit_event(
            actor,
            "monitor.reference_profiled",
            format!("release:{}", r.id),
            json!({
                "digest": digest,
                "training": summary.training,
                "validation": summary.scores.as_ref().map(|s| s.snapshot),
                "features": summary.features.len(),
            }),
        )?;
        tx.append_audit(rec.computed_at, &ev).await?;
        tx.commit().await?;
        Ok(ReferenceProfile {
            summary,
            digest,
            computed_at: rec.computed_at,
            features,
            scores,
            labels,
        })
    }

    fn load_profile(&self, rec: ReferenceProfileRecord) -> Result<ReferenceProfile> {
        let bytes = self.blobs.get(&rec.digest)?;
        let (features, scores, labels) = decode(&bytes)?;
        let summary: ProfileSummary = serde_json::from_value(rec.summary)
            .map_err(|e| Error::internal(format!("stored reference profile: {e}")))?;
        Ok(ReferenceProfile {
            summary,
            digest: rec.digest,
            computed_at: rec.computed_at,
            features,
            scores,
            labels,
        })
    }

    async fn compute_profile(
        &self,
        r: &Release,
    ) -> Result<(
        ProfileSummary,
        BTreeMap<String, FeatureValues>,
        Vec<f64>,
        Vec<bool>,
    )> {
        let contract = self.release_contract(r)?;
        let training = self
            .get_dataset(&r.manifest.training_data.to_string())
            .await?;
        let file = self.snapshot_file(&training)?;
        let names: Vec<(String, FeatureType)> = contract
            .inputs()
            .filter(|f| training.snapshot.columns.contains(&f.name))
            .map(|f| (f.name.clone(), f.ty))
            .collect();
        let specs: Vec<_> = names
            .iter()
            .map(|(n, _)| spec(n, ColumnType::Text))
            .collect();
        let roles: Vec<_> = names
            .iter()
            .map(|(n, _)| (n.clone(), Role::Other))
            .collect();
        let cols = columns::read(&file, &specs, &roles)?;
        let mut features = BTreeMap::new();
        let mut summaries = BTreeMap::new();
        for (n, ty) in &names {
            let cells = columns::text(&cols, n)?;
            let missing = cells
                .iter()
                .filter(|s| columns::is_missing(s.trim()))
                .count() as u64;
            if matches!(ty, FeatureType::Float | FeatureType::Int) {
                // As `vigil drift` reads a numeric column: parsed, finite, the rest left out.
                let v: Vec<f64> = cells
                    .iter()
                    .filter_map(|s| s.trim().parse::<f64>().ok())
                    .filter(|x| x.is_finite())
                    .collect();
                summaries.insert(n.clone(), numeric_summary(&v, missing));
                features.insert(n.clone(), FeatureValues::Numeric(v));
            } else {
                let v: Vec<String> = cells
                    .iter()
                    .filter(|s| !columns::is_missing(s.trim()))
                    .cloned()
                    .collect();
                summaries.insert(n.clone(), categorical_summary(&v, missing));
                features.insert(n.clone(), FeatureValues::Categorical(v));
            }
        }
        // Validation: the latest evaluation's snapshot and label column, else training.
        let evals = self.store.list_evaluations(Some(&r.id)).await?;
        let (ds, label_col) = match evals.last() {
            Some(e) => (
                self.get_dataset(&e.manifest.dataset.to_string()).await?,
                e.manifest.options["label_col"]
                    .as_str()
                    .unwrap_or("outcome")
                    .to_owned(),
            ),
            None => (training.clone(), "outcome".to_owned()),
        };
        let mut scores = Vec::new();
        let mut labels = Vec::new();
        let mut score_summary = None;
        if ds.snapshot.columns.contains(&label_col) {
            let (row_scores, threshold) = self
                .snapshot_scores(&r.id.to_string(), &ds, &label_col)
                .await?;
            let vfile = self.snapshot_file(&ds)?;
            let lcols = columns::read(
                &vfile,
                &[spec(&label_col, ColumnType::Text)],
                &[(label_col.clone(), Role::Label)],
            )?;
            let row_labels = columns::labels(&vfile, &lcols, &label_col, None).ok();
            for (i, s) in row_scores.iter().enumerate() {
                if let Some(s) = s {
                    scores.push(*s);
                    if let Some(l) = &row_labels {
                        labels.push(l[i] == 1.0);
                    }
                }
            }
            let n_rows = row_scores.len().max(1) as f64;
            let mut sorted = scores.clone();
            sorted.sort_unstable_by(f64::total_cmp);
            let has_labels = !labels.is_empty();
            let lab = |f: fn(&[f64], &[bool]) -> vigil_stats::Estimate<f64>| {
                if has_labels {
                    ok(f(&scores, &labels))
                } else {
                    None
                }
            };
            score_summary = Some(ScoreSummary {
                snapshot: ds.id,
                n: scores.len() as u64,
                abstention_rate: (row_scores.len() - scores.len()) as f64 / n_rows,
                threshold,
                alert_share: scores.iter().filter(|s| **s >= threshold).count() as f64
                    / scores.len().max(1) as f64,
                quantiles: quantiles(&sorted),
                prevalence: has_labels
                    .then(|| labels.iter().filter(|l| **l).count() as f64 / labels.len() as f64),
                auroc: lab(vigil_stats::auroc),
                calibration_intercept: lab(vigil_stats::calibration_intercept),
                calibration_slope: lab(vigil_stats::calibration_slope),
                ece: lab(vigil_stats::expected_calibration_error),
                oe_ratio: if has_labels {
                    oe_ratio(&scores, &labels)
                } else {
                    None
                },
            });
        }
        let mut sites = Vec::new();
        if training.snapshot.columns.iter().any(|c| c == SITE_KEY) {
            let scols = columns::read(
                &file,
                &[spec(SITE_KEY, ColumnType::Text)],
                &[(SITE_KEY.to_owned(), Role::Other)],
            )?;
            let set: std::collections::BTreeSet<String> = columns::text(&scols, SITE_KEY)?
                .iter()
                .map(|s| s.trim())
                .filter(|s| !columns::is_missing(s))
                .map(str::to_owned)
                .collect();
            sites = set.into_iter().collect();
        }
        let summary = ProfileSummary {
            release: r.id.to_string(),
            training: training.id,
            features: summaries,
            scores: score_summary,
            sites,
        };
        Ok((summary, features, scores, labels))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn blob_round_trips() {
        let mut f = BTreeMap::new();
        f.insert(
            "a".to_string(),
            FeatureValues::Numeric(vec![1.5, -2.0, 3.25]),
        );
        f.insert(
            "b".to_string(),
            FeatureValues::Categorical(vec!["x".into(), "y".into()]),
        );
        f.insert("c".to_string(), FeatureValues::Numeric(vec![]));
        let bytes = encode(&f, &[0.1, 0.9], &[true, false]);
        let (g, s, l) = decode(&bytes).unwrap();
        assert_eq!(g, f);
        assert_eq!(s, vec![0.1, 0.9]);
        assert_eq!(l, vec![true, false]);
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn numeric_summary_bins_sum_to_one() {
        let v: Vec<f64> = (0..1000).map(f64::from).collect();
        let s = numeric_summary(&v, 10);
        assert!((s.bin_shares.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((s.missing_rate - 10.0 / 1010.0).abs() < 1e-15);
        assert_eq!(s.quantiles.len(), 7);
    }
}
