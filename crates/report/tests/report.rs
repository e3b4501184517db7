//! End-to-end tests of the rendered reports: sections, escaping, "not estimable" wording,
//! well-formed SVG and the geometry of the charts, on reports computed by `vigil_stats`
//! from synthetic data.

#![allow(clippy::unwrap_used)]

mod synthetic;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use vigil_report::{DriftContext, ReportContext, render_drift, render_evaluation};
use vigil_stats::{
    DriftOptions, EvaluationInput, EvaluationOptions, EvaluationReport, FeatureValues, drift,
    evaluate,
};

fn report() -> &'static EvaluationReport {
    static REPORT: OnceLock<EvaluationReport> = OnceLock::new();
    REPORT.get_or_init(|| synthetic::evaluation_report(true))
}

fn context() -> ReportContext {
    ReportContext {
        title: "Deterioration risk".into(),
        model: Some("deterioration-risk".into()),
        release: Some("sha256:abc".into()),
        dataset: Some("wards-2023".into()),
        generated_at: "2024-06-01T09:30:00Z".into(),
        score_column: "risk".into(),
        label_column: "deteriorated".into(),
        outcome: Some("deteriorated within 24 hours".into()),
        thresholds: vec![0.2, 0.35],
        intended_use_summary: Some("Adult general wards.".into()),
        notes: vec!["Synthetic.".into()],
    }
}

fn html() -> &'static str {
    static HTML: OnceLock<String> = OnceLock::new();
    HTML.get_or_init(|| render_evaluation(report(), &context()))
}

/// Every `<svg>…</svg>` block of a page.
fn svg_blocks(html: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<svg") {
        let end = rest[start..].find("</svg>").expect("every svg is closed") + start + 6;
        out.push(&rest[start..end]);
        rest = &rest[end..];
    }
    out
}

fn svg_by_id<'a>(html: &'a str, id: &str) -> &'a str {
    svg_blocks(html)
        .into_iter()
        .find(|s| s.contains(&format!("id=\"{id}\"")))
        .unwrap_or_else(|| panic!("no svg {id}"))
}

/// The plot area `(x, y, width, height)` of a chart.
fn plot_area(doc: &roxmltree::Document) -> (f64, f64, f64, f64) {
    let rect = doc
        .descendants()
        .find(|n| n.attribute("class") == Some("plot-area"))
        .expect("a plot area");
    let f = |a: &str| rect.attribute(a).unwrap().parse::<f64>().unwrap();
    (f("x"), f("y"), f("width"), f("height"))
}

/// The points of a series' path, in drawing coordinates.
fn series_points(doc: &roxmltree::Document, series: &str) -> Vec<(f64, f64)> {
    let path = doc
        .descendants()
        .find(|n| n.tag_name().name() == "path" && n.attribute("data-series") == Some(series))
        .unwrap_or_else(|| panic!("no series {series}"));
    path.attribute("d")
        .unwrap()
        .split_whitespace()
        .map(|p| {
            let (x, y) = p[1..].split_once(',').unwrap();
            (x.parse().unwrap(), y.parse().unwrap())
        })
        .collect()
}

fn close(a: (f64, f64), b: (f64, f64)) -> bool {
    (a.0 - b.0).abs() < 0.02 && (a.1 - b.1).abs() < 0.02
}

#[test]
fn every_section_and_figure_is_present() {
    let html = html();
    for id in [
        "summary",
        "discrimination",
        "calibration",
        "thresholds",
        "decision-curve",
        "subgroups",
        "periods",
        "notes",
        "methods",
        "fig-roc",
        "fig-pr",
        "fig-calibration",
        "fig-decision",
        "fig-forest",
        "fig-periods",
        "fig-periods-prevalence",
    ] {
        assert!(html.contains(&format!("id=\"{id}\"")), "missing {id}");
    }
    for id in [
        "chart-roc",
        "chart-pr",
        "chart-calibration",
        "chart-calibration-hist",
        "chart-decision",
        "chart-forest",
        "chart-period-auroc",
        "chart-period-prevalence",
    ] {
        svg_by_id(html, id);
    }
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("Content-Security-Policy"));
    assert!(html.contains("<script type=\"application/json\" id=\"report-data\">"));
}

