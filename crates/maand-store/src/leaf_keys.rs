//! Leaf TLS private keys at rest (DESIGN §3.18). The build stores each allocation's
//! `certs/<name>.key` encrypted like a job secret (`enc:v1:`, `secrets/kv.key`). A catalog that
//! holds them in plaintext — written by the Go maand, or by a maand before this change — is sealed
//! the first time a command opens it: every row of such a key (each version and tombstone) is
//! encrypted in place in one transaction, then the catalog is compacted (VACUUM) and its WAL
//! emptied, so the plaintext is gone from free pages and from the WAL as well. Idempotent: a
//! catalog without plaintext keys is not touched (and needs no key file).

use crate::kv::stored_text;
use crate::paths::BucketPaths;
use crate::secrets::SecretKey;
use maand_core::kv_access::is_leaf_private_key;
use maand_core::{Error, ErrorKind, Result};
use rusqlite::{params, Connection, Transaction, TransactionBehavior};

/// Rows that may be plaintext leaf keys (the exact rule is applied in Rust). The namespace range
/// (`maand/job/` up to `maand/job0`, '0' following '/') lets SQLite use the KV index, so the check
/// every command makes on open stays cheap on large catalogs.
const CANDIDATES: &str = "SELECT rowid, namespace, key, value FROM key_value
     WHERE namespace >= 'maand/job/' AND namespace < 'maand/job0'
       AND namespace LIKE 'maand/job/%/worker/%' AND key LIKE 'certs/%.key'
       AND ifnull(value, '') != '' AND substr(value, 1, 7) != 'enc:v1:'";

fn db_error(what: &'static str) -> impl Fn(rusqlite::Error) -> Error {
    move |e| Error::new(ErrorKind::Database, format!("{what}: {e}"))
}

/// (rowid, plaintext) of every row holding a leaf private key in plaintext.
fn plaintext_rows(conn: &Connection) -> Result<Vec<(i64, String)>> {
    let what = "find plaintext leaf keys";
    let mut stmt = conn.prepare(CANDIDATES).map_err(db_error(what))?;
    let mut rows = stmt.query([]).map_err(db_error(what))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db_error(what))? {
        let ns = stored_text(row.get_ref(1).map_err(db_error(what))?);
        let key = stored_text(row.get_ref(2).map_err(db_error(what))?);
        if is_leaf_private_key(&ns, &key) {
            out.push((row.get(0).map_err(db_error(what))?, stored_text(row.get_ref(3).map_err(db_error(what))?)));
        }
    }
    Ok(out)
}

