//! End-to-end job commands (issue 4): the real `maand` binary against sandbox workers, with Python
//! (and Node) job commands talking to the runtime API — a Vault-like bootstrap job shaped like the
//! public catalog's, leader-last rollout orders, semaphores, access rules, `post_build`, `cli` and
//! `job_control` commands.
#![allow(clippy::unwrap_used)]

mod common;
use common::cluster::{Cluster, COUNTING_MAKEFILE};
use common::jobcmd::{cluster, command_job, last_event, reported};
use serde_json::{json, Value};

// ---- a Vault-like job, shaped like the catalog's vault job ----------------------------------------

/// Stands in for Vault: just enough of `/v1/sys/*` (init with 5 shares / threshold 3, unseal with
/// the leader's keys, raft join, leader) for the catalog's bootstrap orchestration. Every restart
/// seals it again. Calls are recorded in `data/calls`.
const VAULT_SERVER: &str = r#"
import json, os, secrets, sys, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

IP, PORT = sys.argv[1], int(sys.argv[2])
STATE = "data/state.json"

def load():
    try:
        with open(STATE) as f:
            return json.load(f)
    except FileNotFoundError:
        return {"initialized": False, "keys": [], "leader": ""}

def save():
    with open(STATE + ".tmp", "w") as f:
        json.dump(state, f)
    os.replace(STATE + ".tmp", STATE)

def record(line):
    with open("data/calls", "a") as f:
        f.write(line + "\n")

state = load()
given = set()

class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(n) or b"{}")

    def do_GET(self):
        if self.path == "/v1/sys/health":
            return self.reply(200, {"initialized": state["initialized"], "sealed": len(given) < 3})
        if self.path == "/v1/sys/leader":
            return self.reply(200, {"is_self": state["leader"] == IP, "leader_address": state["leader"]})
        if self.path == "/v1/internal/keys":
            return self.reply(200, {"keys": state["keys"]})
        self.reply(404, {"errors": ["not found"]})

    def do_POST(self):
        req = self.body()
        if self.path == "/v1/sys/init":
            if state["initialized"]:
                return self.reply(400, {"errors": ["Vault is already initialized"]})
            keys = [secrets.token_hex(16) for _ in range(req["secret_shares"])]
            state.update(initialized=True, leader=IP, keys=keys)
            save()
            record("init")
            return self.reply(200, {"keys": keys, "root_token": "s." + secrets.token_hex(8)})
        if self.path == "/v1/sys/storage/raft/join":
            leader = req["leader_api_addr"]
            with urllib.request.urlopen(leader + "/v1/internal/keys", timeout=5) as r:
                keys = json.load(r)["keys"]
            state.update(initialized=True, leader=leader.split("//")[1].split(":")[0], keys=keys)
            save()
            record("join")
            return self.reply(200, {"joined": True})
        if self.path == "/v1/sys/unseal":
            if req.get("key") not in state["keys"]:
                return self.reply(400, {"errors": ["invalid unseal key"]})
            was_sealed = len(given) < 3
            given.add(req["key"])
            if was_sealed and len(given) >= 3:
                record("unsealed")
            return self.reply(200, {"sealed": len(given) < 3, "progress": len(given)})
        self.reply(404, {"errors": ["not found"]})

ThreadingHTTPServer((IP, PORT), Handler).serve_forever()
"#;

/// Starts the stand-in like the catalog's Makefile starts its container (idempotent start,
/// restart = stop + start). `data/fail_start` makes `start` fail; every target records a
/// timestamped line in `data/events`.
const VAULT_MAKEFILE_TPL: &str = r#"IP := {{ .WorkerIP }}
PORT := {{ get "maand/bucket" "vault_port_api" }}

start:
	mkdir -p data
	test ! -f data/fail_start
	echo "start $$(date +%s.%N)" >> data/events
	if [ -f data/pid ] && kill -0 $$(cat data/pid) 2>/dev/null; then echo running; else setsid nohup python3 server.py $(IP) $(PORT) > data/server.log 2>&1 < /dev/null & echo $$! > data/pid; fi

stop:
	mkdir -p data
	echo "stop $$(date +%s.%N)" >> data/events
	if [ -f data/pid ]; then kill $$(cat data/pid) 2>/dev/null || true; while kill -0 $$(cat data/pid) 2>/dev/null; do sleep 0.05; done; rm -f data/pid; fi

restart:
	mkdir -p data
	echo "restart $$(date +%s.%N)" >> data/events
	if [ -f data/pid ]; then kill $$(cat data/pid) 2>/dev/null || true; while kill -0 $$(cat data/pid) 2>/dev/null; do sleep 0.05; done; fi
	setsid nohup python3 server.py $(IP) $(PORT) > data/server.log 2>&1 < /dev/null & echo $$! > data/pid