#[test]
fn the_page_needs_no_script_and_no_network() {
    let html = html();
    // The only script element is the non-executable JSON data block.
    assert_eq!(html.matches("<script").count(), 1);
    // The only URLs are the SVG namespace names, which are never fetched.
    assert_eq!(
        html.matches("http://").count(),
        html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count()
    );
    assert!(!html.contains("https://"));
    assert!(!html.contains("<link"));
    assert!(!html.contains("<img"));
}

#[test]
fn summary_speaks_plain_language() {
    let html = html();
    let start = html.find("<div class=\"summary\">").unwrap();
    let end = start + html[start..].find("</div>").unwrap();
    let s = &html[start..end];
    let auroc = report().auroc.value.clone().unwrap();
    assert!(s.contains("4,000</strong> scored cases"));
    assert!(s.contains(&format!(
        "ranks a random patient who deteriorated within 24 hours above one who did not \
         <strong>{}% of the time</strong>",
        (auroc * 100.0).round()
    )));
    assert!(s.contains("95% CI"));
    assert!(s.contains("too high") || s.contains("too low") || s.contains("match the observed"));
    assert!(s.contains("too extreme") || s.contains("too modest") || s.contains("about right"));
    assert!(s.contains("the model flags"));
    assert!(s.contains("of events (sensitivity)"));
    assert!(s.contains("alerts per 100 patient-days"));
    // The model is worse in the oldest patients, and the satellite clinic is too small.
    assert!(s.contains("age band = 65+"));
    assert!(s.contains("Too few patients or events to judge"));
    assert!(s.contains("site = Satellite clinic"));
    // The 0.99 threshold flags nobody: PPV cannot be estimated, and the summary says why.
    assert!(s.contains("PPV at 0.99"));
    assert!(s.contains("not estimable — no alerts at this threshold"));
}

