//! The evaluation report's figures — ROC, precision–recall, calibration, decision curve,
//! subgroup forest plot and metrics over time — built from the shared chart module.

use vigil_stats::{EvaluationReport, GroupReport};

use crate::ReportContext;
use crate::chart::{
    Axis, BLUE, Chart, GREY, INK, Mark, ORANGE, Row, RowChart, RowKind, SKY, Stroke, VERMILLION,
    nice_ceil, nice_step, tick_1, tick_2, tick_pct,
};
use crate::html::{count, escape, figure, missing_figure, num, pct};
use crate::summary::{main_threshold, stands_out};

const WIDTH: f64 = 560.0;
const SQUARE: f64 = 400.0;

const MODEL: Stroke = Stroke::solid(BLUE, 2.5);
const CHANCE: Stroke = Stroke::dashed(GREY, 1.5, "6 4");
const REFERENCE: Stroke = Stroke::dashed(ORANGE, 2.5, "9 5");

fn auroc_text(report: &EvaluationReport) -> String {
    let a = &report.auroc;
    match (&a.value, &a.ci_low, &a.ci_high) {
        (Ok(v), Ok(l), Ok(h)) => {
            format!("AUROC {}, 95% CI {}–{}", num(*v, 3), num(*l, 3), num(*h, 3))
        }
        (Ok(v), _, _) => format!("AUROC {}", num(*v, 3)),
        (Err(e), _, _) => format!("AUROC not estimable — {}", e.reason),
    }
}

pub(crate) fn roc_figure(report: &EvaluationReport, ctx: &ReportContext) -> String {
    let caption = "ROC curve";
    let points = match &report.roc_curve {
        Ok(p) => p,
        Err(e) => return missing_figure("fig-roc", caption, &e.reason),
    };
    let mut marks = vec![
        Mark::Line {
            series: "chance",
            points: vec![Some((0.0, 0.0)), Some((1.0, 1.0))],
            stroke: CHANCE,
            label: Some("Chance (AUROC 0.5)".into()),
        },
        Mark::Line {
            series: "roc",
            points: points.iter().map(|p| Some((p.fpr, p.tpr))).collect(),
            stroke: MODEL,
            label: Some(format!("Model ({})", auroc_text(report))),
        },
    ];
    let mut desc = format!(
        "ROC curve through {} thresholds: sensitivity against 1 − specificity. {}.",
        points.len(),
        auroc_text(report)
    );
    let main = main_threshold(report, ctx).map(|t| (t, &t.sensitivity, &t.specificity));
    if let Some((t, Ok(sens), Ok(spec))) = main {
        marks.push(Mark::Marker {
            x: 1.0 - spec,
            y: *sens,
            text: format!("threshold {}", num(t.threshold, 2)),
            colour: VERMILLION,
        });
        desc.push_str(&format!(
            " At the main threshold {}: sensitivity {}, specificity {}.",
            num(t.threshold, 2),
            pct(*sens, 1),
            pct(*spec, 1)
        ));
    }
    let chart = Chart {
        id: "chart-roc".into(),
        title: caption.into(),
        desc: desc.clone(),
        width: WIDTH,
        plot_height: SQUARE,
        x: Axis::linear("1 − specificity (false-positive rate)", 0.0, 1.0, tick_1),
        y: Axis::linear("Sensitivity (true-positive rate)", 0.0, 1.0, tick_1),
        marks,
    };
    figure(
        "fig-roc",
        caption,
        &chart.to_svg(),
        "How well scores separate patients with and without the outcome at every threshold. \
         The closer the curve to the top-left corner, the better; the dashed diagonal is chance.",
    )
}