"#;

/// The catalog's `vault_lib.py`, pointed at the stand-in (plain HTTP).
const VAULT_LIB: &str = r#"
import json, time, urllib.request
import maand

def leader_ip():
    return maand.get_kv_value("maand/job/vault", "worker_0")

def vault_workers():
    return [w for w in maand.get_kv_value("maand/job/vault", "workers").split(",") if w]

def api_port():
    return maand.get_kv_value("maand/bucket", "vault_port_api")

def call(ip, method, path, body=None, timeout=5):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request("http://%s:%s%s" % (ip, api_port(), path), data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read() or b"{}")

def wait_up(ip, seconds=15):
    deadline = time.time() + seconds
    while True:
        try:
            return call(ip, "GET", "/v1/sys/health", timeout=2)
        except Exception:
            if time.time() > deadline:
                raise
            time.sleep(0.1)

def get_secret(key):
    resp = maand.get_store_value("secrets/job/vault", key)
    if resp.status_code == 404:
        return None
    resp.raise_for_status()
    return resp.json()["value"]

def unseal(ip):
    threshold = int(maand.get_kv_value("vars/job/vault", "cluster_key_threshold"))
    status = None
    for i in range(1, threshold + 1):
        key = get_secret("unseal_key_%d" % i)
        if key is None:
            raise SystemExit("unseal key %d is missing" % i)
        status = call(ip, "POST", "/v1/sys/unseal", {"key": key})
    if status["sealed"]:
        raise SystemExit("vault on %s is still sealed" % ip)
"#;

/// `after_allocation_started`: the leader initialises Vault and keeps the unseal keys as job
/// secrets; followers join and unseal with the keys written earlier in the same deploy.
const VAULT_NODE_UP: &str = r#"
import os, sys, time
import maand
import vault_lib as lib

ip = maand.allocation_ip()
print("node_up %s phase=%s batch=%s/%s order=%s source=%s" % (
    ip, os.environ.get("DEPLOY_PHASE"), os.environ.get("BATCH_INDEX"), os.environ.get("BATCH_COUNT"),
    os.environ.get("ROLLOUT_ORDER"), os.environ.get("ROLLOUT_ORDER_SOURCE")))
health = lib.wait_up(ip)
leader = lib.leader_ip()
if ip == leader and not health["initialized"]:
    if lib.get_secret("unseal_key_1") is not None:
        sys.exit("vault on the leader is not initialized but unseal keys exist")
    res = lib.call(ip, "POST", "/v1/sys/init", {"secret_shares": 5, "secret_threshold": 3})
    for i, key in enumerate(res["keys"], 1):
        maand.put_job_secret("unseal_key_%d" % i, key).raise_for_status()
    maand.put_job_secret("root_token", res["root_token"]).raise_for_status()
    for k, v in [("cluster_key_shares", "5"), ("cluster_key_threshold", "3"), ("cluster_initialized", "true"),
                 ("cluster_leader_ip", ip), ("cluster_bootstrapped", "true"),
                 ("cluster_bootstrapped_at", str(int(time.time())))]:
        maand.put_job_variable(k, v).raise_for_status()
    print("initialized vault on", ip)
elif not health["initialized"]:
    lib.call(ip, "POST", "/v1/sys/storage/raft/join", {"leader_api_addr": "http://%s:%s" % (leader, lib.api_port())})
elif lib.get_secret("unseal_key_1") is None:
    sys.exit("vault is initialized but its unseal keys are lost")
lib.unseal(ip)
print("unsealed", ip)
"#;

/// `pre_deploy` (the catalog's command_plan_order): on the bootstrap node only, ask the running
/// cluster for its leader and put it last (`put_deploy_order`, the legacy name); bootstrap first
/// when nothing runs yet.
const VAULT_PLAN_ORDER: &str = r#"
import maand
import vault_lib as lib

if maand.allocation_ip() != lib.leader_ip():
    raise SystemExit(0)
try:
    previous = maand.get_deploy_order()
    print("previous deploy order:", previous.json()["value"] if previous.status_code == 200 else "-")
    workers = lib.vault_workers()
    leader = None
    for ip in workers:
        try:
            info = lib.call(ip, "GET", "/v1/sys/leader", timeout=2)
        except Exception:
            continue
        if info.get("leader_address"):
            leader = info["leader_address"]
            break
    if leader is None:
        order = [lib.leader_ip()] + [w for w in workers if w != lib.leader_ip()]
    else:
        order = [w for w in workers if w != leader] + [leader]
    maand.put_deploy_order(order).raise_for_status()
    print("deploy order planned:", ",".join(order))
