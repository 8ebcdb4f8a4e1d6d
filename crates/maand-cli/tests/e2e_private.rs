//! Private stays private (DESIGN §3.18), with the real `maand` binary: after a deploy of a job with
//! per-allocation certificates and a secret rendered into a 0600 template, neither the key nor the
//! secret is anywhere under the bucket in plaintext, the bucket's private parts are 0600/0700
//! whatever the umask, the rendered file and the key are 0600 on the worker, `cat kv` hides the
//! key unless `--reveal`; a bucket holding plaintext keys (as the Go maand writes them) is
//! converted when opened; staged files never outlive a deploy.
#![allow(clippy::unwrap_used)]

mod common;
use common::cluster::Cluster;
use common::{maand_with_open_umask, three_workers, TestBucket};
use maand_store::file_modes::{mode_of, set_mode};
use maand_store::kv::KvStore;
use maand_store::secrets::SecretKey;
use maand_store::{db, BucketPaths};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const SECRET: &str = "s3cr3t-Pa55w0rd-e2e-private";
const ALLOC_NS_PREFIX: &str = "maand/job/app/worker/";

/// A job with a per-allocation certificate, a private template rendering a secret and a public one.
fn private_job(b: &TestBucket) {
    let manifest = json!({
        "version": "1.0.0", "selectors": ["app"],
        "certs": {"tls": {"subject": {"common_name": "app.internal"}}}
    });
    b.write("workspace/jobs/app/manifest.json", &manifest.to_string());
    b.write("workspace/jobs/app/Makefile", "start:\n\ttrue\nstop:\n\ttrue\nrestart:\n\ttrue\n");
    b.write("workspace/jobs/app/app.conf.tpl", "password={{ getSecret \"db_password\" }}\ntls_key=certs/tls.key\n");
    set_mode(&b.path("workspace/jobs/app/app.conf.tpl"), 0o600).unwrap();
    b.write("workspace/jobs/app/public.conf.tpl", "ip={{ .WorkerIP }}\n");
    set_mode(&b.path("workspace/jobs/app/public.conf.tpl"), 0o644).unwrap();
}

/// Store a job secret the way a job command's `put_job_secret` does (encrypted in the KV).
fn put_secret(b: &TestBucket, job: &str, key: &str, value: &str) {
    let paths = BucketPaths::new(b.root());
    let conn = db::open_existing(&paths).unwrap();
    let mut kv = KvStore::load(&conn).unwrap();
    kv.put_secret(&SecretKey::load(&paths).unwrap(), &format!("secrets/job/{job}"), key, value).unwrap();
    kv.persist(&conn, 1).unwrap();
}

/// Every file below `dir` (symlinks and sockets not followed), skipping `skip` (relative names).
fn walk(dir: &Path, skip: &[&str], base: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        let rel = path.strip_prefix(base).unwrap().to_string_lossy().into_owned();
        if skip.contains(&rel.as_str()) {
            continue;
        }
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            out.push(path.clone());
            walk(&path, skip, base, out);
        } else if kind.is_file() {
            out.push(path);
        }
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The base64 lines of a PEM private key: any one of them in a file means the key is there.
fn key_body(pem: &str) -> Vec<String> {
    pem.lines().filter(|l| !l.starts_with("-----") && !l.trim().is_empty()).map(str::to_string).collect()
}

/// The bucket's private parts: directories 0700, regular files 0600.
fn assert_private(b: &TestBucket) {
    for part in ["data", "secrets", "logs", "tmp"] {
        let root = b.path(part);
        if !root.exists() {
            continue;
        }
        assert_eq!(mode_of(&root).unwrap(), 0o700, "{part}/");
        let mut entries = Vec::new();
        walk(&root, &[], b.root(), &mut entries);
        for p in entries {
            let want = if p.is_dir() { 0o700 } else { 0o600 };
            assert_eq!(mode_of(&p).unwrap(), want, "{}", p.display());
        }
    }
}

