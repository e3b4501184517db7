//! The evaluation report: a release's clinical evidence on one dataset, from the
//! plain-language summary down to the methods, as one HTML page.

use vigil_stats::{EvaluationReport, GroupReport};

use crate::ReportContext;
use crate::html::{
    Footnotes, Page, count, escape, estimate, not_estimable, num, pct, table, table_classed,
    with_interval,
};
use crate::plots;
use crate::summary::{
    evaluation_summary, is_release_threshold, mean_predicted, outcome_phrase, stands_out,
};

/// Renders the evaluation report as a self-contained HTML document.
///
/// Every string in `ctx` and every subgroup name and reason in `report` is escaped. The
/// report's JSON (as `vigil_stats` serializes it) is embedded in a non-executable data block
/// so that the file is its own machine-readable evidence.
pub fn render_evaluation(report: &EvaluationReport, ctx: &ReportContext) -> String {
    let mut page = Page::default();
    page.section("summary", "Summary", evaluation_summary(report, ctx));
    page.section(
        "discrimination",
        "Discrimination",
        discrimination(report, ctx),
    );
    page.section("calibration", "Calibration", calibration(report));
    page.section(
        "thresholds",
        "Thresholds and alert burden",
        thresholds(report, ctx),
    );
    page.section("decision-curve", "Decision curve", decision(report, ctx));
    page.section("subgroups", "Subgroups", subgroups(report));
    page.section("periods", "Performance over time", periods(report));
    if !ctx.notes.is_empty() || ctx.intended_use_summary.is_some() {
        page.section("notes", "Intended use and notes", notes(ctx));
    }
    page.section("methods", "Methods", methods());
    let json = serde_json::to_string(report).ok();
    page.finish(&ctx.title, &header(ctx), json.as_deref())
}