except Exception as e:
    print("deploy_order planning skipped:", e)
"#;

/// The catalog-shaped vault job: legacy `deploy_parallel_count`/`update_parallel_count`, a TCP
/// health check, a per-worker template fed from `bucket.jobs.conf`.
fn vault_job(c: &Cluster) {
    let b = &c.bucket;
    let manifest = json!({
        "version": "1.0.0",
        "selectors": ["app"],
        "deploy_parallel_count": 1,
        "update_parallel_count": 1,
        "resources": {"ports": {"vault_port_api": {}}},
        "health_check": {
            "checks": [{"type": "tcp", "port": "vault_port_api"}],
            "timeout_seconds": 2,
            "wait": {"attempts": 30, "interval_seconds": 1}
        },
        "commands": {
            "command_plan_order": {"executed_on": ["pre_deploy"]},
            "command_node_up": {"executed_on": ["after_allocation_started"]},
            "command_unseal": {"executed_on": ["cli"]}
        }
    });
    b.write("workspace/jobs/vault/manifest.json", &manifest.to_string());
    b.write("workspace/jobs/vault/Makefile.tpl", VAULT_MAKEFILE_TPL);
    b.write("workspace/jobs/vault/server.py", VAULT_SERVER);
    b.write(
        "workspace/jobs/vault/node.conf.tpl",
        "tune={{ getOptional \"vars/bucket/job/vault\" (printf \"tune_%s\" .WorkerIP) }}\n",
    );
    b.write("workspace/jobs/vault/_modules/vault_lib.py", VAULT_LIB);
    b.write("workspace/jobs/vault/_modules/command_node_up.py", VAULT_NODE_UP);
    b.write("workspace/jobs/vault/_modules/command_plan_order.py", VAULT_PLAN_ORDER);
    b.write(
        "workspace/jobs/vault/_modules/command_unseal.py",
        "import maand, vault_lib as lib\nlib.unseal(maand.allocation_ip())\nprint('unsealed', maand.allocation_ip())\n",
    );
}

fn calls(c: &Cluster, i: usize) -> Vec<String> {
    c.worker_file(i, "jobs/vault/data/calls").unwrap_or_default().lines().map(str::to_string).collect()
}

#[test]
fn vault_bootstrap_secret_is_encrypted_shared_in_the_deploy_and_survives_a_later_failure() {
    let c = cluster(3);
    vault_job(&c);
    c.bucket.build().ok();
    // The third worker's start fails: the deploy fails after the leader stored the unseal keys.
    let fail_marker = c.worker_path(2, "jobs/vault/data/fail_start");
    std::fs::create_dir_all(fail_marker.parent().unwrap()).unwrap();
    std::fs::write(&fail_marker, "").unwrap();
    let out = c.deploy(&[]);
    assert_eq!(out.code, 1, "the deploy must fail\n{}", out.stderr);
    assert!(out.stderr.contains(&c.ip(2)), "the failed worker is named:\n{}", out.stderr);

    assert_eq!(calls(&c, 0), ["init", "unsealed"], "the leader initialised once");
    assert_eq!(calls(&c, 1), ["join", "unsealed"], "the second batch read the keys of the first");
    assert!(calls(&c, 2).is_empty());
    let state: Value = serde_json::from_str(&c.worker_file(0, "jobs/vault/data/state.json").unwrap()).unwrap();
    let key1 = state["keys"][0].as_str().unwrap().to_string();

    // The keys survived the failed deploy, encrypted at rest and readable with --reveal.
    let shown = c.bucket.maand(&["cat", "kv", "get", "secrets/job/vault", "unseal_key_1", "--reveal"]).ok();
    assert!(shown.stdout.contains(&key1), "{}", shown.stdout);
    let hidden = c.bucket.maand(&["cat", "kv", "get", "secrets/job/vault", "unseal_key_1"]).ok();
    assert!(!hidden.stdout.contains(&key1), "a secret is shown only with --reveal: {}", hidden.stdout);
    let stored: Vec<String> = c
        .bucket
        .db()
        .prepare("SELECT value FROM key_value WHERE namespace = 'secrets/job/vault' ORDER BY key")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(stored.len(), 6, "5 unseal keys and the root token: {stored:?}");
    assert!(stored.iter().all(|v| v.starts_with("enc:v1:") && !v.contains(&key1)), "{stored:?}");
    assert_eq!(c.bucket.kv("vars/job/vault", "cluster_initialized").as_deref(), Some("true"));
    assert_eq!(c.bucket.kv("vars/job/vault", "cluster_leader_ip"), Some(c.ip(0)));
    let logs = std::process::Command::new("grep").args(["-r", &key1]).arg(c.bucket.path("logs")).output().unwrap();
    assert!(logs.stdout.is_empty(), "a secret reached the logs");

    // Fixed: the next deploy finishes the cluster with the stored keys; nobody re-initialises.
    std::fs::remove_file(&fail_marker).unwrap();
    let out = c.deploy(&[]).ok();
    assert!(!out.stderr.contains("planning skipped"), "{}", out.stderr);
    assert_eq!(calls(&c, 0).iter().filter(|l| *l == "init").count(), 1);
    assert_eq!(calls(&c, 2), ["join", "unsealed"]);
    // A cli command reads the same secrets later (one allocation at a time).
    let out = c.bucket.maand(&["job_command", "command_unseal", "vault", "--concurrency", "1"]).ok();
    assert!(out.stderr.contains(&format!("vault@{} | unsealed {}", c.ip(1), c.ip(1))), "{}", out.stderr);
}

