//! Calibration: Brier score, calibration intercept and slope (logistic recalibration),
//! expected calibration error, reliability curve, and the Hosmer–Lemeshow test.

use serde::Serialize;

use crate::estimate::{Estimate, finite, not_estimable};
use crate::numpy_compat::{linspace, percentile_sorted, searchsorted_left};
use crate::special::chi2_sf;

/// Probabilities are clipped to `[EPS, 1 − EPS]` before taking logits, so that a score of
/// exactly 0 or 1 gives a large finite logit instead of an infinite one.
pub const LOGIT_EPS: f64 = 1e-15;

fn logit(p: f64) -> f64 {
    let p = p.clamp(LOGIT_EPS, 1.0 - LOGIT_EPS);
    (p / (1.0 - p)).ln()
}

fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// Brier score: mean squared difference between probability and outcome.
pub fn brier(probs: &[f64], labels: &[bool]) -> Estimate<f64> {
    if probs.is_empty() {
        return not_estimable("no rows");
    }
    let s: f64 = probs
        .iter()
        .zip(labels)
        .map(|(&p, &y)| {
            let d = p - f64::from(u8::from(y));
            d * d
        })
        .sum();
    Ok(s / probs.len() as f64)
}

fn class_check(labels: &[bool]) -> Estimate<()> {
    let pos = labels.iter().filter(|&&y| y).count();
    if pos == 0 || pos == labels.len() {
        return not_estimable(crate::discrimination::one_class_reason(
            pos,
            labels.len() - pos,
        ));
    }
    Ok(())
}

const MAX_ITER: usize = 100;
const TOL: f64 = 1e-12;

/// Calibration-in-the-large: the intercept `a` of the logistic model
/// `logit P(y=1) = a + logit(p)` (logit(p) as offset), fitted by Newton's method (IRLS),
/// as statsmodels' `GLM(y, 1, family=Binomial(), offset=logit(p))`.
pub fn calibration_intercept(probs: &[f64], labels: &[bool]) -> Estimate<f64> {
    class_check(labels)?;
    let offsets: Vec<f64> = probs.iter().map(|&p| logit(p)).collect();
    let mut a = 0.0;
    for _ in 0..MAX_ITER {
        let (mut score, mut info) = (0.0, 0.0);
        for (&o, &y) in offsets.iter().zip(labels) {
            let mu = sigmoid(a + o);
            score += f64::from(u8::from(y)) - mu;
            info += mu * (1.0 - mu);
        }
        if info <= 0.0 {
            return not_estimable("calibration intercept: information is zero");
        }
        let step = score / info;
        a += step;
        if step.abs() <= TOL * (1.0 + a.abs()) {
            return finite(a, "calibration intercept did not converge");
        }
    }
    not_estimable("calibration intercept: Newton iterations did not converge")
}

