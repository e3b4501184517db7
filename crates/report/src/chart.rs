//! Hand-written SVG charts shared by every plot in the reports: an x–y [`Chart`] of lines,
//! points, bands, bars and reference rules, and a [`RowChart`] of one labelled row per item
//! (forest plots of intervals, bar charts of a value per feature).
//!
//! Charts are drawn in a fixed coordinate system (`viewBox`) and scaled by the page, so a
//! chart reads the same on a laptop, a projector and paper. Colours are the Okabe–Ito
//! palette, which stays distinct under the common colour-vision deficiencies; lines also
//! differ by dash pattern so a grey-scale print still tells them apart. Every chart carries
//! a `<title>` and `<desc>` (its text alternative) and is well-formed XML.

use std::fmt::Write as _;

use crate::html::escape;

pub(crate) const BLUE: &str = "#0072B2";
pub(crate) const ORANGE: &str = "#E69F00";
pub(crate) const VERMILLION: &str = "#D55E00";
pub(crate) const SKY: &str = "#56B4E9";
pub(crate) const GREY: &str = "#6b6b6b";
pub(crate) const INK: &str = "#1a1a1a";

const FONT: &str = "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', Arial, sans-serif";
const FONT_SIZE: f64 = 13.0;
/// Average advance of a character at `FONT_SIZE`, for laying out text without a font
/// engine; generous, so estimates err towards more room.
const CHAR_WIDTH: f64 = 7.4;
const LEGEND_ROW: f64 = 20.0;

/// How a line is drawn.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stroke {
    pub colour: &'static str,
    pub width: f64,
    pub dash: Option<&'static str>,
}

impl Stroke {
    pub(crate) const fn solid(colour: &'static str, width: f64) -> Self {
        Self {
            colour,
            width,
            dash: None,
        }
    }

    pub(crate) const fn dashed(colour: &'static str, width: f64, dash: &'static str) -> Self {
        Self {
            colour,
            width,
            dash: Some(dash),
        }
    }

    fn attributes(&self) -> String {
        let mut s = format!(
            "stroke=\"{}\" stroke-width=\"{}\" fill=\"none\"",
            self.colour, self.width
        );
        if let Some(d) = self.dash {
            let _ = write!(s, " stroke-dasharray=\"{d}\"");
        }
        s
    }
}

/// A labelled tick on an axis.
#[derive(Debug, Clone)]
pub(crate) struct Tick {
    pub value: f64,
    pub label: String,
}

/// An axis: its label, its domain and its ticks.
#[derive(Debug, Clone)]
pub(crate) struct Axis {
    pub label: String,
    pub min: f64,
    pub max: f64,
    pub ticks: Vec<Tick>,
}

impl Axis {
    /// A linear axis over `[min, max]` with about six "nice" ticks (steps of 1, 2 or 5
    /// times a power of ten), labelled by `format`.
    pub(crate) fn linear(label: &str, min: f64, max: f64, format: fn(f64) -> String) -> Self {
        Self::linear_ticks(label, min, max, 6, format)
    }

    /// A linear axis with about `target` ticks (fewer for a short axis).
    pub(crate) fn linear_ticks(
        label: &str,
        min: f64,
        max: f64,
        target: usize,
        format: fn(f64) -> String,
    ) -> Self {
        let (min, max) = if max > min {
            (min, max)
        } else {
            (min, min + 1.0)
        };
        let step = nice_step(max - min, target);
        let first = (min / step).ceil() as i64;
        let last = (max / step + 1e-9).floor() as i64;
        let ticks = (first..=last)
            .map(|k| {
                let value = k as f64 * step;
                Tick {
                    value,
                    label: format(value),
                }
            })
            .collect();
        Self {
            label: label.to_string(),
            min,
            max,
            ticks,
        }
    }

    /// A categorical axis: item `i` sits at `i`, with half a slot of room each side.
    pub(crate) fn categorical(label: &str, names: &[String]) -> Self {
        Self {
            label: label.to_string(),
            min: -0.5,
            max: names.len().max(1) as f64 - 0.5,
            ticks: names
                .iter()
                .enumerate()
                .map(|(i, n)| Tick {
                    value: i as f64,
                    label: n.clone(),
                })
                .collect(),
        }
    }
}