/// An `after_allocation_started` command that kills the maand running it (SIGKILL, no cleanup) on
/// the followers while `<bucket>/crash` exists: maand dies in the middle of the deploy.
const KILL_MAAND: &str = r#"
import os, time
import maand

if os.path.exists(os.path.join(maand.find_bucket_root(), "crash")) and maand.allocation_index() != "0":
    pid = os.getppid()
    while pid > 1 and open("/proc/%d/comm" % pid).read().strip() != "maand":
        pid = int(open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()[1])
    os.kill(pid, 9)
    time.sleep(5)
"#;

#[test]
fn bootstrap_secrets_are_checkpointed_before_maand_dies_mid_deploy() {
    let c = cluster(2);
    vault_job(&c);
    let manifest_path = "workspace/jobs/vault/manifest.json";
    let mut manifest: Value = serde_json::from_str(&c.bucket.read(manifest_path)).unwrap();
    manifest["commands"]["command_z_crash"] = json!({"executed_on": ["after_allocation_started"]});
    c.bucket.write(manifest_path, &manifest.to_string());
    c.bucket.write("workspace/jobs/vault/_modules/command_z_crash.py", KILL_MAAND);
    c.bucket.write("crash", "");
    let out = c.deploy(&["-b"]);
    assert_ne!(out.code, 0, "maand was killed:\n{}", out.stderr);
    assert_eq!(calls(&c, 1), ["join", "unsealed"], "maand died after the second batch's node_up");

    let state: Value = serde_json::from_str(&c.worker_file(0, "jobs/vault/data/state.json").unwrap()).unwrap();
    let key3 = state["keys"][2].as_str().unwrap();
    let shown = c.bucket.maand(&["cat", "kv", "get", "secrets/job/vault", "unseal_key_3", "--reveal"]).ok();
    assert!(shown.stdout.contains(key3), "{}", shown.stdout);

    std::fs::remove_file(c.bucket.path("crash")).unwrap();
    c.deploy(&[]).ok();
    assert_eq!(calls(&c, 0), ["init", "unsealed"], "the leader was not initialised twice");
}

#[test]
fn pre_deploy_puts_the_leader_last_also_when_only_some_allocations_changed() {
    let c = cluster(3);
    vault_job(&c);
    c.deploy(&["-b"]).ok();
    assert_eq!(calls(&c, 0), ["init", "unsealed"]);
    let (w0, w1, w2) = (c.ip(0), c.ip(1), c.ip(2));

    // Only the leader (worker 0) and worker 2 change: worker 2 restarts first, the leader last
    // (the catalog order would be 0 then 2).
    c.bucket.write("workspace/bucket.jobs.conf", &format!("[vault]\n\"tune_{w0}\" = \"a\"\n\"tune_{w2}\" = \"b\"\n"));
    let out = c.deploy(&["-b"]).ok();
    assert!(out.stderr.contains(&format!("deploy order planned: {w1},{w2},{w0}")), "{}", out.stderr);
    assert_eq!(last_event(&c, 1, "vault", "restart"), None, "worker 1 did not change");
    let (r0, r2) = (last_event(&c, 0, "vault", "restart").unwrap(), last_event(&c, 2, "vault", "restart").unwrap());
    assert!(r2 < r0, "the leader must restart last: worker 2 at {r2}, leader at {r0}");
    assert!(out.stderr.contains("source=kv"), "the hook order was used:\n{}", out.stderr);
    assert_eq!(c.worker_file(2, "jobs/vault/node.conf").unwrap(), "tune=b\n");

    // Everything changes: replicas in order, then the leader.
    c.bucket.write("workspace/jobs/vault/extra.txt", "x\n");
    c.deploy(&["-b"]).ok();
    let at: Vec<f64> = (0..3).map(|i| last_event(&c, i, "vault", "restart").unwrap()).collect();
    assert!(at[1] < at[2] && at[2] < at[0], "expected worker 1, 2, then the leader: {at:?}");
    assert!(at[1] > r0, "every worker restarted again: {at:?}");
    // Every restarted node was unsealed again with the stored keys.
    for i in 0..3 {
        assert_eq!(calls(&c, i).iter().filter(|l| *l == "unsealed").count(), if i == 1 { 2 } else { 3 }, "{i}");
    }
}

