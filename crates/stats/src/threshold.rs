//! Operating characteristics at a threshold (score >= threshold is positive), alert burden,
//! and decision-curve analysis.

use serde::ser::SerializeMap;

use crate::estimate::{Estimate, EstimateFields, not_estimable, put, serialize_via_fields};

/// Scores sorted once per class, so any number of thresholds costs O(log n) each.
#[derive(Debug, Clone)]
pub struct SortedByClass {
    positives: Vec<f64>,
    negatives: Vec<f64>,
}

impl SortedByClass {
    pub fn new(scores: &[f64], labels: &[bool]) -> Self {
        let mut positives = Vec::new();
        let mut negatives = Vec::new();
        for (&s, &y) in scores.iter().zip(labels) {
            if y {
                positives.push(s);
            } else {
                negatives.push(s);
            }
        }
        positives.sort_unstable_by(f64::total_cmp);
        negatives.sort_unstable_by(f64::total_cmp);
        Self {
            positives,
            negatives,
        }
    }

    /// `(tp, fp, tn, fn)` for "score >= threshold is positive".
    pub fn confusion(&self, threshold: f64) -> (u64, u64, u64, u64) {
        let below_pos = self.positives.partition_point(|&s| s < threshold) as u64;
        let below_neg = self.negatives.partition_point(|&s| s < threshold) as u64;
        let tp = self.positives.len() as u64 - below_pos;
        let fp = self.negatives.len() as u64 - below_neg;
        (tp, fp, below_neg, below_pos)
    }

    pub fn n(&self) -> u64 {
        (self.positives.len() + self.negatives.len()) as u64
    }
}

/// Metrics at one threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdMetrics {
    pub threshold: f64,
    pub tp: u64,
    pub fp: u64,
    pub tn: u64,
    pub fn_: u64,
    pub sensitivity: Estimate<f64>,
    pub specificity: Estimate<f64>,
    pub ppv: Estimate<f64>,
    pub npv: Estimate<f64>,
    pub f1: Estimate<f64>,
    /// Share of rows alerted: `(tp + fp) / n`.
    pub alert_rate: Estimate<f64>,
    /// Number needed to evaluate: `1 / ppv`.
    pub nne: Estimate<f64>,
    /// See [`AlertExposure`].
    pub alerts_per_100_patient_days: Estimate<f64>,
}

impl EstimateFields for ThresholdMetrics {
    fn write_fields<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        map.serialize_entry("threshold", &self.threshold)?;
        map.serialize_entry("tp", &self.tp)?;
        map.serialize_entry("fp", &self.fp)?;
        map.serialize_entry("tn", &self.tn)?;
        map.serialize_entry("fn", &self.fn_)?;
        put(map, "sensitivity", &self.sensitivity)?;
        put(map, "specificity", &self.specificity)?;
        put(map, "ppv", &self.ppv)?;
        put(map, "npv", &self.npv)?;
        put(map, "f1", &self.f1)?;
        put(map, "alert_rate", &self.alert_rate)?;
        put(map, "nne", &self.nne)?;
        put(
            map,
            "alerts_per_100_patient_days",
            &self.alerts_per_100_patient_days,
        )
    }
}
serialize_via_fields!(ThresholdMetrics);

fn ratio(num: u64, den: u64, reason: &str) -> Estimate<f64> {
    if den == 0 {
        not_estimable(reason)
    } else {
        Ok(num as f64 / den as f64)
    }
}

/// The exposure that alert counts are divided by: `patients × days`, where `patients` is
/// the number of distinct patient ids (or rows, when no ids are given) and `days` the
/// number of UTC calendar days from the first to the last timestamp, inclusive.
/// `alerts_per_100_patient_days = 100 × alerts / (patients × days)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlertExposure {
    pub patients: u64,
    pub days: u64,
}

impl AlertExposure {
    /// From unix-second timestamps and the distinct patient count.
    pub fn from_timestamps(timestamps: &[i64], patients: u64) -> Estimate<Self> {
        let (Some(&min), Some(&max)) = (timestamps.iter().min(), timestamps.iter().max()) else {
            return not_estimable("no timestamps");
        };
        let days = (max.div_euclid(86_400) - min.div_euclid(86_400) + 1) as u64;
        if patients == 0 {
            return not_estimable("no patients");
        }
        Ok(Self { patients, days })
    }

