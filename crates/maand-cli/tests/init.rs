//! `maand init` and the schema gate, through the real binary.
#![allow(clippy::unwrap_used)]

mod common;
use common::{maand_in, TestBucket};
use std::os::unix::fs::PermissionsExt;

#[test]
fn init_creates_the_bucket_layout() {
    let b = TestBucket::uninitialized();
    let out = b.maand(&["init"]).ok();
    assert!(out.stdout.contains("maand bucket initialized"), "{}", out.stdout);
    for dir in ["data", "workspace/jobs", "logs", "tmp", "secrets"] {
        assert!(b.path(dir).is_dir(), "{dir} missing");
    }
    assert_eq!(b.read("workspace/workers.json").trim(), "[]");
    assert_eq!(b.read("workspace/bucket.conf"), "port_min = \"30000\"\nport_max = \"39999\"\n");
    let conf = b.read("maand.conf");
    for line in ["use_sudo = true", "ssh_user = \"agent\"", "ssh_key = \"worker.key\"", "certs_ttl = 60"] {
        assert!(conf.contains(line), "maand.conf lacks {line}:\n{conf}");
    }
    let key = std::fs::metadata(b.path("secrets/kv.key")).unwrap();
    assert_eq!(key.len(), 32);
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
    let mode = |rel: &str| std::fs::metadata(b.path(rel)).unwrap().permissions().mode() & 0o777;
    for dir in ["data", "logs", "tmp", "secrets"] {
        assert_eq!(mode(dir), 0o700, "{dir}/ is private");
    }
    for file in ["data/maand.db", "secrets/ca.key", "secrets/ca.crt"] {
        assert_eq!(mode(file), 0o600, "{file} is private");
    }
    let crt = b.read("secrets/ca.crt");
    assert!(crt.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(b.read("secrets/ca.key").starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    let conn = b.db();
    let version: i64 = conn.query_row("SELECT version FROM schema_version WHERE id=1", [], |r| r.get(0)).unwrap();
    assert_eq!(version, 1);
    for view in ["cat_allocations", "cat_jobs", "cat_job_commands", "cat_kv", "cat_workers", "cat_deployments"] {
        let n: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master WHERE type='view' AND name=?1", [view], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1, "view {view} missing");
    }
    let info: serde_json::Value = serde_json::from_str(&b.maand(&["info", "--json"]).ok().stdout).unwrap();
    assert_eq!(info["update_seq"], 0);
    assert_eq!(info["bucket_id"].as_str().unwrap().len(), 36);
}

#[test]
fn rerunning_init_upgrades_and_changes_nothing_else() {
    let b = TestBucket::new();
    let id_before = b.maand(&["info", "--json"]).ok().stdout;
    let ca_before = b.read("secrets/ca.crt");
    let key_before = std::fs::read(b.path("secrets/kv.key")).unwrap();
    b.write("maand.conf", "ssh_user = \"ops\"\n");
    let out = b.maand(&["init"]).ok();
    assert!(out.stdout.contains("maand bucket upgraded (schema version 1)"), "{}", out.stdout);
    assert_eq!(b.maand(&["info", "--json"]).ok().stdout, id_before);
    assert_eq!(b.read("secrets/ca.crt"), ca_before);
    assert_eq!(std::fs::read(b.path("secrets/kv.key")).unwrap(), key_before);
    assert_eq!(b.read("maand.conf"), "ssh_user = \"ops\"\n");
}

#[test]
fn half_a_ca_is_refused() {
    let b = TestBucket::new();
    b.remove("secrets/ca.key");
    b.maand(&["init"]).fails_with("bucket CA is incomplete: secrets must contain both ca.crt and ca.key");
}

#[test]
fn commands_refuse_an_uninitialized_directory() {
    let dir = tempfile::tempdir().unwrap();
    for args in [vec!["build"], vec!["info"], vec!["cat", "workers"], vec!["cat", "kv"]] {
        maand_in(dir.path(), &args).fails_with("maand is not initialized");
    }
}

#[test]
fn older_schema_asks_for_init_and_init_upgrades_it() {
    let b = TestBucket::new();
    b.db().execute("UPDATE schema_version SET version = 0", []).unwrap();
    b.maand(&["info"]).fails_with("database schema upgrade required");
    b.maand(&["init"]).ok();
    b.maand(&["info"]).ok();
}

#[test]
fn missing_view_asks_for_init() {
    let b = TestBucket::new();
    b.db().execute("DROP VIEW cat_kv", []).unwrap();
    b.maand(&["cat", "workers"]).fails_with("database schema upgrade required");
    b.maand(&["init"]).ok();
    b.maand(&["cat", "workers"]).ok();
}

#[test]
fn a_catalog_made_by_the_go_maand_is_used_without_init() {
    let b = TestBucket::new();
    b.write("workspace/workers.json", r#"[{"host": "10.0.0.1", "port": 2200}]"#);
    b.write("workspace/jobs/api/manifest.json", r#"{"version": "1", "selectors": ["worker"]}"#);
    b.write("workspace/jobs/api/Makefile", "start:\n\ttrue\n");
    let ours = [
        "maand_job_options",
        "maand_worker_options",
        "maand_allocation_state",
        "maand_job_state",
        "maand_job_links",
        "maand_runs",
        "maand_run_jobs",
    ];
    for table in ours {
        b.db().execute(&format!("DROP TABLE {table}"), []).unwrap();
    }
    b.build().ok();
    for table in ours {
        let n: i64 = b
            .db()
            .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1", [table], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1, "{table} was not added");
    }
    let port: i64 = b.db().query_row("SELECT ssh_port FROM maand_worker_options", [], |r| r.get(0)).unwrap();
    assert_eq!(port, 2200);
}

#[test]
fn newer_schema_is_refused_and_never_downgraded() {
    let b = TestBucket::new();
    b.db().execute("UPDATE schema_version SET version = 7", []).unwrap();
    b.maand(&["build"]).fails_with("database schema is newer than this maand binary");
    b.maand(&["init"]).fails_with("database schema is newer than this maand binary");
    let v: i64 = b.db().query_row("SELECT version FROM schema_version", [], |r| r.get(0)).unwrap();
    assert_eq!(v, 7);
}

#[test]
fn job_create_scaffolds_a_buildable_job() {
    let b = TestBucket::new();
    b.maand(&["job", "create", "api", "-s", "web, api"]).ok();
    let manifest: serde_json::Value = serde_json::from_str(&b.read("workspace/jobs/api/manifest.json")).unwrap();
    assert_eq!(manifest, serde_json::json!({"version": "1.0", "selectors": ["web", "api"]}));
    assert!(b.read("workspace/jobs/api/manifest.json").contains("\n    \"version\""), "4-space indent");
    assert!(b.read("workspace/jobs/api/Makefile").contains("start:"));
    b.maand(&["job", "create", "api"]).fails_with("job directory already exists: api");
    b.maand(&["job", "create", "plain"]).ok();
    let m: serde_json::Value = serde_json::from_str(&b.read("workspace/jobs/plain/manifest.json")).unwrap();
    assert_eq!(m["selectors"], serde_json::json!([]));
    b.build().ok();
}

#[test]
fn commands_find_their_bucket_from_a_subdirectory_or_by_flag() {
    let b = TestBucket::new();
    b.job("web", serde_json::json!({"version": "1.0.0"}));
    b.build().ok();
    let inside = b.path("workspace/jobs/web");
    let out = maand_in(&inside, &["cat", "jobs", "--json"]).ok();
    assert!(out.stdout.contains("\"web\""), "from a subdirectory: {}", out.stdout);
    // `init` inside a bucket upgrades that bucket instead of nesting a new one.
    maand_in(&inside, &["init"]).ok();
    assert!(!inside.join("data").exists(), "init nested a bucket");

    let elsewhere = tempfile::tempdir().unwrap();
    let root = b.root().to_str().unwrap();
    let out = maand_in(elsewhere.path(), &["-C", root, "cat", "jobs", "--json"]).ok();
    assert!(out.stdout.contains("\"web\""), "-C: {}", out.stdout);
    let out = maand_in(elsewhere.path(), &["cat", "jobs", "--bucket", root]).ok();
    assert!(out.stdout.contains("web"), "--bucket after the command: {}", out.stdout);
    maand_in(elsewhere.path(), &["cat", "jobs"]).fails_with("maand is not initialized");
}

#[test]
fn a_listing_ends_quietly_when_its_reader_goes_away() {
    let b = TestBucket::new();
    b.job("web", serde_json::json!({"version": "1.0.0"}));
    b.build().ok();
    // The reader (`true`) is gone before maand writes its first line.
    let maand = assert_cmd::cargo::cargo_bin("maand");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("'{}' cat kv | true", maand.display()))
        .current_dir(b.root())
        .env("MAAND_TEST", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{stderr}");
}

#[test]
fn cat_kv_json_gives_whole_values_and_the_table_cuts_them() {
    let b = TestBucket::new();
    b.job("web", serde_json::json!({"version": "1.0.0"}));
    b.build().ok();
    let rows: serde_json::Value = serde_json::from_str(&b.maand(&["cat", "kv", "--json"]).ok().stdout).unwrap();
    let ca = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["namespace"] == "maand/worker" && r["key"] == "certs/ca.crt")
        .expect("the CA certificate is in the KV");
    let value = ca["value"].as_str().unwrap();
    assert!(value.trim_end().ends_with("-----END CERTIFICATE-----"), "cut: {value}");
    let table = b.maand(&["cat", "kv"]).ok().stdout;
    assert!(!table.contains("-----END CERTIFICATE-----"), "the table cuts long values");
}
