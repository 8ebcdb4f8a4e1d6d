//! Which KV namespaces an allocation may read (spec §6.4) — the same rule for templates, the
//! runtime API and `cat kv --jobs`. Namespace match is exact (no prefix matching).

/// Namespaces readable by allocation (`job`, `worker_ip`), given the jobs its commands demand.
pub fn readable_namespaces(job: &str, worker_ip: &str, upstream: &[String]) -> Vec<String> {
    let mut out = vec![
        "maand/bucket".to_string(),
        "vars/bucket".to_string(),
        "maand/worker".to_string(),
        format!("maand/worker/{worker_ip}"),
        format!("maand/worker/{worker_ip}/tags"),
        format!("maand/job/{job}"),
        format!("vars/bucket/job/{job}"),
        format!("vars/job/{job}"),
        format!("secrets/job/{job}"),
        format!("maand/job/{job}/worker/{worker_ip}"),
        "maand/prometheus".to_string(),
    ];
    let mut ups: Vec<&String> = upstream.iter().filter(|u| u.as_str() != job).collect();
    ups.sort();
    ups.dedup();
    for up in ups {
        out.push(format!("maand/job/{up}"));
        out.push(format!("vars/job/{up}"));
        out.push(format!("secrets/job/{up}"));
    }
    out
}

/// Whether `namespace` (after [`canonical_namespace`]) is readable by the allocation.
pub fn is_readable(job: &str, worker_ip: &str, upstream: &[String], namespace: &str) -> bool {
    let namespace = canonical_namespace(namespace);
    readable_namespaces(job, worker_ip, upstream).iter().any(|n| n == namespace)
}

/// Read alias kept for jobs written against an older maand (catalog-jobs §0): `maand` means
/// `maand/bucket`. Every other name is returned unchanged.
pub fn canonical_namespace(namespace: &str) -> &str {
    if namespace == "maand" {
        "maand/bucket"
    } else {
        namespace
    }
}

/// Whether a namespace holds encrypted values (`secrets/job/<job>`).
pub fn is_secret_namespace(namespace: &str) -> bool {
    namespace.starts_with("secrets/job/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_of_an_allocation() {
        let ns = readable_namespaces("api", "10.0.0.1", &["db".into(), "cache".into(), "db".into()]);
        assert_eq!(
            ns,
            vec![
                "maand/bucket",
                "vars/bucket",
                "maand/worker",
                "maand/worker/10.0.0.1",
                "maand/worker/10.0.0.1/tags",
                "maand/job/api",
                "vars/bucket/job/api",
                "vars/job/api",
                "secrets/job/api",
                "maand/job/api/worker/10.0.0.1",
                "maand/prometheus",
                "maand/job/cache",
                "vars/job/cache",
                "secrets/job/cache",
                "maand/job/db",
                "vars/job/db",
                "secrets/job/db",
            ]
        );
    }

    #[test]
    fn access_is_exact() {
        let ups = vec!["db".to_string()];
        assert!(is_readable("api", "10.0.0.1", &ups, "maand/job/db"));
        assert!(is_readable("api", "10.0.0.1", &ups, "maand"));
        assert!(!is_readable("api", "10.0.0.1", &ups, "maand/job/db/worker/10.0.0.2"));
        assert!(!is_readable("api", "10.0.0.1", &ups, "vars/bucket/job/db"));
        assert!(!is_readable("api", "10.0.0.1", &ups, "maand/worker/10.0.0.2"));
        assert!(!is_readable("api", "10.0.0.1", &[], "secrets/job/db"));
        assert!(!is_readable("api", "10.0.0.1", &[], "maand/job"));
        assert!(is_secret_namespace("secrets/job/x"));
        assert!(!is_secret_namespace("vars/job/x"));
    }
}