#[test]
fn user_strings_are_escaped_everywhere() {
    let evil = "<script>alert(1)</script>";
    let n = 300;
    let input = EvaluationInput {
        scores: (0..n).map(|i| f64::from(i) / f64::from(n)).collect(),
        labels: (0..n)
            .map(|i| f64::from(u8::from(i % 3 == 0 || i > 200)))
            .collect(),
        patient_ids: None,
        timestamps: Some(
            (0..n)
                .map(|i| 1_700_000_000 + i64::from(i) * 3_600)
                .collect(),
        ),
        subgroups: BTreeMap::from([(
            format!("unit {evil}"),
            (0..n)
                .map(|i| {
                    if i < 150 {
                        evil.to_string()
                    } else {
                        "b\"&'".into()
                    }
                })
                .collect(),
        )]),
    };
    let opts = EvaluationOptions {
        bootstrap: None,
        ..EvaluationOptions::default()
    };
    let report = evaluate(&input, &opts).unwrap();
    let ctx = ReportContext {
        title: format!("Title {evil}"),
        model: Some(evil.into()),
        release: Some(evil.into()),
        dataset: Some(evil.into()),
        generated_at: evil.into(),
        score_column: evil.into(),
        label_column: evil.into(),
        outcome: Some(evil.into()),
        thresholds: vec![0.5],
        intended_use_summary: Some(evil.into()),
        notes: vec![evil.into()],
    };
    let html = render_evaluation(&report, &ctx);
    // Only the JSON data block opens a script element, and no injected tag survives.
    assert_eq!(html.matches("<script").count(), 1);
    assert!(!html.contains("<script>alert"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("<title>Title &lt;script&gt;"));
    assert!(html.contains("b&quot;&amp;&#39;"));
    // The JSON block cannot be closed early by data.
    let json_start = html.find("id=\"report-data\">").unwrap();
    let json = &html[json_start..];
    let json = &json[..json.find("</script>").unwrap()];
    assert!(!json[1..].contains('<'));
    for svg in svg_blocks(&html) {
        roxmltree::Document::parse(svg).unwrap();
    }

    let mut reference = BTreeMap::new();
    let mut current = BTreeMap::new();
    reference.insert(
        evil.to_string(),
        FeatureValues::Numeric(vec![1.0, 2.0, 3.0, 4.0]),
    );
    current.insert(
        evil.to_string(),
        FeatureValues::Numeric(vec![2.0, 3.0, 4.0, 5.0]),
    );
    let d = drift(&reference, &current, &DriftOptions::default());
    let ctx = DriftContext {
        title: evil.into(),
        current: Some(evil.into()),
        notes: vec![evil.into()],
        ..DriftContext::default()
    };
    let html = render_drift(&d, &ctx);
    assert_eq!(html.matches("<script").count(), 1);
    assert!(!html.contains("<script>alert"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
}

#[test]
fn not_estimable_values_show_their_reason_and_never_nan() {
    // One class only: almost nothing can be estimated.
    let input = EvaluationInput {
        scores: vec![0.1, 0.4, 0.7, 0.2],
        labels: vec![0.0; 4],
        ..EvaluationInput::default()
    };
    let opts = EvaluationOptions {
        bootstrap: None,
        ..EvaluationOptions::default()
    };
    let report = evaluate(&input, &opts).unwrap();
    let html = render_evaluation(&report, &context());
    let reason = report.auroc.value.clone().unwrap_err().reason;
    assert!(
        html.contains(&format!("not estimable — {reason}")),
        "{reason}"
    );
    assert!(html.contains("not estimable — bootstrap not requested"));
    assert!(html.contains("not estimable — no timestamp column"));
    for word in ["NaN", "inf<", ">inf"] {
        assert!(!html.contains(word), "{word}");
    }
    assert!(!html.contains("<td></td>"));
    for svg in svg_blocks(&html) {
        roxmltree::Document::parse(svg).unwrap();
    }
    // And the full synthetic report has no NaN either.
    assert!(!html_text_has_nan(crate::html()));
}

fn html_text_has_nan(html: &str) -> bool {
    html.contains("NaN") || html.contains(">inf") || html.contains("−inf")
}

#[test]
fn every_svg_is_well_formed_and_accessible() {
    let blocks = svg_blocks(html());
    assert!(blocks.len() >= 8);
    for svg in blocks {
        let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("{e}: {svg}"));
        let root = doc.root_element();
        assert_eq!(root.attribute("role"), Some("img"));
        let labelled = root.attribute("aria-labelledby").unwrap();
        for id in labelled.split_whitespace() {
            let node = doc
                .descendants()
                .find(|n| n.attribute("id") == Some(id))
                .unwrap_or_else(|| panic!("aria-labelledby {id} points nowhere"));
            assert!(!node.text().unwrap_or("").trim().is_empty());
        }
        assert!(root.attribute("viewBox").is_some());
    }
}

#[test]
fn svg_ids_are_unique_on_the_page() {
    let html = html();
    let mut seen = std::collections::BTreeSet::new();
    for svg in svg_blocks(html) {
        let doc = roxmltree::Document::parse(svg).unwrap();
        for n in doc.descendants() {
            if let Some(id) = n.attribute("id") {
                assert!(seen.insert(id.to_string()), "duplicate id {id}");
            }
        }
    }
}

#[test]
fn roc_curve_runs_from_origin_to_top_right() {
    let svg = svg_by_id(html(), "chart-roc");
    let doc = roxmltree::Document::parse(svg).unwrap();
    let (x, y, w, h) = plot_area(&doc);
    let roc = series_points(&doc, "roc");
    assert!(close(roc[0], (x, y + h)), "starts at {:?}", roc[0]);
    assert!(
        close(*roc.last().unwrap(), (x + w, y)),
        "ends at {:?}",
        roc.last()
    );
    // Monotone: x never decreases and y never decreases (up the screen = smaller y).
    for pair in roc.windows(2) {
        assert!(pair[1].0 >= pair[0].0 - 1e-9 && pair[1].1 <= pair[0].1 + 1e-9);
    }
    let chance = series_points(&doc, "chance");
    assert_eq!(chance.len(), 2);
    assert!(close(chance[0], (x, y + h)) && close(chance[1], (x + w, y)));
    // The legend names the AUROC.
    let auroc = report().auroc.value.clone().unwrap();
    assert!(svg.contains(&format!("AUROC {auroc:.3}")));
    // The main threshold is marked where its sensitivity and specificity put it.
    let t = report()
        .thresholds
        .iter()
        .find(|t| (t.threshold - 0.2).abs() < 1e-9)
        .unwrap();
    let (sens, spec) = (
        t.sensitivity.clone().unwrap(),
        t.specificity.clone().unwrap(),
    );
    let marker = doc
        .descendants()
        .find(|n| n.attribute("class") == Some("marker"))
        .unwrap();
    let cx: f64 = marker.attribute("cx").unwrap().parse().unwrap();
    let cy: f64 = marker.attribute("cy").unwrap().parse().unwrap();
    assert!(close((cx, cy), (x + (1.0 - spec) * w, y + h - sens * h)));
}

#[test]
fn pr_baseline_sits_at_prevalence() {
    let doc_src = svg_by_id(html(), "chart-pr");
    let doc = roxmltree::Document::parse(doc_src).unwrap();
    let (x, y, w, h) = plot_area(&doc);
    let prevalence = report().prevalence.clone().unwrap();
    let base = series_points(&doc, "baseline");
    let expected = y + h - prevalence * h;
    assert!((base[0].1 - expected).abs() < 0.02 && (base[1].1 - expected).abs() < 0.02);
    assert!(close((base[0].0, 0.0), (x, 0.0)) && close((base[1].0, 0.0), (x + w, 0.0)));
}

#[test]
fn decision_curve_is_clipped_and_treat_none_is_zero() {
    let svg = svg_by_id(html(), "chart-decision");
    let doc = roxmltree::Document::parse(svg).unwrap();
    let (_, y, _, h) = plot_area(&doc);
    // The lines are drawn inside the clip of the plot area.
    let clip = doc
        .descendants()
        .find(|n| n.attribute("clip-path").is_some())
        .unwrap();
    assert!(
        clip.descendants()
            .any(|n| n.attribute("data-series") == Some("treat-all"))
    );
    // Treat-all at the highest thresholds is far below zero; the axis floor is not.
    let points = report().decision_curve.clone().unwrap();
    let worst = points
        .iter()
        .map(|p| p.net_benefit_treat_all)
        .fold(f64::INFINITY, f64::min);
    assert!(worst < -1.0);
    let ticks: Vec<f64> = doc
        .descendants()
        .filter(|n| n.parent().and_then(|p| p.attribute("class")) == Some("y-axis"))
        .filter(|n| n.tag_name().name() == "text" && n.attribute("class").is_none())
        .map(|n| n.text().unwrap().replace('−', "-").parse().unwrap())
        .collect();
    let floor = ticks.iter().copied().fold(f64::INFINITY, f64::min);
    assert!(floor > -0.2 && floor < 0.0, "{ticks:?}");
    // Treat none is the horizontal line at net benefit 0, inside the plot.
    let none = series_points(&doc, "treat-none");
    assert!((none[0].1 - none[1].1).abs() < 1e-9);
    assert!(none[0].1 > y && none[0].1 < y + h);
    assert!(html().contains("cut off there"));
}

#[test]
fn forest_plot_has_a_row_per_group_and_names_suppressed_ones() {
    let svg = svg_by_id(html(), "chart-forest");
    let doc = roxmltree::Document::parse(svg).unwrap();
    let labels: Vec<String> = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("row-label"))
        .map(|n| {
            n.children()
                .filter(|c| c.is_text())
                .map(|c| c.text().unwrap())
                .collect()
        })
        .collect();
    for l in [
        "All patients",
        "age band",
        "65+",
        "sex",
        "F",
        "site",
        "Satellite clinic",
    ] {
        assert!(labels.iter().any(|x| x == l), "{l} in {labels:?}");
    }
    let intervals = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("interval"))
        .count();
    // Overall + 3 age bands + 2 sexes + 2 reportable sites.
    assert_eq!(intervals, 8);
    assert!(svg.contains("too few patients/events"));
    assert!(svg.contains("Overall AUROC"));
}