#[test]
fn a_deploy_leaves_no_plaintext_under_the_bucket_and_private_files_private() {
    let c = Cluster::up(1);
    let b = &c.bucket;
    private_job(b);
    maand_with_open_umask(b.root(), &["build"]).ok();
    let stored: Vec<String> = b
        .db()
        .prepare("SELECT value FROM key_value WHERE key = 'certs/tls.key'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert!(!stored.is_empty() && stored.iter().all(|v| v.starts_with("enc:v1:")), "the build encrypts keys");
    put_secret(b, "app", "db_password", SECRET);
    maand_with_open_umask(b.root(), &["deploy"]).ok();

    // On the worker: the secret rendered into a 0600 file, the key 0600, the public file 0644.
    let conf = c.worker_path(0, "jobs/app/app.conf");
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), format!("password={SECRET}\ntls_key=certs/tls.key\n"));
    assert_eq!(mode_of(&conf).unwrap(), 0o600, "the rendered file keeps its template's mode");
    assert_eq!(mode_of(&c.worker_path(0, "jobs/app/public.conf")).unwrap(), 0o644);
    let key_file = c.worker_path(0, "jobs/app/certs/tls.key");
    assert_eq!(mode_of(&key_file).unwrap(), 0o600);
    assert_eq!(mode_of(&c.worker_path(0, "jobs/app/certs/tls.crt")).unwrap(), 0o644);
    let key_pem = std::fs::read_to_string(&key_file).unwrap();
    let body = key_body(&key_pem);
    assert!(body.len() >= 5, "a real key: {key_pem}");

    // Nothing under the bucket holds them in plaintext: every file (the catalog and its WAL
    // included), except `sandbox/`, which holds the sandbox workers' own disks.
    assert!(!b.path("tmp/workers").exists(), "staging is removed at the end of a deploy");
    let mut files = Vec::new();
    walk(b.root(), &["sandbox"], b.root(), &mut files);
    assert!(files.iter().any(|p| p.ends_with("data/maand.db")));
    assert!(files.iter().any(|p| p.to_string_lossy().contains("logs/runs/")), "the run's logs are there");
    for p in files.iter().filter(|p| p.is_file()) {
        let bytes = std::fs::read(p).unwrap();
        assert!(!contains(&bytes, SECRET), "the secret in plaintext in {}", p.display());
        for line in &body {
            assert!(!contains(&bytes, line), "the private key in plaintext in {}", p.display());
        }
    }
    // The catalog's rows, read through SQLite.
    let values: Vec<String> = b
        .db()
        .prepare("SELECT ifnull(value, '') FROM key_value")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert!(values.iter().all(|v| !v.contains(SECRET) && !v.contains(&body[1])), "plaintext in key_value");
    assert_private(b);

    // `cat kv` hides the key unless --reveal.
    let ns = format!("{ALLOC_NS_PREFIX}{}", c.ip(0));
    let listing = b.maand(&["cat", "kv"]).ok().stdout;
    assert!(!listing.contains(&body[0]) && !listing.contains("PRIVATE KEY"), "{listing}");
    let rows = b.cat(&["kv"]);
    let row = rows.iter().find(|r| r["namespace"] == ns.as_str() && r["key"] == "certs/tls.key").unwrap();
    assert_eq!(row["value"], "[encrypted]");
    let hidden = b.maand(&["cat", "kv", "get", &ns, "certs/tls.key"]).ok().stdout;
    assert!(hidden.contains("value: [encrypted] (add --reveal to decrypt)"), "{hidden}");
    assert!(!hidden.contains(&body[0]));
    let hidden: Value =
        serde_json::from_str(&b.maand(&["cat", "kv", "get", &ns, "certs/tls.key", "--json"]).ok().stdout).unwrap();
    assert_eq!(hidden["value"], "[encrypted] (add --reveal to decrypt)");
    let revealed = b.maand(&["cat", "kv", "get", &ns, "certs/tls.key", "--reveal", "--json"]).ok().stdout;
    let revealed: Value = serde_json::from_str(&revealed).unwrap();
    assert_eq!(revealed["value"].as_str().unwrap().trim(), key_pem.trim(), "--reveal prints the key");

    // The template's mode alone is a change that ships: 0644, then back to 0600.
    set_mode(&b.path("workspace/jobs/app/app.conf.tpl"), 0o644).unwrap();
    maand_with_open_umask(b.root(), &["deploy", "-b"]).ok();
    assert_eq!(mode_of(&conf).unwrap(), 0o644);
    set_mode(&b.path("workspace/jobs/app/app.conf.tpl"), 0o600).unwrap();
    maand_with_open_umask(b.root(), &["deploy", "-b"]).ok();
    assert_eq!(mode_of(&conf).unwrap(), 0o600);
    assert_private(b);
}

/// Plaintext (as the Go maand stores them) leaf keys of every allocation: (rowid, plaintext).
fn downgrade_to_plaintext_keys(b: &TestBucket) -> Vec<(i64, String)> {
    let key = SecretKey::load(&BucketPaths::new(b.root())).unwrap();
    let conn = b.db();
    let rows: Vec<(i64, String)> = conn
        .prepare("SELECT rowid, value FROM key_value WHERE key LIKE 'certs/%.key' ORDER BY rowid")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert!(!rows.is_empty());
    let mut plain = Vec::new();
    for (rowid, stored) in rows {
        assert!(stored.starts_with("enc:v1:"), "a build stores keys encrypted: {stored}");
        let text = key.decrypt(&stored).unwrap();
        conn.execute("UPDATE key_value SET value = ?1 WHERE rowid = ?2", rusqlite::params![text, rowid]).unwrap();
        plain.push((rowid, text));
    }
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
    plain
}

