//! `maand build`: workers, jobs, allocations, ports and deployment waves in the catalog.
#![allow(clippy::unwrap_used)]

mod common;
use common::{three_workers, TestBucket};
use serde_json::json;

fn by<'a>(rows: &'a [serde_json::Value], key: &str, value: &str) -> Vec<&'a serde_json::Value> {
    rows.iter().filter(|r| r[key] == value).collect()
}

#[test]
fn workers_are_normalised_into_the_catalog() {
    let b = TestBucket::new();
    b.workers(three_workers());
    b.build().ok();
    let workers = b.cat(&["workers"]);
    assert_eq!(workers.len(), 3);
    assert_eq!(workers[0]["worker_ip"], "10.0.0.1");
    assert_eq!(workers[0]["labels"], json!(["db", "web", "worker"]));
    assert_eq!(workers[0]["zone"], "a");
    assert_eq!(workers[0]["memory_mb"], 4096);
    assert_eq!(workers[1]["cpu_mhz"], 4000);
    assert_eq!(workers[2]["labels"], json!(["db", "worker"]), "explicit worker label is de-duplicated");
    assert_eq!(b.kv("maand/worker/10.0.0.3", "hostname").as_deref(), Some("db3"));
    assert_eq!(b.kv("maand/worker/10.0.0.1/tags", "zone").as_deref(), Some("a"));
    assert_eq!(b.kv("maand/worker", "db_workers").as_deref(), Some("10.0.0.1,10.0.0.3"));
    assert_eq!(b.kv("maand/worker", "db_1").as_deref(), Some("10.0.0.3"));
    assert_eq!(b.kv("maand/worker", "web_workers_length").as_deref(), Some("2"));
    assert_eq!(b.kv("maand/worker/10.0.0.3", "db_allocation_index").as_deref(), Some("1"));
    assert_eq!(b.kv("maand/worker/10.0.0.1", "web_peers").as_deref(), Some("10.0.0.2"));
    // worker ids are kept across builds
    let id = b.kv("maand/worker/10.0.0.2", "worker_id").unwrap();
    b.build().ok();
    assert_eq!(b.kv("maand/worker/10.0.0.2", "worker_id").unwrap(), id);
}

#[test]
fn positions_order_workers() {
    let b = TestBucket::new();
    b.workers(json!([
        {"host": "10.0.0.9", "position": 2},
        {"host": "10.0.0.8", "position": 0},
        {"host": "10.0.0.7"}
    ]));
    b.build().ok();
    let ips: Vec<String> = b.cat(&["workers"]).iter().map(|w| w["worker_ip"].as_str().unwrap().to_string()).collect();
    assert_eq!(ips, ["10.0.0.8", "10.0.0.7", "10.0.0.9"]);
    assert_eq!(b.kv("maand/worker", "worker_0").as_deref(), Some("10.0.0.8"));
}

#[test]
fn allocations_follow_selectors_with_stable_ids() {
    let b = TestBucket::new();
    b.workers(three_workers());
    b.job("api", json!({"version": "1.0.0", "selectors": ["web"]}));
    b.job("db", json!({"version": "2.0.0"}));
    b.job("everywhere", json!({"selectors": ["worker"]}));
    b.build().ok();
    let allocs = b.cat(&["allocations"]);
    assert_eq!(by(&allocs, "job", "api").len(), 2);
    assert_eq!(by(&allocs, "job", "db").len(), 2, "no selectors = the job name as label");
    assert_eq!(by(&allocs, "job", "everywhere").len(), 3);
    let api1 = by(&allocs, "job", "api").into_iter().find(|a| a["worker_ip"] == "10.0.0.1").unwrap();
    // MD5-based stable id of "api|10.0.0.1", computed independently.
    assert_eq!(api1["allocation_id"], stable_uuid("api|10.0.0.1"));
    // Removing a label removes the allocation (soft) and keeps the id
    let mut w = three_workers();
    w[1]["labels"] = json!([]);
    b.workers(w);
    b.build().ok();
    let allocs = b.cat(&["allocations", "--jobs", "api"]);
    let removed: Vec<_> = allocs.iter().filter(|a| a["removed"] == 1).collect();
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0]["worker_ip"], "10.0.0.2");
    assert_eq!(b.kv("maand/job/api", "workers").as_deref(), Some("10.0.0.1"));
}

