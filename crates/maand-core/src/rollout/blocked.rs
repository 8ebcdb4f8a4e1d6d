//! Dependency gating (DESIGN §3.5): a job whose demanded upstream job failed in this run — or is
//! itself blocked — is not rolled out and is reported as blocked.

use std::collections::{BTreeMap, BTreeSet};

/// Jobs blocked by `failed`: every job (a key of `upstream_of`) not in `failed` that demands,
/// directly or through other jobs, a failed job. `upstream_of` maps a job to the jobs it demands.
/// Cycles (rejected at build) cannot loop this: it iterates to a fixed point.
pub fn blocked_jobs(failed: &BTreeSet<String>, upstream_of: &BTreeMap<String, Vec<String>>) -> BTreeSet<String> {
    let mut blocked: BTreeSet<String> = BTreeSet::new();
    loop {
        let newly: Vec<&String> = upstream_of
            .iter()
            .filter(|(job, _)| !failed.contains(*job) && !blocked.contains(*job))
            .filter(|(_, ups)| ups.iter().any(|u| failed.contains(u) || blocked.contains(u)))
            .map(|(job, _)| job)
            .collect();
        if newly.is_empty() {
            return blocked;
        }
        blocked.extend(newly.into_iter().cloned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn graph(edges: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        edges.iter().map(|(j, ups)| (j.to_string(), ups.iter().map(|u| u.to_string()).collect())).collect()
    }

    #[test]
    fn direct_and_transitive_dependents_are_blocked() {
        // db <- api <- web ; db <- worker ; cache independent
        let g = graph(&[("db", &[]), ("api", &["db"]), ("web", &["api"]), ("worker", &["db"]), ("cache", &[])]);
        assert_eq!(blocked_jobs(&set(&["db"]), &g), set(&["api", "web", "worker"]));
        assert_eq!(blocked_jobs(&set(&["api"]), &g), set(&["web"]));
        assert_eq!(blocked_jobs(&set(&["web", "cache"]), &g), set(&[]));
        assert!(blocked_jobs(&set(&[]), &g).is_empty());
    }

    #[test]
    fn failed_jobs_are_not_reported_as_blocked() {
        let g = graph(&[("db", &[]), ("api", &["db"])]);
        assert_eq!(blocked_jobs(&set(&["db", "api"]), &g), set(&[]));
    }

    #[test]
    fn failed_upstream_outside_the_graph_and_cycles() {
        let g = graph(&[("api", &["external"])]);
        assert_eq!(blocked_jobs(&set(&["external"]), &g), set(&["api"]));
        let cyclic = graph(&[("a", &["b"]), ("b", &["a"]), ("c", &["x"])]);
        assert_eq!(blocked_jobs(&set(&["x"]), &cyclic), set(&["c"]));
        assert_eq!(blocked_jobs(&set(&["a"]), &cyclic), set(&["b"]));
    }
}