/// A step of 1, 2 or 5 × 10^k giving about `target` intervals over `span`.
pub(crate) fn nice_step(span: f64, target: usize) -> f64 {
    let raw = span / target.max(1) as f64;
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let f = raw / magnitude;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

/// `v` rounded up to a multiple of a nice step for `v` (for an axis end).
pub(crate) fn nice_ceil(v: f64) -> f64 {
    if !(v.is_finite() && v > 0.0) {
        return 1.0;
    }
    let step = nice_step(v, 5);
    (v / step - 1e-9).ceil() * step
}

/// Tick label with as many decimals as the step needs.
pub(crate) fn tick_2(v: f64) -> String {
    crate::html::num(v, 2)
}

pub(crate) fn tick_1(v: f64) -> String {
    crate::html::num(v, 1)
}

pub(crate) fn tick_pct(v: f64) -> String {
    crate::html::pct(v, 0)
}

/// A linear map from data to drawing coordinates.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scale {
    d0: f64,
    d1: f64,
    r0: f64,
    r1: f64,
}

impl Scale {
    pub(crate) fn new(d0: f64, d1: f64, r0: f64, r1: f64) -> Self {
        Self { d0, d1, r0, r1 }
    }

    pub(crate) fn map(&self, v: f64) -> f64 {
        let span = self.d1 - self.d0;
        if span == 0.0 {
            return self.r0;
        }
        self.r0 + (v - self.d0) / span * (self.r1 - self.r0)
    }
}

/// Something drawn in a [`Chart`]'s plot area. `series` names it in the SVG
/// (`data-series`) so that tests and readers of the source can find it.
#[derive(Debug, Clone)]
pub(crate) enum Mark {
    /// A polyline; `None` breaks it (a period that could not be estimated).
    Line {
        series: &'static str,
        points: Vec<Option<(f64, f64)>>,
        stroke: Stroke,
        label: Option<String>,
    },
    /// Circles of the given radius (drawing units), each with a tooltip.
    Points {
        series: &'static str,
        points: Vec<(f64, f64, f64, String)>,
        colour: &'static str,
        label: Option<String>,
    },
    /// A filled band between `low` and `high` at each `x`; `None` breaks it.
    Band {
        series: &'static str,
        points: Vec<Option<(f64, f64, f64)>>,
        colour: &'static str,
        label: Option<String>,
    },
    /// Vertical bars `(x0, x1, height)` standing on y = 0.
    Bars {
        series: &'static str,
        bars: Vec<(f64, f64, f64)>,
        colour: &'static str,
        label: Option<String>,
    },
    /// One highlighted point with a text label beside it.
    Marker {
        x: f64,
        y: f64,
        text: String,
        colour: &'static str,
    },
    /// Grey text centred at a data point: says why something is missing there.
    Note { x: f64, y: f64, text: String },
    /// A vertical reference line across the plot, labelled at its top.
    VRule {
        x: f64,
        stroke: Stroke,
        text: Option<String>,
    },
}

