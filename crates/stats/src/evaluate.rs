//! The top-level evaluation: every metric of a release on a dataset, overall, per
//! subgroup and per time period, as one serializable report.

use std::collections::{BTreeMap, HashMap, HashSet};

use rayon::prelude::*;
use serde::ser::SerializeMap;

use crate::bootstrap::{BootstrapOptions, RankedSample, bootstrap_ranked};
use crate::calibration::{
    BinStrategy, CurvePoint, HosmerLemeshow, brier, calibration_intercept, calibration_slope,
    expected_calibration_error, hosmer_lemeshow, reliability_curve,
};
use crate::discrimination::{PrPoint, RocPoint, average_precision, delong, pr_curve, roc_curve};
use crate::estimate::{
    Estimate, EstimateFields, NotEstimable, not_estimable, put, serialize_via_fields,
};
use crate::input::{
    InputError, find_score_outside_unit_interval, validate_labels, validate_scores,
};
use crate::period::{Period, period_label};
use crate::threshold::{
    AlertExposure, DecisionPoint, SortedByClass, ThresholdMetrics, decision_curve,
    default_dca_grid, threshold_metrics,
};

/// What to evaluate: one score and one outcome per row, with optional patient ids,
/// timestamps (unix seconds, UTC) and subgroup columns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvaluationInput {
    pub scores: Vec<f64>,
    /// Outcomes; each must be 0 or 1.
    pub labels: Vec<f64>,
    pub patient_ids: Option<Vec<String>>,
    pub timestamps: Option<Vec<i64>>,
    /// Subgroup column name → value per row.
    pub subgroups: BTreeMap<String, Vec<String>>,
}

/// How to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluationOptions {
    /// Thresholds for the operating-point table (score >= threshold is positive).
    pub thresholds: Vec<f64>,
    /// Decision-curve grid; default 0.01..=0.99 by 0.01.
    pub dca_thresholds: Vec<f64>,
    /// Harm subtracted from the model's net benefit.
    pub dca_harm: f64,
    /// Bootstrap intervals for AUROC, AUPRC and Brier; `None` skips them.
    pub bootstrap: Option<BootstrapOptions>,
    pub calibration_bins: usize,
    pub calibration_strategy: BinStrategy,
    pub hosmer_lemeshow_groups: usize,
    /// Subgroups and periods with fewer patients or fewer events are suppressed.
    pub min_group_patients: usize,
    pub min_group_events: usize,
    /// Temporal validation granularity (needs timestamps).
    pub period: Option<Period>,
    /// Maximum number of ROC / PR curve points.
    pub curve_points: usize,
    /// When true (the default), every score must be in `[0, 1]`; when false, scores may be
    /// any finite number and the probability-based metrics say why they are missing.
    pub require_probabilities: bool,
}

impl Default for EvaluationOptions {
    fn default() -> Self {
        Self {
            thresholds: (1..=9).map(|k| f64::from(k) / 10.0).collect(),
            dca_thresholds: default_dca_grid(),
            dca_harm: 0.0,
            bootstrap: Some(BootstrapOptions::default()),
            calibration_bins: 10,
            calibration_strategy: BinStrategy::Uniform,
            hosmer_lemeshow_groups: 10,
            min_group_patients: 10,
            min_group_events: 10,
            period: Some(Period::Quarter),
            curve_points: 200,
            require_probabilities: true,
        }
    }
}

/// AUROC with its DeLong interval (and bootstrap interval when requested).
#[derive(Debug, Clone, PartialEq)]
pub struct AurocReport {
    pub value: Estimate<f64>,
    pub ci_low: Estimate<f64>,
    pub ci_high: Estimate<f64>,
    /// `"delong"`: plain normal interval on the DeLong variance, clipped to [0, 1].
    pub method: &'static str,
    pub bootstrap_ci_low: Estimate<f64>,
    pub bootstrap_ci_high: Estimate<f64>,
}

impl EstimateFields for AurocReport {
    fn write_fields<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        put(map, "value", &self.value)?;
        put(map, "ci_low", &self.ci_low)?;
        put(map, "ci_high", &self.ci_high)?;
        map.serialize_entry("method", self.method)?;
        put(map, "bootstrap_ci_low", &self.bootstrap_ci_low)?;
        put(map, "bootstrap_ci_high", &self.bootstrap_ci_high)
    }
}

