//! Drift between a reference and a current sample: PSI, Kolmogorov–Smirnov,
//! Jensen–Shannon, Wasserstein-1 (numeric) and PSI, χ², Jensen–Shannon (categorical).
//!
//! Every numeric feature is sorted once per sample; histograms, the KS statistic and the
//! Wasserstein distance are then linear merges of the sorted arrays. Features run in
//! parallel.

use std::collections::{BTreeMap, BTreeSet};

use rayon::prelude::*;
use serde::Serialize;
use serde::ser::SerializeMap;

use crate::estimate::{Estimate, EstimateFields, not_estimable, put, serialize_via_fields};
use crate::ks::ks_2samp_sorted;
use crate::numpy_compat::{linspace, percentile_sorted};
use crate::special::chi2_sf;

/// Share used in place of an empty bin's share in PSI when every non-empty share of that
/// sample exceeds it (Evidently's convention; see [`psi`]).
pub const PSI_EMPTY_SHARE: f64 = 1e-4;

/// Replaces the empty shares of one sample as Evidently's `get_binned_data` does: by
/// [`PSI_EMPTY_SHARE`], or — when the smallest non-empty share is at most that — by the
/// smallest non-empty share divided by 10⁶, so an empty bin never weighs more than a rare one.
fn fill_empty_shares(shares: &mut [f64]) {
    let smallest = shares
        .iter()
        .copied()
        .filter(|&s| s != 0.0)
        .fold(f64::INFINITY, f64::min);
    if !smallest.is_finite() {
        return;
    }
    let fill = if smallest <= PSI_EMPTY_SHARE {
        smallest / 1e6
    } else {
        PSI_EMPTY_SHARE
    };
    for s in shares.iter_mut().filter(|s| **s == 0.0) {
        *s = fill;
    }
}

/// How numeric features are binned for PSI and Jensen–Shannon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NumericBinning {
    /// `np.histogram_bin_edges(pooled, bins="sturges")` over reference ∪ current.
    Sturges,
    /// Edges at `n` equally spaced percentiles of the reference (duplicates dropped);
    /// current values outside the reference range fall in the outer bins.
    ReferenceQuantiles(usize),
}

/// Drift settings and the thresholds that decide `drifted`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DriftOptions {
    pub binning: NumericBinning,
    /// `drifted` when PSI >= this (default 0.1).
    pub psi_threshold: f64,
    /// Reference sizes above this use distance thresholds; at or below, test p-values.
    pub large_sample: usize,
    /// Large samples: `drifted` when normalised Wasserstein (numeric) or Jensen–Shannon
    /// (categorical) >= this (default 0.1).
    pub distance_threshold: f64,
    /// Small samples: `drifted` when the KS (numeric) or χ² (categorical) p-value < this.
    pub p_value_threshold: f64,
}

impl Default for DriftOptions {
    fn default() -> Self {
        Self {
            binning: NumericBinning::Sturges,
            psi_threshold: 0.1,
            large_sample: 1000,
            distance_threshold: 0.1,
            p_value_threshold: 0.05,
        }
    }
}

/// A feature's values in one sample.
#[derive(Debug, Clone, PartialEq)]
pub enum FeatureValues {
    Numeric(Vec<f64>),
    Categorical(Vec<String>),
}

/// Drift of one feature.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureDrift {
    pub kind: &'static str,
    pub psi: Estimate<f64>,
    pub ks_statistic: Estimate<f64>,
    pub ks_pvalue: Estimate<f64>,
    pub js_distance: Estimate<f64>,
    pub wasserstein: Estimate<f64>,
    pub wasserstein_normed: Estimate<f64>,
    pub chi2: Estimate<f64>,
    pub chi2_pvalue: Estimate<f64>,
    pub drifted: Estimate<bool>,
}

