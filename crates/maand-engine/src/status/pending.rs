//! Pending changes for `maand status`: what `maand deploy` would do to each allocation, found by
//! the deploy planner itself (the catalog's last build staged into a private scratch directory,
//! removed afterwards, and compared with what was promoted — no hooks run, nothing is written);
//! and whether the workspace's job files differ from that build (then: run maand build).

use crate::bucket::Bucket;
use crate::build::workspace::read_workspace;
use crate::deploy::snapshot::Snapshot;
use crate::deploy::{io_error, plan_job, PlanInput};
use maand_core::Result;
use maand_store::catalog;
use maand_store::kv::KvStore;
use maand_store::secrets::SecretKey;
use rusqlite::Connection;
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;

/// Per job: worker IP -> the deploy's action there (`start`, `restart`, …), only where it is not
/// `skip`; or why the job could not be planned.
pub(crate) type PendingActions = BTreeMap<String, std::result::Result<BTreeMap<String, String>, String>>;

/// Plan `jobs` as `maand deploy --dry-run` would, from the catalog.
pub(crate) fn pending_actions(
    bucket: &Bucket,
    conn: &Connection,
    snap: &Snapshot,
    jobs: &[String],
) -> Result<PendingActions> {
    let scratch = Scratch::create(bucket)?;
    let kv = KvStore::load(conn)?;
    let key = SecretKey::load(&bucket.paths).ok();
    let input = PlanInput {
        conn,
        snap,
        kv: &kv,
        key: key.as_ref(),
        staging_root: &scratch.0,
        update_seq: snap.update_seq + 1,
        force: false,
        sync_only: false,
        diff: false,
        releases: None,
        template_limits: crate::template::Limits::with_time_limit_seconds(bucket.conf.template_timeout_seconds),
    };
    let mut out = PendingActions::new();
    for job in jobs {
        let planned = plan_job(&input, job, snap.deployment_seq(job)).map(|p| {
            p.plan
                .allocations
                .into_iter()
                .filter(|a| a.planned.is_required())
                .map(|a| (a.worker_ip, a.action))
                .collect::<BTreeMap<_, _>>()
        });
        out.insert(job.clone(), planned.map_err(|e| e.to_string()));
    }
    Ok(out)
}

/// A private (0700) directory under the bucket's `tmp/` for staged files, which can hold
/// rendered secrets; removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn create(bucket: &Bucket) -> Result<Scratch> {
        let dir = bucket.paths.tmp().join(format!("status-{}", uuid::Uuid::new_v4()));
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).map_err(|e| io_error(&dir, e))?;
        Ok(Scratch(std::fs::canonicalize(&dir).unwrap_or(dir)))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How the workspace differs from the catalog's last build.
#[derive(Debug, Default)]
pub(crate) struct WorkspaceCheck {
    /// Catalog jobs whose files in `workspace/jobs/<job>/` changed since the build.
    pub changed_jobs: BTreeSet<String>,
    /// One line per difference, each saying to run maand build.
    pub notes: Vec<String>,
}

/// Compare the job directories of the workspace with the job files of the last build. (Other
/// workspace files — workers.json, bucket.conf, disabled.json — are not compared.)
pub(crate) fn workspace_changes(bucket: &Bucket, conn: &Connection, catalog_jobs: &[String]) -> Result<WorkspaceCheck> {
    let mut check = WorkspaceCheck::default();
    let mut warnings = Vec::new();
    let ws = match read_workspace(&bucket.paths, &bucket.conf.job_config_selector, &mut warnings) {
        Ok(ws) => ws,
        Err(e) => {
            check.notes.push(format!("the workspace does not build ({e}); fix it, then run maand build"));
            return Ok(check);
        }
    };
    for job in ws.jobs.keys().filter(|j| !catalog_jobs.contains(j)) {
        check.notes.push(format!("job {job} is new in the workspace: run maand build"));
    }
    for job in catalog_jobs {
        let Some(source) = ws.jobs.get(job) else {
            check.notes.push(format!("job {job} was removed from the workspace: run maand build"));
            continue;
        };
        let built = catalog::load_job_files(conn, job)?;
        let as_map = |files: &[catalog::JobFile]| -> BTreeMap<String, (bool, Vec<u8>)> {
            files.iter().map(|f| (f.path.clone(), (f.isdir, f.content.clone()))).collect()
        };
        if as_map(&source.files) != as_map(&built) {
            check.notes.push(format!("job {job}: workspace/jobs/{job} changed since the last build: run maand build"));
            check.changed_jobs.insert(job.clone());
        }
    }
    Ok(check)
}
