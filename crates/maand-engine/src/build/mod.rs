//! `maand build` (spec/features.md §4 steps 1–14): the workspace becomes the catalog in ONE
//! transaction — a failed build commits nothing. Then the `post_build` job commands run in a
//! second transaction (jobs in `deployment_seq` order); their KV is committed only when all
//! succeed, and a failure fails the build naming the command and worker.

mod catalog_rows;
mod certs;
mod post_build;
mod prometheus;
mod variables;
pub mod workspace;

pub use certs::md5_hex;
pub use variables::{allocation_ns, job_ns};

use crate::bucket::{now_unix, Bucket};
use crate::output::{Reporter, StderrReporter};
use maand_core::placement::{validate_worker_resources, WorkerLoad};
use maand_core::{Error, ErrorKind, Result};
use maand_store::catalog;
use maand_store::kv::{purge_stale_versions, KvStore};
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Also purge `vars/job/<job>` and `secrets/job/<job>` of jobs left without allocations.
    pub purge_job_kv: bool,
    /// Run no `post_build` job command (a plan with `--no-hooks`).
    pub skip_post_build: bool,
}

/// What a build did (printed by `maand build`, measured by the benchmark).
#[derive(Debug, Clone, Default)]
pub struct BuildReport {
    pub workers: usize,
    pub jobs: usize,
    pub allocations: usize,
    pub kv_rows_written: usize,
    pub kv_rows_purged: usize,
    pub certs_issued: usize,
    pub elapsed: Duration,
}

/// KV history purge at build keeps a week of tombstones/old versions (internals §3.2).
const BUILD_KV_RETAIN_DAYS: i64 = 7;

/// Run a full build under the bucket lock.
pub fn build(root: &std::path::Path, opts: &BuildOptions) -> Result<BuildReport> {
    let bucket = Bucket::open_locked(root, "build")?;
    let report = build_in(&bucket, opts);
    let _ = std::fs::remove_dir_all(bucket.paths.tmp());
    report
}

/// Build inside an already opened and locked bucket, `post_build` output on stderr.
pub fn build_in(bucket: &Bucket, opts: &BuildOptions) -> Result<BuildReport> {
    build_in_with(bucket, opts, &StderrReporter)
}

/// Build inside an already opened and locked bucket (used by `deploy -b`), streaming `post_build`
/// command output to `out`.
pub fn build_in_with(bucket: &Bucket, opts: &BuildOptions, out: &dyn Reporter) -> Result<BuildReport> {
    let started = Instant::now();
    let paths = &bucket.paths;
    let conf = &bucket.conf;
    let mut warnings = Vec::new();
    let ws = workspace::read_workspace(paths, &conf.job_config_selector, &mut warnings);
    for warning in &warnings {
        out.message(&warning.to_string());
    }
    let ws = ws?;
    let ca_crt = read_required(&paths.ca_crt())?;
    let ca_key = read_required(&paths.ca_key())?;
    let now = now_unix();
    let secret_key = maand_store::secrets::SecretKey::load(paths).ok();

    let mut conn = bucket.connect()?;
    let tx = conn.transaction().map_err(|e| Error::new(ErrorKind::Database, format!("begin build: {e}")))?;
    let bucket_id = catalog::bucket_row(&tx)?.bucket_id;
    let mut kv = KvStore::load(&tx)?;
    let state = catalog_rows::write_catalog(&tx, &ws)?;
    variables::write_variables(
        &mut kv,
        &variables::VariablesInput {
            ws: &ws,
            state: &state,
            bucket_id: &bucket_id,
            ca_crt: &ca_crt,
            purge_job_kv: opts.purge_job_kv,
        },
    );
    let certs_issued = certs::write_certs(
        &tx,
        &mut kv,
        &certs::CertsInput {
            ws: &ws,
            state: &state,
            ca_crt: &ca_crt,
            ca_key: &ca_key,
            secret_key: secret_key.as_ref(),
            ttl_days: conf.certs_ttl,
            renewal_buffer_days: conf.certs_renewal_buffer,
            now_unix: now,
        },
    )?;
    variables::write_allocation_variables(&mut kv, &state);
    let template_limits = crate::template::Limits::with_time_limit_seconds(conf.template_timeout_seconds);
    prometheus::write_scrape_catalog(&mut kv, &ws, &state, secret_key.as_ref(), template_limits)?;
    let kv_rows_purged = purge_stale_versions(&tx, BUILD_KV_RETAIN_DAYS, now)?;
    validate_resources(&state)?;
    let kv_rows_written = kv.persist(&tx, now)?;
    tx.commit().map_err(|e| Error::new(ErrorKind::Database, format!("commit build: {e}")))?;
    if kv_rows_purged > 0 {
        let _ = conn.execute_batch("VACUUM");
    }
    if !opts.skip_post_build {
        post_build::run_post_build(bucket, &mut conn, out)?;
    }
    Ok(BuildReport {
        workers: state.workers.len(),
        jobs: state.jobs.len(),
        allocations: state.allocations.len(),
        kv_rows_written,
        kv_rows_purged,
        certs_issued,
        elapsed: started.elapsed(),
    })
}

/// Step 12: the reservations of jobs with active allocations must fit each worker.
fn validate_resources(state: &catalog_rows::CatalogState) -> Result<()> {
    let mut loads: Vec<WorkerLoad> = state
        .workers
        .iter()
        .map(|w| WorkerLoad {
            ip: w.worker_ip.clone(),
            available_memory_mb: w.available_memory_mb.parse().unwrap_or(0.0),
            available_cpu_mhz: w.available_cpu_mhz.parse().unwrap_or(0.0),
            required_memory_mb: 0.0,
            required_cpu_mhz: 0.0,
        })
        .collect();
    let index: HashMap<&str, usize> =
        state.workers.iter().enumerate().map(|(i, w)| (w.worker_ip.as_str(), i)).collect();
    for a in state.allocations.iter().filter(|a| a.is_active()) {
        let (Some(&i), Some(r)) = (index.get(a.worker_ip.as_str()), state.reservations.get(&a.job)) else { continue };
        loads[i].required_memory_mb += r.memory_mb;
        loads[i].required_cpu_mhz += r.cpu_mhz;
    }
    validate_worker_resources(&loads)
}

fn read_required(path: &std::path::Path) -> Result<String> {
    workspace::read_text(path, &path.display().to_string(), ErrorKind::Unexpected)?.ok_or_else(|| {
        Error::new(
            ErrorKind::Unexpected,
            format!("{} is missing: run maand init in the bucket directory", path.display()),
        )
    })
}