/// Encrypt every plaintext leaf private key of the catalog in place; returns how many rows were
/// sealed (0, without reading `secrets/kv.key`, when there were none).
pub fn seal_plaintext_leaf_keys(conn: &Connection, paths: &BucketPaths) -> Result<usize> {
    if plaintext_rows(conn)?.is_empty() {
        return Ok(0);
    }
    let key = SecretKey::load(paths)
        .map_err(|e| e.context("the catalog holds leaf certificate keys in plaintext and needs it to encrypt them"))?;
    // Freed cells and pages are zeroed, not left holding the old plaintext.
    conn.pragma_update(None, "secure_delete", true).map_err(db_error("enable secure_delete"))?;
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)
        .map_err(db_error("begin encrypting leaf keys"))?;
    let rows = plaintext_rows(&tx)?;
    for (rowid, plaintext) in &rows {
        tx.execute("UPDATE key_value SET value = ?1 WHERE rowid = ?2", params![key.encrypt(plaintext)?, rowid])
            .map_err(db_error("encrypt a leaf key"))?;
    }
    tx.commit().map_err(db_error("commit encrypted leaf keys"))?;
    if rows.is_empty() {
        // Another maand sealed them between the first look and the transaction.
        return Ok(0);
    }
    conn.execute_batch("VACUUM").map_err(db_error("compact the catalog after encrypting leaf keys"))?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .map_err(db_error("checkpoint the catalog after encrypting leaf keys"))?;
    Ok(rows.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db;
    use crate::kv::KvStore;

    const NS: &str = "maand/job/api/worker/10.0.0.1";
    /// Distinctive text that can be searched for in the raw bytes of the catalog files.
    const OLD_KEY: &str = "-----BEGIN RSA PRIVATE KEY-----\nOLDPLAINTEXTKEYMATERIALoldplaintextkeymaterial0123456789\n-----END RSA PRIVATE KEY-----";
    const PURGED_KEY: &str =
        "-----BEGIN RSA PRIVATE KEY-----\nPURGEDKEYMATERIALpurgedkeymaterial0123456789\n-----END RSA PRIVATE KEY-----";
    const NEW_KEY: &str = "-----BEGIN RSA PRIVATE KEY-----\nNEWPLAINTEXTKEYMATERIALnewplaintextkeymaterial0123456789\n-----END RSA PRIVATE KEY-----";

    fn bucket() -> (tempfile::TempDir, BucketPaths, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let paths = BucketPaths::new(dir.path());
        std::fs::create_dir_all(paths.data_dir()).unwrap();
        let conn = db::open(&paths).unwrap();
        db::migrate(&conn).unwrap();
        (dir, paths, conn)
    }

    /// Rows as the Go maand writes them: plaintext keys, an older version, a tombstone, plus
    /// values that are not leaf keys; one more key row purged from history (its bytes stay in the
    /// file's free space); all checkpointed into the catalog file itself.
    fn write_go_rows(conn: &Connection) {
        let insert = |ns: &str, key: &str, value: &str, version: i64, deleted: i64| {
            conn.execute(
                "INSERT INTO key_value(key, value, namespace, version, ttl, created_date, deleted)
                 VALUES (?1, ?2, ?3, ?4, '0', '1700000000', ?5)",
                params![key, value, ns, version, deleted],
            )
            .unwrap();
        };
        // The purged row sits on a page of its own, away from the rows the sealing rewrites.
        insert(NS, "certs/purged.key", PURGED_KEY, 1, 0);
        for i in 0..200 {
            insert("vars/job/api", &format!("filler{i}"), &"f".repeat(100), 1, 0);
        }
        insert(NS, "certs/tls.key", OLD_KEY, 1, 0);
        insert(NS, "certs/tls.key", NEW_KEY, 2, 0);
        insert(NS, "certs/gone.key", OLD_KEY, 1, 1);
        insert(NS, "certs/tls.crt", "-----BEGIN CERTIFICATE-----", 1, 0);
        insert("vars/job/api", "certs/tls.key", "not-a-leaf-key", 1, 0);
        conn.execute("DELETE FROM key_value WHERE key = 'certs/purged.key'", []).unwrap();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
    }

    fn catalog_bytes(paths: &BucketPaths) -> Vec<u8> {
        let mut bytes = Vec::new();
        for suffix in ["", "-wal", "-shm"] {
            let p = paths.data_dir().join(format!("maand.db{suffix}"));
            bytes.extend(std::fs::read(p).unwrap_or_default());
        }
        bytes
    }

    fn contains(haystack: &[u8], needle: &str) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
    }

    #[test]
    fn plaintext_keys_are_sealed_once_and_gone_from_the_files() {
        let (_dir, paths, conn) = bucket();
        SecretKey::create_if_missing(&paths).unwrap();
        write_go_rows(&conn);
        let before = catalog_bytes(&paths);
        assert!(contains(&before, "OLDPLAINTEXTKEYMATERIAL"), "the fixture is plaintext on disk");
        assert!(contains(&before, "PURGEDKEYMATERIAL"), "a purged row's bytes stay in free space");

        assert_eq!(seal_plaintext_leaf_keys(&conn, &paths).unwrap(), 3);
        let kv = KvStore::load(&conn).unwrap();
        let key = SecretKey::load(&paths).unwrap();
        assert!(kv.get(NS, "certs/tls.key").unwrap().starts_with("enc:v1:"));
        assert_eq!(kv.get_secret(&key, NS, "certs/tls.key").unwrap().as_deref(), Some(NEW_KEY));
        assert_eq!(kv.entry(NS, "certs/tls.key").unwrap().version, 2, "versions are kept");
        assert_eq!(kv.get(NS, "certs/tls.crt"), Some("-----BEGIN CERTIFICATE-----"), "certificates stay plain");
        assert_eq!(kv.get("vars/job/api", "certs/tls.key"), Some("not-a-leaf-key"));
        let sealed: Vec<String> = conn
            .prepare("SELECT value FROM key_value WHERE namespace = ?1 AND key LIKE '%.key' ORDER BY rowid")
            .unwrap()
            .query_map([NS], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(sealed.len(), 3);
        assert!(sealed.iter().all(|v| v.starts_with("enc:v1:")), "every version and the tombstone: {sealed:?}");
        assert_eq!(key.decrypt(&sealed[0]).unwrap(), OLD_KEY);

        let bytes = catalog_bytes(&paths);
        assert!(!contains(&bytes, "OLDPLAINTEXTKEYMATERIAL"), "old plaintext left in the catalog files");
        assert!(!contains(&bytes, "NEWPLAINTEXTKEYMATERIAL"), "new plaintext left in the catalog files");
        assert!(!contains(&bytes, "PURGEDKEYMATERIAL"), "purged plaintext left in the catalog's free space");

        let values = || -> Vec<String> {
            conn.prepare("SELECT value FROM key_value")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .map(|r| r.unwrap())
                .collect()
        };
        let before = values();
        assert_eq!(seal_plaintext_leaf_keys(&conn, &paths).unwrap(), 0, "idempotent");
        assert_eq!(before, values(), "a second open changes nothing");
    }

    #[test]
    fn a_catalog_without_plaintext_keys_needs_no_key_file() {
        let (_dir, paths, conn) = bucket();
        assert_eq!(seal_plaintext_leaf_keys(&conn, &paths).unwrap(), 0);
    }

    #[test]
    fn plaintext_keys_without_the_key_file_are_an_error_naming_it() {
        let (_dir, paths, conn) = bucket();
        write_go_rows(&conn);
        let e = seal_plaintext_leaf_keys(&conn, &paths).unwrap_err();
        assert!(e.is(ErrorKind::KvKey), "{e}");
        let text = e.to_string();
        assert!(text.contains("kv.key") && text.contains("leaf certificate keys in plaintext"), "{text}");
        assert!(!text.contains("PLAINTEXTKEYMATERIAL"));
        let kv = KvStore::load(&conn).unwrap();
        assert_eq!(kv.get(NS, "certs/tls.key"), Some(NEW_KEY), "nothing changed");
    }
}
