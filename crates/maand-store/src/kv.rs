//! The versioned KV store (spec/features.md §6.1, internals.md §3.2): an in-memory session over the
//! latest row of every (namespace, key) — tombstones included — that records changes and persists
//! them as new append-only rows; plus the history purge.
//!
//! Versions: a change made in a session gets the persisted version + 1, however many times the key
//! changes before `persist`; a key changed back to its persisted state writes nothing, and a key
//! created and deleted within one session leaves no row.

use crate::secrets::{is_encrypted, SecretKey};
use maand_core::{Error, ErrorKind, Result};
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection};
use std::collections::BTreeMap;

/// History kept per key by the purge: rows with `version < latest - MAX_VERSIONS_TO_KEEP` go.
pub const MAX_VERSIONS_TO_KEEP: i64 = 7;
const SECONDS_PER_DAY: i64 = 86_400;
const NO_TTL: &str = "0";

/// The latest state of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvEntry {
    pub value: String,
    pub version: i64,
    pub ttl: String,
    pub deleted: bool,
    /// Unix seconds of the row, as stored; empty for a change not yet persisted.
    pub created_date: String,
}

impl KvEntry {
    fn same_state(&self, other: &KvEntry) -> bool {
        self.value == other.value && self.deleted == other.deleted && self.ttl == other.ttl
    }
}

/// What the database holds for a key, relative to the in-memory entry.
#[derive(Debug, Clone)]
enum Persisted {
    /// The entry is exactly the latest row.
    Same,
    /// No row exists yet.
    Absent,
    /// The latest row (captured at the first change of this session).
    Was(KvEntry),
}

#[derive(Debug, Clone)]
struct Slot {
    entry: KvEntry,
    persisted: Persisted,
}

impl Slot {
    fn is_changed(&self) -> bool {
        !matches!(self.persisted, Persisted::Same)
    }

    /// Move to a new state; returns false when it already was in that state.
    fn change(&mut self, value: String, deleted: bool) -> bool {
        let next = KvEntry { value, version: 0, ttl: NO_TTL.to_string(), deleted, created_date: String::new() };
        if self.entry.same_state(&next) {
            return false;
        }
        if let Persisted::Same = self.persisted {
            self.persisted = Persisted::Was(self.entry.clone());
        }
        self.entry = match &self.persisted {
            Persisted::Was(old) if old.same_state(&next) => {
                let old = old.clone();
                self.persisted = Persisted::Same;
                old
            }
            Persisted::Was(old) => KvEntry { version: old.version + 1, ..next },
            Persisted::Absent | Persisted::Same => KvEntry { version: 1, ..next },
        };
        true
    }
}

/// A KV session: load, read and change in memory, then `persist` the changes.
#[derive(Debug, Clone, Default)]
pub struct KvStore {
    namespaces: BTreeMap<String, BTreeMap<String, Slot>>,
}

impl KvStore {
    /// Load the latest row of every key (tombstones included) in one query.
    pub fn load(conn: &Connection) -> Result<KvStore> {
        let db_err = |e: rusqlite::Error| Error::new(ErrorKind::Database, format!("load kv: {e}"));
        // SQLite returns the bare columns of the row holding max(version).
        let mut stmt = conn
            .prepare(
                "SELECT namespace, key, value, max(version), ttl, created_date, deleted
                 FROM key_value GROUP BY namespace, key",
            )
            .map_err(db_err)?;
        let mut rows = stmt.query([]).map_err(db_err)?;
        let mut store = KvStore::default();
        while let Some(row) = rows.next().map_err(db_err)? {
            let entry = KvEntry {
                value: stored_text(row.get_ref(2).map_err(db_err)?),
                version: row.get::<_, Option<i64>>(3).map_err(db_err)?.unwrap_or(0),
                ttl: match stored_text(row.get_ref(4).map_err(db_err)?) {
                    ttl if ttl.is_empty() => NO_TTL.to_string(),
                    ttl => ttl,
                },
                deleted: row.get::<_, Option<i64>>(6).map_err(db_err)?.unwrap_or(0) != 0,
                created_date: stored_text(row.get_ref(5).map_err(db_err)?),
            };
            store
                .namespaces
                .entry(stored_text(row.get_ref(0).map_err(db_err)?))
                .or_default()
                .insert(stored_text(row.get_ref(1).map_err(db_err)?), Slot { entry, persisted: Persisted::Same });
        }
        Ok(store)
    }

