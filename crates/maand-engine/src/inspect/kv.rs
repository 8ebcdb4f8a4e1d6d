//! `maand cat kv [list]` and `maand cat kv get <ns> <key> [--reveal]`. Values stored encrypted
//! (job secrets, leaf private keys) are shown as `[encrypted]` unless `--reveal`.

use super::{check_filter, Table};
use crate::bucket::Bucket;
use maand_core::kv_access::{is_encrypted_at_rest, readable_namespaces};
use maand_core::{Error, ErrorKind, Result};
use maand_store::catalog;
use maand_store::kv::KvStore;
use maand_store::secrets::{is_encrypted, SecretKey};
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeSet;

#[derive(Debug, Clone, Default)]
pub struct KvListOptions {
    pub jobs: Vec<String>,
    /// Only live keys (`--active`) or only deleted keys (`--deleted`).
    pub active: bool,
    pub deleted: bool,
    /// Whole values (JSON for scripts); otherwise long values are cut for the table.
    pub whole_values: bool,
}

const MAX_SHOWN: usize = 50;

/// Whether a stored value is hidden unless revealed: encrypted, or of a kind stored encrypted.
fn is_hidden(ns: &str, key: &str, value: &str) -> bool {
    is_encrypted(value) || is_encrypted_at_rest(ns, key) && !value.is_empty()
}

fn shown_value(ns: &str, key: &str, value: &str, whole: bool) -> String {
    if is_hidden(ns, key, value) {
        return "[encrypted]".into();
    }
    if !whole && value.chars().count() > MAX_SHOWN {
        let cut: String = value.chars().take(MAX_SHOWN).collect();
        return format!("{cut}...");
    }
    value.to_string()
}

pub fn kv_list(bucket: &Bucket, opts: &KvListOptions) -> Result<Table> {
    let conn = bucket.connect()?;
    let kv = KvStore::load(&conn)?;
    let allowed = allowed_namespaces(&conn, &opts.jobs)?;
    let mut t = Table::new(&[
        ("namespace", "Namespace"),
        ("key", "Key"),
        ("value", "Value"),
        ("version", "Version"),
        ("ttl", "ttl"),
        ("created_date", "createdDate"),
        ("deleted", "deleted"),
    ]);
    for (ns, key, entry) in kv.all_entries() {
        if allowed.as_ref().is_some_and(|set| !set.contains(ns)) {
            continue;
        }
        if (opts.active && entry.deleted) || (opts.deleted && !entry.deleted) {
            continue;
        }
        t.push(vec![
            json!(ns),
            json!(key),
            json!(shown_value(ns, key, &entry.value, opts.whole_values)),
            json!(entry.version),
            json!(entry.ttl),
            json!(entry.created_date),
            json!(i64::from(entry.deleted)),
        ]);
    }
    Ok(t)
}

/// With `--jobs`: the union of namespaces readable by those jobs' non-removed allocations.
fn allowed_namespaces(conn: &rusqlite::Connection, jobs: &[String]) -> Result<Option<BTreeSet<String>>> {
    if jobs.is_empty() {
        return Ok(None);
    }
    check_filter("jobs", jobs, &catalog::load_job_names(conn)?)?;
    let commands = catalog::load_job_commands(conn)?;
    let mut set = BTreeSet::new();
    for a in catalog::load_allocations(conn)?.iter().filter(|a| !a.removed && jobs.contains(&a.job)) {
        let upstream: BTreeSet<String> = commands
            .iter()
            .filter(|c| c.job == a.job && !c.demand_job.is_empty())
            .map(|c| c.demand_job.clone())
            .collect();
        let upstream: Vec<String> = upstream.into_iter().collect();
        set.extend(readable_namespaces(&a.job, &a.worker_ip, &upstream));
    }
    Ok(Some(set))
}

#[derive(Debug, Clone, Serialize)]
pub struct KvGet {
    pub namespace: String,
    pub key: String,
    pub value: String,
    pub version: i64,
    pub ttl: String,
    pub created_date: String,
}

impl KvGet {
    /// The `namespace:` / `key:` / … lines of spec §3.11.
    pub fn to_lines(&self) -> String {
        format!(
            "namespace: {}\nkey: {}\nvalue: {}\nversion: {}\nttl: {}\ncreated_date: {}\n",
            self.namespace, self.key, self.value, self.version, self.ttl, self.created_date
        )
    }
}

pub fn kv_get(bucket: &Bucket, ns: &str, key: &str, reveal: bool) -> Result<KvGet> {
    let conn = bucket.connect()?;
    let kv = KvStore::load(&conn)?;
    let entry = kv
        .entry(ns, key)
        .filter(|e| !e.deleted)
        .ok_or_else(|| Error::new(ErrorKind::KeyNotFound, format!("namespace {ns}, key {key}")))?;
    let value = match (is_hidden(ns, key, &entry.value), reveal) {
        (false, _) => entry.value.clone(),
        (true, false) => "[encrypted] (add --reveal to decrypt)".to_string(),
        (true, true) if is_encrypted(&entry.value) => SecretKey::load(&bucket.paths)?.decrypt(&entry.value)?,
        (true, true) => entry.value.clone(),
    };
    Ok(KvGet {
        namespace: ns.to_string(),
        key: key.to_string(),
        value,
        version: entry.version,
        ttl: entry.ttl.clone(),
        created_date: entry.created_date.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_leaf_keys_are_hidden_certificates_are_not() {
        let alloc = "maand/job/api/worker/10.0.0.1";
        assert_eq!(shown_value(alloc, "certs/tls.key", "enc:v1:AAAA", false), "[encrypted]");
        assert_eq!(
            shown_value(alloc, "certs/tls.key", "-----BEGIN RSA PRIVATE KEY-----", true),
            "[encrypted]",
            "a leaf key is hidden even if it were stored in plaintext"
        );
        assert_eq!(shown_value("secrets/job/api", "password", "plain", false), "[encrypted]");
        assert_eq!(shown_value(alloc, "certs/tls.crt", "CRT", false), "CRT");
        assert_eq!(shown_value("vars/job/api", "x", "enc:v1:AAAA", false), "[encrypted]");
        assert_eq!(shown_value("vars/job/api", "x", &"y".repeat(60), false), format!("{}...", "y".repeat(50)));
        assert_eq!(shown_value("vars/job/api", "x", &"y".repeat(60), true), "y".repeat(60), "JSON gets whole values");
    }
}
