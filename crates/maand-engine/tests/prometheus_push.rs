//! The certificate metrics push after a deploy, against a local remote-write receiver standing in
//! for the Prometheus server job: headers, basic auth from `secrets/job/prometheus`, a snappy
//! protobuf body with the three gauges, retries on 5xx, and warnings instead of failures.
#![allow(clippy::unwrap_used)]

use maand_engine::bucket::Bucket;
use maand_engine::deploy::DeployReport;
use maand_engine::output::CapturingReporter;
use maand_engine::prometheus::push_after_deploy;
use maand_store::kv::KvStore;
use maand_store::secrets::SecretKey;
use std::path::Path;
use std::sync::mpsc;

fn write(root: &Path, rel: &str, content: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// What the receiver saw of one request.
struct Seen {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A receiver answering the given statuses in turn; every request is sent on the channel.
fn receiver(statuses: Vec<u16>) -> (u16, mpsc::Receiver<Seen>) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for status in statuses {
            let Ok(mut request) = server.recv() else { return };
            let mut body = Vec::new();
            request.as_reader().read_to_end(&mut body).unwrap();
            let headers =
                request.headers().iter().map(|h| (h.field.to_string(), h.value.to_string())).collect::<Vec<_>>();
            tx.send(Seen { headers, body }).unwrap();
            let _ = request.respond(tiny_http::Response::empty(status));
        }
    });
    (port, rx)
}

/// A built bucket whose `prometheus` server job (on 127.0.0.1) listens on `port`, with an `app`
/// job holding a certificate.
fn bucket(port: u16) -> (tempfile::TempDir, Bucket) {
    std::env::set_var("MAAND_TEST", "1");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    maand_engine::init::init(root).unwrap();
    write(root, "workspace/workers.json", r#"[{"host": "127.0.0.1", "labels": ["prometheus", "app"]}]"#);
    write(
        root,
        "workspace/jobs/prometheus/manifest.json",
        &format!(r#"{{"selectors": ["prometheus"], "resources": {{"ports": {{"prometheus_port_http": {port}}}}}}}"#),
    );
    write(root, "workspace/jobs/prometheus/Makefile", "start:\n");
    write(root, "workspace/jobs/prometheus/prometheus.yml", "global: {}\n");
    write(
        root,
        "workspace/jobs/app/manifest.json",
        r#"{"selectors": ["app"], "certs": {"tls": {"subject": {"common_name": "app.internal"}}}}"#,
    );
    write(root, "workspace/jobs/app/Makefile", "start:\n");
    maand_engine::build::build(root, &Default::default()).unwrap();
    let bucket = Bucket::open(root).unwrap();
    (dir, bucket)
}

fn set_secrets(bucket: &Bucket, values: &[(&str, &str)]) {
    let conn = bucket.connect().unwrap();
    let mut kv = KvStore::load(&conn).unwrap();
    let key = SecretKey::load(&bucket.paths).unwrap();
    for (k, v) in values {
        kv.put_secret(&key, "secrets/job/prometheus", k, v).unwrap();
    }
    kv.persist(&conn, 1).unwrap();
}

#[test]
fn pushes_cert_gauges_with_basic_auth_and_retries_server_errors() {
    let (port, seen) = receiver(vec![503, 204]);
    let (_dir, bucket) = bucket(port);
    set_secrets(&bucket, &[("admin_username", "admin"), ("admin_password", "s3cret")]);
    let out = CapturingReporter::default();
    push_after_deploy(&bucket, false, Some(&DeployReport::default()), &out);
    assert!(
        out.text().contains(&format!("certificate metrics pushed to http://127.0.0.1:{port}/api/v1/write")),
        "{}",
        out.text()
    );
    let first = seen.recv().unwrap();
    let second = seen.recv().unwrap();
    assert_eq!(first.body, second.body, "the retry sends the same body");
    assert_eq!(second.header("Content-Encoding"), Some("snappy"));
    assert_eq!(second.header("Content-Type"), Some("application/x-protobuf"));
    assert_eq!(second.header("X-Prometheus-Remote-Write-Version"), Some("0.1.0"));
    assert_eq!(second.header("Authorization"), Some("Basic YWRtaW46czNjcmV0"), "admin:s3cret");
    let body = snap::raw::Decoder::new().decompress_vec(&second.body).unwrap();
    let text = String::from_utf8_lossy(&body);
    for needle in
        ["maand_cert_not_after_seconds", "maand_cert_expiring", "maand_cert_expired", "app.internal", "scope", "ca"]
    {
        assert!(text.contains(needle), "body lacks {needle}");
    }
}

#[test]
fn misconfigured_or_skipped_pushes_only_warn() {
    let (port, seen) = receiver(vec![400]);
    let (_dir, bucket) = bucket(port);
    let out = CapturingReporter::default();
    push_after_deploy(&bucket, true, Some(&DeployReport::default()), &out);
    push_after_deploy(&bucket, false, None, &out);
    assert!(seen.try_recv().is_err(), "no push for a dry-run or a failed deploy");

    // A 400 is not retried and becomes a warning.
    push_after_deploy(&bucket, false, Some(&DeployReport::default()), &out);
    assert!(seen.recv().unwrap().header("Authorization").is_none(), "no credentials, no auth header");
    assert!(out.text().contains("warning: prometheus: certificate metrics not pushed: HTTP 400"), "{}", out.text());

    set_secrets(&bucket, &[("admin_username", "admin")]);
    push_after_deploy(&bucket, false, Some(&DeployReport::default()), &out);
    assert!(out.text().contains("only one of admin_username and admin_password"), "{}", out.text());
    assert!(!out.text().contains("admin:"), "no credentials in messages");
}
