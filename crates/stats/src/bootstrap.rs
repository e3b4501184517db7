//! Seeded, thread-count-independent bootstrap percentile intervals.
//!
//! Replicate `r` draws its multinomial resampling counts from its own generator
//! `Xoshiro256StarStar::for_replicate(seed, r)`, so the result does not depend on how rayon
//! spreads replicates over threads.
//!
//! The hot path (AUROC, AP and Brier together) never re-sorts: rows are sorted by score
//! once, and each replicate is one linear pass over that order with per-row resampling
//! counts. The counts are drawn in two cache-friendly stages that together give a
//! multinomial(n; 1/n, …, 1/n) vector: first the number of draws falling in each chunk of
//! `CHUNK` rows, by sequential conditional binomials (a multinomial over chunks), then,
//! chunk by chunk, that many uniform offsets inside the chunk are tallied and the chunk is
//! consumed at once. Conditional on a chunk's total, the positions inside it are i.i.d.
//! uniform, so the two stages equal n direct draws with replacement.

use rayon::prelude::*;
use serde::Serialize;

use crate::discrimination::argsort_ascending;
use crate::estimate::{Estimate, not_estimable};
use crate::numpy_compat::percentile_sorted;
use crate::rng::{U32Stream, Xoshiro256StarStar, binomial};

/// Bootstrap settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BootstrapOptions {
    pub replicates: usize,
    pub seed: u64,
    /// Interval coverage, e.g. 0.95.
    pub level: f64,
}

impl Default for BootstrapOptions {
    fn default() -> Self {
        Self {
            replicates: 1000,
            seed: 20_240_601,
            level: 0.95,
        }
    }
}

/// A bootstrap percentile interval (NumPy's linear percentile of the replicate values).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PercentileInterval {
    pub low: f64,
    pub high: f64,
    /// Replicates that gave a value.
    pub replicates: usize,
    /// Replicates that could not be estimated (e.g. a resample with one class), left out.
    pub replicates_not_estimable: usize,
}

fn percentile_interval(values: Vec<Estimate<f64>>, level: f64) -> Estimate<PercentileInterval> {
    let total = values.len();
    let mut ok: Vec<f64> = values.into_iter().filter_map(Result::ok).collect();
    let skipped = total - ok.len();
    if ok.len() < 2 {
        return not_estimable(format!(
            "bootstrap: only {} of {} replicates could be estimated",
            ok.len(),
            total
        ));
    }
    ok.sort_unstable_by(f64::total_cmp);
    let alpha = (1.0 - level) / 2.0;
    Ok(PercentileInterval {
        low: percentile_sorted(&ok, alpha * 100.0),
        high: percentile_sorted(&ok, (1.0 - alpha) * 100.0),
        replicates: ok.len(),
        replicates_not_estimable: skipped,
    })
}

/// Rows per chunk of the two-stage multinomial draw: the chunk's tallies stay in L1 cache.
const CHUNK_SHIFT: u32 = 10;
const CHUNK: usize = 1 << CHUNK_SHIFT;

const LABEL: u8 = 1;
const BLOCK_END: u8 = 2;

/// Largest sample [`bootstrap_ranked`] accepts: keeps the exact integer sums in `u64`
/// and row indices in `u32`.
pub const MAX_ROWS: usize = (1 << 31) - 1;

/// Rows sorted once by descending score, ready for weighted single-pass metrics.
#[derive(Debug, Clone)]
pub struct RankedSample {
    /// Per row in sorted order: bit 0 = label, bit 1 = last row of its tie block.
    flags: Vec<u8>,
    /// Per row in sorted order: `(score − y)²`, for the Brier score.
    squared_error: Vec<f64>,
}

/// AUROC, AP and Brier of one (re)sample.
#[derive(Debug, Clone, PartialEq)]
pub struct RankedMetrics {
    pub auroc: Estimate<f64>,
    pub average_precision: Estimate<f64>,
    pub brier: Estimate<f64>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Accumulator {
    // Weighted positives / negatives in the current tie block.
    block_pos: u64,
    block_neg: u64,
    cum_pos: u64,
    cum_neg: u64,
    // Twice the Mann–Whitney count, kept in integers so that it is exact (fits in u64
    // because samples are limited to `MAX_ROWS`).
    auc2: u64,
    ap: f64,
    squared_error: f64,
}

impl Accumulator {
    #[inline(always)]
    fn add(&mut self, flag: u8, w: u64, squared_error: f64) {
        let y = u64::from(flag & LABEL);
        self.block_pos += w * y;
        self.block_neg += w * (1 - y);
        self.squared_error += w as f64 * squared_error;
        if flag & BLOCK_END != 0 {
            self.close_block();
        }
    }

