//! Discrimination: AUROC with DeLong variance, the paired DeLong test, average precision,
//! and ROC / precision–recall curve points for plotting.
//!
//! Everything is O(n log n): one sort per score gives midranks (ties count one half), and
//! the DeLong placement values follow from midranks as in Sun & Xu (2014).

use serde::Serialize;

use crate::estimate::{Estimate, not_estimable};
use crate::special::{Z_975, normal_two_sided_p};

/// Indices of `values` sorted ascending (NaN-free input; `total_cmp` keeps it total).
pub(crate) fn argsort_ascending(values: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_unstable_by(|&a, &b| values[a].total_cmp(&values[b]));
    idx
}

/// Midranks (1-based, ties averaged) of `values` restricted to rows where `keep` is true,
/// walking a precomputed ascending order. Rows not kept get 0.
fn midranks_in_order(values: &[f64], order: &[usize], keep: impl Fn(usize) -> bool) -> Vec<f64> {
    let mut ranks = vec![0.0; values.len()];
    let kept: Vec<usize> = order.iter().copied().filter(|&i| keep(i)).collect();
    let mut start = 0;
    while start < kept.len() {
        let v = values[kept[start]];
        let mut end = start + 1;
        while end < kept.len() && values[kept[end]] == v {
            end += 1;
        }
        // Ranks start+1 ..= end share their mean.
        let mid = (start + 1 + end) as f64 / 2.0;
        for &i in &kept[start..end] {
            ranks[i] = mid;
        }
        start = end;
    }
    ranks
}

/// DeLong placement values: `v10` for each positive, `v01` for each negative.
struct Placements {
    v10: Vec<f64>,
    v01: Vec<f64>,
}

fn placements(scores: &[f64], labels: &[bool]) -> Estimate<Placements> {
    let m = labels.iter().filter(|&&y| y).count();
    let n = labels.len() - m;
    if m == 0 || n == 0 {
        return not_estimable(one_class_reason(m, n));
    }
    let order = argsort_ascending(scores);
    let tz = midranks_in_order(scores, &order, |_| true);
    let tx = midranks_in_order(scores, &order, |i| labels[i]);
    let ty = midranks_in_order(scores, &order, |i| !labels[i]);
    let (mf, nf) = (m as f64, n as f64);
    let mut v10 = Vec::with_capacity(m);
    let mut v01 = Vec::with_capacity(n);
    for i in 0..scores.len() {
        if labels[i] {
            v10.push((tz[i] - tx[i]) / nf);
        } else {
            v01.push(1.0 - (tz[i] - ty[i]) / mf);
        }
    }
    Ok(Placements { v10, v01 })
}

pub(crate) fn one_class_reason(positives: usize, negatives: usize) -> String {
    match (positives, negatives) {
        (0, 0) => "no rows".to_string(),
        (0, _) => "no positive labels (only one class)".to_string(),
        _ => "no negative labels (only one class)".to_string(),
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// Sample covariance (denominator len − 1).
fn covariance(a: &[f64], b: &[f64]) -> f64 {
    let (ma, mb) = (mean(a), mean(b));
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - ma) * (y - mb))
        .sum::<f64>()
        / (a.len() as f64 - 1.0)
}

/// AUROC: the probability that a random positive scores above a random negative, ties
/// counting one half (the Mann–Whitney statistic; scikit-learn's `roc_auc_score`).
pub fn auroc(scores: &[f64], labels: &[bool]) -> Estimate<f64> {
    let p = placements(scores, labels)?;
    Ok(mean(&p.v10))
}

/// AUROC with its DeLong variance and a 95% interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeLong {
    pub auc: f64,
    pub variance: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

/// AUROC with DeLong (1988) variance `S10/m + S01/n`, and the plain normal 95% interval
/// `auc ± 1.96 √var` clipped to `[0, 1]`. Needs at least two positives and two negatives.
pub fn delong(scores: &[f64], labels: &[bool]) -> Estimate<DeLong> {
    let p = placements(scores, labels)?;
    let (m, n) = (p.v10.len(), p.v01.len());
    if m < 2 || n < 2 {
        return not_estimable(format!(
            "DeLong variance needs at least 2 positives and 2 negatives (have {m} and {n})"
        ));
    }
    let auc = mean(&p.v10);
    let variance = covariance(&p.v10, &p.v10) / m as f64 + covariance(&p.v01, &p.v01) / n as f64;
    let half = Z_975 * variance.max(0.0).sqrt();
    Ok(DeLong {
        auc,
        variance,
        ci_low: (auc - half).clamp(0.0, 1.0),
        ci_high: (auc + half).clamp(0.0, 1.0),
    })
}