impl EstimateFields for FeatureDrift {
    fn write_fields<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        map.serialize_entry("kind", self.kind)?;
        put(map, "psi", &self.psi)?;
        put(map, "ks_statistic", &self.ks_statistic)?;
        put(map, "ks_pvalue", &self.ks_pvalue)?;
        put(map, "js_distance", &self.js_distance)?;
        put(map, "wasserstein", &self.wasserstein)?;
        put(map, "wasserstein_normed", &self.wasserstein_normed)?;
        put(map, "chi2", &self.chi2)?;
        put(map, "chi2_pvalue", &self.chi2_pvalue)?;
        put(map, "drifted", &self.drifted)
    }
}
serialize_via_fields!(FeatureDrift);

/// Drift of every feature present in the reference.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriftReport {
    pub features: BTreeMap<String, FeatureDrift>,
}

/// PSI `Σ (r − c) ln(r / c)` over shares, empty shares of each sample replaced as
/// Evidently does (see [`fill_empty_shares`]).
pub fn psi(reference_counts: &[f64], current_counts: &[f64]) -> Estimate<f64> {
    let (rt, ct): (f64, f64) = (reference_counts.iter().sum(), current_counts.iter().sum());
    if rt <= 0.0 || ct <= 0.0 {
        return not_estimable("PSI needs a non-empty reference and current sample");
    }
    let mut r: Vec<f64> = reference_counts.iter().map(|&x| x / rt).collect();
    let mut c: Vec<f64> = current_counts.iter().map(|&x| x / ct).collect();
    fill_empty_shares(&mut r);
    fill_empty_shares(&mut c);
    Ok(r.iter()
        .zip(&c)
        .map(|(&r, &c)| (r - c) * (r / c).ln())
        .sum())
}

/// Jensen–Shannon distance with natural log, as `scipy.spatial.distance.jensenshannon`:
/// `sqrt((KL(p‖m) + KL(q‖m)) / 2)` with `m = (p + q)/2`, inputs normalised to sum 1.
pub fn jensen_shannon(p_counts: &[f64], q_counts: &[f64]) -> Estimate<f64> {
    let (pt, qt): (f64, f64) = (p_counts.iter().sum(), q_counts.iter().sum());
    if pt <= 0.0 || qt <= 0.0 {
        return not_estimable("Jensen–Shannon needs non-empty distributions");
    }
    let rel_entr = |x: f64, y: f64| if x > 0.0 { x * (x / y).ln() } else { 0.0 };
    let mut js = 0.0;
    for (&a, &b) in p_counts.iter().zip(q_counts) {
        let (p, q) = (a / pt, b / qt);
        let m = (p + q) / 2.0;
        js += rel_entr(p, m) + rel_entr(q, m);
    }
    Ok((js / 2.0).max(0.0).sqrt())
}

/// `np.histogram_bin_edges(values, bins="sturges")` from the pooled sorted extremes.
pub fn sturges_edges(min: f64, max: f64, n: usize) -> Vec<f64> {
    let (mut first, mut last) = (min, max);
    if first == last {
        first -= 0.5;
        last += 0.5;
    }
    let width = (max - min) / ((n as f64).log2() + 1.0);
    let bins = if width > 0.0 {
        ((last - first) / width).ceil() as usize
    } else {
        1
    };
    linspace(first, last, bins.max(1) + 1)
}

/// Counts of ascending `sorted` in bins `[e_i, e_{i+1})`, the last bin closed, as
/// `np.histogram`; values outside go to the outer bins when `clamp_outside`.
fn histogram_sorted(sorted: &[f64], edges: &[f64], clamp_outside: bool) -> Vec<f64> {
    let bins = edges.len() - 1;
    let mut counts = vec![0.0; bins];
    let mut b = 0;
    for &v in sorted {
        if !clamp_outside && (v < edges[0] || v > edges[bins]) {
            continue;
        }
        while b + 1 < bins && v >= edges[b + 1] {
            b += 1;
        }
        counts[b] += 1.0;
    }
    counts
}

