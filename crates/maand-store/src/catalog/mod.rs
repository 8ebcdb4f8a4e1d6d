//! Catalog rows (bucket, workers, jobs, allocations, hashes, run history): typed reads and writes on a
//! connection or transaction. SQL lives here and nowhere else; callers see plain structs.

mod allocations;
mod bucket;
mod hashes;
mod history;
mod job_state;
mod jobs;
mod releases;
mod workers;

pub use allocations::{
    clear_previous_hash, load_allocations, mark_removed, set_deployment_seq, set_stopped, stopped_allocations,
    upsert_allocation, AllocationRow,
};
pub use bucket::{bucket_row, insert_bucket, set_update_seq, BucketRow};
pub use hashes::{delete_hash, get_hash, mark_unproven, promote_hash, put_build_hash, put_plan_hash, HashRow};
pub use history::{delete_run, finish_run, insert_run, load_runs, NewRun, RunJobRow, RunRow, RUNNING};
pub use job_state::{forget_removed_jobs_state, post_deploy_pending, set_post_deploy_pending};
pub use jobs::{
    delete_job, load_job_commands, load_job_files, load_job_names, load_job_ports, load_job_selectors, load_jobs,
    write_job, CertRow, CommandRow, JobFile, JobRow, JobWrite, PortRow,
};
pub use releases::{
    allocation_release, allocation_release_numbers, job_releases, keep_release, next_release, prune_releases,
    release_content, AllocationRelease, KeptFile, Pruned, ReleaseFile, ReleaseOf, ReleaseSummary,
};
pub use workers::{load_workers, worker_ports, write_workers, WorkerRow};

use maand_core::{Error, ErrorKind};

/// Wrap a SQLite error as a maand database error with what was being done.
pub(crate) fn db_err(what: &str) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |e| Error::new(ErrorKind::Database, format!("{what}: {e}"))
}