/// Calibration slope: the coefficient `b` of `logit P(y=1) = a + b·logit(p)`, fitted by
/// Newton's method (IRLS), as statsmodels' `GLM(y, [1, logit(p)], family=Binomial())`.
pub fn calibration_slope(probs: &[f64], labels: &[bool]) -> Estimate<f64> {
    class_check(labels)?;
    let x: Vec<f64> = probs.iter().map(|&p| logit(p)).collect();
    let first = x[0];
    if x.iter().all(|&v| v == first) {
        return not_estimable("calibration slope: all scores are equal (zero variance)");
    }
    // Centring x keeps the 2×2 Newton system well conditioned; the slope is unchanged.
    let xm = x.iter().sum::<f64>() / x.len() as f64;
    // Start where statsmodels' IRLS starts: mu0 = (y + 1/2) / 2, one weighted least-squares
    // step (constant weights, so ordinary least squares of the working response on x).
    // Starting from the identity (a = 0, b = 1) can overshoot when logits are extreme.
    let (mut sz, mut sx, mut sxx, mut sxz) = (0.0, 0.0, 0.0, 0.0);
    for (&xi, &y) in x.iter().zip(labels) {
        let yv = f64::from(u8::from(y));
        let mu0 = (yv + 0.5) / 2.0;
        let w0 = mu0 * (1.0 - mu0);
        let z = (mu0 / (1.0 - mu0)).ln() + (yv - mu0) / w0;
        let xc = xi - xm;
        sz += z;
        sx += xc;
        sxx += xc * xc;
        sxz += xc * z;
    }
    let nf = x.len() as f64;
    let mut b = (sxz - sx * sz / nf) / (sxx - sx * sx / nf);
    let mut a = (sz - b * sx) / nf;
    for _ in 0..MAX_ITER {
        let (mut g0, mut g1, mut h00, mut h01, mut h11) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (&xi, &y) in x.iter().zip(labels) {
            let xc = xi - xm;
            let mu = sigmoid(a + b * xc);
            let r = f64::from(u8::from(y)) - mu;
            let w = mu * (1.0 - mu);
            g0 += r;
            g1 += r * xc;
            h00 += w;
            h01 += w * xc;
            h11 += w * xc * xc;
        }
        let det = h00 * h11 - h01 * h01;
        if det <= 0.0 || !det.is_finite() {
            return not_estimable("calibration slope: singular information (separation?)");
        }
        let da = (h11 * g0 - h01 * g1) / det;
        let db = (h00 * g1 - h01 * g0) / det;
        a += da;
        b += db;
        if da.abs() <= TOL * (1.0 + a.abs()) && db.abs() <= TOL * (1.0 + b.abs()) {
            return finite(b, "calibration slope did not converge");
        }
        if b.abs() > 1e6 {
            return not_estimable("calibration slope diverges (perfect separation)");
        }
    }
    not_estimable("calibration slope: Newton iterations did not converge")
}

/// How `reliability_curve` places bin edges, as scikit-learn's `calibration_curve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BinStrategy {
    /// `n_bins` equal-width bins on `[0, 1]`.
    Uniform,
    /// Edges at the percentiles of the predicted probabilities.
    Quantile,
}

/// One point of the reliability curve (one non-empty bin).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CurvePoint {
    pub mean_predicted: f64,
    pub observed_rate: f64,
    pub n: u64,
}

/// Reliability curve, exactly as scikit-learn's `calibration_curve`: edges from
/// `np.linspace(0, 1, n_bins + 1)` (uniform) or `np.percentile(p, linspace(0,1,n_bins+1)*100)`
/// (quantile); a probability goes to bin `searchsorted(inner_edges, p, side="left")`, so a
/// value on an inner edge belongs to the lower bin; empty bins are dropped.
pub fn reliability_curve(
    probs: &[f64],
    labels: &[bool],
    n_bins: usize,
    strategy: BinStrategy,
) -> Estimate<Vec<CurvePoint>> {
    if probs.is_empty() {
        return not_estimable("no rows");
    }
    if n_bins == 0 {
        return not_estimable("n_bins must be at least 1");
    }
    let edges = match strategy {
        BinStrategy::Uniform => linspace(0.0, 1.0, n_bins + 1),
        BinStrategy::Quantile => {
            let mut sorted = probs.to_vec();
            sorted.sort_unstable_by(f64::total_cmp);
            linspace(0.0, 1.0, n_bins + 1)
                .into_iter()
                .map(|q| percentile_sorted(&sorted, q * 100.0))
                .collect()
        }
    };
    let inner = &edges[1..edges.len() - 1];
    let mut sums = vec![0.0; edges.len()];
    let mut trues = vec![0.0; edges.len()];
    let mut totals = vec![0u64; edges.len()];
    for (&p, &y) in probs.iter().zip(labels) {
        let b = searchsorted_left(inner, p);
        sums[b] += p;
        trues[b] += f64::from(u8::from(y));
        totals[b] += 1;
    }
    Ok((0..edges.len())
        .filter(|&b| totals[b] > 0)
        .map(|b| CurvePoint {
            mean_predicted: sums[b] / totals[b] as f64,
            observed_rate: trues[b] / totals[b] as f64,
            n: totals[b],
        })
        .collect())
}

