//! Property tests: invariants that must hold for any input, not just the golden cases.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use vigil_stats::threshold::SortedByClass;
use vigil_stats::*;

/// Scores in [0, 1] with labels, at least one of each class.
fn scored_rows() -> impl Strategy<Value = (Vec<f64>, Vec<bool>)> {
    prop::collection::vec((0u32..=1000, any::<bool>()), 4..200).prop_map(|rows| {
        let mut s: Vec<f64> = rows.iter().map(|r| f64::from(r.0) / 1000.0).collect();
        let mut y: Vec<bool> = rows.iter().map(|r| r.1).collect();
        // Guarantee two of each class so that DeLong is estimable.
        s.extend([0.3, 0.6, 0.2, 0.9]);
        y.extend([true, true, false, false]);
        (s, y)
    })
}

proptest! {
    #[test]
    fn auroc_is_in_unit_interval_and_invariant_under_monotone_transforms((s, y) in scored_rows()) {
        let a = auroc(&s, &y).expect("two classes");
        prop_assert!((0.0..=1.0).contains(&a));
        // Strictly increasing transforms keep the order, hence the AUROC.
        let t1: Vec<f64> = s.iter().map(|v| (3.0 * v + 0.1).exp()).collect();
        let t2: Vec<f64> = s.iter().map(|v| v.powi(3) - 7.0).collect();
        prop_assert!((auroc(&t1, &y).expect("ok") - a).abs() < 1e-12);
        prop_assert!((auroc(&t2, &y).expect("ok") - a).abs() < 1e-12);
    }

    #[test]
    fn delong_interval_contains_the_estimate((s, y) in scored_rows()) {
        let d = delong(&s, &y).expect("estimable");
        prop_assert!(d.ci_low <= d.auc && d.auc <= d.ci_high);
        prop_assert!(d.ci_low >= 0.0 && d.ci_high <= 1.0);
    }

    #[test]
    fn bootstrap_interval_is_ordered_and_average_precision_in_unit_interval((s, y) in scored_rows(), seed in any::<u64>()) {
        let sample = RankedSample::new(&s, &y);
        let opts = BootstrapOptions { replicates: 60, seed, level: 0.95 };
        let r = bootstrap_ranked(&sample, &opts);
        let i = r.auroc.expect("interval");
        prop_assert!(i.low <= i.high);
        let ap = average_precision(&s, &y).expect("ap");
        prop_assert!((0.0..=1.0).contains(&ap));
    }

    #[test]
    fn treat_none_is_zero_and_treat_all_matches_prevalence((s, y) in scored_rows()) {
        let sorted = SortedByClass::new(&s, &y);
        let dca = decision_curve(&sorted, &[0.01, 0.5, 0.99], 0.0).expect("dca");
        let prev = y.iter().filter(|&&v| v).count() as f64 / y.len() as f64;
        // A threshold above every score alerts nobody: the model's net benefit is that of
        // treat-none, exactly 0.
        let none = decision_curve(&sorted, &[0.999_999], 0.0).expect("dca");
        let max = s.iter().copied().fold(0.0, f64::max);
        if max < 0.999_999 {
            prop_assert_eq!(none[0].net_benefit, 0.0);
        }
        prop_assert!((dca[1].net_benefit_treat_all - (2.0 * prev - 1.0)).abs() < 1e-12);
    }

    #[test]
    fn calibration_slope_is_finite_or_not_estimable((s, y) in scored_rows()) {
        if let Ok(b) = calibration_slope(&s, &y) {
            prop_assert!(b.is_finite());
        }
    }
}

fn bootstrap_with_threads(
    threads: usize,
    s: &[f64],
    y: &[bool],
    seed: u64,
) -> (f64, f64, f64, f64) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("pool");
    pool.install(|| {
        let opts = BootstrapOptions {
            replicates: 300,
            seed,
            level: 0.95,
        };
        let r = bootstrap_ranked(&RankedSample::new(s, y), &opts);
        let a = r.auroc.expect("auroc");
        let p = r.average_precision.expect("ap");
        (a.low, a.high, p.low, p.high)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    #[test]
    fn bootstrap_is_reproducible_across_thread_counts((s, y) in scored_rows(), seed in any::<u64>()) {
        let one = bootstrap_with_threads(1, &s, &y, seed);
        let two = bootstrap_with_threads(2, &s, &y, seed);
        let four = bootstrap_with_threads(4, &s, &y, seed);
        prop_assert_eq!(one, two);
        prop_assert_eq!(one, four);
    }

    #[test]
    fn closure_bootstrap_is_reproducible_across_thread_counts(seed in any::<u64>()) {
        let values: Vec<f64> = (0..500).map(|i| f64::from(i % 37)).collect();
        let mean = |w: &[u32]| -> Estimate<f64> {
            let total: f64 = w.iter().map(|&c| f64::from(c)).sum();
            Ok(w.iter().zip(&values).map(|(&c, v)| f64::from(c) * v).sum::<f64>() / total)
        };
        let opts = BootstrapOptions { replicates: 200, seed, level: 0.9 };
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("pool")
                .install(|| bootstrap_metric(values.len(), &opts, mean))
        };
        let a = run(1).expect("interval");
        prop_assert_eq!(Ok(a.clone()), run(3));
        prop_assert!(a.low <= a.high);
    }
}