pub(crate) fn pr_figure(report: &EvaluationReport, ctx: &ReportContext) -> String {
    let caption = "Precision–recall curve";
    let points = match &report.pr_curve {
        Ok(p) => p,
        Err(e) => return missing_figure("fig-pr", caption, &e.reason),
    };
    let ap = match &report.auprc.value {
        Ok(v) => format!("AUPRC {}", num(*v, 3)),
        Err(e) => format!("AUPRC not estimable — {}", e.reason),
    };
    let mut marks = Vec::new();
    if let Ok(p) = &report.prevalence {
        marks.push(Mark::Line {
            series: "baseline",
            points: vec![Some((0.0, *p)), Some((1.0, *p))],
            stroke: CHANCE,
            label: Some(format!("Prevalence baseline ({})", pct(*p, 1))),
        });
    }
    marks.push(Mark::Line {
        series: "pr",
        points: points
            .iter()
            .map(|p| Some((p.recall, p.precision)))
            .collect(),
        stroke: MODEL,
        label: Some(format!("Model ({ap})")),
    });
    let mut desc = format!(
        "Precision (PPV) against recall (sensitivity) through {} thresholds; {ap}.",
        points.len()
    );
    let main = main_threshold(report, ctx).map(|t| (t, &t.sensitivity, &t.ppv));
    if let Some((t, Ok(sens), Ok(ppv))) = main {
        marks.push(Mark::Marker {
            x: *sens,
            y: *ppv,
            text: format!("threshold {}", num(t.threshold, 2)),
            colour: VERMILLION,
        });
        desc.push_str(&format!(
            " At the main threshold {}: sensitivity {}, PPV {}.",
            num(t.threshold, 2),
            pct(*sens, 1),
            pct(*ppv, 1)
        ));
    }
    let chart = Chart {
        id: "chart-pr".into(),
        title: caption.into(),
        desc,
        width: WIDTH,
        plot_height: SQUARE,
        x: Axis::linear("Recall (sensitivity)", 0.0, 1.0, tick_1),
        y: Axis::linear("Precision (PPV)", 0.0, 1.0, tick_1),
        marks,
    };
    figure(
        "fig-pr",
        caption,
        &chart.to_svg(),
        "Of the patients flagged, the share who have the outcome, against the share of all \
         outcomes caught. A model no better than chance stays on the prevalence line.",
    )
}

