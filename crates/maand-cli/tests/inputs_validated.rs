//! Issue 14, points 5–8, with the real binary: every workspace input is checked where it is
//! parsed. A refused input makes `maand build` and `maand deploy -b --dry-run` exit 1 with a
//! message naming the file and the field, leaves the catalog as it was, and writes nothing
//! outside the bucket. The three inputs the Go maand accepted, which a real bucket may rely on,
//! pass with a warning naming the file and the item.
#![allow(clippy::unwrap_used)]

mod common;
use common::{Output, TestBucket};
use serde_json::{json, Value};

/// A bucket alone in its own directory, holding a job with a certificate and a template (what
/// the campaign's `../` host leaked), built once successfully.
struct Fenced {
    parent: tempfile::TempDir,
    bucket: TestBucket,
}

impl Fenced {
    fn new() -> Fenced {
        let parent = tempfile::tempdir().unwrap();
        let bucket = TestBucket::new_in(parent.path());
        bucket.workers(json!([{"host": "10.0.0.1", "labels": ["web"]}, {"host": "10.0.0.2", "labels": ["web"]}]));
        bucket.job("api", api_manifest());
        bucket.write("workspace/jobs/api/app.conf.tpl", "listen={{ .WorkerIP }}\n");
        bucket.build().ok();
        Fenced { parent, bucket }
    }

