//! The plain-language summary at the top of the evaluation report: what a clinician needs to
//! know in a minute, in sentences, with the numbers behind each sentence in brackets.

use std::collections::BTreeMap;

use vigil_stats::{Estimate, EvaluationReport, GroupReport, ThresholdMetrics};

use crate::ReportContext;
use crate::html::{count, escape, estimate, not_estimable, num, pct};

/// An AUROC gap to the overall value at least this large is worth a reader's attention,
/// even when the interval is too wide to call it significant.
pub(crate) const NOTABLE_AUROC_GAP: f64 = 0.05;
/// Calibration slope within `1 ± this` reads as "about right".
const SLOPE_TOLERANCE: f64 = 0.1;
/// Calibration intercept within `± this` reads as "about right on average".
const INTERCEPT_TOLERANCE: f64 = 0.1;
/// A subgroup whose calibration intercept is this far from the overall one is mis-scored
/// in a way the rest of the population is not.
const SUBGROUP_INTERCEPT_NOTABLE: f64 = 0.3;

/// What completes "a patient who …": the context's wording, or a neutral default.
pub(crate) fn outcome_phrase(ctx: &ReportContext) -> String {
    match &ctx.outcome {
        Some(o) if !o.trim().is_empty() => escape(o.trim()),
        _ => "had the outcome".to_string(),
    }
}

/// The row of the threshold table for the release's main threshold, if it was evaluated.
pub(crate) fn main_threshold<'a>(
    report: &'a EvaluationReport,
    ctx: &ReportContext,
) -> Option<&'a ThresholdMetrics> {
    let main = *ctx.thresholds.first()?;
    report
        .thresholds
        .iter()
        .find(|t| (t.threshold - main).abs() < 1e-9)
}

/// Whether a threshold is one of the release's decision thresholds.
pub(crate) fn is_release_threshold(ctx: &ReportContext, threshold: f64) -> bool {
    ctx.thresholds.iter().any(|t| (t - threshold).abs() < 1e-9)
}

/// Why a subgroup stands out from the overall population, in words (escaped HTML), or
/// `None` when it does not.
pub(crate) fn stands_out(group: &GroupReport, overall: &EvaluationReport) -> Option<String> {
    if group.suppressed_reason.is_some() {
        return None;
    }
    let mut why = Vec::new();
    if let (Ok(a), Ok(overall)) = (&group.auroc, &overall.auroc.value) {
        let gap = a - overall;
        let ci = match (&group.auroc_ci_low, &group.auroc_ci_high) {
            (Ok(l), Ok(h)) => Some((*l, *h)),
            _ => None,
        };
        let outside = ci.is_some_and(|(l, h)| h < *overall || l > *overall);
        if gap.abs() >= NOTABLE_AUROC_GAP || outside {
            let ci_text = ci.map_or(String::new(), |(l, h)| {
                format!(", 95% CI {}–{}", num(l, 2), num(h, 2))
            });
            why.push(format!(
                "AUROC {}{ci_text}, {} {} than overall{}",
                num(*a, 2),
                num(gap.abs(), 2),
                if gap < 0.0 { "lower" } else { "higher" },
                if outside {
                    " (the interval excludes the overall value)"
                } else {
                    ""
                }
            ));
        }
    }
    // Compared with the overall intercept: a model that is off everywhere is said so once,
    // in the calibration sentence; here only a group that is off differently counts.
    if let (Ok(i), Ok(all)) = (&group.calibration_intercept, &overall.calibration.intercept) {
        let d = i - all;
        if d.abs() >= SUBGROUP_INTERCEPT_NOTABLE {
            why.push(format!(
                "predicted risks are {} in this group than in the whole population \
                 (calibration intercept {} against {} overall)",
                if d > 0.0 {
                    "lower relative to what happened"
                } else {
                    "higher relative to what happened"
                },
                num(*i, 2),
                num(*all, 2)
            ));
        }
    }
    if why.is_empty() {
        None
    } else {
        Some(why.join("; "))
    }
}