pub(crate) fn calibration_figure(report: &EvaluationReport) -> String {
    let caption = "Calibration (reliability) plot";
    let curve = match &report.calibration.curve {
        Ok(c) if !c.is_empty() => c,
        Ok(_) => return missing_figure("fig-calibration", caption, "no bins"),
        Err(e) => return missing_figure("fig-calibration", caption, &e.reason),
    };
    let max_n = curve.iter().map(|p| p.n).max().unwrap_or(1).max(1) as f64;
    let top = curve
        .iter()
        .map(|p| p.mean_predicted.max(p.observed_rate))
        .fold(0.0, f64::max);
    // Zoom to where the predictions are, with both axes equal so the diagonal stays at 45°.
    let upper = nice_ceil((top * 1.08).max(0.05)).min(1.0);
    let format = if upper <= 0.3 { tick_pct } else { tick_1 };
    let points: Vec<(f64, f64, f64, String)> = curve
        .iter()
        .map(|p| {
            (
                p.mean_predicted,
                p.observed_rate,
                3.0 + 9.0 * (p.n as f64 / max_n).sqrt(),
                format!(
                    "mean predicted {}, observed {}, {} cases",
                    pct(p.mean_predicted, 1),
                    pct(p.observed_rate, 1),
                    count(p.n)
                ),
            )
        })
        .collect();
    let marks = vec![
        Mark::Line {
            series: "ideal",
            points: vec![Some((0.0, 0.0)), Some((1.0, 1.0))],
            stroke: CHANCE,
            label: Some("Perfect calibration".into()),
        },
        Mark::Line {
            series: "reliability",
            points: curve
                .iter()
                .map(|p| Some((p.mean_predicted, p.observed_rate)))
                .collect(),
            stroke: Stroke::solid(BLUE, 1.5),
            label: None,
        },
        Mark::Points {
            series: "bins",
            points,
            colour: BLUE,
            label: Some("Bin of patients (area ∝ number of cases)".into()),
        },
    ];
    let desc = format!(
        "Observed outcome rate against mean predicted risk in {} bins. {}",
        curve.len(),
        curve
            .iter()
            .map(|p| format!(
                "{} predicted, {} observed ({} cases)",
                pct(p.mean_predicted, 1),
                pct(p.observed_rate, 1),
                count(p.n)
            ))
            .collect::<Vec<_>>()
            .join("; ")
    );
    let chart = Chart {
        id: "chart-calibration".into(),
        title: caption.into(),
        desc,
        width: WIDTH,
        plot_height: SQUARE,
        x: Axis::linear("Predicted risk", 0.0, upper, format),
        y: Axis::linear("Observed rate", 0.0, upper, format),
        marks,
    };
    let bar = upper / 60.0;
    let hist = Chart {
        id: "chart-calibration-hist".into(),
        title: "Cases per calibration bin".into(),
        desc: "Number of cases in each calibration bin, drawn at the bin's mean predicted risk."
            .into(),
        width: WIDTH,
        plot_height: 70.0,
        x: Axis::linear("Predicted risk", 0.0, upper, format),
        y: Axis::linear_ticks("Cases", 0.0, nice_ceil(max_n), 2, |v| count(v as u64)),
        marks: vec![Mark::Bars {
            series: "bin-counts",
            bars: curve
                .iter()
                .map(|p| (p.mean_predicted - bar, p.mean_predicted + bar, p.n as f64))
                .collect(),
            colour: SKY,
            label: None,
        }],
    };
    let zoom = if upper < 1.0 {
        format!(
            " Axes run to {} because no bin lies above it.",
            format(upper)
        )
    } else {
        String::new()
    };
    figure(
        "fig-calibration",
        caption,
        &format!("{}{}", chart.to_svg(), hist.to_svg()),
        &format!(
            "Points on the dashed diagonal mean predicted risks match what happened. Below it, \
             predictions are too high; above it, too low. The strip below shows how many cases \
             fall in each bin.{}",
            escape(&zoom)
        ),
    )
}

pub(crate) fn decision_figure(report: &EvaluationReport, ctx: &ReportContext) -> String {
    let caption = "Decision curve";
    let points = match &report.decision_curve {
        Ok(p) if !p.is_empty() => p,
        Ok(_) => return missing_figure("fig-decision", caption, "empty threshold grid"),
        Err(e) => return missing_figure("fig-decision", caption, &e.reason),
    };
    let top_value = points
        .iter()
        .map(|p| p.net_benefit.max(p.net_benefit_treat_all))
        .chain(report.prevalence.iter().copied())
        .fold(0.0, f64::max);
    let top = nice_ceil((top_value * 1.1).max(0.01));
    // Treat-all falls steeply at high thresholds; a floor a little below zero keeps the
    // region where decisions are made readable. Lines are clipped at the floor.
    let bottom = -nice_step(top, 4);
    let cut = points
        .iter()
        .find(|p| p.net_benefit_treat_all < bottom)
        .map(|p| p.threshold);
    let x_max = points
        .iter()
        .map(|p| p.threshold)
        .fold(0.0, f64::max)
        .max(0.5);
    let x_max = nice_ceil(x_max).min(1.0);
    let mut marks = vec![
        Mark::Line {
            series: "treat-none",
            points: vec![Some((0.0, 0.0)), Some((1.0, 0.0))],
            stroke: Stroke::solid(INK, 1.5),
            label: Some("Treat none".into()),
        },
        Mark::Line {
            series: "treat-all",
            points: points
                .iter()
                .map(|p| Some((p.threshold, p.net_benefit_treat_all)))
                .collect(),
            stroke: REFERENCE,
            label: Some("Treat all".into()),
        },
        Mark::Line {
            series: "model",
            points: points
                .iter()
                .map(|p| Some((p.threshold, p.net_benefit)))
                .collect(),
            stroke: MODEL,
            label: Some("Model".into()),
        },
    ];
    for (i, &t) in ctx.thresholds.iter().enumerate() {
        marks.push(Mark::VRule {
            x: t,
            stroke: Stroke::dashed(VERMILLION, 1.5, "2 3"),
            text: (i == 0).then(|| format!("main threshold {}", num(t, 2))),
        });
    }
    let better: Vec<f64> = points
        .iter()
        .filter(|p| p.net_benefit > p.net_benefit_treat_all.max(0.0))
        .map(|p| p.threshold)
        .collect();
    let range = match (better.first(), better.last()) {
        (Some(a), Some(b)) => format!(
            "The model has more net benefit than both treating everyone and treating no one \
             for thresholds from {} to {}.",
            num(*a, 2),
            num(*b, 2)
        ),
        _ => "The model has no more net benefit than treating everyone or no one at any \
              threshold."
            .to_string(),
    };
    let chart = Chart {
        id: "chart-decision".into(),
        title: caption.into(),
        desc: format!(
            "Net benefit of the model, of treating all patients and of treating none, over \
             {} threshold probabilities. {range}",
            points.len()
        ),
        width: WIDTH,
        plot_height: 340.0,
        x: Axis::linear("Threshold probability", 0.0, x_max, tick_1),
        y: Axis::linear("Net benefit", bottom, top, tick_2),
        marks,
    };
    let mut note = format!(
        "Net benefit counts true positives minus false positives weighted by the odds of the \
         threshold, per patient. {range}"
    );
    if let Some(c) = cut {
        note.push_str(&format!(
            " Treat all falls below {} for thresholds from {} and is cut off there so the \
             model's curve stays readable.",
            num(bottom, 2),
            num(c, 2)
        ));
    }
    figure("fig-decision", caption, &chart.to_svg(), &escape(&note))
}

