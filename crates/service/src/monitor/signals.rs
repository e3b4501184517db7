//! Signals of one deployment over one window, computed from its prediction records (and the
//! outcomes joined to them) against the release's reference profile.
//!
//! Drift is measured by `vigil_stats::drift` with the evaluation engine's default options,
//! on the reference values `vigil drift` would read from the training file and on the
//! values the model was actually given (inputs used as supplied or converted; fills and
//! missing inputs are counted by the missing-feature rate instead).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;
use vigil_domain::monitor::{Baseline, Observation, Signal};
use vigil_domain::prediction::PredictionRecord;
use vigil_domain::{FeatureContract, FeatureType};
use vigil_stats::numpy_compat::percentile_sorted;
use vigil_stats::{DriftOptions, FeatureDrift, FeatureValues};

use super::profile::{ReferenceProfile, oe_ratio};

/// A feature's status meaning the model was given the value as supplied (or converted).
pub fn usable(status: &str) -> bool {
    matches!(status, "ok" | "present" | "converted")
}

/// One window's records, with the labels joined to them.
pub struct WindowData<'a> {
    pub records: Vec<&'a PredictionRecord>,
    /// Label per record index into `records` (only records with an outcome).
    pub labels: HashMap<usize, bool>,
    /// Clinician feedback on the cards of these records: `true` for each override, `false`
    /// for each acceptance (loaded only for the override rate).
    pub feedback: Vec<bool>,
}