/// A value with a bootstrap percentile interval.
#[derive(Debug, Clone, PartialEq)]
pub struct IntervalReport {
    pub value: Estimate<f64>,
    pub ci_low: Estimate<f64>,
    pub ci_high: Estimate<f64>,
}

impl EstimateFields for IntervalReport {
    fn write_fields<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        put(map, "value", &self.value)?;
        put(map, "ci_low", &self.ci_low)?;
        put(map, "ci_high", &self.ci_high)
    }
}

/// Calibration section.
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrationReport {
    pub intercept: Estimate<f64>,
    pub slope: Estimate<f64>,
    pub ece: Estimate<f64>,
    pub hosmer_lemeshow: Estimate<HosmerLemeshow>,
    pub curve: Estimate<Vec<CurvePoint>>,
}

impl EstimateFields for CalibrationReport {
    fn write_fields<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        put(map, "intercept", &self.intercept)?;
        put(map, "slope", &self.slope)?;
        put(map, "ece", &self.ece)?;
        put(map, "hosmer_lemeshow", &self.hosmer_lemeshow)?;
        put(map, "curve", &self.curve)
    }
}

/// Metrics of one subgroup value or one period.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupReport {
    pub n: u64,
    pub n_patients: u64,
    pub n_positive: u64,
    pub prevalence: Estimate<f64>,
    pub auroc: Estimate<f64>,
    pub auroc_ci_low: Estimate<f64>,
    pub auroc_ci_high: Estimate<f64>,
    pub auprc: Estimate<f64>,
    pub brier: Estimate<f64>,
    pub calibration_intercept: Estimate<f64>,
    pub calibration_slope: Estimate<f64>,
    pub ece: Estimate<f64>,
    /// Group minus overall.
    pub auroc_gap: Estimate<f64>,
    pub auprc_gap: Estimate<f64>,
    pub brier_gap: Estimate<f64>,
    /// Group divided by the largest group (by rows) of the same column.
    pub auroc_ratio_to_largest: Estimate<f64>,
    pub auprc_ratio_to_largest: Estimate<f64>,
    pub brier_ratio_to_largest: Estimate<f64>,
    /// Why the estimates are withheld (`null` when they are not).
    pub suppressed_reason: Option<String>,
}

impl EstimateFields for GroupReport {
    fn write_fields<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        map.serialize_entry("n", &self.n)?;
        map.serialize_entry("n_patients", &self.n_patients)?;
        map.serialize_entry("n_positive", &self.n_positive)?;
        put(map, "prevalence", &self.prevalence)?;
        put(map, "auroc", &self.auroc)?;
        put(map, "auroc_ci_low", &self.auroc_ci_low)?;
        put(map, "auroc_ci_high", &self.auroc_ci_high)?;
        put(map, "auprc", &self.auprc)?;
        put(map, "brier", &self.brier)?;
        put(map, "calibration_intercept", &self.calibration_intercept)?;
        put(map, "calibration_slope", &self.calibration_slope)?;
        put(map, "ece", &self.ece)?;
        put(map, "auroc_gap", &self.auroc_gap)?;
        put(map, "auprc_gap", &self.auprc_gap)?;
        put(map, "brier_gap", &self.brier_gap)?;
        put(map, "auroc_ratio_to_largest", &self.auroc_ratio_to_largest)?;
        put(map, "auprc_ratio_to_largest", &self.auprc_ratio_to_largest)?;
        put(map, "brier_ratio_to_largest", &self.brier_ratio_to_largest)?;
        map.serialize_entry("suppressed_reason", &self.suppressed_reason)
    }
}