/// The paired DeLong test of two scores on the same patients.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairedDeLong {
    pub auc_a: f64,
    pub auc_b: f64,
    /// `auc_a − auc_b`.
    pub difference: f64,
    pub variance: f64,
    pub z: f64,
    pub p_value: f64,
    /// 95% normal interval of the difference (not clipped).
    pub ci_low: f64,
    pub ci_high: f64,
}

/// Paired DeLong test (DeLong, DeLong & Clarke-Pearson 1988) of `H0: AUC_a = AUC_b`.
pub fn delong_paired(
    scores_a: &[f64],
    scores_b: &[f64],
    labels: &[bool],
) -> Estimate<PairedDeLong> {
    if scores_a.len() != scores_b.len() || scores_a.len() != labels.len() {
        return not_estimable("the two scores and the labels differ in length");
    }
    let a = placements(scores_a, labels)?;
    let b = placements(scores_b, labels)?;
    let (m, n) = (a.v10.len(), a.v01.len());
    if m < 2 || n < 2 {
        return not_estimable(format!(
            "DeLong variance needs at least 2 positives and 2 negatives (have {m} and {n})"
        ));
    }
    let (mf, nf) = (m as f64, n as f64);
    let var_a = covariance(&a.v10, &a.v10) / mf + covariance(&a.v01, &a.v01) / nf;
    let var_b = covariance(&b.v10, &b.v10) / mf + covariance(&b.v01, &b.v01) / nf;
    let cov = covariance(&a.v10, &b.v10) / mf + covariance(&a.v01, &b.v01) / nf;
    let variance = var_a + var_b - 2.0 * cov;
    let (auc_a, auc_b) = (mean(&a.v10), mean(&b.v10));
    let difference = auc_a - auc_b;
    if variance <= 0.0 || !variance.is_finite() {
        return not_estimable("the variance of the AUROC difference is zero");
    }
    let se = variance.sqrt();
    let z = difference / se;
    Ok(PairedDeLong {
        auc_a,
        auc_b,
        difference,
        variance,
        z,
        p_value: normal_two_sided_p(z),
        ci_low: difference - Z_975 * se,
        ci_high: difference + Z_975 * se,
    })
}

/// Cumulative true / false positive counts at each distinct score, highest score first:
/// the operating points of "score >= threshold is positive".
#[derive(Debug, Clone)]
pub(crate) struct OperatingPoints {
    pub thresholds: Vec<f64>,
    pub tps: Vec<u64>,
    pub fps: Vec<u64>,
}

pub(crate) fn operating_points(scores: &[f64], labels: &[bool]) -> OperatingPoints {
    let mut order = argsort_ascending(scores);
    order.reverse();
    let mut out = OperatingPoints {
        thresholds: Vec::new(),
        tps: Vec::new(),
        fps: Vec::new(),
    };
    let (mut tp, mut fp) = (0u64, 0u64);
    for (k, &i) in order.iter().enumerate() {
        if labels[i] {
            tp += 1;
        } else {
            fp += 1;
        }
        let last_of_block = k + 1 == order.len() || scores[order[k + 1]] != scores[i];
        if last_of_block {
            out.thresholds.push(scores[i]);
            out.tps.push(tp);
            out.fps.push(fp);
        }
    }
    out
}

/// Average precision, scikit-learn's `average_precision_score`: `Σ (R_k − R_{k−1}) P_k`
/// over distinct thresholds, highest first (a step sum, no interpolation).
pub fn average_precision(scores: &[f64], labels: &[bool]) -> Estimate<f64> {
    let pts = operating_points(scores, labels);
    let total_pos = pts.tps.last().copied().unwrap_or(0);
    if total_pos == 0 {
        return not_estimable(if labels.is_empty() {
            "no rows"
        } else {
            "no positive labels: average precision is undefined"
        });
    }
    let mut ap = 0.0;
    let mut prev_tp = 0u64;
    for (&tp, &fp) in pts.tps.iter().zip(&pts.fps) {
        if tp > prev_tp {
            ap += (tp - prev_tp) as f64 / total_pos as f64 * (tp as f64 / (tp + fp) as f64);
        }
        prev_tp = tp;
    }
    Ok(ap)
}

/// A point of the ROC curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RocPoint {
    /// Scores `>= threshold` are positive; `None` for the (0, 0) start, above every score.
    pub threshold: Option<f64>,
    pub fpr: f64,
    pub tpr: f64,
}

