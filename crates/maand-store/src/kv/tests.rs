//! Tests of KV versioning, persistence, secrets and the history purge.

use super::*;
use crate::db;
use crate::paths::BucketPaths;

fn catalog() -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let paths = BucketPaths::new(dir.path());
    std::fs::create_dir_all(paths.data_dir()).unwrap();
    let conn = db::open(&paths).unwrap();
    db::migrate(&conn).unwrap();
    (dir, conn)
}

/// (value, version, deleted, created_date) of every row of a key, oldest first.
fn rows(conn: &Connection, ns: &str, key: &str) -> Vec<(String, i64, i64, String)> {
    let mut stmt = conn
        .prepare("SELECT value, version, deleted, created_date FROM key_value WHERE namespace = ?1 AND key = ?2 ORDER BY version")
        .unwrap();
    stmt.query_map([ns, key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

fn insert_row(conn: &Connection, ns: &str, key: &str, value: &str, version: i64, deleted: i64, created: i64) {
    conn.execute(
        "INSERT INTO key_value(key, value, namespace, version, ttl, created_date, deleted) VALUES (?1, ?2, ?3, ?4, '0', ?5, ?6)",
        params![key, value, ns, version, created.to_string(), deleted],
    )
    .unwrap();
}

fn row_count(conn: &Connection) -> i64 {
    conn.query_row("SELECT count(*) FROM key_value", [], |r| r.get(0)).unwrap()
}

#[test]
fn versions_follow_put_change_noop_delete_and_revive() {
    let (_dir, conn) = catalog();
    let mut kv = KvStore::load(&conn).unwrap();
    assert!(kv.put("ns", "k", "  a \n"));
    assert_eq!(kv.get("ns", "k"), Some("a"), "plain values are trimmed");
    assert_eq!(kv.entry("ns", "k").unwrap().version, 1);
    assert_eq!(kv.persist(&conn, 100).unwrap(), 1);

    assert!(!kv.put("ns", "k", "a"), "identical put is a no-op");
    assert_eq!(kv.changed_count(), 0);
    assert!(kv.put("ns", "k", "b"));
    assert_eq!(kv.entry("ns", "k").unwrap().version, 2);
    kv.persist(&conn, 200).unwrap();

    kv.delete("ns", "k").unwrap();
    let tomb = kv.entry("ns", "k").unwrap();
    assert!(tomb.deleted);
    assert_eq!(tomb.version, 3);
    assert_eq!(kv.get("ns", "k"), None);
    assert!(kv.keys("ns").is_empty());
    kv.persist(&conn, 300).unwrap();
    assert!(kv.delete("ns", "k").unwrap_err().is(ErrorKind::KeyNotFound));

    assert!(kv.put("ns", "k", "b"), "putting the tombstoned value revives it");
    assert_eq!(kv.entry("ns", "k").unwrap().version, 4);
    kv.persist(&conn, 400).unwrap();

    assert_eq!(
        rows(&conn, "ns", "k"),
        vec![
            ("a".into(), 1, 0, "100".into()),
            ("b".into(), 2, 0, "200".into()),
            ("b".into(), 3, 1, "300".into()),
            ("b".into(), 4, 0, "400".into()),
        ]
    );
    let reloaded = KvStore::load(&conn).unwrap();
    assert_eq!(
        reloaded.entry("ns", "k").unwrap(),
        &KvEntry { value: "b".into(), version: 4, ttl: "0".into(), deleted: false, created_date: "400".into() }
    );
}

#[test]
fn delete_of_missing_key_is_not_found() {
    let mut kv = KvStore::default();
    let e = kv.delete("ns", "nope").unwrap_err();
    assert!(e.is(ErrorKind::KeyNotFound));
    assert_eq!(e.to_string(), "key not found: namespace ns, key nope");
}

#[test]
fn persist_writes_only_changed_keys_with_their_final_version() {
    let (_dir, conn) = catalog();
    let mut kv = KvStore::load(&conn).unwrap();
    kv.put("ns", "same", "1");
    kv.put("ns", "moved", "1");
    kv.persist(&conn, 10).unwrap();

    let mut kv = KvStore::load(&conn).unwrap();
    kv.put("ns", "same", "1");
    kv.put("ns", "moved", "2");
    kv.put("ns", "moved", "3");
    kv.put("ns", "fresh", "x");
    kv.put("ns", "temp", "y");
    kv.delete("ns", "temp").unwrap();
    assert_eq!(kv.changed_count(), 2);
    assert_eq!(kv.persist(&conn, 20).unwrap(), 2);
    assert_eq!(kv.changed_count(), 0);
    assert_eq!(kv.persist(&conn, 30).unwrap(), 0, "nothing left to write");

    assert_eq!(rows(&conn, "ns", "same").len(), 1);
    assert_eq!(rows(&conn, "ns", "moved"), vec![("1".into(), 1, 0, "10".into()), ("3".into(), 2, 0, "20".into())]);
    assert_eq!(rows(&conn, "ns", "fresh"), vec![("x".into(), 1, 0, "20".into())]);
    assert!(rows(&conn, "ns", "temp").is_empty(), "created and deleted in one session: no row");
    assert_eq!(kv.entry("ns", "moved").unwrap().created_date, "20");
}

#[test]
fn change_reverted_within_a_session_writes_nothing() {
    let (_dir, conn) = catalog();
    let mut kv = KvStore::load(&conn).unwrap();
    kv.put("ns", "k", "a");
    kv.persist(&conn, 1).unwrap();
    assert!(kv.put("ns", "k", "b"));
    assert!(kv.put("ns", "k", "a"));
    assert_eq!(kv.entry("ns", "k").unwrap().version, 1);
    kv.delete("ns", "k").unwrap();
    kv.put("ns", "k", "a");
    assert_eq!(kv.changed_count(), 0);
    assert_eq!(kv.persist(&conn, 2).unwrap(), 0);
}

#[test]
fn keys_and_namespaces_are_sorted_and_live_only() {
    let mut kv = KvStore::default();
    for k in ["zeta", "alpha", "mid"] {
        kv.put("b", k, "v");
    }
    kv.put("a", "only", "v");
    kv.put("c", "gone", "v");
    kv.delete("b", "mid").unwrap();
    kv.delete("c", "gone").unwrap();
    assert_eq!(kv.keys("b"), vec!["alpha", "zeta"]);
    assert_eq!(kv.namespaces(), vec!["a", "b"]);
    assert!(kv.keys("missing").is_empty());
    let all: Vec<(&str, &str)> = kv.all_entries().map(|(ns, k, _)| (ns, k)).collect();
    assert_eq!(all, vec![("a", "only"), ("b", "alpha"), ("b", "zeta")]);
}

#[test]
fn load_includes_tombstones() {
    let (_dir, conn) = catalog();
    insert_row(&conn, "ns", "k", "v", 1, 0, 5);
    insert_row(&conn, "ns", "k", "v", 2, 1, 6);
    let kv = KvStore::load(&conn).unwrap();
    let e = kv.entry("ns", "k").unwrap();
    assert!(e.deleted);
    assert_eq!(e.version, 2);
    assert_eq!(kv.get("ns", "k"), None);
    assert_eq!(kv.all_entries().count(), 1);
}

#[test]
fn sync_namespace_tombstones_stale_keys_and_purge_tombstones_all() {
    let (_dir, conn) = catalog();
    let mut kv = KvStore::load(&conn).unwrap();
    kv.put("ns", "keep", "1");
    kv.put("ns", "stale", "2");
    kv.persist(&conn, 1).unwrap();

    let values: BTreeMap<String, String> =
        [("keep".to_string(), "1".to_string()), ("new".to_string(), "3".to_string())].into();
    kv.sync_namespace("ns", &values);
    assert_eq!(kv.keys("ns"), vec!["keep", "new"]);
    let stale = kv.entry("ns", "stale").unwrap();
    assert!(stale.deleted);
    assert_eq!(stale.version, 2);
    assert_eq!(kv.changed_count(), 2, "stale tombstone + new key; keep unchanged");

    kv.purge_namespace("ns");
    assert!(kv.keys("ns").is_empty());
    assert!(kv.namespaces().is_empty());
    kv.persist(&conn, 2).unwrap();
    assert_eq!(rows(&conn, "ns", "keep").last().unwrap().2, 1);
    assert!(rows(&conn, "ns", "new").is_empty());
}

#[test]
fn checkpoint_restores_an_earlier_session_state() {
    let mut kv = KvStore::default();
    kv.put("ns", "k", "1");
    let saved = kv.checkpoint();
    kv.put("ns", "k", "2");
    kv.put("ns", "other", "x");
    kv = saved;
    assert_eq!(kv.get("ns", "k"), Some("1"));
    assert_eq!(kv.get("ns", "other"), None);
}

#[test]
fn secrets_are_stored_encrypted_and_compared_on_plaintext() {
    let (_dir, conn) = catalog();
    let key = SecretKey::from_bytes([5u8; 32]);
    let mut kv = KvStore::load(&conn).unwrap();
    assert!(kv.put_secret(&key, "secrets/job/vault", "token", " padded ").unwrap());
    let stored = kv.get("secrets/job/vault", "token").unwrap().to_string();
    assert!(stored.starts_with("enc:v1:"));
    assert_eq!(kv.get_secret(&key, "secrets/job/vault", "token").unwrap().as_deref(), Some(" padded "), "not trimmed");
    kv.persist(&conn, 1).unwrap();

    let mut kv = KvStore::load(&conn).unwrap();
    assert!(!kv.put_secret(&key, "secrets/job/vault", "token", " padded ").unwrap(), "same plaintext: no-op");
    assert_eq!(kv.changed_count(), 0);
    assert!(kv.put_secret(&key, "secrets/job/vault", "token", "rotated").unwrap());
    assert_eq!(kv.entry("secrets/job/vault", "token").unwrap().version, 2);
    assert_eq!(kv.get_secret(&key, "secrets/job/vault", "token").unwrap().as_deref(), Some("rotated"));

    kv.put("secrets/job/vault", "legacy", "plain");
    assert_eq!(kv.get_secret(&key, "secrets/job/vault", "legacy").unwrap().as_deref(), Some("plain"));
    assert_eq!(kv.get_secret(&key, "secrets/job/vault", "missing").unwrap(), None);
    let other = SecretKey::from_bytes([6u8; 32]);
    assert!(kv.get_secret(&other, "secrets/job/vault", "token").unwrap_err().is(ErrorKind::KvKey));
}

#[test]
fn revealed_values_are_decrypted_when_encrypted_and_need_the_key_only_then() {
    let key = SecretKey::from_bytes([5u8; 32]);
    let mut kv = KvStore::default();
    let ns = "maand/job/api/worker/10.0.0.1";
    kv.put_secret(&key, ns, "certs/tls.key", "KEY").unwrap();
    kv.put(ns, "certs/tls.crt", "CRT");
    assert_eq!(kv.get_revealed(Some(&key), ns, "certs/tls.key").unwrap().as_deref(), Some("KEY"));
    assert_eq!(kv.get_revealed(Some(&key), ns, "certs/tls.crt").unwrap().as_deref(), Some("CRT"));
    assert_eq!(kv.get_revealed(None, ns, "certs/tls.crt").unwrap().as_deref(), Some("CRT"));
    assert_eq!(kv.get_revealed(None, ns, "missing").unwrap(), None);
    let e = kv.get_revealed(None, ns, "certs/tls.key").unwrap_err();
    assert!(e.is(ErrorKind::KvKey) && e.to_string().contains("certs/tls.key"), "{e}");
}

#[test]
fn purge_keeps_recent_history_and_drops_old_versions_and_tombstoned_keys() {
    let (_dir, conn) = catalog();
    let day = 86_400;
    let now = 100 * day;
    // "old": 10 versions, latest written 10 days ago.
    for v in 1..=10 {
        insert_row(&conn, "ns", "old", &format!("v{v}"), v, 0, now - 10 * day);
    }
    // "recent": 10 versions, latest written 1 day ago.
    for v in 1..=10 {
        insert_row(&conn, "ns", "recent", &format!("v{v}"), v, 0, now - day);
    }
    // "dead": tombstoned 10 days ago; "dying": tombstoned 1 day ago.
    insert_row(&conn, "ns", "dead", "x", 1, 0, now - 20 * day);
    insert_row(&conn, "ns", "dead", "x", 2, 1, now - 10 * day);
    insert_row(&conn, "ns", "dying", "x", 1, 0, now - 20 * day);
    insert_row(&conn, "ns", "dying", "x", 2, 1, now - day);
    assert_eq!(row_count(&conn), 24);

    let deleted = purge_stale_versions(&conn, 7, now).unwrap();
    // old: versions 1 and 2 (< 10 - 7) go; dead: both rows go.
    assert_eq!(deleted, 4);
    let old_versions: Vec<i64> = rows(&conn, "ns", "old").into_iter().map(|r| r.1).collect();
    assert_eq!(old_versions, (3..=10).collect::<Vec<_>>());
    assert_eq!(rows(&conn, "ns", "recent").len(), 10, "latest row newer than retain_days: untouched");
    assert!(rows(&conn, "ns", "dead").is_empty());
    assert_eq!(rows(&conn, "ns", "dying").len(), 2);

    assert_eq!(purge_stale_versions(&conn, 0, now).unwrap(), 2 + 2, "retain 0: recent trimmed, dying dropped");
    assert_eq!(rows(&conn, "ns", "recent").len(), 8);
    assert!(rows(&conn, "ns", "dying").is_empty());
    assert_eq!(purge_stale_versions(&conn, 0, now).unwrap(), 0, "idempotent");
}

#[test]
fn load_and_purge_are_fast_for_100k_rows() {
    let (_dir, conn) = catalog();
    let tx = conn.unchecked_transaction().unwrap();
    {
        let mut stmt = tx
            .prepare("INSERT INTO key_value(key, value, namespace, version, ttl, created_date, deleted) VALUES (?1, 'v', ?2, ?3, '0', '1', 0)")
            .unwrap();
        for i in 0..25_000 {
            for v in 1..=4 {
                stmt.execute(params![format!("k{i}"), format!("ns{}", i % 100), v]).unwrap();
            }
        }
    }
    tx.commit().unwrap();
    let started = std::time::Instant::now();
    let kv = KvStore::load(&conn).unwrap();
    assert_eq!(kv.all_entries().count(), 25_000);
    assert!(kv.all_entries().all(|(_, _, e)| e.version == 4));
    assert_eq!(purge_stale_versions(&conn, 0, 10).unwrap(), 0);
    // Generous bound for a debug build on a shared machine; catches accidental quadratic queries.
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());
}
