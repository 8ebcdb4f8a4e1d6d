//! The rsync merge-filter file of a job sync (spec §5.7, internals §2.7, DESIGN §3.16): only the
//! named jobs' trees are transferred — into their side directories `jobs/.<job>.next/`, from where
//! each allocation's files are swapped into `jobs/<job>/` right before its batch — other jobs on
//! the worker are untouched and template sources never leave the CLI host.

use crate::{Error, ErrorKind, Result};

/// The side directory beside `jobs/<job>/` that a deploy ships a job's files into.
pub fn shipped_dir_name(job: &str) -> String {
    format!(".{job}.next")
}

/// What maand keeps beside `jobs/<job>/` on a worker: the shipped side directory and the lock
/// its lifecycle steps hold (removed with the job's allocation).
pub fn job_side_paths(job: &str) -> [String; 2] {
    [shipped_dir_name(job), format!(".{job}.lock")]
}

/// `+ jobs/.<job>.next/` per job (sorted, each once), then `- jobs/*` and `- jobs/**/*.tpl`, one rule
/// per line with a trailing newline. Wildcard characters in a job name are escaped so they match
/// literally; a name with a line break cannot be written into a filter file and is an error.
pub fn rsync_filter(jobs: &[String]) -> Result<String> {
    let mut names: Vec<&String> = jobs.iter().collect();
    names.sort();
    names.dedup();
    let mut out = String::new();
    for job in names {
        if job.contains(['\n', '\r']) {
            return Err(Error::new(
                ErrorKind::InvalidJob,
                format!("job {job:?}: the name contains a line break, which an rsync filter cannot hold; rename the job directory"),
            ));
        }
        out.push_str(&format!("+ jobs/{}/\n", escape_pattern(&shipped_dir_name(job))));
    }
    out.push_str("- jobs/*\n- jobs/**/*.tpl\n");
    Ok(out)
}

/// rsync treats `\` as an escape only in patterns holding a wildcard (`*`, `?`, `[`); escaping
/// one of those makes the pattern such a pattern, so `\` is escaped too.
fn escape_pattern(name: &str) -> String {
    if !name.contains(['*', '?', '[']) {
        return name.to_string();
    }
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if matches!(c, '*' | '?' | '[' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jobs(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn one_job() {
        assert_eq!(rsync_filter(&jobs(&["api"])).unwrap(), "+ jobs/.api.next/\n- jobs/*\n- jobs/**/*.tpl\n");
    }

    #[test]
    fn several_jobs_sorted_once_each() {
        assert_eq!(
            rsync_filter(&jobs(&["web", "api", "web"])).unwrap(),
            "+ jobs/.api.next/\n+ jobs/.web.next/\n- jobs/*\n- jobs/**/*.tpl\n"
        );
    }

    #[test]
    fn no_jobs_excludes_every_job_tree() {
        assert_eq!(rsync_filter(&[]).unwrap(), "- jobs/*\n- jobs/**/*.tpl\n");
    }

    #[test]
    fn wildcards_are_escaped_and_line_breaks_rejected() {
        assert_eq!(rsync_filter(&jobs(&["a*b\\c"])).unwrap().lines().next(), Some("+ jobs/.a\\*b\\\\c.next/"));
        assert_eq!(rsync_filter(&jobs(&["back\\slash"])).unwrap().lines().next(), Some("+ jobs/.back\\slash.next/"));
        let e = rsync_filter(&jobs(&["a\nb"])).unwrap_err();
        assert!(e.is(ErrorKind::InvalidJob));
        assert!(e.to_string().contains("line break"), "{e}");
    }
}
