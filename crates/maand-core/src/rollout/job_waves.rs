//! Which jobs a deploy rolls out in which wave (spec §5.1, internals §7.2): waves in ascending
//! `deployment_seq`, only jobs with non-removed allocations, narrowed by `--jobs`.

use std::collections::{BTreeMap, BTreeSet};

/// A job of the catalog as the wave planner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaveCandidate {
    pub job: String,
    pub deployment_seq: i64,
    /// Active plus disabled allocations.
    pub non_removed_allocations: usize,
}

/// Waves `(deployment_seq, jobs)` in ascending seq, jobs sorted by name and listed once; jobs
/// without non-removed allocations and jobs outside `jobs_filter` (empty = every job) are left
/// out, and so are waves left empty.
pub fn wave_jobs(jobs: &[WaveCandidate], jobs_filter: &[String]) -> Vec<(i64, Vec<String>)> {
    let filter: BTreeSet<&str> = jobs_filter.iter().map(String::as_str).collect();
    let mut waves: BTreeMap<i64, BTreeSet<&str>> = BTreeMap::new();
    for j in jobs {
        if j.non_removed_allocations > 0 && (filter.is_empty() || filter.contains(j.job.as_str())) {
            waves.entry(j.deployment_seq).or_default().insert(&j.job);
        }
    }
    waves.into_iter().map(|(seq, names)| (seq, names.into_iter().map(str::to_string).collect())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(name: &str, seq: i64, allocations: usize) -> WaveCandidate {
        WaveCandidate { job: name.into(), deployment_seq: seq, non_removed_allocations: allocations }
    }

    fn names(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn waves_ascend_and_jobs_are_sorted() {
        let jobs = [job("web", 1, 2), job("db", 0, 3), job("api", 1, 1), job("cache", 0, 1), job("lb", 3, 1)];
        assert_eq!(
            wave_jobs(&jobs, &[]),
            vec![(0, names(&["cache", "db"])), (1, names(&["api", "web"])), (3, names(&["lb"]))]
        );
    }

    #[test]
    fn jobs_without_allocations_and_empty_waves_are_skipped() {
        let jobs = [job("gone", 0, 0), job("api", 1, 1), job("api", 1, 1)];
        assert_eq!(wave_jobs(&jobs, &[]), vec![(1, names(&["api"]))]);
        assert!(wave_jobs(&[job("gone", 0, 0)], &[]).is_empty());
        assert!(wave_jobs(&[], &[]).is_empty());
    }

    #[test]
    fn jobs_filter_narrows_and_drops_emptied_waves() {
        let jobs = [job("db", 0, 1), job("api", 1, 1), job("web", 1, 1), job("lb", 2, 1)];
        assert_eq!(
            wave_jobs(&jobs, &names(&["web", "lb", "unknown"])),
            vec![(1, names(&["web"])), (2, names(&["lb"]))]
        );
        assert!(wave_jobs(&jobs, &names(&["unknown"])).is_empty());
    }
}
