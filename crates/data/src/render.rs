//! Renderings of a check report for people: a plain-text table for terminals and review
//! comments, and a self-contained HTML page (inline CSS, nothing fetched).

use std::fmt::Write;

use crate::checks::{Check, CheckReport, Severity, Status};

fn status_word(c: &Check) -> &'static str {
    match (c.status, c.severity) {
        (Status::Pass, _) => "PASS",
        (Status::Fail, Severity::Blocking) => "FAIL",
        (Status::Fail, Severity::Warning) => "WARN",
        (Status::NotApplicable, _) => "n/a",
    }
}

fn severity_word(s: Severity) -> &'static str {
    match s {
        Severity::Blocking => "blocking",
        Severity::Warning => "warning",
    }
}

fn verdict(r: &CheckReport) -> String {
    let blocking = r.checks.iter().filter(|c| c.is_blocking_failure()).count();
    let warnings = r
        .checks
        .iter()
        .filter(|c| c.status == Status::Fail && c.severity == Severity::Warning)
        .count();
    format!(
        "{}: {blocking} blocking failure(s), {warnings} warning(s), {} check(s)",
        if r.passed { "PASSED" } else { "FAILED" },
        r.checks.len()
    )
}

impl CheckReport {
    /// A fixed-width table, failures first; summaries wrap under their row.
    pub fn to_text(&self) -> String {
        let mut rows: Vec<&Check> = self.checks.iter().collect();
        rows.sort_by_key(|c| match (c.status, c.severity) {
            (Status::Fail, Severity::Blocking) => 0,
            (Status::Fail, Severity::Warning) => 1,
            (Status::Pass, _) => 2,
            (Status::NotApplicable, _) => 3,
        });
        let name_w = rows.iter().map(|c| c.name.len()).max().unwrap_or(5).max(5);
        let col_w = rows
            .iter()
            .map(|c| c.column.as_deref().map_or(1, str::len))
            .max()
            .unwrap_or(6)
            .clamp(6, 28);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Data checks for {} ({} rows, {} columns)",
            self.path,
            self.rows,
            self.columns.len()
        );
        let _ = writeln!(out, "{}", verdict(self));
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<6} {:<8} {:<name_w$} {:<col_w$} summary",
            "status", "severity", "check", "column"
        );
        let _ = writeln!(
            out,
            "{}",
            "-".repeat(6 + 1 + 8 + 1 + name_w + 1 + col_w + 1 + 40)
        );
        let indent = 6 + 1 + 8 + 1 + name_w + 1 + col_w + 1;
        for c in rows {
            let col = c.column.as_deref().unwrap_or("-");
            let lines = wrap(&c.summary, 100);
            let _ = writeln!(
                out,
                "{:<6} {:<8} {:<name_w$} {:<col_w$} {}",
                status_word(c),
                severity_word(c.severity),
                c.name,
                col,
                lines.first().map(String::as_str).unwrap_or("")
            );
            for l in lines.iter().skip(1) {
                let _ = writeln!(out, "{:indent$}{l}", "");
            }
        }
        out
    }

    /// A standalone HTML page: a verdict, the table, and each check's details as JSON.
    pub fn to_html(&self) -> String {
        let mut out = String::new();
        out.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
        let _ = writeln!(out, "<title>Data checks: {}</title>", esc(&self.path));
        out.push_str(
            "<style>\nbody{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;color:#1b1f24}\n\
             table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #d0d7de;padding:.4rem .6rem;text-align:left;vertical-align:top}\n\
             th{background:#f6f8fa}.PASS{color:#1a7f37;font-weight:600}.FAIL{color:#cf222e;font-weight:700}\n\
             .WARN{color:#9a6700;font-weight:600}.na{color:#6e7781}.verdict{font-size:1.2rem;padding:.6rem;border-radius:6px}\n\
             .ok{background:#dafbe1}.bad{background:#ffebe9}pre{background:#f6f8fa;padding:.5rem;overflow-x:auto;font-size:.8rem}\n\
             code{font-size:.9rem}</style></head><body>\n",
        );
        let _ = writeln!(
            out,
            "<h1>Data checks</h1><p><code>{}</code>: {} rows, {} columns; robust statistics on {} sampled rows.</p>",
            esc(&self.path),
            self.rows,
            self.columns.len(),
            self.sample_rows
        );
        let _ = writeln!(
            out,
            "<p class=\"verdict {}\">{}</p>",
            if self.passed { "ok" } else { "bad" },
            esc(&verdict(self))
        );
        out.push_str("<table><thead><tr><th>status</th><th>severity</th><th>check</th><th>column</th><th>summary</th></tr></thead><tbody>\n");
        for c in &self.checks {
            let w = status_word(c);
            let class = if w == "n/a" { "na" } else { w };
            let details = serde_json::to_string_pretty(&c.details).unwrap_or_default();
            let _ = writeln!(
                out,
                "<tr><td class=\"{class}\">{w}</td><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td></tr>",
                severity_word(c.severity),
                esc(&c.name),
                esc(c.column.as_deref().unwrap_or("")),
                esc(&c.summary),
                if c.details.is_null() {
                    String::new()
                } else {
                    format!(
                        "<details><summary>details</summary><pre>{}</pre></details>",
                        esc(&details)
                    )
                }
            );
        }
        out.push_str("</tbody></table>\n<p class=\"na\">Rows are 1-based data rows, header excluded. Reports name rows, never cell values.</p>\n</body></html>\n");
        out
    }
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn wrap(s: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in s.split_whitespace() {
        if !cur.is_empty() && cur.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}