fn header(ctx: &ReportContext) -> String {
    let mut rows: Vec<(&str, String)> = Vec::new();
    let opt = |v: &Option<String>| v.as_deref().map(escape);
    if let Some(m) = opt(&ctx.model) {
        rows.push(("Model", m));
    }
    if let Some(r) = opt(&ctx.release) {
        rows.push(("Release", format!("<code>{r}</code>")));
    }
    if let Some(d) = opt(&ctx.dataset) {
        rows.push(("Dataset", d));
    }
    rows.push((
        "Score / outcome",
        format!(
            "<code>{}</code> predicting <code>{}</code> (a patient who {})",
            escape(&ctx.score_column),
            escape(&ctx.label_column),
            outcome_phrase(ctx)
        ),
    ));
    rows.push((
        "Decision thresholds",
        if ctx.thresholds.is_empty() {
            "none named".to_string()
        } else {
            ctx.thresholds
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    format!(
                        "score ≥ {}{}",
                        num(*t, 2),
                        if i == 0 { " (main)" } else { "" }
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        },
    ));
    rows.push(("Generated", escape(&ctx.generated_at)));
    let mut out = String::from("<dl class=\"meta\">");
    for (k, v) in rows {
        out.push_str(&format!("<dt>{k}</dt><dd>{v}</dd>"));
    }
    out.push_str("</dl>");
    out
}

fn discrimination(report: &EvaluationReport, ctx: &ReportContext) -> String {
    let a = &report.auroc;
    let rows = vec![
        vec![
            "AUROC (DeLong 95% CI)".to_string(),
            with_interval(&a.value, &a.ci_low, &a.ci_high, 3),
        ],
        vec![
            "AUROC (bootstrap 95% CI)".to_string(),
            with_interval(&a.value, &a.bootstrap_ci_low, &a.bootstrap_ci_high, 3),
        ],
        vec![
            "AUPRC — average precision (bootstrap 95% CI)".to_string(),
            with_interval(
                &report.auprc.value,
                &report.auprc.ci_low,
                &report.auprc.ci_high,
                3,
            ),
        ],
        vec![
            "Prevalence (baseline for AUPRC)".to_string(),
            estimate(&report.prevalence, |p| pct(p, 1)),
        ],
        vec![
            "Cases / events".to_string(),
            format!("{} / {}", count(report.n), count(report.n_positive)),
        ],
    ];
    format!(
        "<div class=\"figures\">{}{}</div>{}",
        plots::roc_figure(report, ctx),
        plots::pr_figure(report, ctx),
        table("Discrimination", &["Measure", "Value"], &rows)
    )
}

fn calibration(report: &EvaluationReport) -> String {
    let c = &report.calibration;
    let b = &report.brier_interval;
    let hl = match &c.hosmer_lemeshow {
        Ok(h) => vec![
            format!("{}", num(h.statistic, 2)),
            format!("df {}, {}, {} groups", h.df, p_value(h.p_value), h.groups),
        ],
        Err(e) => vec![not_estimable(&e.reason)],
    };
    let rows = vec![
        vec![
            "Calibration intercept (calibration-in-the-large)".to_string(),
            estimate(&c.intercept, |v| num(v, 3)),
            "0 is ideal; above 0, risks are too low on average; below 0, too high".to_string(),
        ],
        vec![
            "Calibration slope".to_string(),
            estimate(&c.slope, |v| num(v, 3)),
            "1 is ideal; below 1, predictions too extreme; above 1, too modest".to_string(),
        ],
        vec![
            "Expected calibration error (ECE)".to_string(),
            estimate(&c.ece, |v| num(v, 4)),
            "mean distance between predicted and observed, weighted by bin size".to_string(),
        ],
        vec![
            "Brier score (bootstrap 95% CI)".to_string(),
            with_interval(&b.value, &b.ci_low, &b.ci_high, 4),
            "mean squared error of the predicted risk; lower is better".to_string(),
        ],
        vec![
            "Mean predicted risk / observed rate".to_string(),
            match (mean_predicted(report), &report.prevalence) {
                (Some(m), Ok(p)) => format!("{} / {}", pct(m, 2), pct(*p, 2)),
                (None, _) => not_estimable("no reliability curve"),
                (_, Err(e)) => not_estimable(&e.reason),
            },
            "close together when risks are right on average".to_string(),
        ],
        std::iter::once("Hosmer–Lemeshow statistic".to_string())
            .chain(hl)
            .collect(),
    ];
    let mut out = String::from("<div class=\"figures\">");
    out.push_str(&plots::calibration_figure(report));
    out.push_str("<div>");
    out.push_str("<div class=\"text-last\">");
    out.push_str(&table(
        "Calibration numbers",
        &["Measure", "Value", "Reading"],
        &rows,
    ));
    out.push_str("</div>");
    if let Ok(curve) = &c.curve {
        let bins: Vec<Vec<String>> = curve
            .iter()
            .enumerate()
            .map(|(i, p)| {
                vec![
                    format!("{}", i + 1),
                    pct(p.mean_predicted, 1),
                    pct(p.observed_rate, 1),
                    count(p.n),
                ]
            })
            .collect();
        out.push_str(&table(
            "Reliability curve points",
            &["Bin", "Mean predicted", "Observed", "Cases"],
            &bins,
        ));
    }
    out.push_str("</div></div>");
    out
}

fn p_value(p: f64) -> String {
    if p.is_finite() && p < 0.001 {
        "<span class=\"nowrap\">p &lt; 0.001</span>".to_string()
    } else {
        format!("p = {}", num(p, 3))
    }
}

fn thresholds(report: &EvaluationReport, ctx: &ReportContext) -> String {
    if report.thresholds.is_empty() {
        return "<p>No thresholds were evaluated.</p>".to_string();
    }
    let mut notes = Footnotes::default();
    let rows: Vec<(&str, Vec<String>)> = report
        .thresholds
        .iter()
        .map(|t| {
            let main = is_release_threshold(ctx, t.threshold);
            (
                if main { "main" } else { "" },
                vec![
                    format!(
                        "<span class=\"nowrap\">≥ {}</span>{}",
                        num(t.threshold, 2),
                        if main {
                            " <span class=\"tag nowrap\">release</span>"
                        } else {
                            ""
                        }
                    ),
                    count(t.tp),
                    count(t.fp),
                    count(t.tn),
                    count(t.fn_),
                    notes.estimate(&t.sensitivity, |v| pct(v, 1)),
                    notes.estimate(&t.specificity, |v| pct(v, 1)),
                    notes.estimate(&t.ppv, |v| pct(v, 1)),
                    notes.estimate(&t.npv, |v| pct(v, 1)),
                    notes.estimate(&t.f1, |v| num(v, 3)),
                    notes.estimate(&t.alert_rate, |v| pct(v, 1)),
                    notes.estimate(&t.nne, |v| num(v, 1)),
                    notes.estimate(&t.alerts_per_100_patient_days, |v| num(v, 2)),
                ],
            )
        })
        .collect();
    format!(
        "<p>A patient is flagged when the score is at or above the threshold. The release's \
         own thresholds are highlighted. <em>Alert rate</em> is the share of cases flagged; \
         <em>NNE</em> (number needed to evaluate) is how many flagged patients a clinician \
         sees per true case.</p>{}{}",
        table_classed(
            "Operating characteristics at each threshold",
            &[
                "Threshold",
                "TP",
                "FP",
                "TN",
                "FN",
                "Sensitivity",
                "Specificity",
                "PPV",
                "NPV",
                "F1",
                "Alert rate",
                "NNE",
                "Alerts / 100 patient-days",
            ],
            &rows,
        ),
        notes.render()
    )
}

fn decision(report: &EvaluationReport, ctx: &ReportContext) -> String {
    let mut out = String::from("<div class=\"figures\">");
    out.push_str(&plots::decision_figure(report, ctx));
    if let Ok(points) = &report.decision_curve {
        // Every 0.05 up to 0.5, plus the release's own thresholds: the range where
        // clinical decisions are usually made, without a 99-row table.
        let rows: Vec<(&str, Vec<String>)> = points
            .iter()
            .filter(|p| {
                let on_grid = ((p.threshold * 20.0).round() - p.threshold * 20.0).abs() < 1e-6
                    && p.threshold <= 0.5 + 1e-9;
                on_grid || is_release_threshold(ctx, p.threshold)
            })
            .map(|p| {
                (
                    if is_release_threshold(ctx, p.threshold) {
                        "main"
                    } else {
                        ""
                    },
                    vec![
                        num(p.threshold, 2),
                        num(p.net_benefit, 4),
                        num(p.net_benefit_treat_all, 4),
                        "0".to_string(),
                        if p.net_benefit > p.net_benefit_treat_all.max(0.0) {
                            "yes".to_string()
                        } else {
                            "no".to_string()
                        },
                    ],
                )
            })
            .collect();
        out.push_str(&table_classed(
            "Net benefit at selected thresholds",
            &[
                "Threshold",
                "Model",
                "Treat all",
                "Treat none",
                "Model best?",
            ],
            &rows,
        ));
    }
    out.push_str("</div>");
    out
}

fn group_cells(
    name: &str,
    g: &GroupReport,
    overall: &EvaluationReport,
    notes: &mut Footnotes,
) -> Vec<String> {
    let label = match stands_out(g, overall) {
        Some(_) => format!("{} <span class=\"flag\">stands out</span>", escape(name)),
        None => escape(name),
    };
    let mut cells = vec![label, count(g.n), count(g.n_patients), count(g.n_positive)];
    if let Some(reason) = &g.suppressed_reason {
        cells.push(format!(
            "<span class=\"ne\">too few patients/events — estimates withheld ({})</span>",
            escape(reason)
        ));
        return cells;
    }
    let interval = match (&g.auroc, &g.auroc_ci_low, &g.auroc_ci_high) {
        (Ok(_), Err(e), _) | (Ok(_), _, Err(e)) => {
            let r = e.reason.clone();
            format!(
                "{} <span class=\"ci\">(interval {})</span>",
                notes.estimate(&g.auroc, |v| num(v, 3)),
                notes.mark(&r)
            )
        }
        (Ok(_), Ok(_), Ok(_)) => with_interval(&g.auroc, &g.auroc_ci_low, &g.auroc_ci_high, 3),
        (Err(_), _, _) => notes.estimate(&g.auroc, |v| num(v, 3)),
    };
    cells.push(notes.estimate(&g.prevalence, |v| pct(v, 1)));
    cells.push(interval);
    cells.push(notes.estimate(&g.auroc_gap, signed));
    cells.push(notes.estimate(&g.auprc, |v| num(v, 3)));
    cells.push(notes.estimate(&g.brier, |v| num(v, 4)));
    cells.push(notes.estimate(&g.calibration_intercept, |v| num(v, 2)));
    cells.push(notes.estimate(&g.calibration_slope, |v| num(v, 2)));
    cells.push(notes.estimate(&g.ece, |v| num(v, 3)));
    cells
}

fn signed(v: f64) -> String {
    if v > 0.0 {
        format!("+{}", num(v, 3))
    } else {
        num(v, 3)
    }
}

const GROUP_HEADER: [&str; 12] = [
    "Group",
    "Cases",
    "Patients",
    "Events",
    "Prevalence",
    "AUROC (95% CI)",
    "AUROC gap",
    "AUPRC",
    "Brier",
    "Cal. intercept",
    "Cal. slope",
    "ECE",
];

fn subgroups(report: &EvaluationReport) -> String {
    if report.subgroups.is_empty() {
        return "<p>No subgroup columns were evaluated.</p>".to_string();
    }
    let mut notes = Footnotes::default();
    let mut rows: Vec<(&str, Vec<String>)> = Vec::new();
    for (column, groups) in &report.subgroups {
        rows.push(("heading", vec![escape(column)]));
        for (value, g) in groups {
            rows.push(("", group_cells(value, g, report, &mut notes)));
        }
    }
    format!(
        "{}<p>Gap is the group's AUROC minus the overall AUROC ({}). Groups with too few \
         patients or events keep their counts, but their estimates are withheld.</p>{}{}",
        plots::forest_figure(report),
        estimate(&report.auroc.value, |v| num(v, 3)),
        table_classed("Every metric by subgroup", &GROUP_HEADER, &rows),
        notes.render()
    )
}

fn periods(report: &EvaluationReport) -> String {
    let mut out = plots::period_figures(report);
    if let Ok(periods) = &report.periods {
        let mut notes = Footnotes::default();
        let rows: Vec<(&str, Vec<String>)> = periods
            .iter()
            .map(|(k, g)| ("", group_cells(k, g, report, &mut notes)))
            .collect();
        let mut header = GROUP_HEADER;
        header[0] = "Period";
        out.push_str(&table_classed("Every metric by period", &header, &rows));
        out.push_str(&notes.render());
    }
    out
}

fn notes(ctx: &ReportContext) -> String {
    let mut out = String::new();
    if let Some(u) = &ctx.intended_use_summary {
        out.push_str(&format!(
            "<h3>Intended use</h3><p>{}</p>",
            escape(u).replace('\n', "<br>")
        ));
    }
    if !ctx.notes.is_empty() {
        out.push_str("<h3>Notes</h3><ul>");
        for n in &ctx.notes {
            out.push_str(&format!("<li>{}</li>", escape(n)));
        }
        out.push_str("</ul>");
    }
    out
}

/// The definitions behind every number, as `vigil-stats`' METRICS.md states them.
fn methods() -> String {
    let items: [(&str, &str); 14] = [
        (
            "Positive",
            "A score at or above the threshold is positive, everywhere in this report.",
        ),
        (
            "AUROC",
            "Mann–Whitney probability that a random patient with the outcome scores above a \
             random patient without it; ties count one half. 95% CI: DeLong variance (fast \
             algorithm of Sun & Xu, 2014), plain normal interval auc ± 1.959964·√var clipped \
             to [0, 1]; needs at least 2 events and 2 non-events.",
        ),
        (
            "AUPRC",
            "Average precision: step sum Σ (R_k − R_{k−1}) P_k over distinct thresholds, \
             highest first, without interpolation (as scikit-learn).",
        ),
        (
            "Bootstrap intervals",
            "Percentile intervals (NumPy linear percentiles) over multinomial resamples; \
             replicate r uses its own generator seeded from (seed, r); resamples with one \
             class are left out and counted.",
        ),
        ("Brier score", "Mean of (p − y)² over all cases."),
        (
            "Calibration intercept",
            "Calibration-in-the-large: a in logit P(y = 1) = a + logit(p), with logit(p) as \
             an offset, fitted by Newton/IRLS (as statsmodels GLM).",
        ),
        (
            "Calibration slope",
            "b in logit P(y = 1) = a + b·logit(p); not estimable with one class, constant \
             scores or perfectly separated scores.",
        ),
        (
            "Reliability curve and ECE",
            "As scikit-learn's calibration_curve: bins on [0, 1] (uniform or quantile), empty \
             bins dropped; each point is the bin's mean predicted risk and observed rate. ECE \
             = Σ (n_b / n)·|observed_b − predicted_b| over the uniform 10-bin curve.",
        ),
        (
            "Hosmer–Lemeshow",
            "Groups as pandas qcut(p, 10, duplicates = \"drop\"); H = Σ (O − E)² / (E (1 − E / \
             n_g)), df = groups − 2, p from the χ² survival function.",
        ),
        (
            "Threshold metrics",
            "Sensitivity tp/(tp+fn), specificity tn/(tn+fp), PPV tp/(tp+fp), NPV tn/(tn+fn), \
             F1 2tp/(2tp+fp+fn), alert rate (tp+fp)/n, NNE 1/PPV; each not estimable when its \
             denominator is zero.",
        ),
        (
            "Alerts per 100 patient-days",
            "100 × (tp + fp) / (patients × days), with patients the distinct patient ids (or \
             cases, without ids) and days the UTC calendar days from the first to the last \
             timestamp, inclusive.",
        ),
        (
            "Decision curve",
            "Net benefit TP/n − FP/n · pt/(1 − pt) − harm for the model (score ≥ pt treated); \
             treat all: prevalence − (1 − prevalence)·pt/(1 − pt); treat none: 0 (as dcurves).",
        ),
        (
            "Subgroups and periods",
            "Every metric per value of each subgroup column and per UTC calendar period, with \
             the gap to the overall value. A group with fewer than 10 patients, or fewer than \
             10 events or non-events (defaults), is suppressed: counts stay, estimates are \
             withheld.",
        ),
        (
            "Not estimable",
            "A quantity the data cannot support (one class, an empty group, zero variance) is \
             shown as \"not estimable\" with its reason, never as a number.",
        ),
    ];
    let mut out = String::from(
        "<div class=\"methods\"><p>Numbers are computed by Vigil's statistics library and \
         agree with the reference implementations named here (scikit-learn, SciPy, \
         statsmodels, dcurves) to within 1e-9 for closed-form quantities and 1e-6 for fitted \
         ones.</p><dl>",
    );
    for (k, v) in items {
        out.push_str(&format!("<dt>{}</dt><dd>{}</dd>", escape(k), escape(v)));
    }
    out.push_str("</dl></div>");
    out
}
