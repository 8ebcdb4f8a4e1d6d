//! `maand cat certs`: the bucket CA and every leaf certificate in KV with expiry and status.

use super::{check_filter, Filter, Table};
use crate::bucket::{now_unix, Bucket};
use crate::calendar::civil_from_days;
use maand_core::Result;
use maand_store::catalog;
use maand_store::certs::inspect_cert;
use maand_store::kv::KvStore;
use serde_json::json;

const DAY: i64 = 86_400;

pub fn certs(bucket: &Bucket, filter: &Filter) -> Result<Table> {
    let conn = bucket.connect()?;
    let allocations = catalog::load_allocations(&conn)?;
    let known_jobs: Vec<String> = allocations.iter().map(|a| a.job.clone()).collect();
    let known_workers: Vec<String> = allocations.iter().map(|a| a.worker_ip.clone()).collect();
    check_filter("jobs", &filter.jobs, &known_jobs)?;
    check_filter("workers", &filter.workers, &known_workers)?;
    let kv = KvStore::load(&conn)?;
    let now = now_unix();
    let buffer = bucket.conf.certs_renewal_buffer;
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
    let mut push = |scope: &str, job: &str, worker: &str, cert: &str, pem: &str| {
        let row = match inspect_cert(pem) {
            Ok(info) => {
                let left = info.not_after_unix - now;
                let status = if left <= 0 {
                    "expired"
                } else if buffer > 0 && left <= buffer * DAY {
                    "expiring"
                } else {
                    "ok"
                };
                vec![
                    json!(scope),
                    json!(job),
                    json!(worker),
                    json!(cert),
                    json!(info.common_name),
                    json!(format_utc(info.not_after_unix)),
                    json!(left.div_euclid(DAY)),
                    json!(status),
                ]
            }
            Err(_) => vec![
                json!(scope),
                json!(job),
                json!(worker),
                json!(cert),
                json!(""),
                json!(""),
                json!(null),
                json!("invalid"),
            ],
        };
        t.push(row);
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