    fn slot(&self, ns: &str, key: &str) -> Option<&Slot> {
        self.namespaces.get(ns)?.get(key)
    }

    /// The live value of a key.
    pub fn get(&self, ns: &str, key: &str) -> Option<&str> {
        self.entry(ns, key).filter(|e| !e.deleted).map(|e| e.value.as_str())
    }

    /// The latest state of a key, tombstones included.
    pub fn entry(&self, ns: &str, key: &str) -> Option<&KvEntry> {
        self.slot(ns, key).map(|s| &s.entry)
    }

    /// Every key's latest state (tombstones included), sorted by namespace then key.
    pub fn all_entries(&self) -> impl Iterator<Item = (&str, &str, &KvEntry)> + '_ {
        self.namespaces
            .iter()
            .flat_map(|(ns, keys)| keys.iter().map(move |(k, slot)| (ns.as_str(), k.as_str(), &slot.entry)))
    }

    /// Put a plain value (whitespace trimmed). Identical live value: no-op, returns false.
    pub fn put(&mut self, ns: &str, key: &str, value: &str) -> bool {
        self.write(ns, key, value.trim().to_string())
    }

    fn write(&mut self, ns: &str, key: &str, value: String) -> bool {
        let keys = self.namespaces.entry(ns.to_string()).or_default();
        match keys.get_mut(key) {
            Some(slot) => slot.change(value, false),
            None => {
                let entry =
                    KvEntry { value, version: 1, ttl: NO_TTL.to_string(), deleted: false, created_date: String::new() };
                keys.insert(key.to_string(), Slot { entry, persisted: Persisted::Absent });
                true
            }
        }
    }

    /// Tombstone a live key (the value is kept in the tombstone row).
    pub fn delete(&mut self, ns: &str, key: &str) -> Result<()> {
        let not_found = || Error::new(ErrorKind::KeyNotFound, format!("namespace {ns}, key {key}"));
        let keys = self.namespaces.get_mut(ns).ok_or_else(not_found)?;
        let slot = keys.get_mut(key).filter(|s| !s.entry.deleted).ok_or_else(not_found)?;
        if let Persisted::Absent = slot.persisted {
            keys.remove(key);
            return Ok(());
        }
        let value = slot.entry.value.clone();
        slot.change(value, true);
        Ok(())
    }

    /// Live keys of a namespace, sorted.
    pub fn keys(&self, ns: &str) -> Vec<String> {
        self.namespaces
            .get(ns)
            .map(|keys| keys.iter().filter(|(_, s)| !s.entry.deleted).map(|(k, _)| k.clone()).collect())
            .unwrap_or_default()
    }

    /// Namespaces with at least one live key, sorted.
    pub fn namespaces(&self) -> Vec<String> {
        self.namespaces
            .iter()
            .filter(|(_, keys)| keys.values().any(|s| !s.entry.deleted))
            .map(|(ns, _)| ns.clone())
            .collect()
    }

    /// Tombstone every live key of a namespace.
    pub fn purge_namespace(&mut self, ns: &str) {
        for key in self.keys(ns) {
            // The key is live, so delete cannot fail.
            let _ = self.delete(ns, &key);
        }
    }

    /// Make a namespace hold exactly `values`: put every value, tombstone other live keys.
    pub fn sync_namespace(&mut self, ns: &str, values: &BTreeMap<String, String>) {
        for (key, value) in values {
            self.put(ns, key, value);
        }
        for key in self.keys(ns) {
            if !values.contains_key(&key) {
                let _ = self.delete(ns, &key);
            }
        }
    }

    /// Store a secret encrypted (not trimmed). No-op (false) when the live value already decrypts
    /// to the same plaintext, so re-putting a secret does not churn versions.
    pub fn put_secret(&mut self, key: &SecretKey, ns: &str, k: &str, plaintext: &str) -> Result<bool> {
        if let Some(current) = self.get(ns, k) {
            if is_encrypted(current) && key.decrypt(current).is_ok_and(|p| p == plaintext) {
                return Ok(false);
            }
        }
        let sealed = key.encrypt(plaintext)?;
        Ok(self.write(ns, k, sealed))
    }

    /// The live value of a key, decrypted when it is in the `enc:v1:` format.
    pub fn get_secret(&self, key: &SecretKey, ns: &str, k: &str) -> Result<Option<String>> {
        match self.get(ns, k) {
            None => Ok(None),
            Some(value) if is_encrypted(value) => {
                key.decrypt(value).map(Some).map_err(|e| e.context(format!("namespace {ns}, key {k}")))
            }
            Some(value) => Ok(Some(value.to_string())),
        }
    }

    /// The live value of a key as plaintext: decrypted when stored encrypted (`enc:v1:`), as stored
    /// otherwise. An encrypted value without the bucket's key is an error naming the key.
    pub fn get_revealed(&self, key: Option<&SecretKey>, ns: &str, k: &str) -> Result<Option<String>> {
        match (key, self.get(ns, k)) {
            (Some(key), _) => self.get_secret(key, ns, k),
            (None, Some(value)) if is_encrypted(value) => Err(Error::new(
                ErrorKind::KvKey,
                format!("secrets/kv.key is needed to decrypt namespace {ns}, key {k}"),
            )),
            (None, value) => Ok(value.map(str::to_string)),
        }
    }

    /// Number of keys whose state differs from the database.
    pub fn changed_count(&self) -> usize {
        self.namespaces.values().flat_map(|keys| keys.values()).filter(|s| s.is_changed()).count()
    }

    /// Insert one row per changed key (its final version; `created_date` = `now_unix`, ttl 0) and
    /// mark everything persisted. Returns the rows written. Works inside a transaction.
    pub fn persist(&mut self, conn: &Connection, now_unix: i64) -> Result<usize> {
        let db_err = |e: rusqlite::Error| Error::new(ErrorKind::Database, format!("persist kv: {e}"));
        let created_date = now_unix.to_string();
        let mut stmt = conn
            .prepare_cached(
                "INSERT INTO key_value(key, value, namespace, version, ttl, created_date, deleted)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(db_err)?;
        let mut written = 0;
        for (ns, keys) in &self.namespaces {
            for (key, slot) in keys.iter().filter(|(_, s)| s.is_changed()) {
                let e = &slot.entry;
                stmt.execute(params![key, e.value, ns, e.version, e.ttl, created_date, i64::from(e.deleted)])
                    .map_err(db_err)?;
                written += 1;
            }
        }
        for slot in self.namespaces.values_mut().flat_map(|keys| keys.values_mut()) {
            if slot.is_changed() {
                slot.entry.created_date.clone_from(&created_date);
                slot.persisted = Persisted::Same;
            }
        }
        Ok(written)
    }

    /// A copy of the session to roll back to (`*store = checkpoint`).
    pub fn checkpoint(&self) -> KvStore {
        self.clone()
    }
}

