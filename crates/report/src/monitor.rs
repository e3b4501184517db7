//! The monitor report: a deployment's signals window by window (trend plots drawn with the
//! shared chart module), the rules' verdicts, and the latest window's drift table.

use crate::chart::{Axis, BLUE, Chart, GREY, Mark, Stroke, VERMILLION, nice_ceil, tick_2};
use crate::drift::{feature_table, ranked};
use crate::html::{Page, escape, figure, missing_figure, num, table};

/// One signal's value in each window (oldest first), with the limit a rule holds it to.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendSeries {
    pub name: String,
    pub values: Vec<Option<f64>>,
    /// A rule's limit, drawn as a dashed line.
    pub limit: Option<f64>,
}

/// What the monitor report shows. Every string is escaped before it reaches the page.
#[derive(Debug, Clone, Default)]
pub struct MonitorContext {
    pub title: String,
    pub model: String,
    pub release: String,
    pub generated_at: String,
    /// Window labels, oldest first (e.g. the start of each window).
    pub windows: Vec<String>,
    pub series: Vec<TrendSeries>,
    /// Rows of the verdict table: rule, signal, value, limit, verdict.
    pub verdicts: Vec<Vec<String>>,
    /// The latest window's drift against the reference.
    pub drift: Option<vigil_stats::DriftReport>,
    pub notes: Vec<String>,
}

fn slug(i: usize) -> String {
    format!("trend-{i}")
}

fn trend_figure(i: usize, s: &TrendSeries, windows: &[String]) -> String {
    let caption = format!("{} by window", s.name);
    let pts: Vec<Option<(f64, f64)>> = s
        .values
        .iter()
        .enumerate()
        .map(|(x, v)| v.map(|v| (x as f64, v)))
        .collect();
    if pts.iter().all(Option::is_none) {
        return missing_figure(&slug(i), &caption, "no window had a value");
    }
    let top = s
        .values
        .iter()
        .flatten()
        .copied()
        .chain(s.limit)
        .fold(0.0f64, f64::max);
    let bottom = s
        .values
        .iter()
        .flatten()
        .copied()
        .chain(s.limit)
        .fold(0.0f64, f64::min);
    let top = if top > 0.0 { nice_ceil(top * 1.1) } else { 1.0 };
    let mut marks = vec![Mark::Line {
        series: "signal",
        points: pts,
        stroke: Stroke::solid(BLUE, 2.5),
        label: Some(s.name.clone()),
    }];
    if let Some(l) = s.limit {
        marks.push(Mark::Line {
            series: "limit",
            points: vec![Some((0.0, l)), Some(((windows.len().max(2) - 1) as f64, l))],
            stroke: Stroke::dashed(VERMILLION, 1.5, "6 4"),
            label: Some(format!("Rule limit ({})", num(l, 3))),
        });
    }
    let n = windows.len().max(2) as f64 - 1.0;
    let chart = Chart {
        id: format!("chart-{}", slug(i)),
        title: caption.clone(),
        desc: format!("{} in each of {} windows", s.name, windows.len()),
        width: 560.0,
        plot_height: 200.0,
        x: Axis::linear("Window (oldest to latest)", 0.0, n, |v| {
            format!("{}", v as i64 + 1)
        }),
        y: Axis::linear(&s.name, bottom.min(0.0), top, tick_2),
        marks,
    };
    figure(
        &slug(i),
        &caption,
        &chart.to_svg(),
        &format!(
            "Windows: {} to {}.",
            escape(windows.first().map_or("", String::as_str)),
            escape(windows.last().map_or("", String::as_str))
        ),
    )
}

/// Renders the monitor report as one self-contained HTML document.
/// The trend plots alone (one `<figure>` per series), for pages that frame them themselves.
pub fn trend_figures(ctx: &MonitorContext) -> String {
    let mut trends = String::new();
    for (i, s) in ctx.series.iter().enumerate() {
        trends.push_str(&trend_figure(i, s, &ctx.windows));
    }
    trends
}

pub fn render_monitor(ctx: &MonitorContext) -> String {
    let _ = GREY;
    let mut page = Page::default();
    if !ctx.verdicts.is_empty() {
        page.section(
            "verdicts",
            "Rules on the latest windows",
            table(
                "Each rule of the monitor policy on its latest complete window",
                &["Rule", "Signal", "Value", "n", "Limit", "Verdict"],
                &ctx.verdicts
                    .iter()
                    .map(|r| r.iter().map(|c| escape(c)).collect())
                    .collect::<Vec<_>>(),
            ),
        );
    }
    page.section("trends", "Signals by window", trend_figures(ctx));
    if let Some(d) = &ctx.drift {
        page.section(
            "drift",
            "Input drift in the latest window",
            feature_table(&ranked(d)),
        );
    }
    if !ctx.notes.is_empty() {
        let mut notes = String::from("<ul>");
        for n in &ctx.notes {
            notes.push_str(&format!("<li>{}</li>", escape(n)));
        }
        notes.push_str("</ul>");
        page.section("notes", "Notes", notes);
    }
    let header = format!(
        "<dl class=\"meta\"><dt>Model</dt><dd>{}</dd><dt>Release</dt><dd>{}</dd><dt>Generated</dt><dd>{}</dd></dl>",
        escape(&ctx.model),
        escape(&ctx.release),
        escape(&ctx.generated_at)
    );
    page.finish(&ctx.title, &header, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_trends_with_limits_and_escapes() {
        let ctx = MonitorContext {
            title: "Monitor <x>".into(),
            model: "m".into(),
            release: "r".into(),
            generated_at: "now".into(),
            windows: vec!["a".into(), "b".into(), "c".into()],
            series: vec![
                TrendSeries {
                    name: "missing rate".into(),
                    values: vec![Some(0.0), None, Some(0.9)],
                    limit: Some(0.3),
                },
                TrendSeries {
                    name: "empty".into(),
                    values: vec![None, None, None],
                    limit: None,
                },
            ],
            verdicts: vec![vec![
                "r<1>".into(),
                "psi".into(),
                "0.2".into(),
                "10".into(),
                "0.1".into(),
                "breach".into(),
            ]],
            drift: None,
            notes: vec![],
        };
        let html = render_monitor(&ctx);
        assert!(html.contains("data-series=\"limit\""));
        assert!(html.contains("no window had a value"));
        assert!(html.contains("r&lt;1&gt;") && !html.contains("r<1>"));
    }
}