/// The mean predicted risk, recovered exactly from the reliability curve (its bins cover
/// every row).
pub(crate) fn mean_predicted(report: &EvaluationReport) -> Option<f64> {
    let curve = report.calibration.curve.as_ref().ok()?;
    let n: u64 = curve.iter().map(|p| p.n).sum();
    if n == 0 {
        return None;
    }
    Some(
        curve
            .iter()
            .map(|p| p.mean_predicted * p.n as f64)
            .sum::<f64>()
            / n as f64,
    )
}

/// The summary section's HTML.
pub(crate) fn evaluation_summary(report: &EvaluationReport, ctx: &ReportContext) -> String {
    let outcome = outcome_phrase(ctx);
    let mut items: Vec<String> = Vec::new();

    items.push(format!(
        "<strong>{}</strong> scored cases; <strong>{}</strong> of them ({}) {outcome}.",
        count(report.n),
        count(report.n_positive),
        estimate(&report.prevalence, |p| pct(p, 1)),
    ));

    items.push(match &report.auroc.value {
        Ok(a) => format!(
            "<strong>Ranking.</strong> The model ranks a random patient who {outcome} above one \
             who did not <strong>{} of the time</strong> (AUROC {}{}). 50% would be no better \
             than chance; 100% would be perfect.",
            pct(*a, 0),
            num(*a, 3),
            match (&report.auroc.ci_low, &report.auroc.ci_high) {
                (Ok(l), Ok(h)) => format!(", 95% CI {}–{}", num(*l, 3), num(*h, 3)),
                (Err(e), _) | (_, Err(e)) => format!(", 95% CI {}", not_estimable(&e.reason)),
            }
        ),
        Err(e) => format!(
            "<strong>Ranking.</strong> How well the model ranks patients could not be \
             estimated: {}.",
            not_estimable(&e.reason)
        ),
    });

    items.push(calibration_sentence(report));
    items.push(threshold_sentence(report, ctx, &outcome));
    items.extend(subgroup_sentences(report));
    if let Some(p) = period_sentence(report) {
        items.push(p);
    }
    let missing = not_estimable_items(report);
    if !missing.is_empty() {
        let mut s = String::from(
            "<strong>Could not be estimated</strong> (the data do not support these numbers):<ul>",
        );
        for (reason, what) in missing {
            s.push_str(&format!(
                "<li>{}: {}</li>",
                escape(&what.join(", ")),
                not_estimable(&reason)
            ));
        }
        s.push_str("</ul>");
        items.push(s);
    }

    let mut out = String::from("<div class=\"summary\"><ul>");
    for i in items {
        out.push_str(&format!("<li>{i}</li>"));
    }
    out.push_str("</ul></div>");
    out
}

fn calibration_sentence(report: &EvaluationReport) -> String {
    let c = &report.calibration;
    let mut parts = Vec::new();
    match &c.intercept {
        Ok(a) => {
            let means = match (mean_predicted(report), &report.prevalence) {
                (Some(m), Ok(p)) => format!(
                    "mean predicted risk {} against {} observed; ",
                    pct(m, 1),
                    pct(*p, 1)
                ),
                _ => String::new(),
            };
            let verdict = if a.abs() < INTERCEPT_TOLERANCE {
                "predicted risks match the observed rate on average"
            } else if *a < 0.0 {
                "predicted risks are on average <strong>too high</strong>"
            } else {
                "predicted risks are on average <strong>too low</strong>"
            };
            parts.push(format!(
                "{verdict} ({means}calibration intercept {})",
                num(*a, 2)
            ));
        }
        Err(e) => parts.push(format!(
            "whether predicted risks are right on average is {}",
            not_estimable(&e.reason)
        )),
    }
    match &c.slope {
        Ok(b) => {
            let verdict = if (b - 1.0).abs() <= SLOPE_TOLERANCE {
                "the spread of predictions is about right"
            } else if *b < 1.0 {
                "predictions are <strong>too extreme</strong>: high risks are overstated and \
                 low risks understated"
            } else {
                "predictions are <strong>too modest</strong>: high risks are understated and \
                 low risks overstated"
            };
            parts.push(format!("slope {} means {verdict}", num(*b, 2)));
        }
        Err(e) => parts.push(format!(
            "the calibration slope is {}",
            not_estimable(&e.reason)
        )),
    }
    if let Ok(ece) = &c.ece {
        parts.push(format!(
            "predicted risks are {} percentage points away from the observed rate on average \
             (ECE {})",
            num(ece * 100.0, 1),
            num(*ece, 3)
        ));
    }
    format!("<strong>Calibration.</strong> {}.", capitalise_join(&parts))
}