impl Mark {
    fn legend(&self) -> Option<(String, Swatch)> {
        match self {
            Mark::Line { label, stroke, .. } => label.clone().map(|l| (l, Swatch::Line(*stroke))),
            Mark::Points { label, colour, .. } => label.clone().map(|l| (l, Swatch::Dot(colour))),
            Mark::Band { label, colour, .. } | Mark::Bars { label, colour, .. } => {
                label.clone().map(|l| (l, Swatch::Block(colour)))
            }
            Mark::Marker { .. } | Mark::VRule { .. } | Mark::Note { .. } => None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Swatch {
    Line(Stroke),
    Dot(&'static str),
    Block(&'static str),
}

/// An x–y chart.
#[derive(Debug, Clone)]
pub(crate) struct Chart {
    /// Unique on the page; ASCII letters, digits and `-` only (it names SVG ids).
    pub id: String,
    pub title: String,
    pub desc: String,
    pub width: f64,
    pub plot_height: f64,
    pub x: Axis,
    pub y: Axis,
    pub marks: Vec<Mark>,
}

/// Where the plot area sits in the drawing, once margins are known.
#[derive(Debug, Clone, Copy)]
struct Frame {
    left: f64,
    top: f64,
    width: f64,
    height: f64,
}

impl Chart {
    pub(crate) fn to_svg(&self) -> String {
        let left = 66.0;
        let right = 18.0;
        let top = 14.0;
        let plot_width = self.width - left - right;
        // Category labels that would collide are turned; if even turned they would, only
        // every k-th is printed.
        let longest = self
            .x
            .ticks
            .iter()
            .map(|t| t.label.chars().count())
            .max()
            .unwrap_or(0) as f64;
        let slot = if self.x.ticks.len() > 1 {
            plot_width / (self.x.max - self.x.min) * (self.x.ticks[1].value - self.x.ticks[0].value)
        } else {
            plot_width
        };
        let rotate = longest * CHAR_WIDTH + 8.0 > slot;
        let every = if rotate {
            ((FONT_SIZE + 4.0) / slot).ceil().max(1.0) as usize
        } else {
            1
        };
        let tick_band = if rotate {
            longest * CHAR_WIDTH * 0.72 + 14.0
        } else {
            22.0
        };
        let legend = self.legend_layout(self.width - 2.0 * 12.0);
        let legend_rows = legend.last().map_or(0.0, |e| e.row + 1.0);
        let bottom = tick_band + 26.0 + legend_rows * LEGEND_ROW + 6.0;
        let frame = Frame {
            left,
            top,
            width: plot_width,
            height: self.plot_height,
        };
        let height = top + self.plot_height + bottom;
        let sx = Scale::new(self.x.min, self.x.max, frame.left, frame.left + frame.width);
        let sy = Scale::new(self.y.min, self.y.max, frame.top + frame.height, frame.top);

        let mut s = svg_open(&self.id, &self.title, &self.desc, self.width, height);
        let _ = write!(
            s,
            "<defs><clipPath id=\"{id}-clip\"><rect x=\"{:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{:.2}\"/></clipPath></defs>",
            frame.left,
            frame.top,
            frame.width,
            frame.height,
            id = self.id
        );
        let _ = write!(
            s,
            "<rect class=\"plot-area\" x=\"{:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{:.2}\" fill=\"#ffffff\" stroke=\"#9a9a9a\"/>",
            frame.left, frame.top, frame.width, frame.height
        );
        // Grid and ticks.
        s.push_str("<g class=\"grid\" stroke=\"#e4e4e4\" stroke-width=\"1\">");
        for t in &self.y.ticks {
            let y = sy.map(t.value);
            let _ = write!(
                s,
                "<line x1=\"{:.2}\" y1=\"{y:.2}\" x2=\"{:.2}\" y2=\"{y:.2}\"/>",
                frame.left,
                frame.left + frame.width
            );
        }
        for t in &self.x.ticks {
            let x = sx.map(t.value);
            let _ = write!(
                s,
                "<line x1=\"{x:.2}\" y1=\"{:.2}\" x2=\"{x:.2}\" y2=\"{:.2}\"/>",
                frame.top,
                frame.top + frame.height
            );
        }
        s.push_str("</g>");
        s.push_str("<g class=\"y-axis\" fill=\"#333333\">");
        for t in &self.y.ticks {
            let y = sy.map(t.value);
            let _ = write!(
                s,
                "<line x1=\"{:.2}\" y1=\"{y:.2}\" x2=\"{:.2}\" y2=\"{y:.2}\" stroke=\"#9a9a9a\"/><text x=\"{:.2}\" y=\"{:.2}\" text-anchor=\"end\">{}</text>",
                frame.left - 5.0,
                frame.left,
                frame.left - 8.0,
                y + 4.5,
                escape(&t.label)
            );
        }
        let _ = write!(
            s,
            "<text class=\"axis-label\" transform=\"translate(16 {:.2}) rotate(-90)\" text-anchor=\"middle\" font-weight=\"600\">{}</text></g>",
            frame.top + frame.height / 2.0,
            escape(&self.y.label)
        );
        s.push_str("<g class=\"x-axis\" fill=\"#333333\">");
        let base = frame.top + frame.height;
        for (i, t) in self.x.ticks.iter().enumerate() {
            let x = sx.map(t.value);
            let _ = write!(
                s,
                "<line x1=\"{x:.2}\" y1=\"{base:.2}\" x2=\"{x:.2}\" y2=\"{:.2}\" stroke=\"#9a9a9a\"/>",
                base + 5.0
            );
            if i % every != 0 {
                continue;
            }
            if rotate {
                let _ = write!(
                    s,
                    "<text transform=\"translate({:.2} {:.2}) rotate(-45)\" text-anchor=\"end\">{}</text>",
                    x + 4.0,
                    base + 14.0,
                    escape(&t.label)
                );
            } else {
                let _ = write!(
                    s,
                    "<text x=\"{x:.2}\" y=\"{:.2}\" text-anchor=\"middle\">{}</text>",
                    base + 18.0,
                    escape(&t.label)
                );
            }
        }
        let _ = write!(
            s,
            "<text class=\"axis-label\" x=\"{:.2}\" y=\"{:.2}\" text-anchor=\"middle\" font-weight=\"600\">{}</text></g>",
            frame.left + frame.width / 2.0,
            base + tick_band + 18.0,
            escape(&self.x.label)
        );

        let _ = write!(s, "<g clip-path=\"url(#{}-clip)\">", self.id);
        for m in &self.marks {
            draw_mark(&mut s, m, &sx, &sy, &frame);
        }
        s.push_str("</g>");
        // Labels of markers and rules stay outside the clip so they are never cut.
        for m in &self.marks {
            draw_mark_label(&mut s, m, &sx, &sy, &frame);
        }
        let legend_top = base + tick_band + 30.0;
        draw_legend(&mut s, &legend, 12.0, legend_top);
        s.push_str("</svg>");
        s
    }

    fn legend_layout(&self, width: f64) -> Vec<LegendEntry> {
        let entries: Vec<(String, Swatch)> = self.marks.iter().filter_map(Mark::legend).collect();
        layout_legend(entries, width)
    }
}

#[derive(Debug, Clone)]
struct LegendEntry {
    text: String,
    swatch: Swatch,
    x: f64,
    row: f64,
}

fn layout_legend(entries: Vec<(String, Swatch)>, width: f64) -> Vec<LegendEntry> {
    let mut out = Vec::new();
    let (mut x, mut row) = (0.0, 0.0);
    for (text, swatch) in entries {
        let w = 30.0 + text.chars().count() as f64 * CHAR_WIDTH + 18.0;
        if x > 0.0 && x + w > width {
            x = 0.0;
            row += 1.0;
        }
        out.push(LegendEntry {
            text,
            swatch,
            x,
            row,
        });
        x += w;
    }
    out
}

fn draw_legend(s: &mut String, entries: &[LegendEntry], left: f64, top: f64) {
    if entries.is_empty() {
        return;
    }
    s.push_str("<g class=\"legend\">");
    for e in entries {
        let x = left + e.x;
        let y = top + e.row * LEGEND_ROW;
        match e.swatch {
            Swatch::Line(stroke) => {
                let _ = write!(
                    s,
                    "<line x1=\"{x:.2}\" y1=\"{y:.2}\" x2=\"{:.2}\" y2=\"{y:.2}\" {}/>",
                    x + 24.0,
                    stroke.attributes()
                );
            }
            Swatch::Dot(c) => {
                let _ = write!(
                    s,
                    "<circle cx=\"{:.2}\" cy=\"{y:.2}\" r=\"5\" fill=\"{c}\" fill-opacity=\"0.8\"/>",
                    x + 12.0
                );
            }
            Swatch::Block(c) => {
                let _ = write!(
                    s,
                    "<rect x=\"{x:.2}\" y=\"{:.2}\" width=\"24\" height=\"10\" fill=\"{c}\" fill-opacity=\"0.35\"/>",
                    y - 5.0
                );
            }
        }
        let _ = write!(
            s,
            "<text x=\"{:.2}\" y=\"{:.2}\" fill=\"{INK}\">{}</text>",
            x + 30.0,
            y + 4.5,
            escape(&e.text)
        );
    }
    s.push_str("</g>");
}

fn svg_open(id: &str, title: &str, desc: &str, width: f64, height: f64) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"{id}\" viewBox=\"0 0 {width:.0} {height:.0}\" \
         width=\"{width:.0}\" height=\"{height:.0}\" style=\"max-width: {width:.0}px\" role=\"img\" aria-labelledby=\"{id}-title {id}-desc\" \
         font-family=\"{FONT}\" font-size=\"{FONT_SIZE}\">\
         <title id=\"{id}-title\">{}</title><desc id=\"{id}-desc\">{}</desc>",
        escape(title),
        escape(desc)
    )
}

/// Path data for a polyline, split where a point is missing.
pub(crate) fn path_data(points: &[Option<(f64, f64)>], sx: &Scale, sy: &Scale) -> String {
    let mut d = String::new();
    let mut pen_down = false;
    for p in points {
        match p {
            Some((x, y)) => {
                let cmd = if pen_down { 'L' } else { 'M' };
                let _ = write!(
                    d,
                    "{}{cmd}{:.2},{:.2}",
                    if d.is_empty() { "" } else { " " },
                    sx.map(*x),
                    sy.map(*y)
                );
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    d
}

fn draw_mark(s: &mut String, m: &Mark, sx: &Scale, sy: &Scale, frame: &Frame) {
    match m {
        Mark::Line {
            series,
            points,
            stroke,
            ..
        } => {
            let d = path_data(points, sx, sy);
            if !d.is_empty() {
                let _ = write!(
                    s,
                    "<path class=\"series\" data-series=\"{series}\" d=\"{d}\" {} stroke-linejoin=\"round\"/>",
                    stroke.attributes()
                );
            }
        }
        Mark::Points {
            series,
            points,
            colour,
            ..
        } => {
            let _ = write!(s, "<g class=\"series\" data-series=\"{series}\">");
            for (x, y, r, tip) in points {
                let _ = write!(
                    s,
                    "<circle cx=\"{:.2}\" cy=\"{:.2}\" r=\"{r:.2}\" fill=\"{colour}\" fill-opacity=\"0.55\" stroke=\"{colour}\" stroke-width=\"1.5\"><title>{}</title></circle>",
                    sx.map(*x),
                    sy.map(*y),
                    escape(tip)
                );
            }
            s.push_str("</g>");
        }
        Mark::Band {
            series,
            points,
            colour,
            ..
        } => {
            for segment in points.split(Option::is_none) {
                let pts: Vec<(f64, f64, f64)> = segment.iter().flatten().copied().collect();
                if pts.is_empty() {
                    continue;
                }
                let mut d = String::new();
                for (i, (x, lo, _)) in pts.iter().enumerate() {
                    let _ = write!(
                        d,
                        "{}{:.2},{:.2} ",
                        if i == 0 { "M" } else { "L" },
                        sx.map(*x),
                        sy.map(*lo)
                    );
                }
                for (x, _, hi) in pts.iter().rev() {
                    let _ = write!(d, "L{:.2},{:.2} ", sx.map(*x), sy.map(*hi));
                }
                d.push('Z');
                // A band of one point is a vertical interval: draw it as a line too.
                let _ = write!(
                    s,
                    "<path class=\"band\" data-series=\"{series}\" d=\"{d}\" fill=\"{colour}\" fill-opacity=\"0.22\" stroke=\"{colour}\" stroke-opacity=\"0.5\" stroke-width=\"{}\"/>",
                    if pts.len() == 1 { 3 } else { 0 }
                );
            }
        }
        Mark::Bars {
            series,
            bars,
            colour,
            ..
        } => {
            let _ = write!(s, "<g class=\"series\" data-series=\"{series}\">");
            let zero = sy.map(0.0);
            for (x0, x1, h) in bars {
                let (a, b) = (sx.map(*x0), sx.map(*x1));
                let top = sy.map(*h);
                let _ = write!(
                    s,
                    "<rect x=\"{:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{:.2}\" fill=\"{colour}\" fill-opacity=\"0.7\"/>",
                    a.min(b),
                    top.min(zero),
                    (b - a).abs().max(1.0),
                    (zero - top).abs()
                );
            }
            s.push_str("</g>");
        }
        Mark::Marker { x, y, colour, .. } => {
            let _ = write!(
                s,
                "<circle class=\"marker\" cx=\"{:.2}\" cy=\"{:.2}\" r=\"6\" fill=\"#ffffff\" stroke=\"{colour}\" stroke-width=\"3\"/>",
                sx.map(*x),
                sy.map(*y)
            );
        }
        Mark::Note { .. } => {}
        Mark::VRule { x, stroke, .. } => {
            let px = sx.map(*x);
            let _ = write!(
                s,
                "<line class=\"rule\" x1=\"{px:.2}\" y1=\"{:.2}\" x2=\"{px:.2}\" y2=\"{:.2}\" {}/>",
                frame.top,
                frame.top + frame.height,
                stroke.attributes()
            );
        }
    }
}

fn draw_mark_label(s: &mut String, m: &Mark, sx: &Scale, sy: &Scale, frame: &Frame) {
    let (px, py, text, colour) = match m {
        Mark::Marker { x, y, text, colour } => (sx.map(*x), sy.map(*y), text, *colour),
        Mark::VRule {
            x,
            text: Some(text),
            stroke,
        } => (sx.map(*x), frame.top + 4.0, text, stroke.colour),
        Mark::Note { x, y, text } => {
            let _ = write!(
                s,
                "<text class=\"note\" x=\"{:.2}\" y=\"{:.2}\" text-anchor=\"middle\" font-style=\"italic\" fill=\"{GREY}\">{}</text>",
                sx.map(*x),
                sy.map(*y),
                escape(text)
            );
            return;
        }
        _ => return,
    };
    let w = text.chars().count() as f64 * CHAR_WIDTH;
    // Beside the point, on whichever side has room, and never above or below the frame.
    let right_side = px + 10.0 + w <= frame.left + frame.width;
    let (tx, anchor) = if right_side {
        (px + 10.0, "start")
    } else {
        (px - 10.0, "end")
    };
    let ty = if matches!(m, Mark::VRule { .. }) {
        py + 12.0
    } else if py + 20.0 <= frame.top + frame.height {
        py + 18.0
    } else {
        py - 10.0
    };
    let _ = write!(
        s,
        "<text x=\"{tx:.2}\" y=\"{ty:.2}\" text-anchor=\"{anchor}\" fill=\"{colour}\" stroke=\"#ffffff\" stroke-width=\"4\" paint-order=\"stroke\" font-weight=\"600\">{}</text>",
        escape(text)
    );
}

/// One item of a [`RowChart`].
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub label: String,
    pub kind: RowKind,
    /// Printed at the right, beside the plot (the numbers behind the mark).
    pub value_text: String,
}

#[derive(Debug, Clone)]
pub(crate) enum RowKind {
    /// A heading that groups the rows below it (e.g. a subgroup column name).
    Heading,
    /// An estimate with its interval.
    Interval {
        estimate: f64,
        low: f64,
        high: f64,
        colour: &'static str,
    },
    /// A bar from zero.
    Bar { value: f64, colour: &'static str },
    /// Nothing to draw: a short note in its place (a suppressed group, say).
    Note(String),
}

/// One labelled row per item over a shared x axis.
#[derive(Debug, Clone)]
pub(crate) struct RowChart {
    pub id: String,
    pub title: String,
    pub desc: String,
    pub width: f64,
    pub x: Axis,
    pub value_header: String,
    pub rows: Vec<Row>,
    /// Vertical reference lines with their legend text.
    pub rules: Vec<(f64, Stroke, String)>,
}

const ROW_HEIGHT: f64 = 24.0;
const MAX_LABEL_CHARS: usize = 30;

fn truncate(label: &str, max: usize) -> String {
    if label.chars().count() <= max {
        label.to_string()
    } else {
        let mut t: String = label.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

impl RowChart {
    pub(crate) fn to_svg(&self) -> String {
        let longest_label = self
            .rows
            .iter()
            .map(|r| {
                let indent = if matches!(r.kind, RowKind::Heading) {
                    0
                } else {
                    2
                };
                r.label.chars().count().min(MAX_LABEL_CHARS) + indent
            })
            .max()
            .unwrap_or(8);
        let label_width = (longest_label as f64 * CHAR_WIDTH + 16.0).clamp(90.0, 250.0);
        let longest_value = self
            .rows
            .iter()
            .map(|r| r.value_text.chars().count())
            .chain(std::iter::once(self.value_header.chars().count()))
            .max()
            .unwrap_or(6);
        let value_width = (longest_value as f64 * CHAR_WIDTH * 0.92 + 16.0).clamp(70.0, 260.0);
        let top = 30.0;
        let frame = Frame {
            left: label_width,
            top,
            width: self.width - label_width - value_width - 12.0,
            height: self.rows.len().max(1) as f64 * ROW_HEIGHT,
        };
        let legend = layout_legend(
            self.rules
                .iter()
                .map(|(_, st, t)| (t.clone(), Swatch::Line(*st)))
                .collect(),
            self.width - 24.0,
        );
        let legend_rows = legend.last().map_or(0.0, |e| e.row + 1.0);
        let base = frame.top + frame.height;
        let height = base + 52.0 + legend_rows * LEGEND_ROW;
        let sx = Scale::new(self.x.min, self.x.max, frame.left, frame.left + frame.width);

        let mut s = svg_open(&self.id, &self.title, &self.desc, self.width, height);
        let _ = write!(
            s,
            "<rect class=\"plot-area\" x=\"{:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{:.2}\" fill=\"#ffffff\" stroke=\"#9a9a9a\"/>",
            frame.left, frame.top, frame.width, frame.height
        );
        // Zebra stripes help the eye along a row from its label to its numbers.
        for (i, _) in self.rows.iter().enumerate().filter(|(i, _)| i % 2 == 1) {
            let _ = write!(
                s,
                "<rect x=\"0\" y=\"{:.2}\" width=\"{:.0}\" height=\"{ROW_HEIGHT}\" fill=\"#f3f3f3\"/>",
                frame.top + i as f64 * ROW_HEIGHT,
                self.width
            );
        }
        s.push_str("<g class=\"grid\" stroke=\"#e4e4e4\">");
        for t in &self.x.ticks {
            let x = sx.map(t.value);
            let _ = write!(
                s,
                "<line x1=\"{x:.2}\" y1=\"{:.2}\" x2=\"{x:.2}\" y2=\"{base:.2}\"/>",
                frame.top
            );
        }
        s.push_str("</g>");
        let _ = write!(
            s,
            "<text x=\"{:.2}\" y=\"{:.2}\" text-anchor=\"end\" font-weight=\"600\">{}</text>",
            self.width - 8.0,
            top - 10.0,
            escape(&self.value_header)
        );
        for (x, stroke, _) in &self.rules {
            let px = sx.map(*x);
            let _ = write!(
                s,
                "<line class=\"rule\" x1=\"{px:.2}\" y1=\"{:.2}\" x2=\"{px:.2}\" y2=\"{base:.2}\" {}/>",
                frame.top,
                stroke.attributes()
            );
        }
        for (i, r) in self.rows.iter().enumerate() {
            let cy = frame.top + (i as f64 + 0.5) * ROW_HEIGHT;
            let ty = cy + 4.5;
            let (indent, weight) = match r.kind {
                RowKind::Heading => (6.0, "700"),
                _ => (18.0, "400"),
            };
            let shown = truncate(&r.label, MAX_LABEL_CHARS);
            let _ = write!(
                s,
                "<text class=\"row-label\" x=\"{indent}\" y=\"{ty:.2}\" font-weight=\"{weight}\"><title>{}</title>{}</text>",
                escape(&r.label),
                escape(&shown)
            );
            match &r.kind {
                RowKind::Heading => {}
                RowKind::Interval {
                    estimate,
                    low,
                    high,
                    colour,
                } => {
                    let clamp = |v: f64| sx.map(v.clamp(self.x.min, self.x.max));
                    let _ = write!(
                        s,
                        "<g class=\"interval\"><line x1=\"{:.2}\" y1=\"{cy:.2}\" x2=\"{:.2}\" y2=\"{cy:.2}\" stroke=\"{colour}\" stroke-width=\"2.5\"/><rect x=\"{:.2}\" y=\"{:.2}\" width=\"10\" height=\"10\" fill=\"{colour}\"/></g>",
                        clamp(*low),
                        clamp(*high),
                        clamp(*estimate) - 5.0,
                        cy - 5.0
                    );
                }
                RowKind::Bar { value, colour } => {
                    let x0 = sx.map(0f64.max(self.x.min));
                    let x1 = sx.map(value.clamp(self.x.min, self.x.max));
                    let _ = write!(
                        s,
                        "<rect class=\"bar\" x=\"{:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{:.2}\" fill=\"{colour}\" fill-opacity=\"0.85\"/>",
                        x0.min(x1),
                        cy - 7.0,
                        (x1 - x0).abs().max(1.0),
                        14.0
                    );
                }
                RowKind::Note(note) => {
                    let _ = write!(
                        s,
                        "<text x=\"{:.2}\" y=\"{ty:.2}\" font-style=\"italic\" fill=\"{GREY}\" stroke=\"#ffffff\" stroke-width=\"4\" paint-order=\"stroke\">{}</text>",
                        frame.left + 8.0,
                        escape(note)
                    );
                }
            }
            if !r.value_text.is_empty() {
                let _ = write!(
                    s,
                    "<text class=\"row-value\" x=\"{:.2}\" y=\"{ty:.2}\" text-anchor=\"end\">{}</text>",
                    self.width - 8.0,
                    escape(&r.value_text)
                );
            }
        }
        s.push_str("<g class=\"x-axis\" fill=\"#333333\">");
        for t in &self.x.ticks {
            let x = sx.map(t.value);
            let _ = write!(
                s,
                "<line x1=\"{x:.2}\" y1=\"{base:.2}\" x2=\"{x:.2}\" y2=\"{:.2}\" stroke=\"#9a9a9a\"/><text x=\"{x:.2}\" y=\"{:.2}\" text-anchor=\"middle\">{}</text>",
                base + 5.0,
                base + 18.0,
                escape(&t.label)
            );
        }
        let _ = write!(
            s,
            "<text class=\"axis-label\" x=\"{:.2}\" y=\"{:.2}\" text-anchor=\"middle\" font-weight=\"600\">{}</text></g>",
            frame.left + frame.width / 2.0,
            base + 38.0,
            escape(&self.x.label)
        );
        draw_legend(&mut s, &legend, 12.0, base + 58.0);
        s.push_str("</svg>");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(1.0, 5), 0.2);
        assert_eq!(nice_step(0.35, 6), 0.1);
        assert!((nice_ceil(0.27) - 0.3).abs() < 1e-12);
        let a = Axis::linear("x", 0.0, 1.0, tick_1);
        let labels: Vec<&str> = a.ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
    }

    #[test]
    fn path_breaks_at_missing_points() {
        let sx = Scale::new(0.0, 1.0, 0.0, 100.0);
        let sy = Scale::new(0.0, 1.0, 100.0, 0.0);
        let d = path_data(
            &[Some((0.0, 0.0)), Some((0.5, 0.5)), None, Some((1.0, 1.0))],
            &sx,
            &sy,
        );
        assert_eq!(d, "M0.00,100.00 L50.00,50.00 M100.00,0.00");
    }

    #[test]
    fn labels_are_escaped_in_svg() {
        let chart = RowChart {
            id: "t".into(),
            title: "<b>".into(),
            desc: "d".into(),
            width: 500.0,
            x: Axis::linear("v", 0.0, 1.0, tick_1),
            value_header: "v".into(),
            rows: vec![Row {
                label: "<script>".into(),
                kind: RowKind::Bar {
                    value: 0.5,
                    colour: BLUE,
                },
                value_text: "0.5".into(),
            }],
            rules: vec![],
        };
        let svg = chart.to_svg();
        assert!(svg.contains("&lt;script&gt;"));
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("<title id=\"t-title\">&lt;b&gt;</title>"));
    }
}