    #[inline(always)]
    fn close_block(&mut self) {
        // Negatives in this block rank below every earlier positive and tie with this
        // block's positives (one half).
        self.auc2 += self.block_neg * (2 * self.cum_pos + self.block_pos);
        self.cum_pos += self.block_pos;
        self.cum_neg += self.block_neg;
        // Branch-free: a block without positives adds 0 (and the max avoids 0/0 for the
        // blocks before the first drawn row).
        self.ap += self.block_pos as f64
            * (self.cum_pos as f64 / (self.cum_pos + self.cum_neg).max(1) as f64);
        self.block_pos = 0;
        self.block_neg = 0;
    }

    fn finish(&self) -> RankedMetrics {
        let (p, n) = (self.cum_pos, self.cum_neg);
        let auroc = if p == 0 || n == 0 {
            not_estimable(crate::discrimination::one_class_reason(
                p as usize, n as usize,
            ))
        } else {
            Ok(self.auc2 as f64 / (2.0 * p as f64 * n as f64))
        };
        let average_precision = if p == 0 {
            not_estimable("no positive labels: average precision is undefined")
        } else {
            Ok(self.ap / p as f64)
        };
        let brier = if p + n == 0 {
            not_estimable("no rows")
        } else {
            Ok(self.squared_error / (p + n) as f64)
        };
        RankedMetrics {
            auroc,
            average_precision,
            brier,
        }
    }
}

impl RankedSample {
    pub fn new(scores: &[f64], labels: &[bool]) -> Self {
        let mut order = argsort_ascending(scores);
        order.reverse();
        let n = order.len();
        let mut flags = Vec::with_capacity(n);
        let mut squared_error = Vec::with_capacity(n);
        for k in 0..n {
            let i = order[k];
            let mut f = u8::from(labels[i]);
            if k + 1 == n || scores[order[k + 1]] != scores[i] {
                f |= BLOCK_END;
            }
            flags.push(f);
            let d = scores[i] - f64::from(u8::from(labels[i]));
            squared_error.push(d * d);
        }
        Self {
            flags,
            squared_error,
        }
    }

    pub fn len(&self) -> usize {
        self.flags.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flags.is_empty()
    }

    /// The metrics with every row counted once (the point estimates).
    pub fn metrics(&self) -> RankedMetrics {
        let mut acc = Accumulator::default();
        for (&f, &e) in self.flags.iter().zip(&self.squared_error) {
            acc.add(f, 1, e);
        }
        acc.finish()
    }

