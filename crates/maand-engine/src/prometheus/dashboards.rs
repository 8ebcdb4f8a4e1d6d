//! Dashboards for the server's `consoles/dashboards/`: each job's `_prometheus/dashboards/**`
//! copied as is under `<job>/`, and an index of those not listed in `.dashboardignore`.

use super::html::{escape, page, STYLE_CSS};
use maand_core::prometheus::PrometheusFiles;
use std::collections::BTreeMap;

/// Files below `consoles/dashboards/` (relative path → content).
pub fn dashboard_files(jobs: &BTreeMap<String, PrometheusFiles>) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut index = String::new();
    for (job, files) in jobs.iter().filter(|(_, f)| !f.dashboards.is_empty()) {
        for (path, content) in &files.dashboards {
            out.insert(format!("{job}/{path}"), content.clone());
        }
        let listed = files.indexed_dashboards();
        if listed.is_empty() {
            continue;
        }
        index.push_str(&format!("<h2>{}</h2>\n<ul>\n", escape(job)));
        for path in listed {
            let href = format!("{job}/{path}");
            index.push_str(&format!("<li><a href=\"{}\">{}</a></li>\n", escape(&href), escape(path)));
        }
        index.push_str("</ul>\n");
    }
    if index.is_empty() {
        index.push_str("<p>No job ships dashboards.</p>\n");
    }
    let html = page("Dashboards", "style.css", "Dashboards", &format!("<h1>Dashboards</h1>\n{index}"));
    out.insert("index.html".into(), html.into_bytes());
    out.insert("style.css".into(), STYLE_CSS.as_bytes().to_vec());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_everything_and_indexes_what_is_not_ignored() {
        let files = PrometheusFiles::from_files(
            "coroot",
            [
                ("_prometheus/dashboards/workers.html", "{{template \"x\" .}}".as_bytes(), false),
                ("_prometheus/dashboards/worker_detail.html", b"d".as_slice(), false),
                ("_prometheus/dashboards/.dashboardignore", b"worker_detail.html\n".as_slice(), false),
            ]
            .into_iter(),
        )
        .unwrap();
        let out = dashboard_files(&[("coroot".to_string(), files)].into());
        assert_eq!(out["coroot/workers.html"], b"{{template \"x\" .}}", "copied verbatim");
        assert!(out.contains_key("coroot/worker_detail.html"), "ignored files are still copied");
        let index = String::from_utf8(out["index.html"].clone()).unwrap();
        assert!(index.contains("coroot/workers.html"), "{index}");
        assert!(!index.contains("worker_detail"), "{index}");
    }
}