/// The full evaluation report.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluationReport {
    pub n: u64,
    pub n_positive: u64,
    pub prevalence: Estimate<f64>,
    pub auroc: AurocReport,
    pub auprc: IntervalReport,
    pub brier: Estimate<f64>,
    pub brier_interval: IntervalReport,
    pub calibration: CalibrationReport,
    pub thresholds: Vec<ThresholdMetrics>,
    pub decision_curve: Estimate<Vec<DecisionPoint>>,
    pub roc_curve: Estimate<Vec<RocPoint>>,
    pub pr_curve: Estimate<Vec<PrPoint>>,
    pub subgroups: BTreeMap<String, BTreeMap<String, GroupReport>>,
    pub periods: Estimate<BTreeMap<String, GroupReport>>,
}

impl EstimateFields for EvaluationReport {
    fn write_fields<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        map.serialize_entry("n", &self.n)?;
        map.serialize_entry("n_positive", &self.n_positive)?;
        put(map, "prevalence", &self.prevalence)?;
        map.serialize_entry("auroc", &self.auroc)?;
        map.serialize_entry("auprc", &self.auprc)?;
        put(map, "brier", &self.brier)?;
        map.serialize_entry("brier_interval", &self.brier_interval)?;
        map.serialize_entry("calibration", &self.calibration)?;
        map.serialize_entry("thresholds", &self.thresholds)?;
        put(map, "decision_curve", &self.decision_curve)?;
        put(map, "roc_curve", &self.roc_curve)?;
        put(map, "pr_curve", &self.pr_curve)?;
        map.serialize_entry("subgroups", &self.subgroups)?;
        put(map, "periods", &self.periods)
    }
}

serialize_via_fields!(
    AurocReport,
    IntervalReport,
    CalibrationReport,
    GroupReport,
    EvaluationReport
);

fn check_len(column: &str, expected: usize, actual: usize) -> Result<(), InputError> {
    if expected == actual {
        Ok(())
    } else {
        Err(InputError::LengthMismatch {
            column: column.to_string(),
            expected,
            actual,
        })
    }
}

fn distinct_patients(ids: Option<&[String]>, rows: &[usize]) -> u64 {
    match ids {
        Some(ids) => rows
            .iter()
            .map(|&i| ids[i].as_str())
            .collect::<HashSet<_>>()
            .len() as u64,
        None => rows.len() as u64,
    }
}