/// A signal's value, its baseline and how it was reached.
#[derive(Clone, Debug, Serialize)]
pub struct SignalValue {
    pub signal: Signal,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feature: Option<String>,
    pub value: Option<f64>,
    pub n: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Baseline>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl SignalValue {
    pub fn observation(&self) -> Option<Observation> {
        self.value.map(|value| Observation { value, n: self.n })
    }
}

/// The current values of every reference feature in these records, as the drift engine
/// takes them (categories by level name).
pub fn current_values(
    records: &[&PredictionRecord],
    contract: &FeatureContract,
    profile: &ReferenceProfile,
) -> BTreeMap<String, FeatureValues> {
    let mut out = BTreeMap::new();
    for (name, r) in &profile.features {
        let levels = contract
            .find_feature(name)
            .filter(|f| f.ty == FeatureType::Category)
            .map(|f| f.levels.clone());
        let vals = records.iter().filter_map(|rec| {
            rec.features
                .iter()
                .find(|f| &f.name == name)
                .filter(|f| usable(&f.status))
                .and_then(|f| f.value)
                .filter(|v| v.is_finite())
        });
        let v = match (r, levels) {
            (FeatureValues::Categorical(_), Some(levels)) => FeatureValues::Categorical(
                vals.filter_map(|i| levels.get(i as usize).cloned())
                    .collect(),
            ),
            (FeatureValues::Categorical(_), None) => {
                FeatureValues::Categorical(vals.map(|v| v.to_string()).collect())
            }
            (FeatureValues::Numeric(_), _) => FeatureValues::Numeric(vals.collect()),
        };
        out.insert(name.clone(), v);
    }
    out
}

fn drift_value(d: &FeatureDrift, s: Signal) -> Option<f64> {
    let e = match s {
        Signal::Psi | Signal::ScorePsi => &d.psi,
        Signal::Ks | Signal::ScoreKs => &d.ks_statistic,
        Signal::Js => &d.js_distance,
        Signal::Wasserstein | Signal::ScoreWasserstein => &d.wasserstein,
        _ => return None,
    };
    e.as_ref().ok().copied()
}

fn rate(k: u64, n: u64) -> Option<f64> {
    (n > 0).then(|| k as f64 / n as f64)
}

fn binomial(p: Option<f64>, n: u64) -> Option<Baseline> {
    p.map(|p| Baseline {
        value: p,
        sd: (n > 0).then(|| (p * (1.0 - p) / n as f64).sqrt()),
    })
}

/// Mean and standard deviation of a drift statistic between the full reference and random
/// subsamples of it the size of the window: the reference's own variation.
fn reference_variation(reference: &FeatureValues, n: usize, s: Signal) -> Option<Baseline> {
    let len = match reference {
        FeatureValues::Numeric(v) => v.len(),
        FeatureValues::Categorical(v) => v.len(),
    };
    if len < 4 || n == 0 {
        return None;
    }
    let size = n.min(len / 2).max(1);
    let mut rng = vigil_stats::rng::Xoshiro256StarStar::seed_from_u64(0x5eed ^ n as u64);
    let mut values = Vec::new();
    let key = "x".to_string();
    let reference_map = BTreeMap::from([(key.clone(), reference.clone())]);
    for _ in 0..20 {
        let idx: Vec<usize> = (0..size).map(|_| rng.below(len as u64) as usize).collect();
        let sub = match reference {
            FeatureValues::Numeric(v) => {
                FeatureValues::Numeric(idx.iter().map(|&i| v[i]).collect())
            }
            FeatureValues::Categorical(v) => {
                FeatureValues::Categorical(idx.iter().map(|&i| v[i].clone()).collect())
            }
        };
        let cur = BTreeMap::from([(key.clone(), sub)]);
        let d = vigil_stats::drift(&reference_map, &cur, &DriftOptions::default());
        if let Some(x) = d.features.get(&key).and_then(|d| drift_value(d, s)) {
            values.push(x);
        }
    }
    if values.len() < 2 {
        return None;
    }
    let m = values.iter().sum::<f64>() / values.len() as f64;
    let var = values.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (values.len() - 1) as f64;
    Some(Baseline {
        value: m,
        sd: Some(var.sqrt()),
    })
}

/// Hanley–McNeil standard error of an AUROC with these class sizes.
fn auroc_se(a: f64, n_pos: f64, n_neg: f64) -> Option<f64> {
    if n_pos < 1.0 || n_neg < 1.0 {
        return None;
    }
    let q1 = a / (2.0 - a);
    let q2 = 2.0 * a * a / (1.0 + a);
    let v = (a * (1.0 - a) + (n_pos - 1.0) * (q1 - a * a) + (n_neg - 1.0) * (q2 - a * a))
        / (n_pos * n_neg);
    Some(v.max(0.0).sqrt())
}

/// Computes `signal` over the window. `with_variation` also estimates the reference's own
/// variation for drift signals (needed only by sigma thresholds; it costs 20 drift runs).
pub fn compute(
    signal: Signal,
    feature: Option<&str>,
    w: &WindowData<'_>,
    contract: &FeatureContract,
    profile: &ReferenceProfile,
    threshold: f64,
    with_variation: bool,
) -> SignalValue {
    let n = w.records.len() as u64;
    let mut out = SignalValue {
        signal,
        feature: feature.map(str::to_owned),
        value: None,
        n,
        baseline: None,
        reason: None,
    };
    let scores: Vec<f64> = w.records.iter().filter_map(|r| r.score).collect();
    match signal {
        Signal::Volume => out.value = Some(n as f64),
        Signal::Psi | Signal::Ks | Signal::Js | Signal::Wasserstein => {
            let f = feature.unwrap_or_default();
            let Some(reference) = profile.features.get(f) else {
                out.reason = Some(format!("`{f}` is not in the reference profile"));
                return out;
            };
            let cur = current_values(&w.records, contract, profile);
            let cur_f = cur
                .get(f)
                .cloned()
                .unwrap_or(FeatureValues::Numeric(Vec::new()));
            let cn = match &cur_f {
                FeatureValues::Numeric(v) => v.len(),
                FeatureValues::Categorical(v) => v.len(),
            };
            out.n = cn as u64;
            let r = BTreeMap::from([(f.to_owned(), reference.clone())]);
            let c = BTreeMap::from([(f.to_owned(), cur_f)]);
            let d = vigil_stats::drift(&r, &c, &DriftOptions::default());
            match d.features.get(f) {
                Some(fd) => {
                    out.value = drift_value(fd, signal);
                    if out.value.is_none() {
                        out.reason = Some(format!("{signal} is not estimable for `{f}`"));
                    }
                }
                None => out.reason = Some("no drift computed".into()),
            }
            out.baseline = if with_variation {
                reference_variation(reference, cn, signal)
            } else {
                Some(Baseline {
                    value: 0.0,
                    sd: None,
                })
            };
        }
        Signal::ScorePsi | Signal::ScoreKs | Signal::ScoreWasserstein => {
            if profile.scores.is_empty() {
                out.reason = Some("the reference profile has no scores".into());
                return out;
            }
            out.n = scores.len() as u64;
            let key = "score".to_string();
            let reference = FeatureValues::Numeric(profile.scores.clone());
            let r = BTreeMap::from([(key.clone(), reference.clone())]);
            let c = BTreeMap::from([(key.clone(), FeatureValues::Numeric(scores.clone()))]);
            let d = vigil_stats::drift(&r, &c, &DriftOptions::default());
            out.value = d.features.get(&key).and_then(|d| drift_value(d, signal));
            out.baseline = if with_variation {
                reference_variation(&reference, scores.len(), signal)
            } else {
                Some(Baseline {
                    value: 0.0,
                    sd: None,
                })
            };
        }
        Signal::MissingRate => {
            let k = w
                .records
                .iter()
                .filter(|r| match feature {
                    Some(f) => r
                        .features
                        .iter()
                        .find(|x| x.name == f)
                        .is_none_or(|x| !usable(&x.status)),
                    None => r.features.iter().any(|x| !usable(&x.status)),
                })
                .count() as u64;
            out.value = rate(k, n);
            let p = match feature {
                Some(f) => profile.summary.features.get(f).map(|s| s.missing_rate),
                None => None,
            };
            out.baseline = binomial(p, n);
        }
        Signal::FallbackRate | Signal::ErrorRate => {
            let k = w
                .records
                .iter()
                .filter(|r| match signal {
                    Signal::ErrorRate => r.fallback_reason.as_deref() == Some("model_error"),
                    _ => r.fallback_reason.is_some(),
                })
                .count() as u64;
            out.value = rate(k, n);
            let p = match signal {
                Signal::FallbackRate => profile.summary.scores.as_ref().map(|s| s.abstention_rate),
                _ => Some(0.0),
            };
            out.baseline = binomial(p, n);
        }
        Signal::AlertShare => {
            let k = scores.iter().filter(|s| **s >= threshold).count() as u64;
            out.n = scores.len() as u64;
            out.value = rate(k, out.n);
            out.baseline = binomial(
                profile.summary.scores.as_ref().map(|s| s.alert_share),
                out.n,
            );
        }
        Signal::AlertBurden => {
            let mut patient_days = BTreeSet::new();
            let mut alerts = 0u64;
            for r in &w.records {
                let who = r
                    .patient_key
                    .clone()
                    .unwrap_or_else(|| r.request_id.clone());
                let day = r.recorded_at.as_micros().div_euclid(86_400_000_000);
                patient_days.insert((who, day));
                if r.score.is_some_and(|s| s >= threshold) {
                    alerts += 1;
                }
            }
            out.n = patient_days.len() as u64;
            out.value = (out.n > 0).then(|| 100.0 * alerts as f64 / out.n as f64);
        }
        Signal::LatencyP50 | Signal::LatencyP95 | Signal::LatencyP99 => {
            let mut l: Vec<f64> = w
                .records
                .iter()
                .map(|r| r.latency_us as f64 / 1000.0)
                .collect();
            l.sort_unstable_by(f64::total_cmp);
            let q = match signal {
                Signal::LatencyP50 => 50.0,
                Signal::LatencyP95 => 95.0,
                _ => 99.0,
            };
            out.value = (!l.is_empty()).then(|| percentile_sorted(&l, q));
        }
        Signal::OverrideRate => {
            out.n = w.feedback.len() as u64;
            let k = w.feedback.iter().filter(|o| **o).count() as u64;
            out.value = rate(k, out.n);
            if out.value.is_none() {
                out.reason =
                    Some("no clinician feedback on this window's cards is recorded".into());
            }
        }
        Signal::Auroc
        | Signal::CalibrationIntercept
        | Signal::CalibrationSlope
        | Signal::Ece
        | Signal::OeRatio => {
            let (s, y): (Vec<f64>, Vec<bool>) = w
                .records
                .iter()
                .enumerate()
                .filter_map(|(i, r)| Some((r.score?, *w.labels.get(&i)?)))
                .unzip();
            out.n = s.len() as u64;
            let reference = profile.summary.scores.as_ref();
            let est = |e: vigil_stats::Estimate<f64>| e.ok().filter(|v| v.is_finite());
            let (value, base) = match signal {
                Signal::Auroc => (
                    est(vigil_stats::auroc(&s, &y)),
                    reference.and_then(|r| r.auroc),
                ),
                Signal::CalibrationIntercept => (
                    est(vigil_stats::calibration_intercept(&s, &y)),
                    reference.and_then(|r| r.calibration_intercept),
                ),
                Signal::CalibrationSlope => (
                    est(vigil_stats::calibration_slope(&s, &y)),
                    reference.and_then(|r| r.calibration_slope),
                ),
                Signal::Ece => (
                    est(vigil_stats::expected_calibration_error(&s, &y)),
                    reference.and_then(|r| r.ece),
                ),
                _ => (oe_ratio(&s, &y), reference.and_then(|r| r.oe_ratio)),
            };
            out.value = value;
            if value.is_none() && out.n > 0 {
                out.reason = Some(format!("{signal} is not estimable in this window"));
            }
            let pos = y.iter().filter(|l| **l).count() as f64;
            let neg = y.len() as f64 - pos;
            let expected: f64 = s.iter().sum();
            out.baseline = base.map(|b| Baseline {
                value: b,
                sd: match signal {
                    Signal::Auroc => auroc_se(b, pos, neg),
                    Signal::OeRatio => (expected > 0.0).then(|| b / expected.sqrt()),
                    _ => None,
                },
            });
        }
    }
    out
}
