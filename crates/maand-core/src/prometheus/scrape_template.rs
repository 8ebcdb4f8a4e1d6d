//! What a build-time `_prometheus/scrape.yaml.tpl` may read (spec/features.md §7.2): the bucket
//! namespaces and the job's own (plus its upstream demand jobs'), never allocation namespaces.

/// Readable KV namespaces of `job`'s scrape template; `upstream` = jobs its commands demand.
pub fn scrape_template_namespaces(job: &str, upstream: &[String]) -> Vec<String> {
    let mut out: Vec<String> = vec![
        "maand/bucket".into(),
        "vars/bucket".into(),
        format!("maand/job/{job}"),
        format!("vars/bucket/job/{job}"),
        format!("vars/job/{job}"),
        format!("secrets/job/{job}"),
    ];
    for up in upstream {
        out.extend([format!("maand/job/{up}"), format!("vars/job/{up}"), format!("secrets/job/{up}")]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_allocation_or_worker_namespaces() {
        let ns = scrape_template_namespaces("app", &["db".to_string()]);
        assert!(ns.contains(&"secrets/job/app".to_string()));
        assert!(ns.contains(&"vars/job/db".to_string()));
        assert!(!ns.iter().any(|n| n.starts_with("maand/worker") || n.contains("/worker/")));
        assert!(!ns.contains(&"maand/prometheus".to_string()));
    }
}
