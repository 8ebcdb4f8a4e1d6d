//! `maand build`: KV namespaces, versioned rows, tombstones, purges and secrets at rest.
#![allow(clippy::unwrap_used)]

mod common;
use common::{three_workers, TestBucket};
use serde_json::json;

fn kv_rows(b: &TestBucket) -> i64 {
    b.db().query_row("SELECT count(*) FROM key_value", [], |r| r.get(0)).unwrap()
}

#[test]
fn fresh_bucket_has_exactly_the_base_keys() {
    let b = TestBucket::new();
    b.write("workspace/bucket.conf", "");
    b.build().ok();
    let keys: Vec<String> = b
        .cat(&["kv"])
        .iter()
        .map(|r| format!("{}:{}", r["namespace"].as_str().unwrap(), r["key"].as_str().unwrap()))
        .collect();
    assert_eq!(
        keys,
        [
            "maand/bucket:activejobs",
            "maand/bucket:bucket_id",
            "maand/bucket:jobs",
            "maand/prometheus:scrape_configs",
            "maand/prometheus:scrape_jobs",
            "maand/prometheus:scrape_jobs_length",
            "maand/worker:certs/ca.crt",
        ]
    );
}

#[test]
fn unchanged_rebuild_writes_no_kv_rows_and_changes_are_versioned() {
    let b = TestBucket::new();
    b.workers(three_workers());
    b.job("api", json!({"version": "1.0", "selectors": ["web"]}));
    b.write("workspace/jobs/api/vars.toml", "greeting = \"hello\"\n");
    b.build().ok();
    let rows = kv_rows(&b);
    b.build().ok();
    assert_eq!(kv_rows(&b), rows, "no-change rebuild wrote KV rows");
    // change: one new version of the changed key
    b.write("workspace/jobs/api/vars.toml", "greeting = \"bonjour\"\n");
    b.build().ok();
    assert_eq!(kv_rows(&b), rows + 1);
    let got: serde_json::Value =
        serde_json::from_str(&b.maand(&["cat", "kv", "get", "vars/job/api", "greeting", "--json"]).ok().stdout)
            .unwrap();
    assert_eq!(got["value"], "bonjour");
    assert_eq!(got["version"], 2);
    // vars.toml is put-only: removing the key keeps it
    b.write("workspace/jobs/api/vars.toml", "");
    b.build().ok();
    assert_eq!(b.kv("vars/job/api", "greeting").as_deref(), Some("bonjour"));
}

#[test]
fn bucket_conf_is_synced_and_stale_keys_tombstoned() {
    let b = TestBucket::new();
    b.write("workspace/bucket.conf", "port_min = \"30000\"\nport_max = \"39999\"\nregion = \"eu\"\n");
    b.build().ok();
    assert_eq!(b.kv("vars/bucket", "region").as_deref(), Some("eu"));
    b.write("workspace/bucket.conf", "port_min = \"30000\"\nport_max = \"39999\"\n");
    b.build().ok();
    assert_eq!(b.kv("vars/bucket", "region"), None);
    let deleted = b.cat(&["kv", "--deleted"]);
    let region = deleted.iter().find(|r| r["key"] == "region").unwrap();
    assert_eq!(region["deleted"], 1);
    assert_eq!(region["version"], 2);
    b.maand(&["cat", "kv", "get", "vars/bucket", "region"])
        .fails_with("key not found: namespace vars/bucket, key region");
}

