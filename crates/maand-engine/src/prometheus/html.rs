//! Small HTML helpers for the pages maand writes into the server's `consoles/`: escaping, the
//! page frame, and keeping Prometheus (a Go template engine for consoles) from reading `{{`.

/// Escape text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Prometheus renders console files as Go templates: every literal `{{` becomes an action that
/// prints `{{`.
pub fn escape_template_literals(s: &str) -> String {
    s.replace("{{", "{{ \"{{\" }}")
}

/// A complete page linking `stylesheet` (relative), with `body` as its main content (HTML).
pub fn page(title: &str, stylesheet: &str, nav: &str, body: &str) -> String {
    escape_template_literals(&format!(
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<link rel=\"stylesheet\" href=\"{stylesheet}\">\n</head>\n<body>\n<nav>{nav}</nav>\n<main>\n{body}</main>\n</body>\n</html>\n",
        escape(title)
    ))
}

/// The stylesheet of the runbook and dashboard indexes.
pub const STYLE_CSS: &str = "body { font-family: sans-serif; margin: 2em auto; max-width: 60em; line-height: 1.5; }\n\
nav { margin-bottom: 1em; color: #555; }\n\
code, pre { background: #f4f4f4; }\n\
pre { padding: 0.5em; overflow-x: auto; }\n\
table { border-collapse: collapse; }\n\
td, th { border: 1px solid #ccc; padding: 0.2em 0.5em; }\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        assert_eq!(escape_template_literals("a {{ $labels.x }} b"), "a {{ \"{{\" }} $labels.x }} b");
        let p = page("a<b", "style.css", "", "<p>{{x}}</p>\n");
        assert!(p.contains("<title>a&lt;b</title>"), "{p}");
        assert!(p.contains("<p>{{ \"{{\" }}x}}</p>"), "{p}");
    }
}