#[test]
fn tables_hold_every_threshold_and_group() {
    let html = html();
    for t in &report().thresholds {
        assert!(html.contains(&format!("≥ {:.2}</span>", t.threshold)));
    }
    for h in [
        "Sensitivity",
        "Specificity",
        "PPV",
        "NPV",
        "F1",
        "Alert rate",
        "NNE",
        "Alerts / 100 patient-days",
        "Cal. intercept",
        "Hosmer–Lemeshow statistic",
        "Expected calibration error (ECE)",
    ] {
        assert!(html.contains(h), "{h}");
    }
    // The release's thresholds are highlighted.
    assert!(html.matches("<tr class=\"main\">").count() >= 2);
    // The suppressed group keeps its counts and says why its estimates are withheld.
    assert!(
        html.contains("too few patients/events — estimates withheld (fewer than 10 patients (5))")
    );
    // The periods table lists every month, the thin last one withheld.
    let periods = report().periods.clone().unwrap();
    assert_eq!(periods.len(), 7);
    assert!(periods["2023-07"].suppressed_reason.is_some());
    for k in periods.keys() {
        assert!(html.contains(&format!("<th scope=\"row\">{k}")));
    }
    // Methods name each definition.
    for m in [
        "DeLong",
        "Average precision",
        "Hosmer–Lemeshow",
        "dcurves",
        "patient-days",
    ] {
        assert!(html.contains(m), "{m}");
    }
}

