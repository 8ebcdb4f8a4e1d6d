//! Symbolic links in a job directory (issue 14): a link is kept only when it stays inside the job
//! directory, and is then shipped as a link (never followed), so a job cannot carry a file from
//! elsewhere on the CLI host (`secrets/ca.key`) to its workers. Links under `_modules/` and
//! `_prometheus/` are refused: those files are read on the CLI host, not shipped.
//!
//! This is the rule on the link's text: a relative target that, resolved from the link's own
//! directory, never climbs above the job directory. The build also checks where an existing
//! target really resolves (a path through another link may climb differently) with
//! [`link_outside_job`] as the error.

use crate::{Error, ErrorKind, Result};

/// Job directories whose files maand reads on the CLI host instead of shipping them.
const CLI_SIDE_DIRS: [&str; 2] = ["_modules", "_prometheus"];

/// Check the link at job-relative `path` (`/`-separated) whose target is `target`.
pub fn validate_link(job: &str, path: &str, target: &str) -> Result<()> {
    if let Some(dir) = CLI_SIDE_DIRS.iter().find(|dir| path.split('/').next() == Some(**dir)) {
        return Err(Error::new(
            ErrorKind::InvalidJob,
            format!(
                "job {job}: workspace/jobs/{job}/{path} is a symbolic link; files under {dir}/ are read on the CLI \
                 host and must be regular files (copy the file there)"
            ),
        ));
    }
    if target.starts_with('/') || !stays_inside(path, target) {
        return Err(link_outside_job(job, path, target));
    }
    Ok(())
}

/// The error for a link of job `job` at `path` that leads outside the job directory.
pub fn link_outside_job(job: &str, path: &str, target: &str) -> Error {
    Error::new(
        ErrorKind::InvalidJob,
        format!(
            "job {job}: workspace/jobs/{job}/{path} is a symbolic link to {target:?}, outside the job directory; \
             copy the file into the job, or make the link a relative path to a file inside it"
        ),
    )
}

/// Whether `target`, read from the directory of `path`, stays within the job directory at every
/// step (`../x` from the job's top climbs out, even if a later step would come back).
fn stays_inside(path: &str, target: &str) -> bool {
    let mut depth = path.split('/').count().saturating_sub(1);
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            _ => depth += 1,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_inside_the_job_are_kept() {
        for (path, target) in [
            ("current", "v2"),
            ("conf/app.conf", "../templates/app.conf"),
            ("conf/a", "./b"),
            ("a/b/c", "../../d/e"),
            ("x", "data/live"),
            ("self", "."),
        ] {
            assert_eq!(validate_link("api", path, target), Ok(()), "{path} -> {target}");
        }
    }

    #[test]
    fn links_leaving_the_job_are_refused_naming_the_file() {
        let e = validate_link("api", "conf/key.pem", "../../../secrets/ca.key").unwrap_err();
        assert!(e.is(ErrorKind::InvalidJob));
        assert_eq!(
            e.to_string(),
            "invalid job: job api: workspace/jobs/api/conf/key.pem is a symbolic link to \"../../../secrets/ca.key\", \
             outside the job directory; copy the file into the job, or make the link a relative path to a file \
             inside it"
        );
        for (path, target) in
            [("a", ".."), ("a", "../api/x"), ("a/b", "../../x"), ("a", "/etc/passwd"), ("a", "b/../../c")]
        {
            assert!(validate_link("api", path, target).is_err(), "{path} -> {target}");
        }
    }

    #[test]
    fn links_in_cli_side_directories_are_refused() {
        let e = validate_link("api", "_modules/lib.py", "../lib.py").unwrap_err();
        assert!(e.to_string().contains("workspace/jobs/api/_modules/lib.py is a symbolic link; files under _modules/"));
        assert!(validate_link("api", "_prometheus/scrape.yaml", "x").is_err());
        assert_eq!(validate_link("api", "modules/x", "y"), Ok(()));
    }
}