/// Evaluates a release's scores against outcomes. Fails only on invalid input; every
/// degenerate quantity is reported as not estimable with its reason.
pub fn evaluate(
    input: &EvaluationInput,
    opts: &EvaluationOptions,
) -> Result<EvaluationReport, InputError> {
    let n = input.scores.len();
    if n == 0 {
        return Err(InputError::Empty);
    }
    check_len("labels", n, input.labels.len())?;
    if let Some(ids) = &input.patient_ids {
        check_len("patient_ids", n, ids.len())?;
    }
    if let Some(ts) = &input.timestamps {
        check_len("timestamps", n, ts.len())?;
    }
    for (name, col) in &input.subgroups {
        check_len(name, n, col.len())?;
    }
    let labels = validate_labels(&input.labels)?;
    validate_scores(&input.scores, opts.require_probabilities)?;
    let not_probabilities = find_score_outside_unit_interval(&input.scores);
    let scores = &input.scores;

    let all_rows: Vec<usize> = (0..n).collect();
    let ids = input.patient_ids.as_deref();
    let n_patients = distinct_patients(ids, &all_rows);
    let exposure = match &input.timestamps {
        Some(ts) => AlertExposure::from_timestamps(ts, n_patients),
        None => not_estimable("no timestamp column"),
    };

    let n_positive = labels.iter().filter(|&&y| y).count() as u64;
    let prob_guard = |what: &str| -> Estimate<()> {
        match not_probabilities {
            Some(row) => not_estimable(format!(
                "{what} needs probabilities; row {row} is outside [0, 1]"
            )),
            None => Ok(()),
        }
    };

    let dl = delong(scores, &labels);
    let auc = crate::discrimination::auroc(scores, &labels);
    let ap = average_precision(scores, &labels);
    let (boot_auc, boot_ap, boot_brier) = match &opts.bootstrap {
        Some(b) => {
            let r = bootstrap_ranked(&RankedSample::new(scores, &labels), b);
            (r.auroc, r.average_precision, r.brier)
        }
        None => {
            let e: Estimate<crate::bootstrap::PercentileInterval> =
                not_estimable("bootstrap not requested");
            (e.clone(), e.clone(), e)
        }
    };
    let brier_v = prob_guard("Brier score").and_then(|_| brier(scores, &labels));
    let sorted = SortedByClass::new(scores, &labels);

    let calibration = match prob_guard("calibration") {
        Ok(()) => CalibrationReport {
            intercept: calibration_intercept(scores, &labels),
            slope: calibration_slope(scores, &labels),
            ece: expected_calibration_error(scores, &labels),
            hosmer_lemeshow: hosmer_lemeshow(scores, &labels, opts.hosmer_lemeshow_groups),
            curve: reliability_curve(
                scores,
                &labels,
                opts.calibration_bins,
                opts.calibration_strategy,
            ),
        },
        Err(e) => CalibrationReport {
            intercept: Err(e.clone()),
            slope: Err(e.clone()),
            ece: Err(e.clone()),
            hosmer_lemeshow: Err(e.clone()),
            curve: Err(e),
        },
    };

    let overall =
        GroupSummary::compute(scores, &labels, &all_rows, ids, not_probabilities.is_none());
    let subgroups = input
        .subgroups
        .par_iter()
        .map(|(name, col)| {
            (
                name.clone(),
                group_reports(
                    col,
                    scores,
                    &labels,
                    ids,
                    &overall,
                    opts,
                    not_probabilities.is_none(),
                ),
            )
        })
        .collect();
    let periods = match (&input.timestamps, opts.period) {
        (Some(ts), Some(p)) => {
            let col: Vec<String> = ts.iter().map(|&t| period_label(t, p)).collect();
            Ok(group_reports(
                &col,
                scores,
                &labels,
                ids,
                &overall,
                opts,
                not_probabilities.is_none(),
            ))
        }
        (None, _) => not_estimable("no timestamp column"),
        (_, None) => not_estimable("no period requested"),
    };

    let interval =
        |b: &Estimate<crate::bootstrap::PercentileInterval>| -> (Estimate<f64>, Estimate<f64>) {
            match b {
                Ok(i) => (Ok(i.low), Ok(i.high)),
                Err(e) => (Err(e.clone()), Err(e.clone())),
            }
        };
    let (bl, bh) = interval(&boot_auc);
    let (al, ah) = interval(&boot_ap);
    let (brl, brh) = interval(&boot_brier);
    let (brl, brh) = match prob_guard("Brier score") {
        Ok(()) => (brl, brh),
        Err(e) => (Err(e.clone()), Err(e)),
    };
    Ok(EvaluationReport {
        n: n as u64,
        n_positive,
        prevalence: Ok(n_positive as f64 / n as f64),
        auroc: AurocReport {
            value: auc,
            ci_low: dl.as_ref().map(|d| d.ci_low).map_err(Clone::clone),
            ci_high: dl.as_ref().map(|d| d.ci_high).map_err(Clone::clone),
            method: "delong",
            bootstrap_ci_low: bl,
            bootstrap_ci_high: bh,
        },
        auprc: IntervalReport {
            value: ap,
            ci_low: al,
            ci_high: ah,
        },
        brier: brier_v.clone(),
        brier_interval: IntervalReport {
            value: brier_v,
            ci_low: brl,
            ci_high: brh,
        },
        calibration,
        thresholds: opts
            .thresholds
            .iter()
            .map(|&t| threshold_metrics(&sorted, t, &exposure))
            .collect(),
        decision_curve: prob_guard("decision-curve analysis")
            .and_then(|_| decision_curve(&sorted, &opts.dca_thresholds, opts.dca_harm)),
        roc_curve: roc_curve(scores, &labels, opts.curve_points),
        pr_curve: pr_curve(scores, &labels, opts.curve_points),
        subgroups,
        periods,
    })
}

/// Point estimates of one group, before suppression and comparison.
#[derive(Debug, Clone)]
struct GroupSummary {
    n: u64,
    n_patients: u64,
    n_positive: u64,
    auroc: Estimate<f64>,
    auroc_ci: Estimate<(f64, f64)>,
    auprc: Estimate<f64>,
    brier: Estimate<f64>,
    intercept: Estimate<f64>,
    slope: Estimate<f64>,
    ece: Estimate<f64>,
}

