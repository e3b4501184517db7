//! Pure statistics for Vigil: discrimination, calibration, thresholds, decision curves,
//! bootstrap intervals, subgroup and temporal breakdowns, and input drift.
//!
//! No IO, no clock, no environment: every function is a pure function of its arguments
//! (bootstrap randomness comes from an explicit seed). Degenerate input never yields a
//! silent NaN: a quantity that cannot be estimated is an [`Estimate`] holding a
//! [`NotEstimable`] reason, serialized as `null` with a `<key>_reason` string beside it.
//! Invalid input (labels not 0/1, NaN scores, scores outside `[0, 1]` where probabilities
//! are needed) is an [`InputError`] naming the first offending row.
//!
//! Entry points: [`evaluate`] for a full [`EvaluationReport`] and [`drift()`] for a
//! [`DriftReport`]; the individual metrics are public too. Each definition and the
//! reference implementation it is tested against (scikit-learn, SciPy, statsmodels,
//! dcurves, Evidently's formulas) is described in `METRICS.md` beside this crate.
//!
//! Conventions worth knowing:
//! - "score >= threshold" is positive, everywhere (thresholds, decision curves).
//! - AUROC counts ties one half; its 95% interval is the plain DeLong normal interval
//!   `auc ± 1.959964·√var`, clipped to `[0, 1]`.
//! - Bootstrap replicate `r` uses its own generator seeded from `(seed, r)`, so results
//!   do not depend on the number of threads.

// Tests may unwrap: a panic there is a failed test, not a crash of the service.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod bootstrap;
pub mod calibration;
pub mod discrimination;
pub mod drift;
mod estimate;
pub mod evaluate;
pub mod input;
pub mod ks;
pub mod numpy_compat;
pub mod period;
pub mod rng;
pub mod special;
pub mod threshold;

pub use bootstrap::{
    BootstrapOptions, PercentileInterval, RankedSample, bootstrap_metric, bootstrap_ranked,
};
pub use calibration::{
    BinStrategy, CurvePoint, HosmerLemeshow, brier, calibration_intercept, calibration_slope,
    expected_calibration_error, hosmer_lemeshow, reliability_curve,
};
pub use discrimination::{
    DeLong, PairedDeLong, PrPoint, RocPoint, auroc, average_precision, delong, delong_paired,
    pr_curve, roc_curve,
};
pub use drift::{DriftOptions, DriftReport, FeatureDrift, FeatureValues, NumericBinning, drift};
pub use estimate::{Estimate, NotEstimable};
pub use evaluate::{EvaluationInput, EvaluationOptions, EvaluationReport, GroupReport, evaluate};
pub use input::InputError;
pub use ks::{KsTest, ks_2samp_sorted};
pub use period::Period;
pub use threshold::{
    AlertExposure, DecisionPoint, SortedByClass, ThresholdMetrics, decision_curve,
    threshold_metrics,
};