/// Joins clauses with "; " and capitalises the first letter (which is never inside a tag).
fn capitalise_join(parts: &[String]) -> String {
    let joined = parts.join("; ");
    let mut chars = joined.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => joined,
    }
}

fn threshold_sentence(report: &EvaluationReport, ctx: &ReportContext, outcome: &str) -> String {
    let Some(&main) = ctx.thresholds.first() else {
        return "<strong>Alerts.</strong> No decision threshold was named for this release, so \
                alert burden is shown for every evaluated threshold in the table below."
            .to_string();
    };
    let Some(t) = main_threshold(report, ctx) else {
        return format!(
            "<strong>Alerts.</strong> The release's threshold {} was not among the evaluated \
             thresholds; see the table below for those that were.",
            num(main, 2)
        );
    };
    let mut s = format!(
        "<strong>Alerts at the main threshold</strong> (score ≥ {}): the model flags \
         <strong>{}</strong> of patients; of those flagged, <strong>{}</strong> {outcome} \
         (PPV)",
        num(t.threshold, 2),
        estimate(&t.alert_rate, |v| pct(v, 1)),
        estimate(&t.ppv, |v| pct(v, 1)),
    );
    if let Ok(nne) = &t.nne {
        s.push_str(&format!(
            ", so about 1 alert in {} is a true case",
            num(*nne, 1)
        ));
    }
    s.push_str(&format!(
        "; it catches <strong>{}</strong> of events (sensitivity); ",
        estimate(&t.sensitivity, |v| pct(v, 1))
    ));
    match &t.alerts_per_100_patient_days {
        Ok(v) => s.push_str(&format!(
            "about <strong>{} alerts per 100 patient-days</strong>.",
            num(*v, 1)
        )),
        Err(e) => s.push_str(&format!(
            "alerts per 100 patient-days: {}.",
            not_estimable(&e.reason)
        )),
    }
    s
}

fn subgroup_sentences(report: &EvaluationReport) -> Vec<String> {
    if report.subgroups.is_empty() {
        return vec!["<strong>Subgroups.</strong> No subgroup columns were evaluated.".into()];
    }
    let mut standouts = Vec::new();
    let mut small = Vec::new();
    for (column, groups) in &report.subgroups {
        for (value, g) in groups {
            let name = format!("{} = {}", escape(column), escape(value));
            if let Some(reason) = &g.suppressed_reason {
                small.push(format!(
                    "{name} ({} patients, {} events: {})",
                    count(g.n_patients),
                    count(g.n_positive),
                    escape(reason)
                ));
            } else if let Some(why) = stands_out(g, report) {
                standouts.push(format!(
                    "<strong>{name}</strong> (n = {}): {why}",
                    count(g.n)
                ));
            }
        }
    }
    let mut out = Vec::new();
    if standouts.is_empty() {
        out.push(format!(
            "<strong>Subgroups.</strong> No subgroup's AUROC differs from the overall by {} or \
             more, and none is systematically mis-calibrated.",
            num(NOTABLE_AUROC_GAP, 2)
        ));
    } else {
        out.push(format!(
            "<strong>Subgroups that stand out:</strong><ul>{}</ul>",
            standouts
                .iter()
                .map(|s| format!("<li>{s}</li>"))
                .collect::<String>()
        ));
    }
    if !small.is_empty() {
        out.push(format!(
            "<strong>Too few patients or events to judge</strong> (estimates withheld): {}.",
            small.join("; ")
        ));
    }
    out
}

