//! The certificate inventory — the bucket CA and every leaf certificate in KV with expiry and
//! status — behind `maand cat certs` and the certificate metrics pushed to Prometheus.

use super::{check_filter, Filter, Table};
use crate::bucket::{now_unix, Bucket};
use crate::calendar::civil_from_days;
use maand_core::Result;
use maand_store::catalog;
use maand_store::certs::{inspect_cert, CertInfo};
use maand_store::kv::KvStore;
use serde_json::json;

const DAY: i64 = 86_400;

/// One certificate of the inventory: the bucket CA or an allocation's leaf.
#[derive(Debug, Clone)]
pub struct CertEntry {
    /// `ca` or `job`.
    pub scope: &'static str,
    pub job: String,
    pub worker: String,
    pub cert: String,
    /// `None` when the PEM does not parse (status `invalid`).
    pub info: Option<CertInfo>,
    /// `ok`, `expiring` (within the renewal buffer), `expired` or `invalid`.
    pub status: &'static str,
}

/// The CA (without job/worker filters) and every non-removed allocation's leaf certificates.
pub fn cert_inventory(bucket: &Bucket, filter: &Filter, now: i64) -> Result<Vec<CertEntry>> {
    let conn = bucket.connect()?;
    let allocations = catalog::load_allocations(&conn)?;
    let known_jobs: Vec<String> = allocations.iter().map(|a| a.job.clone()).collect();
    let known_workers: Vec<String> = allocations.iter().map(|a| a.worker_ip.clone()).collect();
    check_filter("jobs", &filter.jobs, &known_jobs)?;
    check_filter("workers", &filter.workers, &known_workers)?;
    let kv = KvStore::load(&conn)?;
    let buffer = bucket.conf.certs_renewal_buffer;
    let mut out = Vec::new();
    let mut push = |scope: &'static str, job: &str, worker: &str, cert: &str, pem: &str| {
        let info = inspect_cert(pem).ok();
        let status = match &info {
            None => "invalid",
            Some(i) if i.not_after_unix - now <= 0 => "expired",
            Some(i) if buffer > 0 && i.not_after_unix - now <= buffer * DAY => "expiring",
            Some(_) => "ok",
        };
        out.push(CertEntry { scope, job: job.into(), worker: worker.into(), cert: cert.into(), info, status });
    };
    if filter.jobs.is_empty() && filter.workers.is_empty() {
        let ca = std::fs::read_to_string(bucket.paths.ca_crt()).unwrap_or_default();
        push("ca", "", "", "ca", &ca);
    }
    for a in allocations.iter().filter(|a| !a.removed && filter.job_ok(&a.job) && filter.worker_ok(&a.worker_ip)) {
        let ns = crate::build::allocation_ns(&a.job, &a.worker_ip);
        for key in kv.keys(&ns) {
            let Some(name) = key.strip_prefix("certs/").and_then(|k| k.strip_suffix(".crt")) else { continue };
            if let Some(pem) = kv.get(&ns, &key) {
                push("job", &a.job, &a.worker_ip, name, pem);
            }
        }
    }
    Ok(out)
}

pub fn certs(bucket: &Bucket, filter: &Filter) -> Result<Table> {
    let now = now_unix();
    let mut t = Table::new(&[
        ("scope", "scope"),
        ("job", "job"),
        ("worker", "worker"),
        ("cert", "cert"),
        ("common_name", "common_name"),
        ("not_after", "not_after"),
        ("days_left", "days_left"),
        ("status", "status"),
    ]);
    for e in cert_inventory(bucket, filter, now)? {
        let (common_name, not_after, days_left) = match &e.info {
            Some(i) => (
                json!(i.common_name),
                json!(format_utc(i.not_after_unix)),
                json!((i.not_after_unix - now).div_euclid(DAY)),
            ),
            None => (json!(""), json!(""), json!(null)),
        };
        t.push(vec![
            json!(e.scope),
            json!(e.job),
            json!(e.worker),
            json!(e.cert),
            common_name,
            not_after,
            days_left,
            json!(e.status),
        ]);
    }
    Ok(t)
}

/// `2026-11-24 19:02:11 UTC` from unix seconds (proleptic Gregorian, no external clock crate).
pub fn format_utc(secs: i64) -> String {
    let days = secs.div_euclid(DAY);
    let rem = secs.rem_euclid(DAY);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::format_utc;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(1_795_545_731), "2026-11-24 18:42:11 UTC");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00:00 UTC");
    }
}
