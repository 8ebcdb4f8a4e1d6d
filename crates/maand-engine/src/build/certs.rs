//! Build step 8: TLS leaf certificates per allocation (or one shared per job) in KV, renewed when
//! missing, expiring, or when the CA or the manifest's `certs` changed (spec/features.md §10.1).
//! Private keys are stored encrypted with the bucket's key, like job secrets (DESIGN §3.18).

use super::catalog_rows::CatalogState;
use super::variables::allocation_ns;
use super::workspace::Workspace;
use maand_core::{Error, ErrorKind, Result};
use maand_store::catalog::{self, AllocationRow};
use maand_store::certs::{inspect_cert, needs_renewal, Ca};
use maand_store::kv::KvStore;
use maand_store::secrets::SecretKey;
use rusqlite::Connection;

pub struct CertsInput<'a> {
    pub ws: &'a Workspace,
    pub state: &'a CatalogState,
    pub ca_crt: &'a str,
    pub ca_key: &'a str,
    /// The bucket's key (`secrets/kv.key`), needed to store issued private keys.
    pub secret_key: Option<&'a SecretKey>,
    pub ttl_days: i64,
    pub renewal_buffer_days: i64,
    pub now_unix: i64,
}

/// Returns how many certificates were (re)issued.
pub fn write_certs(conn: &Connection, kv: &mut KvStore, input: &CertsInput<'_>) -> Result<usize> {
    let ca_hash = md5_hex(input.ca_crt.as_bytes());
    let ca_changed = catalog::get_hash(conn, "build", "ca")?.and_then(|h| h.current_hash).as_deref() != Some(&ca_hash);
    let mut ca: Option<Ca> = None;
    let mut issued = 0;
    for (job, src) in &input.ws.jobs {
        let allocs: Vec<&AllocationRow> =
            input.state.allocations.iter().filter(|a| &a.job == job && !a.removed).collect();
        let wanted: Vec<&str> = src.manifest.certs.iter().map(|c| c.name.as_str()).collect();
        for a in &allocs {
            drop_unwanted_cert_keys(kv, &allocation_ns(job, &a.worker_ip), &wanted);
        }
        if allocs.is_empty() || src.manifest.certs.is_empty() {
            catalog::delete_hash(conn, "build_certs", job)?;
            continue;
        }
        let spec_hash = md5_hex(src.manifest.certs_json.as_bytes());
        let spec_changed =
            catalog::get_hash(conn, "build_certs", job)?.and_then(|h| h.current_hash).as_deref() != Some(&spec_hash);
        for cert in &src.manifest.certs {
            let crt_key = format!("certs/{}.crt", cert.name);
            let key_key = format!("certs/{}.key", cert.name);
            let stale = |kv: &KvStore, a: &AllocationRow| {
                let ns = allocation_ns(job, &a.worker_ip);
                match (kv.get(&ns, &crt_key), kv.get(&ns, &key_key)) {
                    (Some(crt), Some(_)) => match inspect_cert(crt) {
                        Ok(info) => needs_renewal(info.not_after_unix, input.now_unix, input.renewal_buffer_days),
                        Err(_) => true,
                    },
                    _ => true,
                }
            };
            let ca = match &mut ca {
                Some(ca) => ca,
                None => ca.insert(Ca::from_pem(input.ca_crt, input.ca_key)?),
            };
            if cert.one {
                let regenerate = ca_changed || spec_changed || allocs.iter().any(|a| stale(kv, a));
                if regenerate {
                    let mut ips = vec!["127.0.0.1".to_string()];
                    ips.extend(allocs.iter().map(|a| a.worker_ip.clone()));
                    let (crt, key) = ca.issue_leaf(&cert.common_name, &ips, input.ttl_days, cert.pkcs8)?;
                    issued += 1;
                    for a in &allocs {
                        store_leaf(kv, input, &allocation_ns(job, &a.worker_ip), (&crt_key, &crt), (&key_key, &key))?;
                    }
                }
            } else {
                for a in &allocs {
                    if ca_changed || spec_changed || stale(kv, a) {
                        let ips = vec!["127.0.0.1".to_string(), a.worker_ip.clone()];
                        let (crt, key) = ca.issue_leaf(&cert.common_name, &ips, input.ttl_days, cert.pkcs8)?;
                        issued += 1;
                        store_leaf(kv, input, &allocation_ns(job, &a.worker_ip), (&crt_key, &crt), (&key_key, &key))?;
                    }
                }
            }
        }
        catalog::put_build_hash(conn, "build_certs", job, &spec_hash)?;
    }
    catalog::put_build_hash(conn, "build", "ca", &ca_hash)?;
    Ok(issued)
}

/// Store one issued certificate (plain) and its private key (encrypted; both trimmed as every KV
/// value) in an allocation's namespace.
fn store_leaf(
    kv: &mut KvStore,
    input: &CertsInput<'_>,
    ns: &str,
    (crt_key, crt): (&str, &str),
    (key_key, key): (&str, &str),
) -> Result<()> {
    let secret_key = input.secret_key.ok_or_else(|| {
        Error::new(
            ErrorKind::KvKey,
            "secrets/kv.key is needed to store certificate private keys encrypted (restore it, or run maand init to create one)",
        )
    })?;
    kv.put(ns, crt_key, crt);
    kv.put_secret(secret_key, ns, key_key, key.trim())?;
    Ok(())
}

/// Remove `certs/<name>.crt|key` keys of certificates the manifest no longer declares.
fn drop_unwanted_cert_keys(kv: &mut KvStore, ns: &str, wanted: &[&str]) {
    for key in kv.keys(ns) {
        let Some(file) = key.strip_prefix("certs/") else { continue };
        let name = file.strip_suffix(".crt").or_else(|| file.strip_suffix(".key")).unwrap_or(file);
        if !wanted.contains(&name) {
            let _ = kv.delete(ns, &key);
        }
    }
}

pub fn md5_hex(bytes: &[u8]) -> String {
    use md5::{Digest, Md5};
    let digest = Md5::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
