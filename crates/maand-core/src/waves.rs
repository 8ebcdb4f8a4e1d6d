//! `deployment_seq` (spec §4.1): the wave of each job, from the demand graph (dependent →
//! upstream). A job without upstream demands is in wave 0; any other job is one wave after the
//! latest of its upstreams (`1 + max(upstream seq)`), so every chain orders correctly.
//!
//! Decision on the ⚠ of §4.1: Go leaves a job whose commands all carry demands at 0 when its
//! upstream chain never reaches a job seeded at 0. Once demands are validated every chain ends
//! at such a job, so the rule above equals Go's result on valid workspaces and never puts a job
//! in the same wave as (or before) a job it demands. Demands on jobs outside `manifests` are
//! ignored here (`validate_demands` reports them).

use crate::demands::upstream_jobs;
use crate::manifest::Manifest;
use crate::{Error, ErrorKind, Result};
use std::collections::BTreeMap;

/// Every job's wave. A cycle is an error naming it (`a -> b -> a`), found by a depth-first search
/// from the smallest job name with upstreams in name order, so the message is deterministic.
pub fn deployment_seq(manifests: &BTreeMap<String, Manifest>) -> Result<BTreeMap<String, i64>> {
    let edges: BTreeMap<&str, Vec<String>> = manifests
        .iter()
        .map(|(job, m)| (job.as_str(), upstream_jobs(m).into_iter().filter(|u| manifests.contains_key(u)).collect()))
        .collect();
    let mut seq: BTreeMap<String, i64> = BTreeMap::new();
    let mut on_path: Vec<&str> = Vec::new();
    for job in edges.keys() {
        visit(job, &edges, &mut on_path, &mut seq)?;
    }
    Ok(seq)
}

/// Depth-first: the seq of `job` after the seqs of all its upstreams.
fn visit<'a>(
    job: &'a str,
    edges: &'a BTreeMap<&'a str, Vec<String>>,
    on_path: &mut Vec<&'a str>,
    seq: &mut BTreeMap<String, i64>,
) -> Result<i64> {
    if let Some(done) = seq.get(job) {
        return Ok(*done);
    }
    if let Some(start) = on_path.iter().position(|j| *j == job) {
        let mut cycle: Vec<&str> = on_path[start..].to_vec();
        cycle.push(job);
        return Err(Error::new(
            ErrorKind::CircularJobCommandDependency,
            format!("{} (remove one of these demands)", cycle.join(" -> ")),
        ));
    }
    on_path.push(job);
    let mut level = 0;
    for up in edges.get(job).map(Vec::as_slice).unwrap_or_default() {
        level = level.max(visit(up, edges, on_path, seq)? + 1);
    }
    on_path.pop();
    seq.insert(job.to_string(), level);
    Ok(level)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::parse_manifest;

    /// A manifest whose commands demand `ups` (plus one command without a demand when `seeded`).
    fn job(ups: &[&str], seeded: bool) -> String {
        let mut commands: Vec<String> = ups
            .iter()
            .enumerate()
            .map(|(i, up)| format!(r#""command_d{i}": {{"executed_on": ["cli"], "demands": {{"job": "{up}", "command": "command_s"}}}}"#))
            .collect();
        if seeded {
            commands.push(r#""command_s": {"executed_on": ["cli"]}"#.into());
        }
        format!(r#"{{"version": "1", "commands": {{{}}}}}"#, commands.join(","))
    }

    fn seqs(list: &[(&str, &[&str], bool)]) -> Result<BTreeMap<String, i64>> {
        let manifests = list
            .iter()
            .map(|(name, ups, seeded)| {
                (name.to_string(), parse_manifest(name, &job(ups, *seeded), &mut Vec::new()).unwrap())
            })
            .collect();
        deployment_seq(&manifests)
    }

    #[test]
    fn chain_and_diamond() {
        let s = seqs(&[
            ("database", &[], true),
            ("api", &["database"], true),
            ("frontend", &["api"], true),
            ("lonely", &[], false),
            ("cache", &["database"], true),
            ("edge", &["frontend", "cache"], false),
        ])
        .unwrap();
        let expected: BTreeMap<String, i64> =
            [("database", 0), ("api", 1), ("frontend", 2), ("lonely", 0), ("cache", 1), ("edge", 3)]
                .iter()
                .map(|(j, n)| (j.to_string(), *n))
                .collect();
        assert_eq!(s, expected);
    }

    #[test]
    fn all_demand_job_still_follows_its_upstream() {
        // "b" has only demanding commands: it still gets a wave after "a".
        let s = seqs(&[("a", &[], true), ("b", &["a"], false), ("c", &["b"], true)]).unwrap();
        assert_eq!((s["a"], s["b"], s["c"]), (0, 1, 2));
    }

    #[test]
    fn unknown_upstreams_are_ignored() {
        let s = seqs(&[("a", &["ghost"], true)]).unwrap();
        assert_eq!(s["a"], 0);
    }

    #[test]
    fn cycles_are_named_deterministically() {
        let e = seqs(&[("b", &["a"], true), ("a", &["b"], true)]).unwrap_err();
        assert_eq!(e.to_string(), "circular job command dependency: a -> b -> a (remove one of these demands)");
        let e =
            seqs(&[("a", &["b"], true), ("b", &["c"], true), ("c", &["b"], true), ("z", &["a"], true)]).unwrap_err();
        assert!(e.is(ErrorKind::CircularJobCommandDependency));
        assert_eq!(e.detail, "b -> c -> b (remove one of these demands)");
    }
}
