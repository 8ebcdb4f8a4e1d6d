//! Cross-job demands (spec §2.6, §2.10): every demand names a job of the workspace and a command
//! declared in its manifest, both ends carry a version, and the upstream version lies within the
//! demand's `min_version`..=`max_version`.

use crate::manifest::Manifest;
use crate::{Error, ErrorKind, Result};
use std::collections::BTreeMap;

/// Validate every demand of every job (jobs and commands in name order; the first problem is
/// returned).
pub fn validate_demands(manifests: &BTreeMap<String, Manifest>) -> Result<()> {
    for (job, manifest) in manifests {
        for command in &manifest.commands {
            let Some(demand) = &command.demand else {
                continue;
            };
            let at = format!("job {job}: command {}", command.name);
            let up = &demand.job;
            let Some(upstream) = manifests.get(up) else {
                return Err(Error::new(
                    ErrorKind::InvalidJobCommandDemand,
                    format!("{at} demands unknown job {up:?} (there is no workspace/jobs/{up}/manifest.json)"),
                ));
            };
            if !upstream.commands.iter().any(|c| c.name == demand.command) {
                return Err(Error::new(
                    ErrorKind::InvalidJobCommandDemand,
                    format!(
                        "{at} demands command {:?} of job {up}, which is not declared in {up}'s manifest",
                        demand.command
                    ),
                ));
            }
            if manifest.version.is_none() {
                return Err(Error::new(
                    ErrorKind::InvalidJobVersion,
                    format!("job {job}: version is required because command {} demands job {up}; add \"version\" to its manifest", command.name),
                ));
            }
            let Some(up_version) = &upstream.version else {
                return Err(Error::new(
                    ErrorKind::InvalidJobVersion,
                    format!(
                        "job {up}: version is required because job {job} demands it; add \"version\" to its manifest"
                    ),
                ));
            };
            let (min, max) = demand
                .version_range()
                .map_err(|e| Error::new(ErrorKind::InvalidJobCommandConfiguration, format!("{at}: {e}")))?;
            let raw = upstream.version_raw.as_deref().unwrap_or_default();
            if let Some(min) = min.filter(|min| up_version < min) {
                return Err(Error::new(
                    ErrorKind::JobCommandDemandVersionMismatch,
                    format!("{at} requires job {up} version >= {min}, but {up} is version {raw}"),
                ));
            }
            if let Some(max) = max.filter(|max| up_version > max) {
                return Err(Error::new(
                    ErrorKind::JobCommandDemandVersionMismatch,
                    format!("{at} requires job {up} version <= {max}, but {up} is version {raw}"),
                ));
            }
        }
    }
    Ok(())
}

/// The jobs a manifest's commands demand, sorted and de-duplicated.
pub fn upstream_jobs(manifest: &Manifest) -> Vec<String> {
    let mut jobs: Vec<String> =
        manifest.commands.iter().filter_map(|c| c.demand.as_ref().map(|d| d.job.clone())).collect();
    jobs.sort();
    jobs.dedup();
    jobs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::parse_manifest;

    fn jobs(list: &[(&str, &str)]) -> BTreeMap<String, Manifest> {
        list.iter()
            .map(|(name, json)| (name.to_string(), parse_manifest(name, json, &mut Vec::new()).unwrap()))
            .collect()
    }

    const DB: &str = r#"{"version": "2.1.0", "commands": {"command_service": {"executed_on": ["cli"]}}}"#;

    fn api(version: &str, config: &str) -> String {
        format!(
            r#"{{{version} "commands": {{"command_x": {{"executed_on": ["pre_deploy"],
                "demands": {{"job": "db", "command": "command_service", "config": {config}}}}}}}}}"#
        )
    }

    fn error(list: &[(&str, &str)]) -> Error {
        validate_demands(&jobs(list)).unwrap_err()
    }

    #[test]
    fn valid_demands() {
        assert!(validate_demands(&jobs(&[("db", DB), ("api", &api(r#""version": "1","#, "{}"))])).is_ok());
        let ranged = api(r#""version": "1","#, r#"{"min_version": 2, "max_version": "2.1.0"}"#);
        assert!(validate_demands(&jobs(&[("db", DB), ("api", &ranged)])).is_ok());
        assert!(validate_demands(&jobs(&[("solo", "{}")])).is_ok());
    }

    #[test]
    fn unknown_job_or_command() {
        let e = error(&[("api", &api(r#""version": "1","#, "{}"))]);
        assert_eq!(
            e.to_string(),
            "invalid job command demand: job api: command command_x demands unknown job \"db\" (there is no \
             workspace/jobs/db/manifest.json)"
        );
        let e = error(&[("db", r#"{"version": "1"}"#), ("api", &api(r#""version": "1","#, "{}"))]);
        assert_eq!(
            e.to_string(),
            "invalid job command demand: job api: command command_x demands command \"command_service\" of job db, \
             which is not declared in db's manifest"
        );
    }

    #[test]
    fn versions_required_on_both_ends() {
        let e = error(&[("db", DB), ("api", &api("", "{}"))]);
        assert_eq!(
            e.to_string(),
            "invalid job version: job api: version is required because command command_x demands job db; add \"version\" to its manifest"
        );
        let e = error(&[
            ("db", r#"{"commands": {"command_service": {"executed_on": ["cli"]}}}"#),
            ("api", &api(r#""version": "1","#, "{}")),
        ]);
        assert_eq!(
            e.to_string(),
            "invalid job version: job db: version is required because job api demands it; add \"version\" to its manifest"
        );
    }

    #[test]
    fn version_constraints() {
        let e = error(&[("db", DB), ("api", &api(r#""version": "1","#, r#"{"min_version": "2.2"}"#))]);
        assert_eq!(
            e.to_string(),
            "job command demand version mismatch: job api: command command_x requires job db version >= 2.2.0, but db is version 2.1.0"
        );
        let e = error(&[("db", DB), ("api", &api(r#""version": "1","#, r#"{"max_version": 2}"#))]);
        assert!(e.is(ErrorKind::JobCommandDemandVersionMismatch));
        assert!(e.detail.contains("requires job db version <= 2.0.0, but db is version 2.1.0"));
        let pre = r#"{"version": "v3.0.0-rc1", "commands": {"command_service": {"executed_on": ["cli"]}}}"#;
        let e = error(&[("db", pre), ("api", &api(r#""version": "1","#, r#"{"min_version": 3}"#))]);
        assert!(e.detail.contains("but db is version v3.0.0-rc1"), "a prerelease is below its release: {e}");
    }

    #[test]
    fn upstreams_sorted_unique() {
        let m = parse_manifest(
            "api",
            r#"{"commands": {
                "command_a": {"executed_on": ["cli"], "demands": {"job": "z", "command": "command_q"}},
                "command_b": {"executed_on": ["cli"], "demands": {"job": "b", "command": "command_q"}},
                "command_c": {"executed_on": ["cli"], "demands": {"job": "z", "command": "command_r"}},
                "command_d": {"executed_on": ["cli"]}}}"#,
            &mut Vec::new(),
        )
        .unwrap();
        assert_eq!(upstream_jobs(&m), vec!["b", "z"]);
    }
}
