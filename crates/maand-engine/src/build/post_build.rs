//! The `post_build` job commands (spec §8.1, §6.1): after the catalog is committed, every job
//! registering them runs them on its active allocations, one at a time, jobs in `deployment_seq`
//! order, in a second transaction. Their KV writes are committed only when every command succeeded.
//! Every command runs even after one failed; the build fails with all of their failures
//! (`job <j> command <c> failed: <ip>: …`, one per line).

use crate::bucket::{now_unix, Bucket};
use crate::jobcmd::{lock_kv, shared_kv, EventRun, JobCommands};
use crate::output::Reporter;
use crate::runlog::RunLog;
use maand_core::manifest::Event;
use maand_core::{Error, ErrorKind, Result};
use maand_store::catalog;
use maand_store::kv::KvStore;
use rusqlite::Connection;

pub fn run_post_build(bucket: &Bucket, conn: &mut Connection, out: &dyn Reporter) -> Result<()> {
    let has_post_build = catalog::load_job_commands(conn)?.iter().any(|c| c.executed_on == Event::PostBuild.as_str());
    if !has_post_build {
        return Ok(());
    }
    let tx = conn.transaction().map_err(|e| Error::new(ErrorKind::Database, format!("begin post_build: {e}")))?;
    let kv = shared_kv(KvStore::load(&tx)?);
    let log = RunLog::open(&bucket.paths, bucket.conf.log_format, "build", catalog::bucket_row(&tx)?.update_seq)?;
    {
        let commands = JobCommands::start(bucket, &tx, kv.clone(), out, &log)?;
        let mut failures = Vec::new();
        for job in commands.catalog().jobs_with(Event::PostBuild) {
            let workers = commands.active_workers(&job);
            let run = EventRun { job: &job, event: Event::PostBuild, workers: &workers, concurrency: 1, env: &[] };
            for command in commands.commands(&job, Event::PostBuild) {
                if let Err(e) = commands.run_command(&run, &command) {
                    failures.push(e.detail);
                }
            }
        }
        if !failures.is_empty() {
            return Err(Error::new(ErrorKind::JobCommandFailed, failures.join("\n")).context("post_build"));
        }
    }
    lock_kv(&kv).persist(&tx, now_unix())?;
    tx.commit().map_err(|e| Error::new(ErrorKind::Database, format!("commit post_build: {e}")))
}
