//! HTML writing helpers: escaping, number wording, "not estimable" cells, tables and the
//! page shell with its inline style sheet.
//!
//! Every string that reaches the page from outside this crate (titles, column and group
//! names, reasons) goes through [`escape`]. The output is also valid XML where it is SVG,
//! so only the five XML entities are used: never a named HTML entity such as `&nbsp;`.

use vigil_stats::Estimate;

/// Escapes text for HTML and XML, in element content and in quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not allowed in XML 1.0; they carry no meaning here.
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The wording, as escaped HTML, of a value that could not be estimated.
pub(crate) fn not_estimable(reason: &str) -> String {
    format!(
        "<span class=\"ne\">not estimable — {}</span>",
        escape(reason)
    )
}

/// The wording of a value that does not apply to this kind of input (as opposed to one
/// that the data could not support): short, because it fills table cells; the reason is in
/// its tooltip and in the note under the table.
pub(crate) fn not_applicable(reason: &str) -> String {
    format!(
        "<span class=\"na\" title=\"not applicable — {}\">n/a</span>",
        escape(reason)
    )
}

/// A finite number with `digits` decimals and a typographic minus; a non-finite one (which
/// the statistics never hand out, but a report must not print NaN whatever happens) is
/// worded as not estimable.
pub(crate) fn num(value: f64, digits: usize) -> String {
    if !value.is_finite() {
        return "not estimable — not a finite number".to_string();
    }
    let s = format!("{value:.digits$}");
    // "-0.000" reads as a sign where there is none.
    if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
        s[1..].to_string()
    } else if let Some(rest) = s.strip_prefix('-') {
        format!("−{rest}")
    } else {
        s
    }
}

/// A share as a percentage with `digits` decimals.
pub(crate) fn pct(share: f64, digits: usize) -> String {
    if share.is_finite() {
        format!("{}%", num(share * 100.0, digits))
    } else {
        num(share, digits)
    }
}

/// A count with thousands separators.
pub(crate) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// An estimate as escaped HTML: the formatted value, or its "not estimable" wording.
pub(crate) fn estimate(value: &Estimate<f64>, format: impl Fn(f64) -> String) -> String {
    match value {
        Ok(v) if v.is_finite() => format(*v),
        Ok(_) => not_estimable("not a finite number"),
        Err(e) => not_estimable(&e.reason),
    }
}

/// A value with its interval, `0.812 (0.790–0.834)`, each part worded on its own when
/// missing; the interval is left out, with its reason, when only it is missing.
pub(crate) fn with_interval(
    value: &Estimate<f64>,
    low: &Estimate<f64>,
    high: &Estimate<f64>,
    digits: usize,
) -> String {
    match (value, low, high) {
        (Ok(v), Ok(l), Ok(h)) => format!(
            "{} <span class=\"ci\">({}–{})</span>",
            num(*v, digits),
            num(*l, digits),
            num(*h, digits)
        ),
        (Ok(v), Err(e), _) | (Ok(v), _, Err(e)) => format!(
            "{} <span class=\"ci\">(interval {})</span>",
            num(*v, digits),
            not_estimable(&e.reason)
        ),
        (Err(e), _, _) => not_estimable(&e.reason),
    }
}

/// Reasons for values that could not be estimated in a wide table, collected as footnotes:
/// the cell says "not estimable" with a mark, and the reason is written out once below the
/// table, so one long reason does not stretch a column of numbers.
#[derive(Default)]
pub(crate) struct Footnotes {
    reasons: Vec<String>,
}

impl Footnotes {
    /// The cell for an estimate: its formatted value, or "not estimable" and a mark.
    pub(crate) fn estimate(
        &mut self,
        value: &Estimate<f64>,
        format: impl Fn(f64) -> String,
    ) -> String {
        match value {
            Ok(v) if v.is_finite() => format(*v),
            Ok(_) => self.mark("not a finite number"),
            Err(e) => self.mark(&e.reason),
        }
    }

    /// "not estimable" with the footnote mark of `reason`.
    pub(crate) fn mark(&mut self, reason: &str) -> String {
        let i = match self.reasons.iter().position(|r| r == reason) {
            Some(i) => i,
            None => {
                self.reasons.push(reason.to_string());
                self.reasons.len() - 1
            }
        };
        format!(
            "<span class=\"ne fn\">not estimable <sup>{}</sup></span>",
            footnote_mark(i)
        )
    }

    /// The footnotes, as a list under the table (empty when there are none).
    pub(crate) fn render(&self) -> String {
        if self.reasons.is_empty() {
            return String::new();
        }
        let mut out = String::from("<ul class=\"footnotes\">");
        for (i, r) in self.reasons.iter().enumerate() {
            out.push_str(&format!(
                "<li><sup>{}</sup> {}</li>",
                footnote_mark(i),
                not_estimable(r)
            ));
        }
        out.push_str("</ul>");
        out
    }
}