/// `scipy.stats.wasserstein_distance(u, v)` on ascending-sorted samples:
/// `∫ |F_u − F_v|` over the pooled values.
pub fn wasserstein_sorted(u: &[f64], v: &[f64]) -> f64 {
    let (nu, nv) = (u.len() as f64, v.len() as f64);
    let (mut i, mut j) = (0usize, 0usize);
    let mut total = 0.0;
    let mut prev: Option<f64> = None;
    while i < u.len() || j < v.len() {
        let take_u = j >= v.len() || (i < u.len() && u[i] <= v[j]);
        let x = if take_u { u[i] } else { v[j] };
        if let Some(p) = prev {
            total += (i as f64 / nu - j as f64 / nv).abs() * (x - p);
        }
        if take_u {
            i += 1;
        } else {
            j += 1;
        }
        prev = Some(x);
    }
    total
}

fn population_std(v: &[f64]) -> f64 {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n).sqrt()
}

fn not_applicable<T>(kind: &str) -> Estimate<T> {
    not_estimable(format!("not computed for {kind} features"))
}

/// Drift of one numeric feature (inputs need not be sorted; missing values must be removed
/// first: [`drift`] reports a feature holding NaN as not estimable, naming the row).
pub fn numeric_drift(reference: &[f64], current: &[f64], opts: &DriftOptions) -> FeatureDrift {
    let mut r = reference.to_vec();
    let mut c = current.to_vec();
    r.par_sort_unstable_by(f64::total_cmp);
    c.par_sort_unstable_by(f64::total_cmp);
    numeric_drift_sorted(&r, &c, opts)
}

fn numeric_drift_sorted(r: &[f64], c: &[f64], opts: &DriftOptions) -> FeatureDrift {
    if r.is_empty() || c.is_empty() {
        let e: Estimate<f64> = not_estimable("reference or current sample is empty");
        return FeatureDrift {
            kind: "numeric",
            psi: e.clone(),
            ks_statistic: e.clone(),
            ks_pvalue: e.clone(),
            js_distance: e.clone(),
            wasserstein: e.clone(),
            wasserstein_normed: e.clone(),
            chi2: not_applicable("numeric"),
            chi2_pvalue: not_applicable("numeric"),
            drifted: not_estimable("reference or current sample is empty"),
        };
    }
    let (edges, clamp) = match opts.binning {
        NumericBinning::Sturges => (
            sturges_edges(
                r[0].min(c[0]),
                r[r.len() - 1].max(c[c.len() - 1]),
                r.len() + c.len(),
            ),
            false,
        ),
        NumericBinning::ReferenceQuantiles(n) => {
            let mut e: Vec<f64> = linspace(0.0, 1.0, n.max(1) + 1)
                .into_iter()
                .map(|q| percentile_sorted(r, q * 100.0))
                .collect();
            e.dedup();
            if e.len() < 2 {
                e = vec![r[0] - 0.5, r[0] + 0.5];
            }
            (e, true)
        }
    };
    let rc = histogram_sorted(r, &edges, clamp);
    let cc = histogram_sorted(c, &edges, clamp);
    let ks = ks_2samp_sorted(r, c);
    let w = wasserstein_sorted(r, c);
    let sd = population_std(r);
    let wasserstein_normed = if sd > 0.0 {
        Ok(w / sd)
    } else {
        not_estimable("reference standard deviation is zero")
    };
    let psi_v = psi(&rc, &cc);
    let large = r.len() > opts.large_sample;
    let drifted = match (&psi_v, large, &wasserstein_normed) {
        (Ok(p), true, Ok(wn)) => Ok(*p >= opts.psi_threshold || *wn >= opts.distance_threshold),
        (Ok(p), true, Err(_)) => Ok(*p >= opts.psi_threshold),
        (Ok(p), false, _) => Ok(*p >= opts.psi_threshold || ks.p_value < opts.p_value_threshold),
        (Err(e), _, _) => Err(e.clone()),
    };
    FeatureDrift {
        kind: "numeric",
        psi: psi_v,
        ks_statistic: Ok(ks.statistic),
        ks_pvalue: Ok(ks.p_value),
        js_distance: jensen_shannon(&rc, &cc),
        wasserstein: Ok(w),
        wasserstein_normed,
        chi2: not_applicable("numeric"),
        chi2_pvalue: not_applicable("numeric"),
        drifted,
    }
}

