//! The drift report: how far each input feature of the current sample has moved from the
//! reference sample, worst first, with a bar chart of PSI per feature.

use std::cmp::Ordering;

use vigil_stats::{DriftReport, Estimate, FeatureDrift};

use crate::DriftContext;
use crate::chart::{
    Axis, BLUE, GREY, Row, RowChart, RowKind, Stroke, VERMILLION, nice_ceil, tick_2,
};
use crate::html::{
    Footnotes, Page, count, escape, estimate, figure, missing_figure, not_applicable,
    not_estimable, num, table_classed,
};

/// PSI at or above this is conventionally a major shift.
const PSI_MAJOR: f64 = 0.25;

/// Renders the drift report as a self-contained HTML document. Every string in `ctx` and
/// every feature name and reason in `report` is escaped.
pub fn render_drift(report: &DriftReport, ctx: &DriftContext) -> String {
    let ranked = ranked(report);
    let mut page = Page::default();
    page.section("summary", "Summary", summary(&ranked, ctx));
    page.section(
        "psi",
        "Population stability by feature",
        psi_figure(&ranked, ctx),
    );
    page.section("features", "Every drift measure", feature_table(&ranked));
    if !ctx.notes.is_empty() {
        let mut notes = String::from("<ul>");
        for n in &ctx.notes {
            notes.push_str(&format!("<li>{}</li>", escape(n)));
        }
        notes.push_str("</ul>");
        page.section("notes", "Notes", notes);
    }
    page.section("methods", "Methods", methods(ctx));
    let json = serde_json::to_string(report).ok();
    page.finish(&ctx.title, &header(ctx), json.as_deref())
}

/// Features worst first: drifted, then not drifted, then those that could not be assessed;
/// within each, by PSI, highest first.
pub(crate) fn ranked(report: &DriftReport) -> Vec<(&String, &FeatureDrift)> {
    let mut v: Vec<(&String, &FeatureDrift)> = report.features.iter().collect();
    let rank = |d: &FeatureDrift| match d.drifted {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(_) => 2,
    };
    v.sort_by(|a, b| {
        rank(a.1)
            .cmp(&rank(b.1))
            .then_with(|| match (&a.1.psi, &b.1.psi) {
                (Ok(x), Ok(y)) => y.total_cmp(x),
                (Ok(_), Err(_)) => Ordering::Less,
                (Err(_), Ok(_)) => Ordering::Greater,
                (Err(_), Err(_)) => Ordering::Equal,
            })
            .then_with(|| a.0.cmp(b.0))
    });
    v
}

fn header(ctx: &DriftContext) -> String {
    let mut out = String::from("<dl class=\"meta\">");
    let fields = [
        ("Model", &ctx.model),
        ("Release", &ctx.release),
        ("Reference", &ctx.reference),
        ("Current", &ctx.current),
    ];
    for (k, v) in fields {
        if let Some(v) = v {
            out.push_str(&format!("<dt>{k}</dt><dd>{}</dd>", escape(v)));
        }
    }
    out.push_str(&format!(
        "<dt>Generated</dt><dd>{}</dd></dl>",
        escape(&ctx.generated_at)
    ));
    out
}