#[test]
fn drift_report_ranks_features_by_severity() {
    let d = synthetic::drift_report();
    let html = render_drift(
        &d,
        &DriftContext {
            title: "Drift".into(),
            generated_at: "2024-06-01".into(),
            ..DriftContext::default()
        },
    );
    for id in ["summary", "psi", "features", "methods", "chart-psi"] {
        assert!(html.contains(&format!("id=\"{id}\"")), "{id}");
    }
    // Drifted features come first, by PSI; the one that could not be assessed comes last.
    let pos = |name: &str| {
        html.find(&format!("<th scope=\"row\">{name}</th>"))
            .unwrap()
    };
    assert!(pos("heart_rate") < pos("age"));
    assert!(pos("ward") < pos("sex"));
    assert!(pos("age") < pos("temperature"));
    assert!(d.features["heart_rate"].drifted == Ok(true));
    assert!(html.contains("features drifted"));
    assert!(html.contains("not estimable — current row 42 is NaN or infinite"));
    // KS does not apply to categories: said so, not left blank.
    assert!(html.contains("title=\"not applicable — numeric features only\">n/a</span>"));
    assert!(html.contains("title=\"not applicable — categorical features only\">n/a</span>"));
    assert!(html.contains("not applicable — the Kolmogorov–Smirnov test"));
    for svg in svg_blocks(&html) {
        roxmltree::Document::parse(svg).unwrap();
    }
    // One PSI bar per feature that has a PSI.
    let svg = svg_by_id(&html, "chart-psi");
    let doc = roxmltree::Document::parse(svg).unwrap();
    let bars = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("bar"))
        .count();
    let with_psi = d.features.values().filter(|f| f.psi.is_ok()).count();
    assert_eq!(bars, with_psi);
    // "NaN" appears only inside the reason that names the bad row, never as a value.
    assert_eq!(
        html.matches("NaN").count(),
        html.matches("is NaN or infinite").count()
    );
}

#[test]
fn rendering_is_deterministic() {
    assert_eq!(render_evaluation(report(), &context()), html());
}