/// χ² test of homogeneity on a 2 × k table of counts, as `scipy.stats.chi2_contingency`
/// (Yates' continuity correction when there is one degree of freedom). Returns
/// `(statistic, p_value)`.
pub fn chi2_two_row(a: &[f64], b: &[f64]) -> Estimate<(f64, f64)> {
    let (ta, tb): (f64, f64) = (a.iter().sum(), b.iter().sum());
    let total = ta + tb;
    if ta <= 0.0 || tb <= 0.0 {
        return not_estimable("χ² needs both samples non-empty");
    }
    let cols: Vec<(f64, f64)> = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (x, y))
        .filter(|(x, y)| x + y > 0.0)
        .collect();
    if cols.len() != a.len() {
        return not_estimable("χ²: a category has zero count in both samples");
    }
    let dof = cols.len().saturating_sub(1);
    if dof == 0 {
        return Ok((0.0, 1.0));
    }
    let mut stat = 0.0;
    for &(x, y) in &cols {
        let col = x + y;
        for (obs, row) in [(x, ta), (y, tb)] {
            let exp = row * col / total;
            let mut o = obs;
            if dof == 1 {
                let diff = exp - o;
                o += diff.abs().min(0.5) * diff.signum();
            }
            stat += (o - exp) * (o - exp) / exp;
        }
    }
    Ok((stat, chi2_sf(stat, dof as f64)))
}

/// Drift of one categorical feature.
pub fn categorical_drift(
    reference: &[String],
    current: &[String],
    opts: &DriftOptions,
) -> FeatureDrift {
    let keys: BTreeSet<&str> = reference
        .iter()
        .chain(current)
        .map(String::as_str)
        .collect();
    let index: BTreeMap<&str, usize> = keys.iter().enumerate().map(|(i, k)| (*k, i)).collect();
    let mut rc = vec![0.0; keys.len()];
    let mut cc = vec![0.0; keys.len()];
    for v in reference {
        rc[index[v.as_str()]] += 1.0;
    }
    for v in current {
        cc[index[v.as_str()]] += 1.0;
    }
    let psi_v = psi(&rc, &cc);
    let js = jensen_shannon(&rc, &cc);
    let chi = chi2_two_row(&rc, &cc);
    let large = reference.len() > opts.large_sample;
    let drifted = match (&psi_v, &js, &chi) {
        (Ok(p), Ok(j), _) if large => Ok(*p >= opts.psi_threshold || *j >= opts.distance_threshold),
        (Ok(p), _, Ok((_, pv))) if !large => {
            Ok(*p >= opts.psi_threshold || *pv < opts.p_value_threshold)
        }
        (Err(e), _, _) => Err(e.clone()),
        (Ok(p), _, _) => Ok(*p >= opts.psi_threshold),
    };
    FeatureDrift {
        kind: "categorical",
        psi: psi_v,
        ks_statistic: not_applicable("categorical"),
        ks_pvalue: not_applicable("categorical"),
        js_distance: js,
        wasserstein: not_applicable("categorical"),
        wasserstein_normed: not_applicable("categorical"),
        chi2: chi.clone().map(|c| c.0),
        chi2_pvalue: chi.map(|c| c.1),
        drifted,
    }
}

