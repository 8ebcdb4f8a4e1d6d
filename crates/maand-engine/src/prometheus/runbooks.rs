//! Runbooks for the server's `consoles/runbooks/`: each job's `runbooks/<name>.md` rendered from
//! Markdown to an HTML page `<job>/<slug>.html`, plus an index and a stylesheet.

use super::html::{escape, page, STYLE_CSS};
use maand_core::prometheus::{runbook_slug, PrometheusFiles};
use pulldown_cmark::{html::push_html, Options, Parser};
use std::collections::BTreeMap;

/// Markdown → HTML (tables, strikethrough, task lists).
pub fn markdown_to_html(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let mut out = String::new();
    push_html(&mut out, Parser::new_ext(markdown, options));
    out
}

/// Files below `consoles/runbooks/` (relative path → content) for every job's runbooks.
pub fn runbook_pages(jobs: &BTreeMap<String, PrometheusFiles>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut index = String::new();
    for (job, files) in jobs.iter().filter(|(_, f)| !f.runbooks.is_empty()) {
        index.push_str(&format!("<h2>{}</h2>\n<ul>\n", escape(job)));
        for (name, markdown) in &files.runbooks {
            let slug = runbook_slug(name);
            let nav = format!("<a href=\"../index.html\">Runbooks</a> / {}", escape(job));
            let html = page(&format!("{job}: {name}"), "../style.css", &nav, &markdown_to_html(markdown));
            out.insert(format!("{job}/{slug}.html"), html);
            index.push_str(&format!(
                "<li><a href=\"{}/{}.html\">{}</a></li>\n",
                escape(job),
                escape(&slug),
                escape(name)
            ));
        }
        index.push_str("</ul>\n");
    }
    if index.is_empty() {
        index.push_str("<p>No job ships runbooks.</p>\n");
    }
    out.insert("index.html".into(), page("Runbooks", "style.css", "Runbooks", &format!("<h1>Runbooks</h1>\n{index}")));
    out.insert("style.css".into(), STYLE_CSS.to_string());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_index() {
        let files = PrometheusFiles::from_files(
            "app",
            [("_prometheus/runbooks/app down.md", "# App down\n\nCheck `{{ $labels.instance }}`.\n".as_bytes(), false)]
                .into_iter(),
        )
        .unwrap();
        let pages = runbook_pages(&[("app".to_string(), files)].into());
        let page = &pages["app/app-down.html"];
        assert!(page.contains("<h1>App down</h1>"), "{page}");
        assert!(page.contains("<code>{{ \"{{\" }} $labels.instance }}</code>"), "{page}");
        assert!(pages["index.html"].contains("<a href=\"app/app-down.html\">app down</a>"));
        assert!(pages.contains_key("style.css"));
    }
}
