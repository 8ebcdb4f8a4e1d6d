//! Drift on the workers: one SSH session per worker (workers in parallel, bounded) lists the files
//! of every job deployed there with their MD5 (`list_files.py`, runtime directories not entered);
//! each job's listing is compared with the manifest of the release promoted on that worker.

use crate::health::bounded_map;
use maand_core::drift::{file_drift, FileDrift, WORKER_OWNED_DIRS};
use maand_core::rollout::FileManifest;
use maand_remote::script::shell_quote;
use maand_remote::{Executor, RemoteScript, Stream, WorkerAddr};
use std::collections::BTreeMap;

const LIST_FILES_PY: &str = include_str!("list_files.py");

/// Time limit of one worker's listing.
const LIST_TIMEOUT_SECS: u64 = 60;

/// A deployed allocation to check: its worker and the promoted release's manifest.
pub(crate) struct DriftTarget {
    pub job: String,
    pub worker: WorkerAddr,
    pub promoted: FileManifest,
}

/// What the check found for one allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DriftCheck {
    /// The live files compared with the release (empty drift: identical).
    Compared(FileDrift),
    /// The worker could not be listed (unreachable, or the listing failed): why.
    Failed(String),
}

/// Check every target; results keyed by (job, worker IP).
pub(crate) fn check_drift(
    executor: &dyn Executor,
    bucket_id: &str,
    targets: &[DriftTarget],
    parallel: usize,
) -> BTreeMap<(String, String), DriftCheck> {
    let mut by_worker: BTreeMap<&str, Vec<&DriftTarget>> = BTreeMap::new();
    for t in targets {
        by_worker.entry(t.worker.host.as_str()).or_default().push(t);
    }
    let workers: Vec<Vec<&DriftTarget>> = by_worker.into_values().collect();
    let listings = bounded_map(&workers, parallel, |targets| {
        let jobs: Vec<&str> = targets.iter().map(|t| t.job.as_str()).collect();
        list_job_files(executor, &targets[0].worker, bucket_id, &jobs)
    });
    let mut out = BTreeMap::new();
    for (targets, listing) in workers.iter().zip(listings) {
        for t in targets {
            let check = match &listing {
                Ok(jobs) => DriftCheck::Compared(file_drift(
                    &t.promoted,
                    &jobs.get(&t.job).cloned().flatten().unwrap_or_default(),
                )),
                Err(why) => DriftCheck::Failed(why.clone()),
            };
            out.insert((t.job.clone(), t.worker.host.clone()), check);
        }
    }
    out
}

/// Job -> its live files (path -> MD5), `None` when its directory is missing.
type Listing = BTreeMap<String, Option<FileManifest>>;

/// The script listing `jobs` under the bucket's directory on a worker.
pub(crate) fn list_files_script(bucket_id: &str, jobs: &[&str]) -> RemoteScript {
    let args: Vec<String> = [format!("/opt/worker/{bucket_id}"), WORKER_OWNED_DIRS.join(",")]
        .into_iter()
        .chain(jobs.iter().map(|j| j.to_string()))
        .map(|a| shell_quote(&a))
        .collect();
    let mut script = RemoteScript::from_lines([format!("python3 - {} <<'MAAND_LIST_FILES'", args.join(" "))]);
    for line in LIST_FILES_PY.lines() {
        script = script.with_line(line);
    }
    script.with_line("MAAND_LIST_FILES")
}

fn list_job_files(
    executor: &dyn Executor,
    worker: &WorkerAddr,
    bucket_id: &str,
    jobs: &[&str],
) -> Result<Listing, String> {
    let script = list_files_script(bucket_id, jobs);
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let outcome = executor
        .run_script(worker, &script, Some(LIST_TIMEOUT_SECS), &mut |stream, line| match stream {
            Stream::Stdout => stdout.push(line.to_string()),
            Stream::Stderr => stderr.push(line.to_string()),
        })
        .map_err(|e| e.to_string())?;
    if !outcome.success() {
        let said = stderr.last().map(|l| format!(": {l}")).unwrap_or_default();
        return Err(format!(
            "worker {}: listing the job files exited with status {}{said}",
            worker.host, outcome.exit_code
        ));
    }
    stdout
        .last()
        .and_then(|line| serde_json::from_str::<Listing>(line).ok())
        .ok_or_else(|| format!("worker {}: the job file listing could not be read", worker.host))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(entries: &[(&str, &str)]) -> FileManifest {
        entries.iter().map(|(p, h)| (p.to_string(), h.to_string())).collect()
    }

    /// The embedded script, run for real on a local tree through bash (as a worker runs it).
    #[test]
    fn the_listing_script_hashes_files_and_skips_runtime_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let bucket = dir.path().join("opt");
        let job = bucket.join("jobs/web");
        std::fs::create_dir_all(job.join("conf")).unwrap();
        std::fs::create_dir_all(job.join("data")).unwrap();
        std::fs::create_dir_all(job.join("sub/data")).unwrap();
        std::fs::write(job.join("conf/app.conf"), "port=1\n").unwrap();
        std::fs::write(job.join("data/db"), "rows").unwrap();
        std::fs::write(job.join("sub/data/kept"), "x").unwrap();
        let mut script = list_files_script("unused", &["web", "gone", "it's"]);
        script.lines[0] = script.lines[0].replace("'/opt/worker/unused'", &shell_quote(&bucket.to_string_lossy()));
        let out = std::process::Command::new("bash").arg("-c").arg(script.render().unwrap()).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let listing: Listing = serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
        let web = listing["web"].clone().unwrap();
        assert_eq!(
            web,
            manifest(&[
                ("conf/app.conf", &maand_core::rollout::file_md5(b"port=1\n")),
                ("sub/data/kept", &maand_core::rollout::file_md5(b"x")),
            ])
        );
        assert_eq!(listing["gone"], None);
        assert_eq!(listing["it's"], None);
    }
}