/// Any stored SQLite value as text (the Go schema declares TEXT but older rows may hold integers).
pub(crate) fn stored_text(value: ValueRef<'_>) -> String {
    match value {
        ValueRef::Null => String::new(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(f) => f.to_string(),
        ValueRef::Text(t) | ValueRef::Blob(t) => String::from_utf8_lossy(t).into_owned(),
    }
}

/// Trim KV history (spec §6.1): for keys whose latest row is older than `retain_days`, delete rows
/// with `version < latest - 7`, and every row of keys whose latest row is a tombstone. Returns the
/// rows deleted.
pub fn purge_stale_versions(conn: &Connection, retain_days: i64, now_unix: i64) -> Result<usize> {
    let cutoff = now_unix - retain_days.max(0) * SECONDS_PER_DAY;
    conn.execute(
        "WITH latest AS (
             SELECT namespace, key, max(version) AS version, ifnull(deleted, 0) AS deleted,
                    CAST(created_date AS INTEGER) AS created
             FROM key_value GROUP BY namespace, key
         )
         DELETE FROM key_value WHERE rowid IN (
             SELECT kv.rowid FROM key_value kv
             JOIN latest l ON l.namespace = kv.namespace AND l.key = kv.key
             WHERE l.created < ?1 AND (l.deleted != 0 OR kv.version < l.version - ?2)
         )",
        params![cutoff, MAX_VERSIONS_TO_KEEP],
    )
    .map_err(|e| Error::new(ErrorKind::Database, format!("purge kv history: {e}")))
}

#[cfg(test)]
mod tests;