    /// The parent directory holds the bucket and nothing else.
    fn assert_nothing_outside(&self) {
        let entries: Vec<String> = std::fs::read_dir(self.parent.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let bucket_name = self.bucket.root().file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(entries, [bucket_name], "something was written next to the bucket");
    }

    /// `maand build` and `maand deploy -b --dry-run`.
    fn both_commands(&self) -> [Output; 2] {
        [self.bucket.build(), self.bucket.maand(&["deploy", "-b", "--dry-run"])]
    }
}

fn api_manifest() -> Value {
    json!({"version": "1.0.0", "selectors": ["web"], "certs": {"tls": {"subject": {"common_name": "api.internal"}}}})
}

/// After `mutate`, both commands exit 1 naming every needle; the catalog is unchanged and nothing
/// is written outside the bucket.
fn refused(mutate: impl FnOnce(&TestBucket), needles: &[&str]) {
    let f = Fenced::new();
    let before = f.bucket.dump();
    mutate(&f.bucket);
    for out in f.both_commands() {
        assert_eq!(out.code, 1, "expected exit 1 for {needles:?}\nstdout: {}\nstderr: {}", out.stdout, out.stderr);
        for needle in needles {
            assert!(out.stderr.contains(needle), "stderr lacks {needle:?}:\n{}", out.stderr);
        }
        assert!(!out.stderr.contains("unexpected error") && !out.stderr.contains("panicked"), "{}", out.stderr);
    }
    assert_eq!(f.bucket.dump(), before, "a refused input changed the catalog");
    f.assert_nothing_outside();
}

#[test]
fn worker_host_must_be_an_ip_address_or_a_dns_name() {
    let hosts = [
        ("../../../escape", "'/' is not allowed"),
        ("..", "empty label"),
        ("10.0.0.1/../../x", "'/' is not allowed"),
        ("-oProxyCommand=touch${IFS}pwned", "'=' is not allowed"),
        ("-db1", "must not start with '-'"),
        ("db1;touch pwned", "';' is not allowed"),
        ("$(touch pwned)", "'$' is not allowed"),
        ("`touch pwned`", "'`' is not allowed"),
        ("db 1", "' ' is not allowed"),
        ("'db1'", "is not allowed"),
        ("999.1.1.1", "not a valid IPv4 address"),
    ];
    for (host, why) in hosts {
        refused(
            |b| b.workers(json!([{"host": "10.0.0.1", "labels": ["web"]}, {"host": host, "labels": ["web"]}])),
            &["invalid worker.json", "workspace/workers.json", "entry 1", &format!("host {host:?}"), why],
        );
    }
}

#[test]
fn worker_host_accepts_names_and_addresses() {
    let b = TestBucket::new();
    b.workers(json!([
        {"host": "db-1.eu.example.com", "labels": ["web"]},
        {"host": "node_2", "labels": ["web"]},
        {"host": "fe80::1", "labels": ["web"]},
        {"host": "10.0.0.4", "labels": ["web"]}
    ]));
    b.job("api", json!({"selectors": ["web"]}));
    b.build().ok();
    let ips: Vec<String> = b.cat(&["workers"]).iter().map(|w| w["worker_ip"].as_str().unwrap().to_string()).collect();
    assert_eq!(ips, ["db-1.eu.example.com", "node_2", "fe80::1", "10.0.0.4"]);
}

/// After `mutate`, both commands succeed and print a warning line naming every needle; the build
/// takes the input as the Go maand did.
fn accepted_with_warning(mutate: impl FnOnce(&TestBucket), needles: &[&str]) -> Fenced {
    let f = Fenced::new();
    mutate(&f.bucket);
    for out in f.both_commands() {
        assert_eq!(out.code, 0, "expected success for {needles:?}\nstdout: {}\nstderr: {}", out.stdout, out.stderr);
        let warning = out.stderr.lines().find(|l| l.starts_with("warning: ") && needles.iter().all(|n| l.contains(n)));
        assert!(warning.is_some(), "no warning line with {needles:?}:\n{}", out.stderr);
    }
    f.assert_nothing_outside();
    f
}

fn upgrade_batch_size(b: &TestBucket) -> i64 {
    b.db().query_row("SELECT max_concurrent_upgrades FROM job WHERE name = 'api'", [], |r| r.get(0)).unwrap()
}

#[test]
fn unknown_names_in_disabled_json_are_warnings() {
    let disabled = json!({"jobs": {"ghost": {}, "api": {"allocations": ["10.0.0.9"]}}, "workers": ["10.0.0.8"]});
    let write = |b: &TestBucket| b.write("workspace/disabled.json", &disabled.to_string());
    let file = "workspace/disabled.json";
    accepted_with_warning(write, &[file, "jobs.ghost", "no job \"ghost\""]);
    accepted_with_warning(write, &[file, "jobs.api.allocations", "\"10.0.0.9\" is not a worker"]);
    let f = accepted_with_warning(write, &[file, "workers", "\"10.0.0.8\" is not a worker"]);
    let disabled_flags: Vec<i64> =
        f.bucket.cat(&["allocations"]).iter().map(|a| a["disabled"].as_i64().unwrap()).collect();
    assert_eq!(disabled_flags, [0, 0], "unknown names disable nothing");
}

#[test]
fn duplicate_json_keys_are_warnings_and_the_last_value_wins() {
    accepted_with_warning(
        |b| {
            b.write(
                "workspace/workers.json",
                r#"[{"host": "10.0.0.1", "labels": ["db"], "labels": ["web"]}, {"host": "10.0.0.2", "labels": ["web"]}]"#,
            )
        },
        &["workspace/workers.json", "key \"labels\" appears twice in [0]", "last value is used"],
    );
    let f = accepted_with_warning(
        |b| {
            b.write(
                "workspace/jobs/api/manifest.json",
                r#"{"version": "1.0.0", "selectors": ["web"], "version": "2.0.0"}"#,
            )
        },
        &["workspace/jobs/api/manifest.json", "key \"version\" appears twice", "last value is used"],
    );
    assert_eq!(f.bucket.cat(&["jobs"])[0]["version"], "2.0.0");
    accepted_with_warning(
        |b| b.write("workspace/disabled.json", r#"{"workers": ["10.0.0.1"], "workers": []}"#),
        &["workspace/disabled.json", "key \"workers\" appears twice"],
    );
}

#[test]
fn upgrade_batch_size_zero_is_a_warning_and_negative_an_error() {
    let with = |n: i64| move |b: &TestBucket| b.job("api", json!({"selectors": ["web"], "max_concurrent_upgrades": n}));
    let f = accepted_with_warning(
        with(0),
        &["workspace/jobs/api/manifest.json", "max_concurrent_upgrades is 0; 1 is used"],
    );
    assert_eq!(upgrade_batch_size(&f.bucket), 1);
    refused(with(-1), &["invalid manifest.json", "job api", "max_concurrent_upgrades must not be negative (got -1)"]);
}

#[test]
fn invalid_utf8_in_workers_json_names_the_file() {
    refused(
        |b| std::fs::write(b.path("workspace/workers.json"), b"[{\"host\": \"10.0.0.1\xff\"}]").unwrap(),
        &["invalid worker.json: workspace/workers.json is not UTF-8 text (invalid byte at offset 19)"],
    );
    refused(
        |b| std::fs::write(b.path("workspace/jobs/api/manifest.json"), b"{\"version\": \"\xc3\"}").unwrap(),
        &["invalid manifest.json: job api: manifest.json is not UTF-8 text"],
    );
}

#[test]
fn maand_conf_log_format_and_job_config_selector_are_checked() {
    let conf = |extra: &'static str| {
        move |b: &TestBucket| b.write("maand.conf", &format!("{}{extra}\n", b.read("maand.conf")))
    };
    refused(conf("log_format = \"xml\""), &["invalid maand.conf", "maand.conf", "log_format", "got \"xml\""]);
    refused(
        conf("job_config_selector = \"prod\""),
        &["invalid maand.conf: maand.conf: job_config_selector = \"prod\" selects workspace/bucket.jobs.prod.conf, \
             which does not exist"],
    );
    refused(
        conf("job_config_selector = \"../../../x\""),
        &["invalid maand.conf", "maand.conf", "job_config_selector must be a name", "\"../../../x\""],
    );
}

#[test]
fn manifest_version_common_name_and_reservation_are_checked() {
    let with = |manifest: Value| move |b: &TestBucket| b.job("api", manifest);
    let mut version = api_manifest();
    version["version"] = json!("1.0.0\n");
    refused(
        with(version),
        &["invalid job version", "job api: manifest.json: version \"1.0.0\\n\" contains whitespace"],
    );
    let mut long_name = api_manifest();
    long_name["certs"]["tls"]["subject"]["common_name"] = json!("a".repeat(100_000));
    refused(
        with(long_name),
        &[
            "invalid manifest.json: job api",
            "certs.tls.subject.common_name is 100000 characters long; X.509 allows at most 64",
        ],
    );
    let mut small = api_manifest();
    small["resources"] = json!({"memory": {"min": 5}});
    refused(
        move |b| {
            b.write("workspace/bucket.jobs.conf", "[api]\nmemory = \"1 gb\"\n");
            b.job("api", small);
        },
        &["unsupported resource configuration: job api: workspace/jobs/api/manifest.json resources.memory allows at \
             most 5 mb, but workspace/bucket.jobs.conf [api] memory requests 1024 mb"],
    );
}

fn symlink(b: &TestBucket, link: &str, target: &str) {
    let path = b.path(link);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(target, path).unwrap();
}

#[test]
fn symlinks_leaving_the_job_directory_are_refused_naming_the_file() {
    refused(
        |b| symlink(b, "workspace/jobs/api/ca.key", "../../../secrets/ca.key"),
        &["invalid job: job api: workspace/jobs/api/ca.key is a symbolic link to \"../../../secrets/ca.key\", outside \
           the job directory"],
    );
    refused(
        |b| symlink(b, "workspace/jobs/api/conf/passwd", "/etc/passwd"),
        &["workspace/jobs/api/conf/passwd is a symbolic link to \"/etc/passwd\", outside the job directory"],
    );
    // Its text stays inside, but through the link `a` (the job's top) it leads two levels above.
    refused(
        |b| {
            symlink(b, "workspace/jobs/api/p/q/a", "../..");
            symlink(b, "workspace/jobs/api/p/q/b", "a/../..");
        },
        &["workspace/jobs/api/p/q/b is a symbolic link to \"a/../..\", outside the job directory"],
    );
    refused(
        |b| {
            b.write("workspace/jobs/api/lib.py", "x = 1\n");
            symlink(b, "workspace/jobs/api/_modules/lib.py", "../lib.py");
        },
        &["workspace/jobs/api/_modules/lib.py is a symbolic link; files under _modules/ are read on the CLI host"],
    );
}

/// `maand deploy --dry-run` of the fixture's job with `app.conf.tpl` = `source` (after a build),
/// with `conf` appended to maand.conf: it exits 1 naming the template; how long it took.
fn template_bomb(source: &str, conf: &str, needles: &[&str]) -> std::time::Duration {
    let f = Fenced::new();
    let b = &f.bucket;
    b.write("maand.conf", &format!("{}{conf}\n", b.read("maand.conf")));
    b.write("workspace/jobs/api/app.conf.tpl", source);
    b.build().ok();
    let started = std::time::Instant::now();
    let out = b.maand(&["deploy", "--dry-run"]);
    let elapsed = started.elapsed();
    assert_eq!(out.code, 1, "stdout: {}\nstderr: {}", out.stdout, out.stderr);
    for needle in needles {
        assert!(out.stderr.contains(needle), "stderr lacks {needle:?}:\n{}", out.stderr);
    }
    f.assert_nothing_outside();
    elapsed
}

#[test]
fn template_bombs_stop_at_the_time_limit_naming_the_template() {
    let limit = "template_timeout_seconds = 2";
    let stopped = "stopped after 2 s, the time limit of a template (template_timeout_seconds in maand.conf)";
    for (bomb, at) in [
        ("{{ range 100000000 }}{{ end }}", "execute template app.conf.tpl: line 1: {{range 100000000}}{{end}}: "),
        (
            "{{ range 100000 }}{{ range 100000 }}{{ $.Job }}{{ end }}{{ end }}",
            "execute template app.conf.tpl: line 1: ",
        ),
    ] {
        let elapsed = template_bomb(bomb, limit, &["job api on 10.0.0.1", at, stopped]);
        assert!(elapsed < std::time::Duration::from_secs(5), "took {elapsed:?}");
    }
}

#[test]
fn template_bomb_stops_within_the_default_ten_seconds() {
    let elapsed = template_bomb(
        // 10^10 empty iterations: far more than 10 s on any machine.
        "{{ range 100000 }}{{ range 100000 }}{{ end }}{{ end }}",
        "",
        &["execute template app.conf.tpl: line 1: ", "stopped after 10 s, the time limit"],
    );
    assert!(elapsed < std::time::Duration::from_secs(12), "took {elapsed:?}");
}

#[test]
fn template_output_and_source_sizes_are_bounded() {
    let elapsed = template_bomb(
        "{{ range 100000000 }}0123456789abcdef0123456789abcdef{{ end }}",
        "",
        &[
            "execute template app.conf.tpl: line 1: ",
            "the output exceeds 64.0 MiB, the size limit of a rendered template",
        ],
    );
    assert!(elapsed < std::time::Duration::from_secs(10), "took {elapsed:?}");
    let elapsed = template_bomb(
        &"x".repeat(20_000_000),
        "",
        &["template app.conf.tpl: the template is 19.1 MiB; a template may be at most 16.0 MiB"],
    );
    assert!(elapsed < std::time::Duration::from_secs(5), "took {elapsed:?}");
}