fn summary(ranked: &[(&String, &FeatureDrift)], ctx: &DriftContext) -> String {
    let drifted: Vec<&(&String, &FeatureDrift)> = ranked
        .iter()
        .filter(|(_, d)| d.drifted == Ok(true))
        .collect();
    let unknown: Vec<&(&String, &FeatureDrift)> =
        ranked.iter().filter(|(_, d)| d.drifted.is_err()).collect();
    let mut items = Vec::new();
    if ranked.is_empty() {
        items.push("No features were compared.".to_string());
    } else if drifted.is_empty() {
        items.push(format!(
            "<strong>No drift detected</strong> in {} of {} features compared{}.",
            count((ranked.len() - unknown.len()) as u64),
            count(ranked.len() as u64),
            worst_psi(ranked)
        ));
    } else {
        items.push(format!(
            "<strong>{} of {} features drifted</strong>: {}.",
            count(drifted.len() as u64),
            count(ranked.len() as u64),
            drifted
                .iter()
                .map(|(name, d)| format!(
                    "<strong>{}</strong> (PSI {})",
                    escape(name),
                    estimate(&d.psi, |v| num(v, 3))
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        items.push(format!(
            "A PSI of {} or more counts as drift here; {} or more is conventionally a major \
             shift. Drifted inputs mean the model now sees patients unlike those it was \
             validated on: its evidence may no longer hold.",
            num(ctx.psi_threshold, 2),
            num(PSI_MAJOR, 2)
        ));
    }
    if !unknown.is_empty() {
        items.push(format!(
            "<strong>Could not be assessed:</strong> {}.",
            unknown
                .iter()
                .map(|(name, d)| format!(
                    "{} ({})",
                    escape(name),
                    match &d.drifted {
                        Err(e) => not_estimable(&e.reason),
                        Ok(_) => String::new(),
                    }
                ))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    let mut out = String::from("<div class=\"summary\"><ul>");
    for i in items {
        out.push_str(&format!("<li>{i}</li>"));
    }
    out.push_str("</ul></div>");
    out
}

fn worst_psi(ranked: &[(&String, &FeatureDrift)]) -> String {
    ranked
        .iter()
        .filter_map(|(n, d)| d.psi.as_ref().ok().map(|p| (n, *p)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map_or(String::new(), |(n, p)| {
            format!("; the largest PSI is {} ({})", num(p, 3), escape(n))
        })
}

fn psi_figure(ranked: &[(&String, &FeatureDrift)], ctx: &DriftContext) -> String {
    let caption = "PSI by feature";
    if ranked.is_empty() {
        return missing_figure("fig-psi", caption, "no features were compared");
    }
    let top = ranked
        .iter()
        .filter_map(|(_, d)| d.psi.as_ref().ok().copied())
        .fold(PSI_MAJOR, f64::max);
    let rows = ranked
        .iter()
        .map(|(name, d)| {
            let drifted = d.drifted == Ok(true);
            match &d.psi {
                Ok(p) => Row {
                    label: (*name).clone(),
                    kind: RowKind::Bar {
                        value: *p,
                        colour: if drifted { VERMILLION } else { BLUE },
                    },
                    value_text: format!("{}{}", num(*p, 3), if drifted { "  drifted" } else { "" }),
                },
                Err(e) => Row {
                    label: (*name).clone(),
                    kind: RowKind::Note(format!("not estimable — {}", e.reason)),
                    value_text: String::new(),
                },
            }
        })
        .collect();
    let chart = RowChart {
        id: "chart-psi".into(),
        title: caption.into(),
        desc: format!(
            "Population stability index of each feature, worst first. {}",
            ranked
                .iter()
                .map(|(n, d)| match &d.psi {
                    Ok(p) => format!("{n}: {}", num(*p, 3)),
                    Err(e) => format!("{n}: not estimable — {}", e.reason),
                })
                .collect::<Vec<_>>()
                .join("; ")
        ),
        width: 760.0,
        x: Axis::linear(
            "Population stability index (PSI)",
            0.0,
            nice_ceil(top * 1.05),
            tick_2,
        ),
        value_header: "PSI".into(),
        rows,
        rules: vec![
            (
                ctx.psi_threshold,
                Stroke::dashed(VERMILLION, 1.5, "6 4"),
                format!("Drift threshold ({})", num(ctx.psi_threshold, 2)),
            ),
            (
                PSI_MAJOR,
                Stroke::dashed(GREY, 1.5, "2 3"),
                format!("Major shift by convention ({})", num(PSI_MAJOR, 2)),
            ),
        ],
    };
    figure(
        "fig-psi",
        caption,
        &chart.to_svg(),
        "Orange-red bars are features judged drifted (by PSI, or by the distance or test \
         named in the methods).",
    )
}

fn cell(
    notes: &mut Footnotes,
    value: &Estimate<f64>,
    applies: bool,
    only: &str,
    digits: usize,
) -> String {
    if applies {
        notes.estimate(value, |v| num(v, digits))
    } else {
        not_applicable(only)
    }
}

fn p_cell(notes: &mut Footnotes, value: &Estimate<f64>, applies: bool, only: &str) -> String {
    match value {
        Ok(p) if applies && p.is_finite() && *p < 0.001 => {
            "<span class=\"nowrap\">&lt; 0.001</span>".to_string()
        }
        _ => cell(notes, value, applies, only, 3),
    }
}

pub(crate) fn feature_table(ranked: &[(&String, &FeatureDrift)]) -> String {
    let mut notes = Footnotes::default();
    let rows: Vec<(&str, Vec<String>)> = ranked
        .iter()
        .map(|(name, d)| {
            let numeric = d.kind == "numeric";
            let n_only = "numeric features only";
            let c_only = "categorical features only";
            let drifted = match &d.drifted {
                Ok(true) => "<span class=\"flag\">yes</span>".to_string(),
                Ok(false) => "no".to_string(),
                Err(e) => notes.mark(&e.reason),
            };
            (
                if d.drifted == Ok(true) { "main" } else { "" },
                vec![
                    escape(name),
                    escape(d.kind),
                    notes.estimate(&d.psi, |v| num(v, 4)),
                    cell(&mut notes, &d.ks_statistic, numeric, n_only, 4),
                    p_cell(&mut notes, &d.ks_pvalue, numeric, n_only),
                    notes.estimate(&d.js_distance, |v| num(v, 4)),
                    cell(&mut notes, &d.wasserstein, numeric, n_only, 4),
                    cell(&mut notes, &d.wasserstein_normed, numeric, n_only, 4),
                    cell(&mut notes, &d.chi2, !numeric, c_only, 2),
                    p_cell(&mut notes, &d.chi2_pvalue, !numeric, c_only),
                    drifted,
                ],
            )
        })
        .collect();
    let table = table_classed(
        "Drift measures per feature, worst first",
        &[
            "Feature",
            "Kind",
            "PSI",
            "KS statistic",
            "KS p",
            "Jensen–Shannon distance",
            "Wasserstein",
            "Wasserstein (normalised)",
            "χ²",
            "χ² p",
            "Drifted",
        ],
        &rows,
    );
    format!(
        "{table}{}<p class=\"footnotes\"><span class=\"na\">n/a</span>: not applicable — the \
         Kolmogorov–Smirnov test and the Wasserstein distances are for numeric features only, \
         χ² for categorical features only.</p>",
        notes.render()
    )
}

fn methods(ctx: &DriftContext) -> String {
    let items = [
        (
            "Bins",
            "Numeric features: np.histogram_bin_edges over reference ∪ current with Sturges' \
             rule (or reference quantiles when configured); categorical features: categories.",
        ),
        (
            "PSI",
            "Σ (r − c) ln(r / c) over bin shares; a share of 0 replaced by 1e-4, or by the \
             smallest non-zero share ÷ 10⁶ when that is at most 1e-4 (Evidently's convention).",
        ),
        (
            "Kolmogorov–Smirnov",
            "Largest gap between the two empirical distribution functions, with the p-value \
             of scipy.stats.ks_2samp (exact for samples up to 10,000).",
        ),
        (
            "Jensen–Shannon distance",
            "Distance √((KL(p‖m) + KL(q‖m)) / 2), natural log, on the same bins.",
        ),
        (
            "Wasserstein",
            "∫ |F_ref − F_cur| over the pooled values; normalised: divided by the reference's \
             population standard deviation.",
        ),
        (
            "χ²",
            "scipy.stats.chi2_contingency on the 2 × k table of category counts, with Yates' \
             correction when df = 1.",
        ),
        (
            "Drifted",
            "PSI at or above the threshold, or — with more than 1,000 reference rows — \
             normalised Wasserstein (numeric) or Jensen–Shannon (categorical) ≥ 0.1, or — \
             with at most 1,000 — KS p (numeric) or χ² p (categorical) < 0.05 (defaults).",
        ),
    ];
    let mut out = format!(
        "<div class=\"methods\"><p>PSI drift threshold used here: {}.</p><dl>",
        num(ctx.psi_threshold, 2)
    );
    for (k, v) in items {
        out.push_str(&format!("<dt>{}</dt><dd>{}</dd>", escape(k), escape(v)));
    }
    out.push_str("</dl></div>");
    out
}
