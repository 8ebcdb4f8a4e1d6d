//! Rules on the files of a job directory (spec §2.1, §2.5): reserved top-level names, the
//! Makefile, the Prometheus config pair, one script per job command, and the directories a build
//! never copies. Paths are job-relative and `/`-separated (`"_modules/command_x.py"`, `"data"`).

use crate::manifest::Manifest;
use crate::{Error, ErrorKind, Result};
use std::collections::BTreeSet;

/// Directories left out of a job's stored files wherever they appear.
pub const SKIPPED_DIRS: [&str; 4] = [".venv", "venv", "node_modules", "__pycache__"];

/// Names that belong to the worker under `/opt/worker/<bucket>/jobs/<job>/`.
pub const RESERVED_NAMES: [&str; 3] = ["data", "logs", "bin"];

/// Script extensions of job commands, in the order we report them.
pub const COMMAND_EXTENSIONS: [&str; 3] = ["py", "ts", "js"];

/// `.venv`, `venv`, `node_modules`, `__pycache__`.
pub fn is_skipped_dir(name: &str) -> bool {
    SKIPPED_DIRS.contains(&name)
}

/// Whether any directory component of a job-relative path is a skipped directory.
pub fn is_skipped_path(path: &str) -> bool {
    path.split('/').any(is_skipped_dir)
}

/// Check a job's file list against its manifest.
pub fn validate_job_files(job: &str, manifest: &Manifest, paths: &[String]) -> Result<()> {
    let present: BTreeSet<&str> = paths.iter().map(|p| p.trim_start_matches("./").trim_end_matches('/')).collect();
    for reserved in RESERVED_NAMES {
        let prefix = format!("{reserved}/");
        if present.iter().any(|p| *p == reserved || p.starts_with(&prefix)) {
            return Err(Error::new(
                ErrorKind::InvalidJob,
                format!(
                    "job {job}, {reserved} directory is reserved (workers keep their own {reserved}/ in the job \
                     directory); rename or remove workspace/jobs/{job}/{reserved}"
                ),
            ));
        }
    }
    if !present.contains("Makefile") && !present.contains("Makefile.tpl") {
        return Err(Error::new(ErrorKind::InvalidJob, format!("job {job}, Makefile or Makefile.tpl not found")));
    }
    if present.contains("prometheus.yml") && present.contains("prometheus.yml.tpl") {
        return Err(Error::new(
            ErrorKind::InvalidJob,
            format!("job {job}: cannot define both prometheus.yml and prometheus.yml.tpl; keep one"),
        ));
    }
    for command in &manifest.commands {
        let found = command_scripts(&command.name, &present);
        match found.len() {
            1 => {}
            0 => {
                let expected: Vec<String> =
                    COMMAND_EXTENSIONS.iter().map(|ext| format!("{}.{ext}", command.name)).collect();
                return Err(Error::new(
                    ErrorKind::JobCommandFileNotFound,
                    format!(
                        "job {job}: command {}: expected {}, {}, or {} under workspace/jobs/{job}/_modules",
                        command.name, expected[0], expected[1], expected[2]
                    ),
                ));
            }
            _ => {
                return Err(Error::new(
                    ErrorKind::InvalidJobCommandConfiguration,
                    format!(
                        "job {job}: command {} has multiple implementations ({}); keep one",
                        command.name,
                        found.join(", ")
                    ),
                ))
            }
        }
    }
    Ok(())
}

/// The script of a job command when exactly one `_modules/<name>.py|.ts|.js` exists.
pub fn command_script_path(command: &str, paths: &[String]) -> Option<String> {
    let present: BTreeSet<&str> = paths.iter().map(String::as_str).collect();
    let found = command_scripts(command, &present);
    match found.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}

fn command_scripts(command: &str, present: &BTreeSet<&str>) -> Vec<String> {
    COMMAND_EXTENSIONS
        .iter()
        .map(|ext| format!("_modules/{command}.{ext}"))
        .filter(|p| present.contains(p.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::parse_manifest;

    fn paths(list: &[&str]) -> Vec<String> {
        list.iter().map(|p| p.to_string()).collect()
    }

    fn check(manifest: &str, list: &[&str]) -> Result<()> {
        validate_job_files("api", &parse_manifest("api", manifest, &mut Vec::new()).unwrap(), &paths(list))
    }

    #[test]
    fn accepts_a_valid_job() {
        assert!(check("{}", &["Makefile"]).is_ok());
        assert!(check("{}", &["Makefile.tpl", "conf", "conf/data", "prometheus.yml"]).is_ok());
        let m = r#"{"commands": {"command_a": {"executed_on": ["cli"]}, "command_b": {"executed_on": ["cli"]}}}"#;
        assert!(check(
            m,
            &["Makefile", "_modules", "_modules/command_a.py", "_modules/command_b.js", "_modules/command_c.py"]
        )
        .is_ok());
    }

    #[test]
    fn reserved_directories() {
        let e = check("{}", &["Makefile", "data", "data/x"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid job: job api, data directory is reserved (workers keep their own data/ in the job directory); \
             rename or remove workspace/jobs/api/data"
        );
        assert!(check("{}", &["Makefile", "logs"]).unwrap_err().detail.contains("logs directory is reserved"));
        assert!(check("{}", &["Makefile", "bin/run"]).unwrap_err().detail.contains("bin directory is reserved"));
        assert!(check("{}", &["Makefile", "binary", "sub/bin"]).is_ok());
    }

    #[test]
    fn makefile_and_prometheus() {
        let e = check("{}", &["makefile"]).unwrap_err();
        assert_eq!(e.to_string(), "invalid job: job api, Makefile or Makefile.tpl not found");
        let e = check("{}", &["Makefile", "prometheus.yml", "prometheus.yml.tpl"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid job: job api: cannot define both prometheus.yml and prometheus.yml.tpl; keep one"
        );
    }

    #[test]
    fn command_scripts_exactly_one() {
        let m = r#"{"commands": {"command_a": {"executed_on": ["cli"]}}}"#;
        let e = check(m, &["Makefile", "_modules/command_b.py", "command_a.py"]).unwrap_err();
        assert!(e.is(ErrorKind::JobCommandFileNotFound));
        assert_eq!(
            e.to_string(),
            "job command file not found: job api: command command_a: expected command_a.py, command_a.ts, or command_a.js \
             under workspace/jobs/api/_modules"
        );
        let e = check(m, &["Makefile", "_modules/command_a.py", "_modules/command_a.ts"]).unwrap_err();
        assert!(e.is(ErrorKind::InvalidJobCommandConfiguration));
        assert_eq!(
            e.to_string(),
            "invalid job command configuration: job api: command command_a has multiple implementations \
             (_modules/command_a.py, _modules/command_a.ts); keep one"
        );
        assert_eq!(
            command_script_path("command_a", &paths(&["_modules/command_a.ts"])),
            Some("_modules/command_a.ts".into())
        );
        assert_eq!(command_script_path("command_a", &paths(&["_modules/command_a.ts", "_modules/command_a.js"])), None);
        assert_eq!(command_script_path("command_a", &paths(&[])), None);
    }

    #[test]
    fn skipped_dirs() {
        for d in [".venv", "venv", "node_modules", "__pycache__"] {
            assert!(is_skipped_dir(d));
        }
        assert!(!is_skipped_dir("_modules"));
        assert!(is_skipped_path("_modules/.venv/lib/x.py"));
        assert!(!is_skipped_path("_modules/venvs/x.py"));
    }
}