/// The forest plot: AUROC with its 95% CI per subgroup value, against the overall AUROC.
pub(crate) fn forest_figure(report: &EvaluationReport) -> String {
    let caption = "AUROC by subgroup";
    if report.subgroups.is_empty() {
        return missing_figure("fig-forest", caption, "no subgroup columns were evaluated");
    }
    let overall = report.auroc.value.as_ref().ok().copied();
    let mut rows = Vec::new();
    if let (Some(v), Ok(l), Ok(h)) = (overall, &report.auroc.ci_low, &report.auroc.ci_high) {
        rows.push(Row {
            label: "All patients".into(),
            kind: RowKind::Interval {
                estimate: v,
                low: *l,
                high: *h,
                colour: INK,
            },
            value_text: format!(
                "{} ({}–{})  n={}",
                num(v, 2),
                num(*l, 2),
                num(*h, 2),
                count(report.n)
            ),
        });
    }
    let mut lowest: f64 = 0.5;
    for (column, groups) in &report.subgroups {
        rows.push(Row {
            label: column.clone(),
            kind: RowKind::Heading,
            value_text: String::new(),
        });
        for (value, g) in groups {
            rows.push(forest_row(value, g, report));
            if let Ok(l) = &g.auroc_ci_low {
                lowest = lowest.min(*l);
            }
        }
    }
    let low = ((lowest - 0.02) * 10.0).floor() / 10.0;
    let mut rules = vec![(0.5, CHANCE, "Chance (0.5)".to_string())];
    if let Some(v) = overall {
        rules.push((
            v,
            Stroke::solid(INK, 1.2),
            format!("Overall AUROC {}", num(v, 3)),
        ));
    }
    let chart = RowChart {
        id: "chart-forest".into(),
        title: caption.into(),
        desc: format!(
            "AUROC with 95% DeLong interval for each subgroup value, against the overall AUROC \
             ({}). Groups with too few patients or events are listed without an estimate.",
            overall.map_or("not estimable".into(), |v| num(v, 3))
        ),
        width: WIDTH + 140.0,
        x: Axis::linear("AUROC (95% CI)", low.max(0.0), 1.0, tick_1),
        value_header: "AUROC (95% CI)  n".into(),
        rows,
        rules,
    };
    figure(
        "fig-forest",
        caption,
        &chart.to_svg(),
        "Squares are estimates, lines their 95% intervals. Groups drawn in orange-red stand \
         out from the overall population (see the summary). Suppressed groups are too small \
         for an estimate to mean anything.",
    )
}