fn catalog_bytes(b: &TestBucket) -> Vec<u8> {
    ["data/maand.db", "data/maand.db-wal", "data/maand.db-shm"]
        .iter()
        .flat_map(|f| std::fs::read(b.path(f)).unwrap_or_default())
        .collect()
}

#[test]
fn a_bucket_with_plaintext_keys_and_open_modes_is_converted_on_open() {
    let b = TestBucket::new();
    b.workers(three_workers());
    b.job("api", json!({"selectors": ["web"], "certs": {"tls": {"subject": {"common_name": "api.internal"}}}}));
    b.build().ok();
    let plain = downgrade_to_plaintext_keys(&b);
    let body = key_body(&plain[0].1);
    assert!(contains(&catalog_bytes(&b), &body[1]), "the fixture holds plaintext keys on disk");
    for (p, mode) in [("data", 0o755), ("data/maand.db", 0o644), ("secrets", 0o755), ("secrets/ca.key", 0o644)] {
        set_mode(&b.path(p), mode).unwrap();
    }
    b.write("logs/runs/old/10.0.0.1.log", "old line\n");
    for p in ["logs", "logs/runs", "logs/runs/old"] {
        set_mode(&b.path(p), 0o755).unwrap();
    }
    set_mode(&b.path("logs/runs/old/10.0.0.1.log"), 0o644).unwrap();

    // Any command converts: here a read-only one.
    b.maand(&["info"]).ok();
    let key = SecretKey::load(&BucketPaths::new(b.root())).unwrap();
    let conn = b.db();
    let mut sealed = Vec::new();
    for (rowid, text) in &plain {
        let stored: String =
            conn.query_row("SELECT value FROM key_value WHERE rowid = ?1", [rowid], |r| r.get(0)).unwrap();
        assert!(stored.starts_with("enc:v1:"), "row {rowid} still plaintext");
        assert_eq!(&key.decrypt(&stored).unwrap(), text, "the same key, encrypted");
        sealed.push(stored);
    }
    drop(conn);
    let bytes = catalog_bytes(&b);
    for (_, text) in &plain {
        for line in key_body(text) {
            assert!(!contains(&bytes, &line), "plaintext left in the catalog files");
        }
    }
    assert_private(&b);

    // Idempotent: a second open changes nothing; the keys still reveal.
    b.maand(&["info"]).ok();
    let conn = b.db();
    for ((rowid, _), stored) in plain.iter().zip(&sealed) {
        let now: String =
            conn.query_row("SELECT value FROM key_value WHERE rowid = ?1", [rowid], |r| r.get(0)).unwrap();
        assert_eq!(&now, stored);
    }
    assert_eq!(
        b.kv("maand/job/api/worker/10.0.0.1", "certs/tls.key").unwrap(),
        "[encrypted] (add --reveal to decrypt)"
    );
    let out = b.maand(&["cat", "kv", "get", "maand/job/api/worker/10.0.0.1", "certs/tls.key", "--reveal"]).ok();
    let original = plain.iter().map(|(_, t)| t).find(|t| out.stdout.contains(t.as_str()));
    assert!(original.is_some(), "--reveal prints the original key:\n{}", out.stdout);
}

#[test]
fn staging_never_outlives_a_deploy_even_a_failed_or_killed_one() {
    let b = TestBucket::new();
    b.workers(three_workers());
    b.job("api", json!({"selectors": ["web"], "certs": {"tls": {"subject": {"common_name": "api.internal"}}}}));
    b.write("workspace/jobs/api/app.conf.tpl", "ip={{ .WorkerIP }}\n");
    b.build().ok();

    // What a killed run leaves behind: a staged key. The next locked command removes it first.
    let leftover = "tmp/workers/10.0.0.1/jobs/.api.next/certs/tls.key";
    b.write(leftover, "LEFTOVER KEY");
    b.maand(&["deploy", "--dry-run"]).ok();
    assert!(!b.path("tmp/workers").exists(), "a dry-run removes its staging and the leftover");
    b.write(leftover, "LEFTOVER KEY");
    b.maand(&["gc"]).ok();
    assert!(!b.path(leftover).exists(), "any command holding the bucket lock removes a leftover");

    // A deploy that fails while staging (a template error) leaves nothing staged either.
    b.write("workspace/jobs/api/app.conf.tpl", "x={{ get \"maand/job/nope\" \"k\" }}\n");
    b.build().ok();
    b.maand(&["deploy", "--dry-run"]).fails_with("maand/job/nope");
    assert!(!b.path("tmp/workers").exists(), "a failed deploy removes its staging");
}