fn period_sentence(report: &EvaluationReport) -> Option<String> {
    let periods = match &report.periods {
        Ok(p) => p,
        Err(e) => {
            return Some(format!(
                "<strong>Over time.</strong> Performance by period is {}.",
                not_estimable(&e.reason)
            ));
        }
    };
    let estimated: Vec<(&String, f64)> = periods
        .iter()
        .filter_map(|(k, g)| g.auroc.as_ref().ok().map(|a| (k, *a)))
        .collect();
    let suppressed = periods
        .values()
        .filter(|g| g.suppressed_reason.is_some())
        .count();
    let (lo, hi) = (
        estimated.iter().min_by(|a, b| a.1.total_cmp(&b.1))?,
        estimated.iter().max_by(|a, b| a.1.total_cmp(&b.1))?,
    );
    let mut s = format!(
        "<strong>Over time.</strong> Across {} periods, AUROC ranged from {} ({}) to {} ({}).",
        periods.len(),
        num(lo.1, 2),
        escape(lo.0),
        num(hi.1, 2),
        escape(hi.0)
    );
    if suppressed > 0 {
        s.push_str(&format!(
            " {suppressed} period{} had too few patients or events to estimate.",
            if suppressed == 1 { "" } else { "s" }
        ));
    }
    Some(s)
}

/// Every top-level quantity that could not be estimated, grouped by reason (in the order
/// the reasons first appear), so a reader sees each cause once.
pub(crate) fn not_estimable_items(report: &EvaluationReport) -> Vec<(String, Vec<String>)> {
    let mut found: Vec<(String, String)> = Vec::new();
    let mut check = |what: &str, reason: Option<&str>| {
        if let Some(r) = reason {
            found.push((r.to_string(), what.to_string()));
        }
    };
    fn reason<T>(e: &Estimate<T>) -> Option<&str> {
        e.as_ref().err().map(|e| e.reason.as_str())
    }
    fn pair<'a, T>(a: &'a Estimate<T>, b: &'a Estimate<T>) -> Option<&'a str> {
        reason(a).or(reason(b))
    }
    let a = &report.auroc;
    check("prevalence", reason(&report.prevalence));
    check("AUROC", reason(&a.value));
    if a.value.is_ok() {
        check("AUROC DeLong interval", pair(&a.ci_low, &a.ci_high));
    }
    check(
        "AUROC bootstrap interval",
        pair(&a.bootstrap_ci_low, &a.bootstrap_ci_high),
    );
    check("AUPRC", reason(&report.auprc.value));
    check(
        "AUPRC bootstrap interval",
        pair(&report.auprc.ci_low, &report.auprc.ci_high),
    );
    check("Brier score", reason(&report.brier));
    check(
        "Brier bootstrap interval",
        pair(
            &report.brier_interval.ci_low,
            &report.brier_interval.ci_high,
        ),
    );
    let c = &report.calibration;
    check("calibration intercept", reason(&c.intercept));
    check("calibration slope", reason(&c.slope));
    check("expected calibration error", reason(&c.ece));
    check("Hosmer–Lemeshow test", reason(&c.hosmer_lemeshow));
    check("reliability curve", reason(&c.curve));
    check("ROC curve", reason(&report.roc_curve));
    check("precision–recall curve", reason(&report.pr_curve));
    check("decision curve", reason(&report.decision_curve));
    check("performance by period", reason(&report.periods));
    for t in &report.thresholds {
        let at = |name: &str| format!("{name} at {}", num(t.threshold, 2));
        check(&at("sensitivity"), reason(&t.sensitivity));
        check(&at("specificity"), reason(&t.specificity));
        check(&at("PPV"), reason(&t.ppv));
        check(&at("NPV"), reason(&t.npv));
        check(&at("F1"), reason(&t.f1));
        check(&at("alert rate"), reason(&t.alert_rate));
        check(&at("NNE"), reason(&t.nne));
        check(
            &at("alerts per 100 patient-days"),
            reason(&t.alerts_per_100_patient_days),
        );
    }
    let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for (r, what) in found {
        match index.get(&r) {
            Some(&i) => grouped[i].1.push(what),
            None => {
                index.insert(r.clone(), grouped.len());
                grouped.push((r, vec![what]));
            }
        }
    }
    grouped
}
