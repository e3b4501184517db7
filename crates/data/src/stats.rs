//! Small statistics the checks need: AUROC with ties, robust location and scale, PSI and KS,
//! a uniform row reservoir. Each returns `None` on degenerate input rather than a silent NaN.

/// AUROC of `score` for `label` (1 = positive), ties counted as 1/2 (the Mann–Whitney U
/// statistic over the product of class sizes). `None` without both classes.
pub fn auroc(pairs: &mut [(f64, bool)]) -> Option<f64> {
    let n_pos = pairs.iter().filter(|p| p.1).count();
    let n_neg = pairs.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Sum of the mid-ranks of the positives.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < pairs.len() {
        let mut j = i;
        while j < pairs.len() && pairs[j].0 == pairs[i].0 {
            j += 1;
        }
        let mid = (i + 1 + j) as f64 / 2.0;
        let pos = pairs[i..j].iter().filter(|p| p.1).count();
        rank_sum += mid * pos as f64;
        i = j;
    }
    let n1 = n_pos as f64;
    Some((rank_sum - n1 * (n1 + 1.0) / 2.0) / (n1 * n_neg as f64))
}

/// The `q`-quantile of sorted values (linear interpolation between order statistics).
pub fn quantile_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let w = pos - lo as f64;
    Some(sorted[lo] * (1.0 - w) + sorted[hi] * w)
}

/// Median and median absolute deviation of sorted values.
pub fn median_mad(sorted: &[f64]) -> Option<(f64, f64)> {
    let med = quantile_sorted(sorted, 0.5)?;
    let mut dev: Vec<f64> = sorted.iter().map(|v| (v - med).abs()).collect();
    dev.sort_by(f64::total_cmp);
    Some((med, quantile_sorted(&dev, 0.5)?))
}

/// Population stability index of `actual` against `expected`, over bins cut at the deciles
/// of `expected` (both sorted). Empty bins are floored at 1e-4 so the index stays finite.
pub fn psi(expected: &[f64], actual: &[f64]) -> Option<f64> {
    if expected.is_empty() || actual.is_empty() {
        return None;
    }
    let mut edges: Vec<f64> = (1..10)
        .filter_map(|k| quantile_sorted(expected, k as f64 / 10.0))
        .collect();
    edges.dedup();
    let shares = |v: &[f64]| {
        let mut counts = vec![0u64; edges.len() + 1];
        for x in v {
            counts[edges.partition_point(|e| e < x)] += 1;
        }
        counts
            .into_iter()
            .map(|c| (c as f64 / v.len() as f64).max(1e-4))
            .collect::<Vec<_>>()
    };
    let e = shares(expected);
    let a = shares(actual);
    Some(e.iter().zip(&a).map(|(e, a)| (a - e) * (a / e).ln()).sum())
}

/// Two-sample Kolmogorov–Smirnov statistic of two sorted samples.
pub fn ks(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let (mut i, mut j, mut d) = (0usize, 0usize, 0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs());
    }
    Some(d)
}

/// SplitMix64: a tiny, seedable generator so that reservoir samples (and so the reports
/// built on them) are reproducible for the same file.
#[derive(Clone, Debug)]
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> SplitMix {
        SplitMix(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; the bias is below 2^-32 for n < 2^32).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auroc_counts_ties_as_half() {
        let mut p = vec![(1.0, true), (1.0, false)];
        assert_eq!(auroc(&mut p), Some(0.5));
        let mut p = vec![(0.1, false), (0.4, false), (0.35, true), (0.8, true)];
        assert_eq!(auroc(&mut p), Some(0.75));
        let mut p = vec![(0.1, false), (0.2, false)];
        assert_eq!(auroc(&mut p), None);
    }

    #[test]
    fn robust_scale_and_distances() {
        let v = [1.0, 2.0, 3.0, 4.0, 100.0];
        assert_eq!(median_mad(&v), Some((3.0, 1.0)));
        let a: Vec<f64> = (0..1000).map(f64::from).collect();
        assert!(psi(&a, &a).unwrap_or(1.0) < 1e-9);
        assert_eq!(ks(&a, &a), Some(0.0));
        let b: Vec<f64> = (500..1500).map(f64::from).collect();
        assert!((ks(&a, &b).unwrap_or(0.0) - 0.5).abs() < 1e-9);
        assert!(psi(&a, &b).unwrap_or(0.0) > 1.0);
    }
}
