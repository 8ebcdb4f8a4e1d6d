//! Which KV namespaces an allocation may read (spec §6.4) — the same rule for templates, the
//! runtime API and `cat kv --jobs`. Namespace match is exact (no prefix matching). Also which keys
//! hold values stored encrypted (job secrets and leaf private keys, DESIGN §3.18).

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

/// Whether `key` of `namespace` is a leaf certificate's private key: `certs/<name>.key` in an
/// allocation namespace `maand/job/<job>/worker/<ip>`.
pub fn is_leaf_private_key(namespace: &str, key: &str) -> bool {
    let allocation = namespace
        .strip_prefix("maand/job/")
        .and_then(|rest| rest.split_once("/worker/"))
        .is_some_and(|(job, ip)| single_segment(job) && single_segment(ip));
    let key_file = key.strip_prefix("certs/").and_then(|file| file.strip_suffix(".key")).is_some_and(single_segment);
    allocation && key_file
}

fn single_segment(s: &str) -> bool {
    !s.is_empty() && !s.contains('/')
}

/// Whether the values of `key` in `namespace` are stored encrypted (`enc:v1:`): job secrets and
/// leaf certificate private keys. Listings hide them; readers that need the plaintext decrypt.
pub fn is_encrypted_at_rest(namespace: &str, key: &str) -> bool {
    is_secret_namespace(namespace) || is_leaf_private_key(namespace, key)
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

    #[test]
    fn leaf_private_keys_are_cert_keys_of_allocation_namespaces() {
        assert!(is_leaf_private_key("maand/job/api/worker/10.0.0.1", "certs/tls.key"));
        assert!(is_leaf_private_key("maand/job/api/worker/fe80::1", "certs/client.v2.key"));
        assert!(!is_leaf_private_key("maand/job/api/worker/10.0.0.1", "certs/tls.crt"));
        assert!(!is_leaf_private_key("maand/job/api/worker/10.0.0.1", "certs/.key"));
        assert!(!is_leaf_private_key("maand/job/api/worker/10.0.0.1", "certs/a/b.key"));
        assert!(!is_leaf_private_key("maand/job/api/worker/10.0.0.1", "tls.key"));
        assert!(!is_leaf_private_key("maand/job/api", "certs/tls.key"));
        assert!(!is_leaf_private_key("maand/job/api/worker/", "certs/tls.key"));
        assert!(!is_leaf_private_key("maand/job//worker/10.0.0.1", "certs/tls.key"));
        assert!(!is_leaf_private_key("maand/worker", "certs/ca.crt"));
        assert!(!is_leaf_private_key("vars/job/api/worker/10.0.0.1", "certs/tls.key"));
    }

    #[test]
    fn encrypted_at_rest_covers_secrets_and_leaf_keys_only() {
        assert!(is_encrypted_at_rest("secrets/job/api", "password"));
        assert!(is_encrypted_at_rest("maand/job/api/worker/10.0.0.1", "certs/tls.key"));
        assert!(!is_encrypted_at_rest("maand/job/api/worker/10.0.0.1", "certs/tls.crt"));
        assert!(!is_encrypted_at_rest("vars/job/api", "password"));
    }
}
