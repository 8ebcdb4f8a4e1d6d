//! `maand build`: leaf certificates per allocation or shared, renewal and purge.
#![allow(clippy::unwrap_used)]

mod common;
use common::{three_workers, TestBucket};
use serde_json::json;
use std::process::Command;

/// Text dump of a PEM certificate by the openssl CLI (an independent parser).
fn openssl_text(pem: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.pem");
    std::fs::write(&p, pem).unwrap();
    let out = Command::new("openssl").args(["x509", "-noout", "-text", "-in"]).arg(&p).output().unwrap();
    assert!(out.status.success(), "openssl failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn verify(b: &TestBucket, pem: &str) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("leaf.pem");
    std::fs::write(&p, pem).unwrap();
    Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(b.path("secrets/ca.crt"))
        .arg(&p)
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn per_allocation_and_shared_certificates() {
    let b = TestBucket::new();
    b.workers(three_workers());
    b.job(
        "api",
        json!({"selectors": ["web"], "certs": {
            "tls": {"subject": {"common_name": "api.internal"}},
            "client": {"pkcs8": true, "one": true, "subject": {"common_name": "api-client"}}
        }}),
    );
    b.build().ok();
    let crt1 = b.kv("maand/job/api/worker/10.0.0.1", "certs/tls.crt").unwrap();
    assert_eq!(
        b.kv("maand/job/api/worker/10.0.0.1", "certs/tls.key").unwrap(),
        "[encrypted] (add --reveal to decrypt)",
        "private keys are stored encrypted"
    );
    let key1 = b.kv_revealed("maand/job/api/worker/10.0.0.1", "certs/tls.key").unwrap();
    assert!(key1.starts_with("-----BEGIN RSA PRIVATE KEY-----"), "PKCS#1 by default");
    let text = openssl_text(&crt1);
    assert!(text.contains("CN = api.internal") || text.contains("CN=api.internal"), "{text}");
    assert!(text.contains("IP Address:127.0.0.1") && text.contains("IP Address:10.0.0.1"), "{text}");
    assert!(!text.contains("IP Address:10.0.0.2"), "per-allocation cert has only its own IP");
    assert!(verify(&b, &crt1));
    let shared1 = b.kv("maand/job/api/worker/10.0.0.1", "certs/client.crt").unwrap();
    let shared2 = b.kv("maand/job/api/worker/10.0.0.2", "certs/client.crt").unwrap();
    assert_eq!(shared1, shared2, "one=true shares one cert");
    assert!(b
        .kv_revealed("maand/job/api/worker/10.0.0.2", "certs/client.key")
        .unwrap()
        .starts_with("-----BEGIN PRIVATE KEY-----"));
    let text = openssl_text(&shared1);
    assert!(text.contains("IP Address:10.0.0.1") && text.contains("IP Address:10.0.0.2"), "{text}");
    assert_eq!(b.kv("maand/worker", "certs/ca.crt").unwrap().trim(), b.read("secrets/ca.crt").trim());

    // unchanged rebuild keeps the certificates
    b.build().ok();
    assert_eq!(b.kv("maand/job/api/worker/10.0.0.1", "certs/tls.crt").unwrap(), crt1);
    let certs = b.cat(&["certs", "--jobs", "api"]);
    assert_eq!(certs.len(), 4);
    assert!(certs.iter().all(|c| c["status"] == "ok" && c["days_left"].as_i64().unwrap() >= 59));

    // a manifest change of certs regenerates
    b.job("api", json!({"selectors": ["web"], "certs": {"tls": {"subject": {"common_name": "api2.internal"}}}}));
    b.build().ok();
    let crt2 = b.kv("maand/job/api/worker/10.0.0.1", "certs/tls.crt").unwrap();
    assert_ne!(crt2, crt1);
    assert_eq!(b.kv("maand/job/api/worker/10.0.0.1", "certs/client.crt"), None, "removed cert purged");

    // a renewal buffer larger than the remaining validity renews, and with buffer >= ttl every build renews
    b.write("maand.conf", "certs_ttl = 10\ncerts_renewal_buffer = 70\n");
    b.build().ok();
    let crt3 = b.kv("maand/job/api/worker/10.0.0.1", "certs/tls.crt").unwrap();
    assert_ne!(crt3, crt2);
    b.build().ok();
    assert_ne!(b.kv("maand/job/api/worker/10.0.0.1", "certs/tls.crt").unwrap(), crt3);
    let certs = b.cat(&["certs", "--jobs", "api"]);
    assert!(certs.iter().all(|c| c["status"] == "expiring"), "{certs:?}");

    // removing all certs purges the keys
    b.write("maand.conf", "");
    b.job("api", json!({"selectors": ["web"]}));
    b.build().ok();
    assert_eq!(b.kv("maand/job/api/worker/10.0.0.1", "certs/tls.crt"), None);
}

#[test]
fn a_new_ca_regenerates_leaf_certificates() {
    let b = TestBucket::new();
    b.workers(three_workers());
    b.job("api", json!({"selectors": ["web"], "certs": {"tls": {"subject": {"common_name": "api"}}}}));
    b.build().ok();
    let before = b.kv("maand/job/api/worker/10.0.0.1", "certs/tls.crt").unwrap();
    b.remove("secrets/ca.crt");
    b.remove("secrets/ca.key");
    b.maand(&["init"]).ok();
    b.build().ok();
    let after = b.kv("maand/job/api/worker/10.0.0.1", "certs/tls.crt").unwrap();
    assert_ne!(before, after);
    assert!(verify(&b, &after));
}