fn stable_uuid(s: &str) -> String {
    // Independent re-implementation of the spec's formula (Appendix A) using the md5 of python3.
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import hashlib,sys,uuid;b=bytearray(hashlib.md5(sys.argv[1].encode()).digest());b[6]=(b[6]&0x0f)|0x30;b[8]=(b[8]&0x3f)|0x80;print(uuid.UUID(bytes=bytes(b)))",
            s,
        ])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn disabled_json_and_reenable() {
    let b = TestBucket::new();
    b.workers(three_workers());
    b.job("api", json!({"selectors": ["web"]}));
    b.job("db", json!({}));
    b.write("workspace/disabled.json", r#"{"jobs": {"api": {"allocations": ["10.0.0.2"]}}, "workers": ["10.0.0.3"]}"#);
    b.build().ok();
    let allocs = b.cat(&["allocations"]);
    let disabled: Vec<String> = allocs
        .iter()
        .filter(|a| a["disabled"] == 1)
        .map(|a| format!("{}@{}", a["job"].as_str().unwrap(), a["worker_ip"].as_str().unwrap()))
        .collect();
    assert_eq!(disabled, ["api@10.0.0.2", "db@10.0.0.3"]);
    assert_eq!(b.kv("maand/job/db", "workers").as_deref(), Some("10.0.0.1"));
    assert_eq!(b.kv("maand/job/db/worker/10.0.0.3", "peer_workers").as_deref(), Some("10.0.0.1"));
    b.write("workspace/disabled.json", r#"{"jobs": {"api": {}}}"#);
    b.build().ok();
    let jobs = b.cat(&["jobs"]);
    assert_eq!(by(&jobs, "job", "api")[0]["disabled"], 1);
    assert_eq!(by(&jobs, "job", "db")[0]["disabled"], 0);
}

#[test]
fn manifest_fields_and_legacy_names_reach_the_catalog() {
    let b = TestBucket::new();
    b.workers(three_workers());
    b.job(
        "api",
        json!({
            "version": "v2.1",
            "selectors": ["web"],
            "deploy_parallel_count": 1,
            "update_parallel_count": 3,
            "restart_policy": "reload",
            "restart_globs": ["*.conf"],
            "resources": {"memory": {"min": "256 mb", "max": "1 gb"}, "cpu": {"min": "500 mhz"}},
            "health_check": {"checks": [], "wait": {"attempts": 5, "interval_seconds": 2}},
            "unknown_field": true
        }),
    );
    b.build().ok();
    let row: (String, i64, i64, String, String, String, String, Option<String>) = b
        .db()
        .query_row(
            "SELECT version, max_concurrent_upgrades, max_concurrent_starts, restart_policy, restart_globs,
                    current_memory_mb, current_cpu_mhz, health_check FROM job WHERE name='api'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?)),
        )
        .unwrap();
    assert_eq!(row.0, "v2.1");
    assert_eq!((row.1, row.2), (3, 1));
    assert_eq!(row.3, "reload");
    assert_eq!(row.4, r#"["*.conf"]"#);
    assert_eq!(row.5, "1024");
    assert_eq!(row.6, "500", "min without max: max = min");
    assert!(row.7.unwrap().contains("\"attempts\":5"), "wait settings kept without checks");
    assert_eq!(b.kv("maand/job/api", "version").as_deref(), Some("v2.1"));
    assert_eq!(b.kv("maand/job/api", "min_memory_mb").as_deref(), Some("256"));
    assert_eq!(b.kv("maand/job/api", "memory").as_deref(), Some("1024"));
    let allocs = b.cat(&["deployments", "--jobs", "api"]);
    assert_eq!(allocs[0]["new_version"], "v2.1");
    assert_eq!(allocs[0]["rollout"], "new");
}

#[test]
fn ports_are_assigned_kept_and_released() {
    let b = TestBucket::new();
    b.workers(three_workers());
    b.write("workspace/bucket.conf", "port_min = \"31000\"\nport_max = \"31003\"\n");
    b.job("api", json!({"selectors": ["web"], "resources": {"ports": {"api_http": {}, "api_admin": 9500}}}));
    b.job("db", json!({"resources": {"ports": {"db_port": {}}}}));
    b.build().ok();
    let ports = b.cat(&["job_ports"]);
    let port = |job: &str, name: &str| {
        ports.iter().find(|p| p["job"] == job && p["name"] == name).map(|p| p["port"].as_i64().unwrap()).unwrap()
    };
    assert_eq!(port("api", "api_admin"), 9500);
    assert_eq!(port("api", "api_http"), 31000);
    assert_eq!(port("db", "db_port"), 31001);
    assert_eq!(b.kv("maand/bucket", "db_port").as_deref(), Some("31001"));
    // a new job does not move existing assignments
    b.job("cache", json!({"selectors": ["worker"], "resources": {"ports": {"cache_port": {}}}}));
    b.build().ok();
    let ports = b.cat(&["job_ports"]);
    assert_eq!(ports.iter().find(|p| p["name"] == "db_port").unwrap()["port"], 31001);
    assert_eq!(ports.iter().find(|p| p["name"] == "cache_port").unwrap()["port"], 31002);
    // collision between fixed ports fails and names both
    b.job("other", json!({"selectors": ["worker"], "resources": {"ports": {"other_port": 9500}}}));
    b.build().fails_with("port collision");
    b.remove("workspace/jobs/other");
    // exhaustion
    b.job("more", json!({"selectors": ["worker"], "resources": {"ports": {"m1": {}, "m2": {}}}}));
    b.build().fails_with("port range exhausted");
}

#[test]
fn deployment_seq_follows_demands_and_cycles_fail() {
    let b = TestBucket::new();
    b.workers(json!([{"host": "10.0.0.1", "labels": ["database", "api", "frontend"]}]));
    let cmd = |demand: Option<(&str, &str)>| {
        let mut c = json!({"executed_on": ["cli"]});
        if let Some((job, command)) = demand {
            c["demands"] = json!({"job": job, "command": command, "config": {"min_version": "1.0"}});
        }
        c
    };
    b.job("database", json!({"version": "1.2.0", "commands": {"command_schema": cmd(None)}}));
    b.job(
        "api",
        json!({"version": "1.0.0", "commands": {"command_migrate": cmd(Some(("database", "command_schema")))}}),
    );
    b.job("frontend", json!({"version": "1.0.0", "commands": {"command_x": cmd(Some(("api", "command_migrate")))}}));
    for (job, cmd) in [("database", "command_schema"), ("api", "command_migrate"), ("frontend", "command_x")] {
        b.write(&format!("workspace/jobs/{job}/_modules/{cmd}.py"), "print('hi')\n");
    }
    b.build().ok();
    let jobs = b.cat(&["jobs"]);
    let seq = |name: &str| jobs.iter().find(|j| j["job"] == name).unwrap()["deployment_seq"].as_i64().unwrap();
    assert_eq!((seq("database"), seq("api"), seq("frontend")), (0, 1, 2));
    assert_eq!(jobs[0]["job"], "database", "cat jobs is ordered by deployment_seq");
    let commands = b.cat(&["job_commands"]);
    assert_eq!(commands.len(), 3);
    assert_eq!(by(&commands, "job", "api")[0]["demand_job"], "database");
    // version constraint
    b.job(
        "api",
        json!({"version": "1.0.0", "commands": {"command_migrate": {"executed_on": ["cli"], "demands": {"job": "database", "command": "command_schema", "config": {"min_version": 2}}}}}),
    );
    b.build().fails_with("job command demand version mismatch");
    // cycle
    b.job(
        "database",
        json!({"version": "1.2.0", "commands": {"command_schema": cmd(Some(("frontend", "command_x")))}}),
    );
    b.job(
        "api",
        json!({"version": "1.0.0", "commands": {"command_migrate": cmd(Some(("database", "command_schema")))}}),
    );
    let out = b.build().fails_with("circular job command dependency");
    assert!(out.stderr.contains("api -> database -> frontend -> api"), "{}", out.stderr);
}

#[test]
fn min_allocations_and_resources_are_validated() {
    let b = TestBucket::new();
    b.workers(three_workers());
    b.job("api", json!({"selectors": ["web"], "min_allocations_count": 3}));
    b.build().fails_with("missing allocations");
    b.job("api", json!({"selectors": ["web"], "resources": {"memory": {"max": "3 gb"}}}));
    b.job("web2", json!({"selectors": ["web"], "resources": {"memory": {"max": "2 gb"}}}));
    let out = b.build().fails_with("insufficient resource");
    assert!(
        out.stderr.contains("worker_ip 10.0.0.1, available memory is 4096.00 MB, required memory is 5120.00 MB"),
        "{}",
        out.stderr
    );
    // a bucket.jobs.conf reservation inside the bounds fixes it
    b.job("api", json!({"selectors": ["web"], "resources": {"memory": {"min": "1 gb", "max": "3 gb"}}}));
    b.write("workspace/bucket.jobs.conf", "[api]\nmemory = \"1 gb\"\nlog_level = \"debug\"\n");
    b.build().ok();
    assert_eq!(b.kv("maand/job/api", "memory").as_deref(), Some("1024"));
    assert_eq!(b.kv("vars/bucket/job/api", "log_level").as_deref(), Some("debug"));
    // a reservation outside the bounds is refused
    b.write("workspace/bucket.jobs.conf", "[api]\nmemory = \"8 gb\"\n");
    b.build().fails_with("unsupported resource configuration");
    // the selector picks another file
    b.write("workspace/bucket.jobs.prod.conf", "[api]\nmemory = \"2 gb\"\n");
    b.write("maand.conf", "job_config_selector = \"prod\"\n");
    b.build().ok();
    assert_eq!(b.kv("maand/job/api", "memory").as_deref(), Some("2048"));
}

#[test]
fn a_failed_build_commits_nothing() {
    let b = TestBucket::new();
    b.workers(three_workers());
    b.job("api", json!({"selectors": ["web"], "resources": {"ports": {"api_port": {}}}}));
    b.build().ok();
    let before = b.dump();
    b.workers(json!([{"host": "10.0.0.5", "labels": ["web"]}]));
    b.job("db", json!({"version": "1.0"}));
    b.write("workspace/jobs/broken/manifest.json", "{\"restart_policy\": \"sometimes\"}");
    b.write("workspace/jobs/broken/Makefile", "");
    b.build().fails_with("invalid manifest.json");
    assert_eq!(b.dump(), before);
}
