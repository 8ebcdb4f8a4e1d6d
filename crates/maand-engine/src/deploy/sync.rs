//! Shipping staged trees to workers (spec §5.7, DESIGN §3.16): per worker, the bucket-level files
//! plus the jobs of this wave into their side directories, in parallel; on first contact a worker
//! is checked for the tools maand needs and its bucket directory is created. A worker that cannot
//! be reached is remembered for the rest of the run (it is not tried again in every wave).

use super::reach::Reachability;
use super::snapshot::Snapshot;
use super::worker_files::write_worker_root;
use crate::remote_steps::{Remote, Step};
use crate::runlog::LogCtx;
use maand_core::rollout::rsync_filter;
use maand_core::{Error, ErrorKind, Result};
use maand_remote::{RemoteScript, RsyncArgs};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

pub struct Syncer<'a> {
    pub remote: &'a Remote<'a>,
    pub snap: &'a Snapshot,
    pub staging_root: &'a Path,
    pub update_seq: i64,
    pub use_sudo: bool,
    pub parallel: usize,
    /// Workers already checked and prepared during this run.
    pub prepared: Mutex<HashSet<String>>,
    /// Workers that could not be reached during this run.
    pub reach: &'a Reachability,
}

impl Syncer<'_> {
    /// Sync `jobs` to every catalog worker. Returns each worker's result.
    pub fn sync_jobs(&self, jobs: &[String]) -> Result<BTreeMap<String, Result<()>>> {
        let filter = rsync_filter(jobs)?;
        let mut results = BTreeMap::new();
        for chunk in self.snap.workers.chunks(self.parallel.max(1)) {
            let chunk_results: Vec<(String, Result<()>)> = std::thread::scope(|s| {
                let handles: Vec<_> = chunk
                    .iter()
                    .map(|w| {
                        let filter = &filter;
                        s.spawn(move || (w.worker_ip.clone(), self.sync_worker(w, filter)))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|_| (String::new(), Err(Error::msg("sync thread panicked")))))
                    .collect()
            });
            results.extend(chunk_results);
        }
        Ok(results)
    }

    fn sync_worker(&self, w: &maand_store::catalog::WorkerRow, filter: &str) -> Result<()> {
        self.reach.check(self.remote.executor, &crate::transport::worker_addr(w))?;
        let result = self.ship(w, filter);
        if let Err(e) = &result {
            self.reach.record(&w.worker_ip, e);
        }
        result
    }

    fn ship(&self, w: &maand_store::catalog::WorkerRow, filter: &str) -> Result<()> {
        let dir = write_worker_root(self.staging_root, self.snap, w, self.update_seq)?;
        let filter_file = self.staging_root.join("workers").join(format!("{}.rsync", w.worker_ip));
        std::fs::write(&filter_file, filter).map_err(|e| super::stage::io(&filter_file, e))?;
        self.prepare(w)?;
        let remote = self.remote;
        let addr = crate::transport::worker_addr(w);
        let ctx =
            LogCtx { worker: Some(w.worker_ip.clone()), job: None, phase: "rsync".into(), action: "rsync".into() };
        let target = format!("/opt/worker/{}", self.snap.bucket_id);
        remote.log.command_begin(&ctx, &format!("rsync {} -> {}:{target}", dir.display(), w.worker_ip));
        let started = Instant::now();
        let outcome =
            remote.executor.rsync(&addr, &dir, &target, &RsyncArgs::worker_tree(&filter_file), &mut |stream, line| {
                remote.log.output_line(&ctx, stream, line)
            });
        match outcome {
            Ok(o) => {
                remote.log.command_end(&ctx, o.exit_code, started.elapsed());
                if o.success() {
                    Ok(())
                } else {
                    Err(Error::new(
                        ErrorKind::RunCommand,
                        format!("rsync failed: worker {}: exit {}", w.worker_ip, o.exit_code),
                    ))
                }
            }
            Err(e) => {
                remote.log.command_end(&ctx, 255, started.elapsed());
                Err(e.context("rsync failed"))
            }
        }
    }

    /// Once per worker per run: check prerequisites and create the bucket directory.
    fn prepare(&self, w: &maand_store::catalog::WorkerRow) -> Result<()> {
        if self.prepared.lock().map(|p| p.contains(&w.worker_ip)).unwrap_or(false) {
            return Ok(());
        }
        let mut tools = vec!["python3", "make", "rsync", "bash", "timeout"];
        if self.use_sudo {
            tools.push("sudo");
        }
        let script = RemoteScript::from_lines([
            "missing=()".to_string(),
            format!("for t in {}; do command -v \"$t\" >/dev/null 2>&1 || missing+=(\"$t\"); done", tools.join(" ")),
            "if [ ${#missing[@]} -gt 0 ]; then echo \"missing: ${missing[*]}\" >&2; exit 97; fi".to_string(),
            format!("mkdir -p /opt/worker/{}", self.snap.bucket_id),
        ]);
        let step = Step {
            job: None,
            phase: "rsync",
            action: "mkdir",
            worker: crate::transport::worker_addr(w),
            script,
            timeout_secs: Some(60),
        };
        self.remote.run(&step).map_err(|e| {
            if e.detail.contains("status 97") {
                Error::new(
                    ErrorKind::WorkerPrerequisites,
                    format!("worker {} lacks tools maand needs (see the line above); install them", w.worker_ip),
                )
            } else {
                e
            }
        })?;
        if let Ok(mut p) = self.prepared.lock() {
            p.insert(w.worker_ip.clone());
        }
        Ok(())
    }
}