impl GroupSummary {
    fn compute(
        scores: &[f64],
        labels: &[bool],
        rows: &[usize],
        ids: Option<&[String]>,
        probabilities: bool,
    ) -> Self {
        let s: Vec<f64> = rows.iter().map(|&i| scores[i]).collect();
        let y: Vec<bool> = rows.iter().map(|&i| labels[i]).collect();
        let guard = |e: Estimate<f64>| {
            if probabilities {
                e
            } else {
                not_estimable("scores are not probabilities")
            }
        };
        Self {
            n: rows.len() as u64,
            n_patients: distinct_patients(ids, rows),
            n_positive: y.iter().filter(|&&v| v).count() as u64,
            auroc: crate::discrimination::auroc(&s, &y),
            auroc_ci: delong(&s, &y).map(|d| (d.ci_low, d.ci_high)),
            auprc: average_precision(&s, &y),
            brier: guard(brier(&s, &y)),
            intercept: guard(calibration_intercept(&s, &y)),
            slope: guard(calibration_slope(&s, &y)),
            ece: guard(expected_calibration_error(&s, &y)),
        }
    }
}

fn diff(a: &Estimate<f64>, b: &Estimate<f64>, what: &str) -> Estimate<f64> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok(a - b),
        (Err(e), _) => Err(e.clone()),
        (_, Err(_)) => not_estimable(format!("{what} of the reference group is not estimable")),
    }
}

fn ratio(a: &Estimate<f64>, b: &Estimate<f64>, what: &str) -> Estimate<f64> {
    match (a, b) {
        (Ok(_), Ok(b)) if *b == 0.0 => {
            not_estimable(format!("{what} of the largest group is zero"))
        }
        (Ok(a), Ok(b)) => Ok(a / b),
        (Err(e), _) => Err(e.clone()),
        (_, Err(_)) => not_estimable(format!("{what} of the largest group is not estimable")),
    }
}

fn group_reports(
    column: &[String],
    scores: &[f64],
    labels: &[bool],
    ids: Option<&[String]>,
    overall: &GroupSummary,
    opts: &EvaluationOptions,
    probabilities: bool,
) -> BTreeMap<String, GroupReport> {
    let mut rows_by_value: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, v) in column.iter().enumerate() {
        rows_by_value.entry(v.as_str()).or_default().push(i);
    }
    let summaries: Vec<(String, GroupSummary)> = rows_by_value
        .into_par_iter()
        .map(|(v, rows)| {
            (
                v.to_string(),
                GroupSummary::compute(scores, labels, &rows, ids, probabilities),
            )
        })
        .collect();
    // The largest group by rows (ties broken by name, for determinism).
    let largest = summaries
        .iter()
        .max_by(|a, b| a.1.n.cmp(&b.1.n).then_with(|| b.0.cmp(&a.0)))
        .map(|(_, s)| s.clone());
    summaries
        .into_iter()
        .map(|(value, s)| {
            let events = s.n_positive.min(s.n - s.n_positive);
            let suppressed_reason = if (s.n_patients as usize) < opts.min_group_patients {
                Some(format!(
                    "fewer than {} patients ({})",
                    opts.min_group_patients, s.n_patients
                ))
            } else if (events as usize) < opts.min_group_events {
                Some(format!(
                    "fewer than {} events or non-events in the group",
                    opts.min_group_events
                ))
            } else {
                None
            };
            let report = match &suppressed_reason {
                Some(reason) => suppressed(&s, reason),
                None => {
                    let (lo, hi) = match &s.auroc_ci {
                        Ok((l, h)) => (Ok(*l), Ok(*h)),
                        Err(e) => (Err(e.clone()), Err(e.clone())),
                    };
                    let lg = largest.as_ref().unwrap_or(overall);
                    GroupReport {
                        n: s.n,
                        n_patients: s.n_patients,
                        n_positive: s.n_positive,
                        prevalence: Ok(s.n_positive as f64 / s.n as f64),
                        auroc_gap: diff(&s.auroc, &overall.auroc, "AUROC"),
                        auprc_gap: diff(&s.auprc, &overall.auprc, "AUPRC"),
                        brier_gap: diff(&s.brier, &overall.brier, "Brier score"),
                        auroc_ratio_to_largest: ratio(&s.auroc, &lg.auroc, "AUROC"),
                        auprc_ratio_to_largest: ratio(&s.auprc, &lg.auprc, "AUPRC"),
                        brier_ratio_to_largest: ratio(&s.brier, &lg.brier, "Brier score"),
                        auroc: s.auroc,
                        auroc_ci_low: lo,
                        auroc_ci_high: hi,
                        auprc: s.auprc,
                        brier: s.brier,
                        calibration_intercept: s.intercept,
                        calibration_slope: s.slope,
                        ece: s.ece,
                        suppressed_reason: None,
                    }
                }
            };
            (value, report)
        })
        .collect()
}