/// Expected calibration error over the uniform 10-bin reliability curve:
/// `Σ_b (n_b / n) |observed_rate_b − mean_predicted_b|`, empty bins skipped.
pub fn expected_calibration_error(probs: &[f64], labels: &[bool]) -> Estimate<f64> {
    let curve = reliability_curve(probs, labels, 10, BinStrategy::Uniform)?;
    let n = probs.len() as f64;
    Ok(curve
        .iter()
        .map(|c| c.n as f64 / n * (c.observed_rate - c.mean_predicted).abs())
        .sum())
}

/// The Hosmer–Lemeshow goodness-of-fit test.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HosmerLemeshow {
    pub statistic: f64,
    /// Number of non-empty groups formed minus 2.
    pub df: u64,
    pub p_value: f64,
    pub groups: u64,
}

/// Hosmer–Lemeshow over `groups` groups of risk (10: deciles), grouped as
/// `pd.qcut(p, groups, duplicates="drop")`: edges at `np.percentile` (linear) of the
/// probabilities, duplicate edges dropped, intervals closed on the right with the lowest
/// value included. Statistic `Σ_g (O_g − E_g)² / (E_g (1 − E_g/n_g))`, `df = G − 2`,
/// p from the chi-squared survival function.
pub fn hosmer_lemeshow(probs: &[f64], labels: &[bool], groups: usize) -> Estimate<HosmerLemeshow> {
    class_check(labels)?;
    let mut sorted = probs.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    let mut edges: Vec<f64> = linspace(0.0, 1.0, groups + 1)
        .into_iter()
        .map(|q| percentile_sorted(&sorted, q * 100.0))
        .collect();
    edges.dedup();
    if edges.len() < 4 {
        return not_estimable(format!(
            "Hosmer–Lemeshow needs at least 3 distinct risk groups (have {})",
            edges.len().saturating_sub(1)
        ));
    }
    let g = edges.len() - 1;
    let inner = &edges[1..edges.len() - 1];
    let mut obs = vec![0.0; g];
    let mut exp = vec![0.0; g];
    let mut cnt = vec![0u64; g];
    for (&p, &y) in probs.iter().zip(labels) {
        let b = searchsorted_left(inner, p);
        obs[b] += f64::from(u8::from(y));
        exp[b] += p;
        cnt[b] += 1;
    }
    let mut stat = 0.0;
    for k in 0..g {
        if cnt[k] == 0 {
            continue;
        }
        let denom = exp[k] * (1.0 - exp[k] / cnt[k] as f64);
        if denom <= 0.0 {
            return not_estimable("Hosmer–Lemeshow: a risk group has expected events of 0 or n");
        }
        stat += (obs[k] - exp[k]).powi(2) / denom;
    }
    // Like `groupby(observed=True)`, only non-empty groups count towards G.
    let formed = cnt.iter().filter(|&&c| c > 0).count();
    if formed < 3 {
        return not_estimable(format!(
            "Hosmer–Lemeshow needs at least 3 non-empty risk groups (have {formed})"
        ));
    }
    let df = (formed - 2) as u64;
    Ok(HosmerLemeshow {
        statistic: stat,
        df,
        p_value: chi2_sf(stat, df as f64),
        groups: formed as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfectly_calibrated_constant_has_zero_intercept() {
        let p = [0.5; 4];
        let y = [true, false, true, false];
        let a = calibration_intercept(&p, &y).expect("estimable");
        assert!(a.abs() < 1e-12);
        let err = calibration_slope(&p, &y).unwrap_err();
        assert!(err.reason.contains("zero variance"));
    }

    #[test]
    fn one_class_calibration_is_not_estimable() {
        let p = [0.2, 0.4];
        let y = [true, true];
        assert!(calibration_intercept(&p, &y).is_err());
        assert!(calibration_slope(&p, &y).is_err());
        assert!(hosmer_lemeshow(&p, &y, 10).is_err());
    }

    #[test]
    fn brier_of_empty_is_not_estimable() {
        assert!(brier(&[], &[]).is_err());
        assert_eq!(brier(&[1.0, 0.0], &[true, false]), Ok(0.0));
    }
}