    pub fn patient_days(&self) -> f64 {
        self.patients as f64 * self.days as f64
    }
}

/// All metrics at one threshold.
pub fn threshold_metrics(
    sorted: &SortedByClass,
    threshold: f64,
    exposure: &Estimate<AlertExposure>,
) -> ThresholdMetrics {
    let (tp, fp, tn, fn_) = sorted.confusion(threshold);
    let n = sorted.n();
    let ppv = ratio(tp, tp + fp, "no alerts at this threshold: PPV is undefined");
    let nne = match &ppv {
        Ok(p) if *p > 0.0 => Ok(1.0 / p),
        Ok(_) => not_estimable("no true positives at this threshold: NNE is infinite"),
        Err(e) => Err(e.clone()),
    };
    let alerts_per_100_patient_days = match exposure {
        Ok(e) => Ok(100.0 * (tp + fp) as f64 / e.patient_days()),
        Err(e) => Err(e.clone()),
    };
    ThresholdMetrics {
        threshold,
        tp,
        fp,
        tn,
        fn_,
        sensitivity: ratio(tp, tp + fn_, "no positive labels: sensitivity is undefined"),
        specificity: ratio(tn, tn + fp, "no negative labels: specificity is undefined"),
        ppv,
        npv: ratio(
            tn,
            tn + fn_,
            "nobody below this threshold: NPV is undefined",
        ),
        f1: ratio(
            2 * tp,
            2 * tp + fp + fn_,
            "no positives and no alerts: F1 is undefined",
        ),
        alert_rate: ratio(tp + fp, n, "no rows"),
        nne,
        alerts_per_100_patient_days,
    }
}

/// One point of the decision curve. Treat-none has net benefit 0 at every threshold.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct DecisionPoint {
    pub threshold: f64,
    pub net_benefit: f64,
    pub net_benefit_treat_all: f64,
}

/// The default decision-curve grid: 0.01, 0.02, …, 0.99.
pub fn default_dca_grid() -> Vec<f64> {
    (1..=99).map(|k| f64::from(k) / 100.0).collect()
}

/// Decision-curve analysis as dcurves' `dca`: net benefit
/// `TP/n − FP/n · pt/(1 − pt) − harm` for the model (score >= pt treated) and for
/// treat-all; treat-none is 0. Thresholds must lie in `(0, 1)`.
pub fn decision_curve(
    sorted: &SortedByClass,
    thresholds: &[f64],
    harm: f64,
) -> Estimate<Vec<DecisionPoint>> {
    let n = sorted.n();
    if n == 0 {
        return not_estimable("no rows");
    }
    let nf = n as f64;
    let prevalence = sorted.positives.len() as f64 / nf;
    let mut out = Vec::with_capacity(thresholds.len());
    for &pt in thresholds {
        if !(pt > 0.0 && pt < 1.0) {
            return not_estimable(format!("decision-curve threshold {pt} is outside (0, 1)"));
        }
        let odds = pt / (1.0 - pt);
        let (tp, fp, _, _) = sorted.confusion(pt);
        out.push(DecisionPoint {
            threshold: pt,
            net_benefit: tp as f64 / nf - odds * (fp as f64 / nf) - harm,
            net_benefit_treat_all: prevalence - odds * (1.0 - prevalence),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confusion_uses_greater_or_equal() {
        let s = SortedByClass::new(&[0.2, 0.5, 0.5, 0.9], &[false, true, false, true]);
        assert_eq!(s.confusion(0.5), (2, 1, 1, 0));
    }

    #[test]
    fn no_alerts_gives_undefined_ppv_with_reason() {
        let s = SortedByClass::new(&[0.2, 0.3], &[false, true]);
        let m = threshold_metrics(&s, 0.9, &not_estimable("no timestamps"));
        assert!(m.ppv.unwrap_err().reason.contains("no alerts"));
        assert!(m.nne.is_err());
        assert_eq!(m.sensitivity, Ok(0.0));
    }

    #[test]
    fn exposure_counts_calendar_days_inclusive() {
        let e = AlertExposure::from_timestamps(&[0, 86_399, 86_400 * 2 + 5], 3).expect("ok");
        assert_eq!(e.days, 3);
        assert_eq!(e.patient_days(), 9.0);
    }
}