// ---- small jobs whose commands report through files under <bucket>/out ----------------------------

const CRITICAL_SECTION: &str = r#"
maand.acquire_semaphore("crit", capacity=1, timeout_seconds=30).raise_for_status()
start = time.time()
status = maand.semaphore_status("crit").json()
time.sleep(0.7)
end = time.time()
maand.release_semaphore("crit").raise_for_status()
out("crit-" + maand.allocation_ip(), {"start": start, "end": end, "holders": status["holders"],
                                       "capacity": status["capacity"], "me": maand.allocation_id()})
"#;

/// Allocation 0 dies while holding the semaphore; allocation 1 waits for that, then acquires.
const DIES_HOLDING: &str = r#"
held = os.path.join(maand.find_bucket_root(), "out", "held")
if maand.allocation_index() == "0":
    maand.acquire_semaphore("lock", timeout_seconds=30).raise_for_status()
    out("held", {"at": time.time()})
    time.sleep(1.0)
    os._exit(3)
deadline = time.time() + 20
while not os.path.exists(held) and time.time() < deadline:
    time.sleep(0.05)
if not os.path.exists(held):
    sys.exit("allocation 0 never took the semaphore")
t0 = time.time()
r = maand.acquire_semaphore("lock", timeout_seconds=20)
out("after-death", {"status": r.status_code, "waited": time.time() - t0, "acquired_at": time.time()})
maand.release_semaphore("lock")
"#;

#[test]
fn a_capacity_one_semaphore_serialises_allocations_and_a_dead_holder_does_not_block() {
    let c = cluster(2);
    command_job(
        &c,
        "crit",
        &[("command_critical", &["cli"], CRITICAL_SECTION), ("command_die", &["cli"], DIES_HOLDING)],
    );
    c.bucket.build().ok();
    c.bucket.maand(&["job_command", "command_critical", "crit", "--concurrency", "2"]).ok();
    let (a, b) = (reported(&c, &format!("crit-{}", c.ip(0))), reported(&c, &format!("crit-{}", c.ip(1))));
    let span = |v: &Value| (v["start"].as_f64().unwrap(), v["end"].as_f64().unwrap());
    let ((s1, e1), (s2, e2)) = (span(&a), span(&b));
    assert!(e1 <= s2 || e2 <= s1, "critical sections overlap: {a} {b}");
    for v in [&a, &b] {
        assert_eq!(v["holders"], json!([v["me"]]), "only the caller holds it: {v}");
        assert_eq!(v["capacity"], 1);
    }

    let out = c.bucket.maand(&["job_command", "command_die", "crit", "--concurrency", "2"]);
    let reason = format!("job crit command command_die failed: {}: command execution failed (exit 3)", c.ip(0));
    out.fails_with(&reason);
    let after = reported(&c, "after-death");
    assert_eq!(after["status"], 200, "{after}");
    let held_at = reported(&c, "held")["at"].as_f64().unwrap();
    assert!(after["acquired_at"].as_f64().unwrap() >= held_at + 1.0, "granted only after the holder died: {after}");
    assert!(after["waited"].as_f64().unwrap() < 10.0, "the dead holder's semaphore was not released: {after}");
}

/// Raw HTTP to the runtime API, as catalog scripts do: `call(method, path, body, headers)` → status.
const RAW_HTTP: &str = r#"
import urllib.request, urllib.error
BASE = "http://%s:%s" % (os.environ["JOB_COMMAND_API_HOST"], os.environ["JOB_COMMAND_API_PORT"])
TOKEN = os.environ["JOB_COMMAND_API_TOKEN"]