    /// The metrics of bootstrap replicate `replicate` under `seed`.
    fn replicate(&self, seed: u64, replicate: u64, chunk_totals: &mut Vec<u32>) -> RankedMetrics {
        let n = self.len();
        let mut chunk_rng = Xoshiro256StarStar::for_replicate(seed, replicate);
        let chunks = n.div_ceil(CHUNK);
        chunk_totals.clear();
        chunk_totals.resize(chunks, 0);
        // Multinomial chunk totals by sequential conditional binomials: chunk c receives
        // Binomial(draws left, rows in c / rows left) of the n draws.
        let mut draws_left = n as u64;
        let mut rows_left = n as u64;
        for (c, total) in chunk_totals.iter_mut().enumerate() {
            let len = (CHUNK.min(n - c * CHUNK)) as u64;
            let k = if len == rows_left {
                draws_left
            } else {
                binomial(&mut chunk_rng, draws_left, len as f64 / rows_left as f64)
            };
            *total = k as u32;
            draws_left -= k;
            rows_left -= len;
        }
        let mut rng = U32Stream::new(chunk_rng);
        let mut local = [0u32; CHUNK];
        let mut acc = Accumulator::default();
        for (c, &total) in chunk_totals.iter().enumerate() {
            let start = c << CHUNK_SHIFT;
            let end = (start + CHUNK).min(n);
            let len = end - start;
            local[..len].fill(0);
            for _ in 0..total {
                local[rng.below(len as u32) as usize] += 1;
            }
            let flags = &self.flags[start..end];
            let errs = &self.squared_error[start..end];
            for j in 0..len {
                acc.add(flags[j], u64::from(local[j]), errs[j]);
            }
        }
        acc.finish()
    }
}

/// Bootstrap percentile intervals for AUROC, AP and Brier, from one shared set of resamples.
#[derive(Debug, Clone, PartialEq)]
pub struct RankedIntervals {
    pub auroc: Estimate<PercentileInterval>,
    pub average_precision: Estimate<PercentileInterval>,
    pub brier: Estimate<PercentileInterval>,
}

/// Bootstrap AUROC, AP and Brier together (parallel, seeded, reproducible).
pub fn bootstrap_ranked(sample: &RankedSample, opts: &BootstrapOptions) -> RankedIntervals {
    if sample.is_empty() || opts.replicates == 0 || sample.len() > MAX_ROWS {
        let e: Estimate<PercentileInterval> = not_estimable(if sample.is_empty() {
            "bootstrap: no rows"
        } else if opts.replicates == 0 {
            "bootstrap: zero replicates requested"
        } else {
            "bootstrap: more than 2^31 - 1 rows"
        });
        return RankedIntervals {
            auroc: e.clone(),
            average_precision: e.clone(),
            brier: e,
        };
    }
    let reps: Vec<RankedMetrics> = (0..opts.replicates)
        .into_par_iter()
        .map_init(Vec::new, |scratch, r| {
            sample.replicate(opts.seed, r as u64, scratch)
        })
        .collect();
    RankedIntervals {
        auroc: percentile_interval(reps.iter().map(|m| m.auroc.clone()).collect(), opts.level),
        average_precision: percentile_interval(
            reps.iter().map(|m| m.average_precision.clone()).collect(),
            opts.level,
        ),
        brier: percentile_interval(reps.iter().map(|m| m.brier.clone()).collect(), opts.level),
    }
}

/// Multinomial resampling counts for replicate `r`: `counts[i]` is how often row `i` was
/// drawn among `n` draws with replacement.
pub fn resample_counts(n: usize, seed: u64, replicate: u64, counts: &mut Vec<u32>) {
    let mut rng = Xoshiro256StarStar::for_replicate(seed, replicate);
    counts.clear();
    counts.resize(n, 0);
    for _ in 0..n {
        counts[rng.below(n as u64) as usize] += 1;
    }
}

/// Bootstrap percentile interval of any metric. `metric` receives per-row resampling
/// counts (weights) and returns the metric of that resample.
pub fn bootstrap_metric<F>(
    n: usize,
    opts: &BootstrapOptions,
    metric: F,
) -> Estimate<PercentileInterval>
where
    F: Fn(&[u32]) -> Estimate<f64> + Sync,
{
    if n == 0 {
        return not_estimable("bootstrap: no rows");
    }
    let values: Vec<Estimate<f64>> = (0..opts.replicates)
        .into_par_iter()
        .map_init(Vec::new, |counts, r| {
            resample_counts(n, opts.seed, r as u64, counts);
            metric(counts)
        })
        .collect();
    percentile_interval(values, opts.level)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unweighted_pass_matches_direct_metrics() {
        let s = [0.1, 0.4, 0.35, 0.8, 0.4, 0.9, 0.2];
        let y = [false, false, true, true, true, false, true];
        let m = RankedSample::new(&s, &y).metrics();
        let auc = crate::discrimination::auroc(&s, &y).expect("auc");
        let ap = crate::discrimination::average_precision(&s, &y).expect("ap");
        assert!((m.auroc.expect("auc") - auc).abs() < 1e-15);
        assert!((m.average_precision.expect("ap") - ap).abs() < 1e-15);
    }

    #[test]
    fn counts_sum_to_n() {
        let mut counts = Vec::new();
        resample_counts(5000, 3, 9, &mut counts);
        assert_eq!(counts.iter().map(|&c| c as usize).sum::<usize>(), 5000);
    }

    #[test]
    fn one_class_resample_is_counted_not_fatal() {
        let s = [0.1, 0.9, 0.3];
        let y = [false, true, false];
        let sample = RankedSample::new(&s, &y);
        let opts = BootstrapOptions {
            replicates: 200,
            ..BootstrapOptions::default()
        };
        let r = bootstrap_ranked(&sample, &opts);
        let auc = r.auroc.expect("interval");
        assert!(auc.replicates_not_estimable > 0);
        assert_eq!(auc.replicates + auc.replicates_not_estimable, 200);
    }
}