fn forest_row(value: &str, g: &GroupReport, overall: &EvaluationReport) -> Row {
    let n = format!("n={}", count(g.n));
    if g.suppressed_reason.is_some() {
        return Row {
            label: value.to_string(),
            kind: RowKind::Note("too few patients/events".into()),
            value_text: format!("{n}, events={}", count(g.n_positive)),
        };
    }
    let colour = if stands_out(g, overall).is_some() {
        VERMILLION
    } else {
        BLUE
    };
    match (&g.auroc, &g.auroc_ci_low, &g.auroc_ci_high) {
        (Ok(a), Ok(l), Ok(h)) => Row {
            label: value.to_string(),
            kind: RowKind::Interval {
                estimate: *a,
                low: *l,
                high: *h,
                colour,
            },
            value_text: format!("{} ({}–{})  {n}", num(*a, 2), num(*l, 2), num(*h, 2)),
        },
        (Ok(a), _, _) => Row {
            label: value.to_string(),
            kind: RowKind::Interval {
                estimate: *a,
                low: *a,
                high: *a,
                colour,
            },
            value_text: format!("{} (no CI)  {n}", num(*a, 2)),
        },
        (Err(e), _, _) => Row {
            label: value.to_string(),
            kind: RowKind::Note(format!("not estimable — {}", short(&e.reason, 40))),
            value_text: n,
        },
    }
}

fn short(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(max - 1).collect();
        s.push('…');
        s
    }
}