/// A point of the precision–recall curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PrPoint {
    /// `None` for the (recall 0, precision 1) end that scikit-learn appends.
    pub threshold: Option<f64>,
    pub recall: f64,
    pub precision: f64,
}

/// Keeps at most `max_points` evenly spaced items, always the first and the last.
pub fn downsample<T: Copy>(points: &[T], max_points: usize) -> Vec<T> {
    if points.len() <= max_points || max_points < 2 {
        return points.to_vec();
    }
    let last = points.len() - 1;
    let mut out: Vec<T> = Vec::with_capacity(max_points);
    let mut prev = usize::MAX;
    for k in 0..max_points {
        let i = ((k as u128 * last as u128 + (max_points as u128 - 1) / 2)
            / (max_points as u128 - 1)) as usize;
        if i != prev {
            out.push(points[i]);
            prev = i;
        }
    }
    out
}

/// ROC curve points (every distinct threshold, from (0, 0) to (1, 1)), downsampled to at
/// most `max_points` keeping both ends.
pub fn roc_curve(scores: &[f64], labels: &[bool], max_points: usize) -> Estimate<Vec<RocPoint>> {
    let pts = operating_points(scores, labels);
    let p = pts.tps.last().copied().unwrap_or(0);
    let n = pts.fps.last().copied().unwrap_or(0);
    if p == 0 || n == 0 {
        return not_estimable(one_class_reason(p as usize, n as usize));
    }
    let mut out = vec![RocPoint {
        threshold: None,
        fpr: 0.0,
        tpr: 0.0,
    }];
    for k in 0..pts.thresholds.len() {
        out.push(RocPoint {
            threshold: Some(pts.thresholds[k]),
            fpr: pts.fps[k] as f64 / n as f64,
            tpr: pts.tps[k] as f64 / p as f64,
        });
    }
    Ok(downsample(&out, max_points))
}

/// Precision–recall curve points, as scikit-learn's `precision_recall_curve` (recall
/// increasing), downsampled to at most `max_points` keeping both ends.
pub fn pr_curve(scores: &[f64], labels: &[bool], max_points: usize) -> Estimate<Vec<PrPoint>> {
    let pts = operating_points(scores, labels);
    let p = pts.tps.last().copied().unwrap_or(0);
    if p == 0 {
        return not_estimable("no positive labels: precision–recall curve is undefined");
    }
    let mut out = vec![PrPoint {
        threshold: None,
        recall: 0.0,
        precision: 1.0,
    }];
    for k in 0..pts.thresholds.len() {
        out.push(PrPoint {
            threshold: Some(pts.thresholds[k]),
            recall: pts.tps[k] as f64 / p as f64,
            precision: pts.tps[k] as f64 / (pts.tps[k] + pts.fps[k]) as f64,
        });
    }
    Ok(downsample(&out, max_points))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auroc_counts_ties_one_half() {
        let s = [0.5, 0.5, 0.5, 0.5];
        let y = [true, false, true, false];
        assert_eq!(auroc(&s, &y), Ok(0.5));
        let s = [0.1, 0.4, 0.35, 0.8];
        let y = [false, false, true, true];
        assert_eq!(auroc(&s, &y), Ok(0.75));
    }

    #[test]
    fn one_class_is_not_estimable() {
        let err = auroc(&[0.1, 0.2], &[true, true]).unwrap_err();
        assert!(err.reason.contains("one class"), "{}", err.reason);
        assert!(average_precision(&[0.1, 0.2], &[false, false]).is_err());
        assert!(delong(&[0.1, 0.9], &[false, true]).is_err());
        assert!(roc_curve(&[], &[], 10).is_err());
    }

    #[test]
    fn paired_test_of_identical_scores_is_not_estimable() {
        let s = [0.1, 0.4, 0.35, 0.8, 0.2];
        let y = [false, false, true, true, true];
        assert!(delong_paired(&s, &s, &y).is_err());
    }

    #[test]
    fn average_precision_matches_hand_computation() {
        // sklearn: average_precision_score([0,0,1,1],[0.1,0.4,0.35,0.8]) = 0.8333...
        let ap = average_precision(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]);
        assert!((ap.unwrap_or(0.0) - 0.833_333_333_333_333_3).abs() < 1e-15);
    }

    #[test]
    fn downsample_keeps_endpoints() {
        let v: Vec<usize> = (0..1000).collect();
        let d = downsample(&v, 200);
        assert!(d.len() <= 200);
        assert_eq!(d[0], 0);
        assert_eq!(d[d.len() - 1], 999);
    }
}
