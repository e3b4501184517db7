//! The dashboard's HTML: one escaping helper that every value goes through, the page frame
//! (skip link, navigation, one small style sheet, no script) and a few building blocks.

use std::fmt::Write;

/// Escapes text for HTML element content and double-quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes one path segment of a link (`/releases/{id}`): anything but unreserved
/// characters is percent-encoded, so a name can never end the path or the attribute.
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

const CSS: &str = "
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1b1f24;background:#f6f7f9}
a{color:#0b5cad}a:hover{text-decoration-thickness:2px}
a:focus-visible,button:focus-visible,input:focus-visible,summary:focus-visible{outline:3px solid #e8a317;outline-offset:2px}
.skip{position:absolute;left:-999px;top:0;background:#fff;padding:.5em 1em}.skip:focus{left:1em;z-index:9}
header{background:#16324f;color:#fff;padding:.6em 1.5em;display:flex;flex-wrap:wrap;gap:1.5em;align-items:center}
header a{color:#fff}header .brand{font-weight:700;font-size:1.15em;text-decoration:none}
nav ul{list-style:none;margin:0;padding:0;display:flex;gap:1.2em;flex-wrap:wrap}
header form{margin-left:auto}header .who{opacity:.85;margin-right:.6em}
main{max-width:72rem;margin:0 auto;padding:1em 1.5em 3em}
h1{font-size:1.6em;margin:.6em 0 .3em}h2{font-size:1.25em;margin:1.6em 0 .5em;border-bottom:1px solid #d6dae0;padding-bottom:.2em}
table{border-collapse:collapse;width:100%;background:#fff;margin:.4em 0 1em;font-size:.95em}
th,td{text-align:left;padding:.35em .6em;border-bottom:1px solid #e3e6ea;vertical-align:top}
th{background:#eef1f4;font-weight:600}
caption{text-align:left;font-weight:600;padding:.3em 0;color:#444}
.badge{display:inline-block;padding:0 .5em;border-radius:.8em;font-size:.85em;font-weight:600;border:1px solid}
.s-production,.met{background:#e3f4e8;color:#13632d;border-color:#9ad1ab}
.s-shadow,.covered{background:#fff4d6;color:#7a5300;border-color:#e6c66a}
.unmet,.broken,.s-retired{background:#fde7e7;color:#8f1d1d;border-color:#eba3a3}
.s-registered,.s-validated,.s-approved{background:#e8eef8;color:#1f4a86;border-color:#a8bde0}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:.25em 1em;background:#fff;padding:.8em 1em;margin:.4em 0}
dl.kv dt{font-weight:600}dl.kv dd{margin:0;overflow-wrap:anywhere}
code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em;overflow-wrap:anywhere}
figure{background:#fff;margin:.8em 0;padding:.6em;border:1px solid #e3e6ea}
figure svg{max-width:100%;height:auto}figcaption{margin-bottom:.3em}
.figs{display:grid;grid-template-columns:repeat(auto-fill,minmax(26rem,1fr));gap:.8em}
.note{background:#fff;border-left:4px solid #0b5cad;padding:.5em 1em}
.login{max-width:28rem;background:#fff;padding:1.5em;margin-top:2em;border:1px solid #d6dae0}
label{display:block;font-weight:600;margin-bottom:.3em}
input[type=password]{width:100%;padding:.5em;font:inherit;border:1px solid #8a939e}
button{font:inherit;padding:.4em 1em;border:1px solid #16324f;background:#16324f;color:#fff;cursor:pointer}
header button{background:transparent;border-color:#fff}
.error{color:#8f1d1d;font-weight:600}
";

/// A navigation entry: its label and path.
const NAV: &[(&str, &str)] = &[
    ("Models", "/"),
    ("Incidents", "/incidents"),
    ("Audit log", "/audit"),
];

/// The whole page: title, navigation (with the signed-in user and a logout button when
/// there is one) and `body`, which must already be escaped HTML.
pub fn page(title: &str, user: Option<&str>, body: &str) -> String {
    let mut nav = String::new();
    if let Some(u) = user {
        nav.push_str("<nav aria-label=\"Main\"><ul>");
        for (label, href) in NAV {
            let _ = write!(nav, "<li><a href=\"{href}\">{label}</a></li>");
        }
        nav.push_str("</ul></nav>");
        let _ = write!(
            nav,
            "<form method=\"post\" action=\"/logout\"><span class=\"who\">Signed in as {}</span><button type=\"submit\">Log out</button></form>",
            esc(u)
        );
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{} · Vigil</title><style>{CSS}</style></head><body>\
<a class=\"skip\" href=\"#main\">Skip to content</a>\
<header><a class=\"brand\" href=\"/\">Vigil</a>{nav}</header>\
<main id=\"main\" tabindex=\"-1\">{body}</main></body></html>",
        esc(title)
    )
}

/// A table; `rows` hold already escaped HTML cells.
pub fn table(caption: &str, head: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = String::from("<table>");
    if !caption.is_empty() {
        let _ = write!(s, "<caption>{}</caption>", esc(caption));
    }
    s.push_str("<thead><tr>");
    for h in head {
        let _ = write!(s, "<th scope=\"col\">{}</th>", esc(h));
    }
    s.push_str("</tr></thead><tbody>");
    for r in rows {
        s.push_str("<tr>");
        for c in r {
            let _ = write!(s, "<td>{c}</td>");
        }
        s.push_str("</tr>");
    }
    if rows.is_empty() {
        let _ = write!(
            s,
            "<tr><td colspan=\"{}\">None on record.</td></tr>",
            head.len().max(1)
        );
    }
    s.push_str("</tbody></table>");
    s
}

/// A definition list of label → already escaped HTML value.
pub fn kv(items: &[(&str, String)]) -> String {
    let mut s = String::from("<dl class=\"kv\">");
    for (k, v) in items {
        let _ = write!(s, "<dt>{}</dt><dd>{v}</dd>", esc(k));
    }
    s.push_str("</dl>");
    s
}

/// A coloured badge; `class` is one of the style sheet's status classes.
pub fn badge(class: &str, text: &str) -> String {
    format!("<span class=\"badge {}\">{}</span>", esc(class), esc(text))
}

/// A link to `href` (built from [`seg`]-escaped parts) with escaped text.
pub fn link(href: &str, text: &str) -> String {
    format!("<a href=\"{}\">{}</a>", esc(href), esc(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_neutralises_markup_and_attribute_breakouts() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(esc("plain text, ünïcode"), "plain text, ünïcode");
        assert_eq!(esc("&amp;"), "&amp;amp;");
        assert_eq!(seg("a b/c?d#e\"f"), "a%20b%2Fc%3Fd%23e%22f");
        assert_eq!(seg("deterioration-risk_1.0~x"), "deterioration-risk_1.0~x");
        let t = table("c<", &["h>"], &[vec![esc("<b>")]]);
        assert!(
            t.contains("<caption>c&lt;</caption>") && t.contains("<th scope=\"col\">h&gt;</th>")
        );
        assert!(t.contains("<td>&lt;b&gt;</td>") && !t.contains("<b>"));
        let p = page("T<i>", Some("u\"><script>"), "");
        assert!(p.contains("<title>T&lt;i&gt; · Vigil</title>"));
        assert!(p.contains("Signed in as u&quot;&gt;&lt;script&gt;") && !p.contains("<script>"));
        assert!(link("/x?a=\"", "t").contains("href=\"/x?a=&quot;\""));
    }
}