/// AUROC (with its interval as a band) and prevalence per period.
pub(crate) fn period_figures(report: &EvaluationReport) -> String {
    let caption = "AUROC over time";
    let periods = match &report.periods {
        Ok(p) if !p.is_empty() => p,
        Ok(_) => return missing_figure("fig-periods", caption, "no periods"),
        Err(e) => return missing_figure("fig-periods", caption, &e.reason),
    };
    let labels: Vec<String> = periods.keys().cloned().collect();
    let groups: Vec<&GroupReport> = periods.values().collect();
    let at = |f: &dyn Fn(&GroupReport) -> Option<f64>| -> Vec<Option<(f64, f64)>> {
        groups
            .iter()
            .enumerate()
            .map(|(i, g)| f(g).map(|v| (i as f64, v)))
            .collect()
    };
    let auroc = at(&|g| g.auroc.as_ref().ok().copied());
    let band: Vec<Option<(f64, f64, f64)>> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| match (&g.auroc_ci_low, &g.auroc_ci_high) {
            (Ok(l), Ok(h)) => Some((i as f64, *l, *h)),
            _ => None,
        })
        .collect();
    let lowest = band
        .iter()
        .flatten()
        .map(|b| b.1)
        .chain(auroc.iter().flatten().map(|p| p.1))
        .fold(1.0, f64::min);
    let low = (((lowest - 0.03) * 20.0).floor() / 20.0).clamp(0.0, 0.9);
    let n_labels = labels.len() as f64;
    let mut marks = vec![Mark::Band {
        series: "auroc-ci",
        points: band,
        colour: BLUE,
        label: Some("95% CI".into()),
    }];
    if let Ok(v) = &report.auroc.value {
        marks.push(Mark::Line {
            series: "overall",
            points: vec![Some((-0.5, *v)), Some((n_labels - 0.5, *v))],
            stroke: Stroke::dashed(INK, 1.2, "5 4"),
            label: Some(format!("Overall ({})", num(*v, 3))),
        });
    }
    marks.push(Mark::Line {
        series: "auroc",
        points: auroc.clone(),
        stroke: MODEL,
        label: Some("AUROC per period".into()),
    });
    marks.push(Mark::Points {
        series: "auroc-points",
        points: auroc
            .iter()
            .zip(&labels)
            .filter_map(|(p, l)| p.map(|(x, y)| (x, y, 4.0, format!("{l}: AUROC {}", num(y, 3)))))
            .collect(),
        colour: BLUE,
        label: None,
    });
    let suppressed: Vec<String> = periods
        .iter()
        .filter(|(_, g)| g.suppressed_reason.is_some())
        .map(|(k, _)| k.clone())
        .collect();
    let desc_values = periods
        .iter()
        .map(|(k, g)| match &g.auroc {
            Ok(a) => format!("{k}: {}", num(*a, 3)),
            Err(e) => format!("{k}: not estimable — {}", e.reason),
        })
        .collect::<Vec<_>>()
        .join("; ");
    for (i, g) in groups.iter().enumerate() {
        if g.suppressed_reason.is_some() {
            marks.push(Mark::Note {
                x: i as f64,
                y: low + (1.0 - low) * 0.5,
                text: "too few".into(),
            });
        }
    }
    let chart = Chart {
        id: "chart-period-auroc".into(),
        title: caption.into(),
        desc: format!("AUROC with 95% CI per period. {desc_values}"),
        width: WIDTH,
        plot_height: 240.0,
        x: Axis::categorical("Period", &labels),
        y: Axis::linear("AUROC", low, 1.0, tick_2),
        marks,
    };
    let prevalence = at(&|g| g.prevalence.as_ref().ok().copied());
    let top = prevalence.iter().flatten().map(|p| p.1).fold(0.0, f64::max);
    let prev_top = nice_ceil((top * 1.2).max(0.01));
    let prev_notes = groups
        .iter()
        .enumerate()
        .filter(|(_, g)| g.prevalence.is_err())
        .map(|(i, _)| Mark::Note {
            x: i as f64,
            y: prev_top * 0.5,
            text: "too few".into(),
        });
    let prev_chart = Chart {
        id: "chart-period-prevalence".into(),
        title: "Prevalence over time".into(),
        desc: format!(
            "Share of cases with the outcome per period. {}",
            periods
                .iter()
                .map(|(k, g)| match &g.prevalence {
                    Ok(p) => format!("{k}: {}", pct(*p, 1)),
                    Err(e) => format!("{k}: not estimable — {}", e.reason),
                })
                .collect::<Vec<_>>()
                .join("; ")
        ),
        width: WIDTH,
        plot_height: 240.0,
        x: Axis::categorical("Period", &labels),
        y: Axis::linear("Prevalence", 0.0, prev_top, tick_pct),
        marks: vec![
            Mark::Line {
                series: "prevalence",
                points: prevalence.clone(),
                stroke: Stroke::solid(ORANGE, 2.5),
                label: Some("Prevalence per period".into()),
            },
            Mark::Points {
                series: "prevalence-points",
                points: prevalence
                    .iter()
                    .zip(&labels)
                    .filter_map(|(p, l)| {
                        p.map(|(x, y)| (x, y, 4.0, format!("{l}: prevalence {}", pct(y, 1))))
                    })
                    .collect(),
                colour: ORANGE,
                label: None,
            },
        ]
        .into_iter()
        .chain(prev_notes)
        .collect(),
    };
    let gap_note = if suppressed.is_empty() {
        String::new()
    } else {
        format!(
            " Gaps: {} had too few patients or events to estimate.",
            suppressed.join(", ")
        )
    };
    let mut out = String::from("<div class=\"figures\">");
    out.push_str(&figure(
        "fig-periods",
        caption,
        &chart.to_svg(),
        &escape(&format!(
            "A falling line means the model is losing discrimination; the band is the 95% \
             DeLong interval.{gap_note}"
        )),
    ));
    out.push_str(&figure(
        "fig-periods-prevalence",
        "Prevalence over time",
        &prev_chart.to_svg(),
        &format!(
            "A change in prevalence changes PPV and alert burden even when AUROC holds.{}",
            escape(&gap_note)
        ),
    ));
    out.push_str("</div>");
    out
}