/// a, b, …, z, aa, ab, …
fn footnote_mark(i: usize) -> String {
    let letter = |k: usize| char::from(b'a' + (k % 26) as u8);
    if i < 26 {
        letter(i).to_string()
    } else {
        format!("{}{}", letter(i / 26 - 1), letter(i))
    }
}

/// A table: header cells (escaped here) and rows of cells that are already HTML.
pub(crate) fn table(caption: &str, header: &[&str], rows: &[Vec<String>]) -> String {
    let classed: Vec<(&str, Vec<String>)> = rows.iter().map(|r| ("", r.clone())).collect();
    table_classed(caption, header, &classed)
}

/// A table whose rows carry a CSS class (`""` for none): `main` highlights a row, `heading`
/// makes its first cell a heading across the table. A row with fewer cells than the header
/// has its last cell span the remaining columns (a note in place of estimates).
pub(crate) fn table_classed(
    caption: &str,
    header: &[&str],
    rows: &[(&str, Vec<String>)],
) -> String {
    let mut out = String::from("<div class=\"table-wrap\"><table>");
    if !caption.is_empty() {
        out.push_str(&format!("<caption>{}</caption>", escape(caption)));
    }
    out.push_str("<thead><tr>");
    for h in header {
        out.push_str(&format!("<th scope=\"col\">{}</th>", escape(h)));
    }
    out.push_str("</tr></thead><tbody>");
    for (class, row) in rows {
        if *class == "heading" {
            out.push_str(&format!(
                "<tr class=\"heading\"><th scope=\"rowgroup\" colspan=\"{}\">{}</th></tr>",
                header.len(),
                row.first().map_or("", String::as_str)
            ));
            continue;
        }
        if class.is_empty() {
            out.push_str("<tr>");
        } else {
            out.push_str(&format!("<tr class=\"{class}\">"));
        }
        for (i, cell) in row.iter().enumerate() {
            if i == 0 {
                out.push_str(&format!("<th scope=\"row\">{cell}</th>"));
            } else if i + 1 == row.len() && row.len() < header.len() {
                out.push_str(&format!(
                    "<td colspan=\"{}\" class=\"span\">{cell}</td>",
                    header.len() - i
                ));
            } else {
                out.push_str(&format!("<td>{cell}</td>"));
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
    out
}

/// A figure: the chart's SVG with a visible caption, which doubles as its text alternative
/// for readers who cannot see the plot.
pub(crate) fn figure(id: &str, caption: &str, svg: &str, note_html: &str) -> String {
    format!(
        "<figure id=\"{id}\"><figcaption><strong>{}</strong>{}</figcaption>{svg}</figure>",
        escape(caption),
        if note_html.is_empty() {
            String::new()
        } else {
            format!(" {note_html}")
        }
    )
}

/// A figure that could not be drawn, with the reason in place of the plot.
pub(crate) fn missing_figure(id: &str, caption: &str, reason: &str) -> String {
    format!(
        "<figure id=\"{id}\" class=\"missing\"><figcaption><strong>{}</strong></figcaption>\
         <p>{}</p></figure>",
        escape(caption),
        not_estimable(reason)
    )
}

/// A page being assembled: sections in order, with a table of contents.
#[derive(Default)]
pub(crate) struct Page {
    sections: Vec<(String, String, String)>,
}

impl Page {
    /// Adds a section; `id` and `title` are this crate's own text, `body` is HTML.
    pub(crate) fn section(&mut self, id: &str, title: &str, body: String) {
        self.sections
            .push((id.to_string(), title.to_string(), body));
    }

    /// The whole document. `header_html` is already-escaped HTML shown under the title.
    pub(crate) fn finish(self, title: &str, header_html: &str, data_json: Option<&str>) -> String {
        let mut out = String::with_capacity(64 * 1024);
        out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        // Nothing on this page may reach the network or run code: it is evidence that must
        // read the same on any machine, years later.
        out.push_str(
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
             style-src 'unsafe-inline'; img-src data:\">\n",
        );
        out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
        out.push_str(&format!("<title>{}</title>\n", escape(title)));
        out.push_str("<style>\n");
        out.push_str(STYLE);
        out.push_str("</style>\n</head>\n<body>\n<header>\n");
        out.push_str(&format!("<h1>{}</h1>\n", escape(title)));
        out.push_str(header_html);
        out.push_str("<nav aria-label=\"Contents\"><ol>");
        for (id, t, _) in &self.sections {
            out.push_str(&format!("<li><a href=\"#{id}\">{}</a></li>", escape(t)));
        }
        out.push_str("</ol></nav>\n</header>\n<main>\n");
        for (id, t, body) in &self.sections {
            out.push_str(&format!(
                "<section id=\"{id}\" aria-labelledby=\"{id}-h\">\n<h2 id=\"{id}-h\">{}</h2>\n{body}\n</section>\n",
                escape(t)
            ));
        }
        out.push_str("</main>\n");
        if let Some(json) = data_json {
            // A data block, never executed; `<` is escaped so no text can close the element.
            out.push_str("<script type=\"application/json\" id=\"report-data\">");
            out.push_str(&json.replace('<', "\\u003c"));
            out.push_str("</script>\n");
        }
        out.push_str("</body>\n</html>\n");
        out
    }
}

/// The inline style sheet: system fonts, a readable measure, tables that scroll
/// sideways on narrow screens rather than squeezing, and a print layout.
const STYLE: &str = r#"
:root { --ink: #1a1a1a; --muted: #555; --rule: #d0d0d0; --accent: #0072B2; --warn: #D55E00; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1200px; padding: 1.5rem 2rem 3rem; color: var(--ink);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif; }
h1 { font-size: 1.7rem; margin: 0 0 .3rem; line-height: 1.25; overflow-wrap: anywhere; }
h2 { font-size: 1.3rem; margin: 2.2rem 0 .6rem; padding-bottom: .2rem; border-bottom: 2px solid var(--accent); }
h3 { font-size: 1.05rem; margin: 1.4rem 0 .4rem; }
p, li { max-width: 75ch; }
.meta { display: grid; grid-template-columns: max-content 1fr; gap: .1rem 1rem; margin: .6rem 0; color: var(--muted); }
.meta dt { font-weight: 600; } .meta dd { margin: 0; overflow-wrap: anywhere; }
nav ol { display: flex; flex-wrap: wrap; gap: .2rem 1.2rem; padding: 0; margin: .8rem 0 0; list-style: none; font-size: .92rem; }
nav a { color: var(--accent); }
.summary { background: #f4f8fb; border-left: 5px solid var(--accent); padding: .6rem 1.2rem; }
.summary li { margin: .35rem 0; }
.figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 440px), 1fr)); gap: 1.2rem 2rem; }
figure { margin: 1rem 0; break-inside: avoid; page-break-inside: avoid; }
figcaption { font-size: .92rem; color: var(--muted); margin-bottom: .4rem; }
figcaption strong { color: var(--ink); display: block; font-size: 1rem; }
figure svg { width: 100%; height: auto; display: block; }
figure.missing p { border: 1px dashed var(--rule); padding: 1rem; }
.table-wrap { overflow-x: auto; margin: .6rem 0 1rem; }
table { border-collapse: collapse; font-size: .88rem; font-variant-numeric: tabular-nums; }
caption { text-align: left; color: var(--muted); padding-bottom: .3rem; }
th, td { padding: .25rem .45rem; border-bottom: 1px solid var(--rule); text-align: right; vertical-align: top; }
thead th { border-bottom: 2px solid var(--ink); text-align: right; vertical-align: bottom; }
th[scope=row], thead th:first-child { text-align: left; }
tbody th { font-weight: 600; overflow-wrap: break-word; max-width: 22ch; }
tr.main { background: #fff5e0; }
tr.heading th { background: #f0f0f0; text-align: left; }
td.span, .text-last td:last-child { text-align: left; }
.flag { display: block; }
.nowrap { white-space: nowrap; }
.tag { font-size: .8em; color: var(--muted); font-weight: 400; }
.footnotes { list-style: none; padding: 0; margin: -.4rem 0 1rem; font-size: .85rem; }
.ne sup { font-style: normal; }
.ne.fn { white-space: nowrap; }
.ne, .na { color: var(--muted); font-style: italic; font-size: .85em; }
.ci { color: var(--muted); white-space: nowrap; }
.flag { color: var(--warn); font-weight: 600; }
.methods { font-size: .88rem; color: #333; }
.methods dt { font-weight: 600; margin-top: .5rem; }
.methods dd { margin-left: 1rem; max-width: 90ch; }
@media (max-width: 700px) { body { padding: 1rem; } }
@media print {
  body { max-width: none; padding: 0; font-size: 10.5pt; }
  nav { display: none; }
  h2 { break-after: avoid; }
  .figures { grid-template-columns: 1fr 1fr; }
  .table-wrap { overflow: visible; }
  a { color: inherit; text-decoration: none; }
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }

    #[test]
    fn numbers_never_print_nan_or_negative_zero() {
        assert_eq!(num(f64::NAN, 3), "not estimable — not a finite number");
        assert_eq!(num(-0.0001, 3), "0.000");
        assert_eq!(num(-0.25, 2), "−0.25");
        assert_eq!(pct(0.1234, 1), "12.3%");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(12), "12");
    }

    #[test]
    fn interval_missing_alone_keeps_the_value() {
        let v: Estimate<f64> = Ok(0.8);
        let e: Estimate<f64> = Err(vigil_stats::NotEstimable::new("needs 2 events"));
        let html = with_interval(&v, &e, &e, 2);
        assert!(html.starts_with("0.80"));
        assert!(html.contains("not estimable — needs 2 events"));
    }
}