#[test]
fn job_namespaces_and_allocation_namespaces() {
    let b = TestBucket::new();
    b.workers(three_workers());
    b.job("api", json!({"version": "1.0", "selectors": ["web"], "resources": {"ports": {"api_port": {}}}}));
    b.build().ok();
    assert_eq!(b.kv("maand/job/api", "workers").as_deref(), Some("10.0.0.1,10.0.0.2"));
    assert_eq!(b.kv("maand/job/api", "worker_1").as_deref(), Some("10.0.0.2"));
    assert_eq!(b.kv("maand/job/api", "rollout_order").as_deref(), Some("10.0.0.1,10.0.0.2"));
    assert_eq!(b.kv("maand/job/api", "selectors").as_deref(), Some("web"));
    assert_eq!(b.kv("maand/job/api/worker/10.0.0.2", "api_allocation_index").as_deref(), Some("1"));
    assert_eq!(b.kv("maand/job/api/worker/10.0.0.2", "peer_workers").as_deref(), Some("10.0.0.1"));
    assert_eq!(b.kv("maand/bucket", "jobs").as_deref(), Some("api"));
    assert_eq!(b.kv("maand/bucket", "activejobs").as_deref(), Some("api"));
    assert_eq!(b.kv("maand/worker/10.0.0.1", "jobs").as_deref(), Some("api"));
    assert!(b.kv("maand/bucket", "api_port").is_some());
    // cat kv --jobs shows only what the job can read
    let visible = b.cat(&["kv", "--jobs", "api"]);
    assert!(visible.iter().all(|r| {
        let ns = r["namespace"].as_str().unwrap();
        !ns.starts_with("maand/worker/10.0.0.3")
    }));
    assert!(visible.iter().any(|r| r["namespace"] == "maand/job/api/worker/10.0.0.1"));
}

#[test]
fn removing_a_job_purges_build_kv_but_keeps_user_kv_unless_asked() {
    let b = TestBucket::new();
    b.workers(three_workers());
    b.job("api", json!({"selectors": ["web"]}));
    b.write("workspace/jobs/api/vars.toml", "k = \"v\"\n");
    b.build().ok();
    b.remove("workspace/jobs/api");
    b.build().ok();
    assert_eq!(b.kv("maand/job/api", "workers"), None);
    assert_eq!(b.kv("maand/job/api/worker/10.0.0.1", "peer_workers"), None);
    assert_eq!(b.kv("vars/job/api", "k").as_deref(), Some("v"));
    b.maand(&["build", "--purge-job-kv"]).ok();
    assert_eq!(b.kv("vars/job/api", "k"), None);
}

#[test]
fn removing_a_worker_purges_its_namespaces() {
    let b = TestBucket::new();
    b.workers(three_workers());
    b.job("api", json!({"selectors": ["web"]}));
    b.build().ok();
    let mut w = three_workers();
    w.as_array_mut().unwrap().remove(1);
    b.workers(w);
    b.build().ok();
    assert_eq!(b.kv("maand/worker/10.0.0.2", "worker_ip"), None);
    assert_eq!(b.kv("maand/job/api/worker/10.0.0.2", "peer_workers"), None);
    let allocs = b.cat(&["allocations", "--workers", "10.0.0.2"]);
    assert_eq!(allocs[0]["removed"], 1);
}

#[test]
fn secrets_are_encrypted_at_rest_and_revealed_on_request() {
    let b = TestBucket::new();
    b.build().ok();
    // Write a secret the way job commands will: through the store's secret API.
    let paths = maand_store::paths::BucketPaths::new(b.root());
    let key = maand_store::secrets::SecretKey::load(&paths).unwrap();
    let conn = b.db();
    let mut kv = maand_store::kv::KvStore::load(&conn).unwrap();
    kv.put_secret(&key, "secrets/job/vault", "root_token", "s3cr3t-token").unwrap();
    kv.persist(&conn, 1_700_000_000).unwrap();
    drop(conn);
    let stored: String = b
        .db()
        .query_row("SELECT value FROM key_value WHERE namespace='secrets/job/vault' AND key='root_token'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(stored.starts_with("enc:v1:"), "{stored}");
    assert!(!stored.contains("s3cr3t"));
    let listed = b.maand(&["cat", "kv"]).ok();
    assert!(listed.stdout.contains("[encrypted]"));
    assert!(!listed.stdout.contains("s3cr3t"));
    let hidden = b.maand(&["cat", "kv", "get", "secrets/job/vault", "root_token"]).ok();
    assert!(!hidden.stdout.contains("s3cr3t"), "{}", hidden.stdout);
    let shown = b.maand(&["cat", "kv", "get", "secrets/job/vault", "root_token", "--reveal"]).ok();
    assert!(shown.stdout.contains("value: s3cr3t-token"), "{}", shown.stdout);
    // secrets survive builds (user-owned namespace)
    b.build().ok();
    assert!(b
        .maand(&["cat", "kv", "get", "secrets/job/vault", "root_token", "--reveal"])
        .ok()
        .stdout
        .contains("s3cr3t-token"));
}
