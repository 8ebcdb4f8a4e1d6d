//! After a successful deploy, the certificate inventory goes to the Prometheus server job by
//! remote-write (spec/features.md §10.2): `maand_cert_not_after_seconds`, `maand_cert_expiring`
//! and `maand_cert_expired` per certificate. Best effort: bounded retries and timeouts, and any
//! failure is a warning, never a failed deploy.

use super::live::LiveCatalog;
use super::remote_write::{encode_body, Series};
use super::server::HTTP_PORT;
use crate::bucket::{now_unix, Bucket};
use crate::deploy::DeployReport;
use crate::inspect::{cert_inventory, CertEntry, Filter};
use crate::output::Reporter;
use base64::Engine;
use maand_store::kv::KvStore;
use maand_store::secrets::SecretKey;
use std::time::Duration;

const ATTEMPTS: u32 = 5;
const FIRST_BACKOFF: Duration = Duration::from_secs(2);
const MAX_BACKOFF: Duration = Duration::from_secs(15);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// After a real deploy that succeeded, push the certificate metrics.
pub fn push_after_deploy(bucket: &Bucket, dry_run: bool, report: Option<&DeployReport>, out: &dyn Reporter) {
    if !dry_run && report.is_some_and(|r| r.failure().is_none()) {
        push_cert_metrics(bucket, out);
    }
}

/// Push the certificate metrics when the bucket has a Prometheus server job with an allocation;
/// problems are reported through `out` as warnings.
fn push_cert_metrics(bucket: &Bucket, out: &dyn Reporter) {
    match push(bucket) {
        Ok(Some(target)) => out.message(&format!("prometheus: certificate metrics pushed to {target}")),
        Ok(None) => {}
        Err(e) => out.message(&format!("warning: prometheus: certificate metrics not pushed: {e}")),
    }
}

/// `Ok(None)` when there is nowhere to push.
fn push(bucket: &Bucket) -> Result<Option<String>, String> {
    let conn = bucket.connect().map_err(|e| e.to_string())?;
    let live = LiveCatalog::load(&conn).map_err(|e| e.to_string())?;
    let Some(job) = live.server_job() else { return Ok(None) };
    let allocations = maand_store::catalog::load_allocations(&conn).map_err(|e| e.to_string())?;
    // The first running allocation (a disabled one has been stopped: nothing would listen).
    let Some(alloc) = allocations.iter().find(|a| a.job == job && a.is_active()) else { return Ok(None) };
    let port = live.port(job, HTTP_PORT).ok_or_else(|| format!("job {job} declares no port {HTTP_PORT}"))?;
    let kv = KvStore::load(&conn).map_err(|e| e.to_string())?;
    let auth = basic_auth(bucket, &kv, job)?;
    let now = now_unix();
    let entries = cert_inventory(bucket, &Filter::default(), now).map_err(|e| e.to_string())?;
    let body = encode_body(&cert_series(&entries, now * 1000))?;
    let url = format!("http://{}:{port}/api/v1/write", alloc.worker_ip);
    post_with_retries(&url, &body, auth.as_deref())?;
    Ok(Some(url))
}

/// `Basic …` from `secrets/job/<job>` `admin_username` / `admin_password` when both are set;
/// only one of them is an error.
fn basic_auth(bucket: &Bucket, kv: &KvStore, job: &str) -> Result<Option<String>, String> {
    let ns = format!("secrets/job/{job}");
    let (user, password) = (kv.get(&ns, "admin_username"), kv.get(&ns, "admin_password"));
    if user.is_none() && password.is_none() {
        return Ok(None);
    }
    let (Some(user), Some(password)) = (user, password) else {
        return Err(format!("{ns} has only one of admin_username and admin_password; set both or neither"));
    };
    let key = SecretKey::load(&bucket.paths).map_err(|e| e.to_string())?;
    let reveal = |stored: &str| {
        if maand_store::secrets::is_encrypted(stored) {
            key.decrypt(stored).map_err(|_| format!("{ns}: a credential cannot be decrypted"))
        } else {
            Ok(stored.to_string())
        }
    };
    let credentials = format!("{}:{}", reveal(user)?, reveal(password)?);
    Ok(Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(credentials))))
}

/// Three gauges per parseable certificate.
fn cert_series(entries: &[CertEntry], timestamp_ms: i64) -> Vec<Series> {
    let mut out = Vec::new();
    for e in entries {
        let Some(info) = &e.info else { continue };
        let labels: Vec<(String, String)> = [
            ("scope", e.scope),
            ("job", e.job.as_str()),
            ("worker", e.worker.as_str()),
            ("cert", e.cert.as_str()),
            ("common_name", info.common_name.as_str()),
            ("status", e.status),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        for (name, value) in [
            ("maand_cert_not_after_seconds", info.not_after_unix as f64),
            ("maand_cert_expiring", flag(e.status == "expiring")),
            ("maand_cert_expired", flag(e.status == "expired")),
        ] {
            out.push(Series { name: name.to_string(), labels: labels.clone(), value, timestamp_ms });
        }
    }
    out
}

/// POST the body; 429, 5xx and network errors are retried (5 attempts, backoff 2 s doubling up
/// to 15 s); other statuses fail at once.
fn post_with_retries(url: &str, body: &[u8], auth: Option<&str>) -> Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(REQUEST_TIMEOUT))
        .http_status_as_error(false)
        .proxy(None)
        .build()
        .into();
    let mut backoff = FIRST_BACKOFF;
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        let mut request = agent
            .post(url)
            .header("Content-Encoding", "snappy")
            .header("Content-Type", "application/x-protobuf")
            .header("User-Agent", "maand")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0");
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        let retry = match request.send(body) {
            Ok(response) => {
                let status = response.status().as_u16();
                if (200..300).contains(&status) {
                    return Ok(());
                }
                last = format!("HTTP {status} from {url}");
                status == 429 || status >= 500
            }
            Err(e) => {
                last = format!("{url}: {e}");
                true
            }
        };
        if !retry || attempt == ATTEMPTS {
            break;
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use maand_store::certs::CertInfo;

    #[test]
    fn three_gauges_per_valid_certificate() {
        let entry = |status: &'static str, info: Option<CertInfo>| CertEntry {
            scope: "job",
            job: "app".into(),
            worker: "10.0.0.1".into(),
            cert: "server".into(),
            info,
            status,
        };
        let info = CertInfo { not_after_unix: 2_000_000_000, common_name: "app".into() };
        let series = cert_series(&[entry("expiring", Some(info)), entry("invalid", None)], 5);
        let values: Vec<(&str, f64)> = series.iter().map(|s| (s.name.as_str(), s.value)).collect();
        assert_eq!(
            values,
            [("maand_cert_not_after_seconds", 2e9), ("maand_cert_expiring", 1.0), ("maand_cert_expired", 0.0)]
        );
        assert!(series[0].labels.contains(&("status".to_string(), "expiring".to_string())));
        assert!(series[0].labels.contains(&("worker".to_string(), "10.0.0.1".to_string())));
    }
}
