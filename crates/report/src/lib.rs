//! Vigil's evidence reports: the evaluation of a release, or the drift of its inputs, as one
//! self-contained HTML file that a clinical governance committee reads and signs off on.
//!
//! The file needs nothing else: the style sheet and the charts (hand-written SVG) are
//! inline, there is no script, and a Content-Security-Policy forbids the page from loading
//! anything, so it reads the same offline, in an archive and years later. The numbers come
//! from `vigil_stats` unchanged; this crate only words and draws them. A value that could
//! not be estimated is shown as "not estimable — <reason>", never as a blank or NaN, and
//! every string that comes from outside (titles, column and group names) is escaped.
//!
//! Entry points: [`render_evaluation`] and [`render_drift`]. Neither reads the clock: the
//! time a report was generated is part of its context.

// Tests may unwrap: a panic there is a failed test, not a crash of the service.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod chart;
mod drift;
mod evaluation;
mod html;
mod monitor;
mod plots;
mod summary;

pub use drift::render_drift;
pub use evaluation::render_evaluation;
pub use html::escape;
pub use monitor::{MonitorContext, TrendSeries, render_monitor, trend_figures};

/// The `<figure>` elements of a report this crate rendered, in page order: a page that shows
/// the evidence (a dashboard) embeds the very plots that were signed off.
pub fn figures(report_html: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = report_html;
    while let Some(start) = rest.find("<figure") {
        let Some(len) = rest[start..].find("</figure>") else {
            break;
        };
        let end = start + len + "</figure>".len();
        out.push(&rest[start..end]);
        rest = &rest[end..];
    }
    out
}

/// What the evaluation report is about, in the words of the people who registered it.
/// Every string here is escaped before it reaches the page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportContext {
    pub title: String,
    /// Model name, e.g. `sepsis-risk`.
    pub model: Option<String>,
    /// Release id (or a short form of it).
    pub release: Option<String>,
    /// Dataset snapshot the release was evaluated on.
    pub dataset: Option<String>,
    /// When the report was generated, as the caller wants it shown (e.g. RFC 3339 UTC).
    pub generated_at: String,
    pub score_column: String,
    pub label_column: String,
    /// What a positive label means, in plain words that complete "a patient who …", e.g.
    /// `"deteriorated within 24 hours"`. Without it the report says "had the outcome".
    pub outcome: Option<String>,
    /// The release's decision thresholds; the first is the main operating point used in
    /// the summary. Each should be one of the thresholds the evaluation was run with.
    pub thresholds: Vec<f64>,
    pub intended_use_summary: Option<String>,
    /// Free-text remarks shown in their own section (limitations, data caveats).
    pub notes: Vec<String>,
}

/// What the drift report compares. Every string here is escaped before it reaches the page.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftContext {
    pub title: String,
    pub model: Option<String>,
    pub release: Option<String>,
    /// The reference sample, e.g. the training dataset snapshot.
    pub reference: Option<String>,
    /// The current sample, e.g. "production, 2024-06-01 to 2024-06-30".
    pub current: Option<String>,
    pub generated_at: String,
    /// The PSI at or above which a feature counts as drifted (`DriftOptions::psi_threshold`,
    /// 0.1 by default); drawn as a reference line.
    pub psi_threshold: f64,
    pub notes: Vec<String>,
}

impl Default for DriftContext {
    fn default() -> Self {
        Self {
            title: String::new(),
            model: None,
            release: None,
            reference: None,
            current: None,
            generated_at: String::new(),
            psi_threshold: vigil_stats::DriftOptions::default().psi_threshold,
            notes: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_cut_out_of_a_rendered_report_in_order() {
        let ctx = MonitorContext {
            title: "t".into(),
            windows: vec!["a".into(), "b".into()],
            series: ["first", "second", "third"]
                .iter()
                .map(|n| TrendSeries {
                    name: (*n).into(),
                    values: vec![Some(1.0), Some(2.0)],
                    limit: None,
                })
                .collect(),
            ..MonitorContext::default()
        };
        let page = render_monitor(&ctx);
        let figs = figures(&page);
        assert_eq!(figs.len(), 3);
        for (f, name) in figs.iter().zip(["first", "second", "third"]) {
            assert!(f.starts_with("<figure") && f.ends_with("</figure>"));
            assert!(f.contains(name), "{f}");
        }
        assert_eq!(trend_figures(&ctx).matches("<figure").count(), 3);
        assert!(figures("<p>no plots</p><figure>unclosed").is_empty());
    }
}
