//! Small statistics the checks need: AUROC with ties, robust location and scale, PSI and KS,
//! a uniform row reservoir. Each returns `None` on degenerate input rather than a silent NaN.

/// AUROC of `score` for `label` (1 = positive), ties counted as 1/2, as the evaluation
/// engine computes it (`vigil_stats::auroc`). `None` without both classes.
pub fn auroc(pairs: &mut [(f64, bool)]) -> Option<f64> {
    let (scores, labels): (Vec<f64>, Vec<bool>) = pairs.iter().copied().unzip();
    vigil_stats::auroc(&scores, &labels).ok()
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
    // The median of the deviations needs only the two middle order statistics.
    let n = dev.len();
    let (_, &mut hi, _) = dev.select_nth_unstable_by(n / 2, f64::total_cmp);
    let mad = if n % 2 == 1 {
        hi
    } else {
        let lo = dev[..n / 2]
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        (lo + hi) / 2.0
    };
    Some((med, mad))
}

/// The population stability index against a fixed reference: bins cut at the reference's
/// deciles, computed once and applied to many samples (one per site).
#[derive(Clone, Debug)]
pub struct Psi {
    edges: Vec<f64>,
    expected: Vec<f64>,
}

impl Psi {
    /// From the sorted reference sample; `None` when it is empty.
    pub fn new(reference: &[f64]) -> Option<Psi> {
        if reference.is_empty() {
            return None;
        }
        let mut edges: Vec<f64> = (1..10)
            .filter_map(|k| quantile_sorted(reference, k as f64 / 10.0))
            .collect();
        edges.dedup();
        let mut p = Psi {
            edges,
            expected: Vec::new(),
        };
        p.expected = p.shares(reference);
        Some(p)
    }

    /// Empty bins are floored at 1e-4 so the index stays finite.
    fn shares(&self, v: &[f64]) -> Vec<f64> {
        let mut counts = vec![0u64; self.edges.len() + 1];
        for x in v {
            counts[self.edges.partition_point(|e| e < x)] += 1;
        }
        counts
            .into_iter()
            .map(|c| (c as f64 / v.len() as f64).max(1e-4))
            .collect()
    }

    pub fn of(&self, actual: &[f64]) -> Option<f64> {
        if actual.is_empty() {
            return None;
        }
        let a = self.shares(actual);
        Some(
            self.expected
                .iter()
                .zip(&a)
                .map(|(e, a)| (a - e) * (a / e).ln())
                .sum(),
        )
    }
}

#[cfg(test)]
/// Population stability index of `actual` against `expected` (both sorted).
pub fn psi(expected: &[f64], actual: &[f64]) -> Option<f64> {
    Psi::new(expected)?.of(actual)
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
        assert_eq!(median_mad(&[5.0]), Some((5.0, 0.0)));
        let v = [1.0, 2.0, 3.0, 4.0, 100.0];
        assert_eq!(median_mad(&v), Some((3.0, 1.0)));
        let a: Vec<f64> = (0..1000).map(f64::from).collect();
        assert!(psi(&a, &a).unwrap_or(1.0) < 1e-9);
        assert_eq!(ks(&a, &a), Some(0.0));
        let b: Vec<f64> = (500..1500).map(f64::from).collect();
        assert!((ks(&a, &b).unwrap_or(0.0) - 0.5).abs() < 1e-9);
        assert!(psi(&a, &b).unwrap_or(0.0) > 1.0);
        assert_eq!(median_mad(&[1.0, 2.0, 3.0, 4.0]), Some((2.5, 1.0)));
    }
}