fn suppressed(s: &GroupSummary, reason: &str) -> GroupReport {
    let e = || -> Estimate<f64> { Err(NotEstimable::new(format!("suppressed: {reason}"))) };
    GroupReport {
        n: s.n,
        n_patients: s.n_patients,
        n_positive: s.n_positive,
        prevalence: e(),
        auroc: e(),
        auroc_ci_low: e(),
        auroc_ci_high: e(),
        auprc: e(),
        brier: e(),
        calibration_intercept: e(),
        calibration_slope: e(),
        ece: e(),
        auroc_gap: e(),
        auprc_gap: e(),
        brier_gap: e(),
        auroc_ratio_to_largest: e(),
        auprc_ratio_to_largest: e(),
        brier_ratio_to_largest: e(),
        suppressed_reason: Some(reason.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small_input() -> EvaluationInput {
        let scores: Vec<f64> = (0..200).map(|i| f64::from(i) / 200.0).collect();
        let labels: Vec<f64> = (0..200)
            .map(|i| f64::from(u8::from(i % 3 == 0 || i > 150)))
            .collect();
        let group: Vec<String> = (0..200)
            .map(|i| if i < 195 { "a".into() } else { "tiny".into() })
            .collect();
        EvaluationInput {
            scores,
            labels,
            patient_ids: None,
            timestamps: Some((0..200).map(|i| 1_700_000_000 + i * 86_400).collect()),
            subgroups: BTreeMap::from([("site".to_string(), group)]),
        }
    }

    #[test]
    fn report_serializes_with_reasons_and_suppression() {
        let opts = EvaluationOptions {
            bootstrap: Some(BootstrapOptions {
                replicates: 50,
                ..BootstrapOptions::default()
            }),
            ..EvaluationOptions::default()
        };
        let r = evaluate(&small_input(), &opts).expect("valid input");
        let json = serde_json::to_value(&r).expect("serializes");
        assert_eq!(json["n"], 200);
        assert!(json["auroc"]["value"].as_f64().is_some());
        let tiny = &json["subgroups"]["site"]["tiny"];
        assert!(tiny["auroc"].is_null());
        assert!(
            tiny["auroc_reason"]
                .as_str()
                .unwrap_or("")
                .contains("suppressed")
        );
        assert!(tiny["suppressed_reason"].as_str().is_some());
        assert!(json["periods"].as_object().is_some_and(|p| !p.is_empty()));
    }

    #[test]
    fn invalid_label_is_an_input_error() {
        let mut input = small_input();
        input.labels[7] = 2.0;
        assert_eq!(
            evaluate(&input, &EvaluationOptions::default()),
            Err(InputError::LabelNotBinary { row: 7, value: 2.0 })
        );
    }

    #[test]
    fn one_class_gives_reasons_not_nan() {
        let input = EvaluationInput {
            scores: vec![0.2, 0.4, 0.6],
            labels: vec![0.0, 0.0, 0.0],
            ..EvaluationInput::default()
        };
        let r = evaluate(&input, &EvaluationOptions::default()).expect("valid");
        assert!(r.auroc.value.is_err());
        assert!(r.calibration.slope.is_err());
        let json = serde_json::to_string(&r).expect("serializes");
        assert!(!json.contains("NaN"));
        assert!(json.contains("value_reason"));
    }
}