def call(method, path, body=None, token=TOKEN, alloc=None, event=None, raw=None):
    headers = {"Content-Type": "application/json", "X-ALLOCATION-ID": alloc or maand.allocation_id(),
               "EVENT": event or maand.command_event(), "COMMAND": maand.command_name()}
    if token is not None:
        headers["Authorization"] = "Bearer " + token
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(BASE + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
"#;

const CLI_PROBES: &str = r#"
own = {"namespace": "vars/job/a", "key": "k", "value": "v"}
codes = {
    "own_put": call("PUT", "/kv", own),
    "own_get": call("GET", "/kv", {"namespace": "vars/job/a", "key": "k"}),
    "other_job_get": call("GET", "/kv", {"namespace": "vars/job/b", "key": "k"}),
    "other_job_put": call("PUT", "/kv", {"namespace": "vars/job/b", "key": "k", "value": "v"}),
    "other_job_secret_put": call("PUT", "/kv/secret", {"namespace": "secrets/job/b", "key": "k", "value": "v"}),
    "other_job_secret_get": call("GET", "/kv", {"namespace": "secrets/job/b", "key": "s"}),
    "other_job_keys": call("GET", "/kv/keys", {"namespace": "vars/job/b"}),
    "secret_through_kv": call("PUT", "/kv", {"namespace": "secrets/job/a", "key": "k", "value": "v"}),
    "rollout_order_in_cli": call("PUT", "/kv", {"namespace": "maand/job/a", "key": "rollout_order", "value": maand.allocation_ip()}),
    "health_check_header_in_cli": call("PUT", "/kv", dict(own, value="w"), event="health_check"),
    "no_token": call("GET", "/kv", {"namespace": "vars/job/a", "key": "k"}, token=None),
    "wrong_token": call("GET", "/kv", {"namespace": "vars/job/a", "key": "k"}, token="0" * 64),
    "other_allocation": call("GET", "/kv", {"namespace": "vars/job/a", "key": "k"}, alloc="00000000-0000-0000-0000-000000000000"),
    "bad_json": call("PUT", "/kv", raw=b"{nope"),
    "empty_body": call("PUT", "/kv", raw=b""),
    "wrong_method": call("PATCH", "/kv", own),
    "release_not_held": call("POST", "/semaphore/release", {"name": "s"}),
    "capacity_too_large": call("POST", "/semaphore/acquire", {"name": "s", "capacity": 65}),
}
out("cli-codes", codes)
"#;

const HEALTH_PROBES: &str = r#"
codes = {
    "get": call("GET", "/kv", {"namespace": "vars/job/a", "key": "k"}),
    "helper_put": maand.put_job_variable("k", "from health").status_code,
    "forged_cli_put": call("PUT", "/kv", {"namespace": "vars/job/a", "key": "k", "value": "x"}, event="cli"),
    "forged_pre_deploy_rollout_order": call("PUT", "/kv", {"namespace": "maand/job/a", "key": "rollout_order",
                                                            "value": maand.allocation_ip()}, event="pre_deploy"),
    "forged_cli_secret": call("PUT", "/kv/secret", {"namespace": "secrets/job/a", "key": "s", "value": "x"}, event="cli"),
}
out("health-codes", codes)
"#;

#[test]
fn the_runtime_api_refuses_what_the_access_rules_forbid() {
    let c = cluster(3);
    command_job(
        &c,
        "a",
        &[
            ("command_probe", &["cli"], &format!("{RAW_HTTP}\n{CLI_PROBES}")),
            ("command_health", &["health_check"], &format!("{RAW_HTTP}\n{HEALTH_PROBES}")),
        ],
    );
    let seed = "maand.put_job_variable('k', 'b').raise_for_status()\nmaand.put_job_secret('s', 'x').raise_for_status()";
    command_job(&c, "b", &[("command_seed", &["cli"], seed)]);
    c.bucket.build().ok();
    c.bucket.maand(&["job_command", "command_seed", "b"]).ok();
    let out = c.bucket.maand(&["job_command", "command_probe", "a"]).ok();
    let codes = reported(&c, "cli-codes");
    let expected = json!({
        "own_put": 200, "own_get": 200,
        "other_job_get": 400, "other_job_put": 400, "other_job_secret_put": 400, "other_job_secret_get": 400,
        "other_job_keys": 400, "secret_through_kv": 400,
        "rollout_order_in_cli": 200, "health_check_header_in_cli": 200,
        "no_token": 401, "wrong_token": 401, "other_allocation": 404,
        "bad_json": 400, "empty_body": 400, "wrong_method": 405,
        "release_not_held": 409, "capacity_too_large": 409,
    });
    assert_eq!(codes, expected, "{}", out.stderr);
    // The cli writes were committed: the last one (sent with a forged health_check header) too.
    assert_eq!(c.bucket.kv("vars/job/a", "k").as_deref(), Some("w"));
    assert_eq!(c.bucket.kv("vars/job/b", "k").as_deref(), Some("b"));

    // health_check commands may read but never write, whatever EVENT header they send.
    let out = c.bucket.maand(&["health_check", "--jobs", "a"]).ok();
    let codes = reported(&c, "health-codes");
    let expected = json!({
        "get": 200, "helper_put": 400, "forged_cli_put": 400, "forged_pre_deploy_rollout_order": 400,
        "forged_cli_secret": 400,
    });
    assert_eq!(codes, expected, "{}", out.stderr);
    assert_eq!(c.bucket.kv("vars/job/a", "k").as_deref(), Some("w"));
}

const ENSURE_SECRETS: &str = r#"
if maand.allocation_index() == "0":
    if maand.get_store_value("secrets/job/x", "password").status_code == 404:
        maand.put_job_secret("password", "s3cret-" + str(int(time.time()))).raise_for_status()
if maand.allocation_index() == "1" and os.path.exists(os.path.join(maand.find_bucket_root(), "fail_post_build")):
    sys.exit("cannot reach the secret store")
"#;

const SERVICE: &str = r#"
out("service-%s-%s" % (maand.job_name(), maand.allocation_ip()), {"event": maand.command_event()})
maand.put_job_variable("served_by_" + maand.allocation_index(), maand.allocation_ip()).raise_for_status()
"#;

#[test]
fn post_build_failure_fails_the_build_and_cli_commands_run_on_every_registering_job() {
    let c = cluster(3);
    command_job(
        &c,
        "x",
        &[("command_ensure_secrets", &["post_build"], ENSURE_SECRETS), ("command_service", &["cli"], SERVICE)],
    );
    let check = "if os.path.exists(os.path.join(maand.find_bucket_root(), 'fail_post_build')): sys.exit(4)";
    command_job(&c, "y", &[("command_check", &["post_build"], check), ("command_service", &["cli"], SERVICE)]);
    command_job(&c, "z", &[("command_other", &["cli"], "out('other', {})")]);
    c.bucket.write("fail_post_build", "");
    let out = c.bucket.build().fails_with(&format!("job x command command_ensure_secrets failed: {}", c.ip(1)));
    assert!(out.stderr.contains("cannot reach the secret store"), "the script's error is shown:\n{}", out.stderr);
    let y_failed = format!("job y command command_check failed: {}: command execution failed (exit 4)", c.ip(0));
    assert!(out.stderr.contains(&y_failed), "every post_build failure is reported:\n{}", out.stderr);
    assert_eq!(c.bucket.cat(&["jobs"]).len(), 3, "the catalog itself was committed");
    assert_eq!(c.bucket.kv("secrets/job/x", "password"), None, "post_build KV is committed only on success");

    std::fs::remove_file(c.bucket.path("fail_post_build")).unwrap();
    c.bucket.build().ok();
    let shown = c.bucket.maand(&["cat", "kv", "get", "secrets/job/x", "password", "--reveal"]).ok();
    assert!(shown.stdout.contains("s3cret-"), "{}", shown.stdout);

    // No job named: every job registering the command, each announced.
    let out = c.bucket.maand(&["job_command", "command_service"]).ok();
    assert!(out.stderr.contains("jobcommand: x") && out.stderr.contains("jobcommand: y"), "{}", out.stderr);
    assert!(!out.stderr.contains("jobcommand: z"), "{}", out.stderr);
    for job in ["x", "y"] {
        for i in 0..3 {
            assert_eq!(reported(&c, &format!("service-{job}-{}", c.ip(i)))["event"], "cli");
        }
        assert_eq!(c.bucket.kv(&format!("vars/job/{job}"), "served_by_2"), Some(c.ip(2)), "cli KV is committed");
    }
    // The legacy argument order, and unknown commands.
    std::fs::remove_dir_all(c.bucket.path("out")).unwrap();
    c.bucket.maand(&["jobcommand", "y", "command_service"]).ok();
    assert!(c.bucket.path(&format!("out/service-y-{}", c.ip(0))).exists());
    assert!(!c.bucket.path(&format!("out/service-x-{}", c.ip(0))).exists(), "only job y ran");
    c.bucket
        .maand(&["job_command", "command_nope"])
        .fails_with("command \"command_nope\" is not registered for event \"cli\"");
    c.bucket
        .maand(&["job_command", "command_service", "z"])
        .fails_with("job \"z\" command \"command_service\" is not registered for event \"cli\"");
}

/// job_control: the requested target runs through the SSH helper as `cmd_<target>` (so the
/// Makefile's own `restart` never runs), and the command records what it did in the KV.
const CONTROL: &str = r#"
target = os.environ.get("TARGET")
if target is None:
    target = "start" if maand.allocation_ip() in os.environ["NEW_ALLOCATIONS"].split(",") else "restart"
r = maand.run_make_target("cmd_" + target, check=False)
if r.returncode != 0:
    sys.exit("make cmd_%s failed: %s" % (target, r.stderr))
maand.put_job_variable("last_target_" + maand.allocation_index(), target).raise_for_status()
"#;

const CONTROL_HEALTH: &str = r#"
out("health-" + maand.allocation_ip(), {"at": time.time()})
"#;

#[test]
fn job_control_commands_replace_the_makefile_for_maand_job_and_their_kv_is_committed() {
    let c = cluster(3);
    command_job(
        &c,
        "ctl",
        &[("command_control", &["job_control"], CONTROL), ("command_health", &["health_check"], CONTROL_HEALTH)],
    );
    let makefile = format!(
        "{COUNTING_MAKEFILE}\ncmd_start cmd_restart cmd_migrate:\n\tmkdir -p data\n\techo \"$@ $$(date +%s.%N)\" >> data/events\n"
    );
    c.bucket.write("workspace/jobs/ctl/Makefile", &makefile);
    c.deploy(&["-b"]).ok();
    for i in 0..3 {
        assert_eq!(c.kinds(i, "ctl"), ["cmd_start"], "deploy ran job_control, not make start");
    }
    assert_eq!(c.bucket.kv("vars/job/ctl", "last_target_0").as_deref(), Some("start"));

    let out = c.bucket.maand(&["job", "restart", "ctl", "--health_check"]).ok();
    assert!(out.stderr.contains("via job_control"), "{}", out.stderr);
    for i in 0..3 {
        assert_eq!(c.kinds(i, "ctl"), ["cmd_start", "cmd_restart"], "worker {i}");
        let restarted = last_event(&c, i, "ctl", "cmd_restart").unwrap();
        let checked = reported(&c, &format!("health-{}", c.ip(i)))["at"].as_f64().unwrap();
        assert!(checked > restarted, "the health_check command gated the restart on worker {i}");
        assert_eq!(c.bucket.kv("vars/job/ctl", &format!("last_target_{i}")).as_deref(), Some("restart"));
    }

    // --allocations selects where the commands run.
    c.bucket.maand(&["job", "run", "ctl", "--target", "migrate", "--allocations", &c.ip(1)]).ok();
    assert_eq!(c.kinds(1, "ctl").last().unwrap(), "cmd_migrate");
    assert_eq!(c.kinds(0, "ctl").last().unwrap(), "cmd_restart");
    assert_eq!(c.bucket.kv("vars/job/ctl", "last_target_1").as_deref(), Some("migrate"));
    assert_eq!(c.bucket.kv("vars/job/ctl", "last_target_0").as_deref(), Some("restart"));
}

const JS_COMMAND: &str = r#"
const fs = require("fs");
const path = require("path");
const maand = require("./maand.js");
(async () => {
  const r = await maand.getStoreValue("maand/job/js", "workers_length");
  if (r.status !== 200) throw new Error(`status ${r.status}`);
  const { value } = await r.json();
  const put = await maand.putJobVariable(`seen_by_${maand.allocationIndex()}`, value);
  if (put.status !== 200) throw new Error(`put status ${put.status}`);
  const dir = path.join(process.env.MAAND_BUCKET_ROOT, "out");
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `js-${maand.allocationIp()}`), JSON.stringify({ value, event: maand.commandEvent() }));
})().catch((e) => { console.error(e.message); process.exit(1); });
"#;

#[test]
fn a_javascript_command_reads_and_writes_the_kv_through_the_helper() {
    let has_node = std::process::Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    if !has_node {
        eprintln!("node is not installed: skipping the JS helper test");
        return;
    }
    let c = cluster(2);
    command_job(&c, "js", &[]);
    c.bucket.write(
        "workspace/jobs/js/manifest.json",
        &json!({"version": "1", "selectors": ["app"], "commands": {"command_read": {"executed_on": ["cli"]}}})
            .to_string(),
    );
    c.bucket.write("workspace/jobs/js/_modules/command_read.js", JS_COMMAND);
    c.bucket.build().ok();
    c.bucket.maand(&["job_command", "command_read", "js", "--concurrency", "2"]).ok();
    for i in 0..2 {
        assert_eq!(reported(&c, &format!("js-{}", c.ip(i))), json!({"value": "2", "event": "cli"}));
    }
    assert_eq!(c.bucket.kv("vars/job/js", "seen_by_1").as_deref(), Some("2"));
}