/// Drift of every reference feature against the current sample (features in parallel).
/// A feature missing from `current`, or of a different kind, is reported not estimable.
pub fn drift(
    reference: &BTreeMap<String, FeatureValues>,
    current: &BTreeMap<String, FeatureValues>,
    opts: &DriftOptions,
) -> DriftReport {
    let features = reference
        .par_iter()
        .map(|(name, r)| {
            let d = match (r, current.get(name)) {
                (FeatureValues::Numeric(r), Some(FeatureValues::Numeric(c)))
                    if first_non_finite(r).is_some() || first_non_finite(c).is_some() =>
                {
                    let reason = match first_non_finite(r) {
                        Some(row) => format!(
                            "reference row {row} is NaN or infinite; remove missing values first"
                        ),
                        None => format!(
                            "current row {} is NaN or infinite; remove missing values first",
                            first_non_finite(c).unwrap_or(0)
                        ),
                    };
                    invalid_feature("numeric", &reason)
                }
                (FeatureValues::Numeric(r), Some(FeatureValues::Numeric(c))) => {
                    let mut r = r.clone();
                    let mut c = c.clone();
                    r.sort_unstable_by(f64::total_cmp);
                    c.sort_unstable_by(f64::total_cmp);
                    numeric_drift_sorted(&r, &c, opts)
                }
                (FeatureValues::Categorical(r), Some(FeatureValues::Categorical(c))) => {
                    categorical_drift(r, c, opts)
                }
                (r, c) => missing_feature(r, c.is_some()),
            };
            (name.clone(), d)
        })
        .collect();
    DriftReport { features }
}

fn first_non_finite(values: &[f64]) -> Option<usize> {
    values.iter().position(|v| !v.is_finite())
}

fn missing_feature(r: &FeatureValues, present: bool) -> FeatureDrift {
    let reason = if present {
        "feature kind differs between reference and current"
    } else {
        "feature missing from the current sample"
    };
    let kind = match r {
        FeatureValues::Numeric(_) => "numeric",
        FeatureValues::Categorical(_) => "categorical",
    };
    invalid_feature(kind, reason)
}

fn invalid_feature(kind: &'static str, reason: &str) -> FeatureDrift {
    let e: Estimate<f64> = not_estimable(reason);
    FeatureDrift {
        kind,
        psi: e.clone(),
        ks_statistic: e.clone(),
        ks_pvalue: e.clone(),
        js_distance: e.clone(),
        wasserstein: e.clone(),
        wasserstein_normed: e.clone(),
        chi2: e.clone(),
        chi2_pvalue: e,
        drifted: not_estimable(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_samples_do_not_drift() {
        let v: Vec<f64> = (0..500).map(|i| f64::from(i) / 7.0).collect();
        let d = numeric_drift(&v, &v, &DriftOptions::default());
        assert_eq!(d.psi, Ok(0.0));
        assert_eq!(d.wasserstein, Ok(0.0));
        assert_eq!(d.drifted, Ok(false));
    }

    #[test]
    fn constant_reference_has_no_normed_wasserstein() {
        let d = numeric_drift(&[1.0; 20], &[2.0; 20], &DriftOptions::default());
        assert!(
            d.wasserstein_normed
                .unwrap_err()
                .reason
                .contains("standard deviation")
        );
        assert_eq!(d.wasserstein, Ok(1.0));
    }

    #[test]
    fn nan_feature_names_the_row_instead_of_giving_nan() {
        let r = BTreeMap::from([("x".to_string(), FeatureValues::Numeric(vec![1.0, 2.0, 3.0]))]);
        let c = BTreeMap::from([("x".to_string(), FeatureValues::Numeric(vec![1.0, f64::NAN]))]);
        let d = drift(&r, &c, &DriftOptions::default());
        let reason = d.features["x"].psi.clone().unwrap_err().reason;
        assert!(reason.contains("current row 1"), "{reason}");
    }

    #[test]
    fn empty_current_is_not_estimable() {
        let d = numeric_drift(&[1.0, 2.0], &[], &DriftOptions::default());
        assert!(d.psi.is_err() && d.drifted.is_err());
    }
}
