use super::*;
use crate::jobcmd::shared_kv;
use maand_store::kv::KvStore;
use std::sync::Arc;
use std::time::Duration;

struct Fixture {
    state: Arc<ApiState>,
}

fn command(job: &str, name: &str, event: &str, demand_job: &str, demand_command: &str, config: &str) -> CommandRow {
    CommandRow {
        job: job.into(),
        name: name.into(),
        executed_on: event.into(),
        demand_job: demand_job.into(),
        demand_command: demand_command.into(),
        demand_config: config.into(),
    }
}

impl Fixture {
    fn new() -> Fixture {
        let key = SecretKey::from_bytes([7; 32]);
        let mut kv = KvStore::default();
        kv.put("vars/job/api", "b", "2");
        kv.put("vars/job/api", "a", "1");
        kv.put("vars/job/db", "password_hint", "x");
        kv.put_secret(&key, "secrets/job/db", "root", "s3cret").unwrap();
        kv.put_secret(&key, "maand/job/api/worker/10.0.0.1", "certs/tls.key", "KEY PEM").unwrap();
        kv.put("maand/bucket", "api_port", "31000");
        kv.put("maand/job/api", "rollout_order", "10.0.0.1,10.0.0.2");
        kv.put("maand/job/other", "workers", "10.0.0.9");
        let state = ApiState {
            kv: shared_kv(kv),
            key: Some(key),
            commands: vec![
                command("web", "command_wait", "pre_deploy", "api", "command_service", r#"{"min_version":"1.0.0"}"#),
                command("web", "command_wait", "cli", "api", "command_service", r#"{"min_version":"1.0.0"}"#),
                command("web", "command_other", "cli", "api", "command_else", "{}"),
                command("api", "command_service", "cli", "", "", ""),
            ],
            invocations: Invocations::default(),
            semaphores: Semaphores::default(),
        };
        Fixture { state: Arc::new(state) }
    }

    /// A token for allocation `alloc-<ip>` of `api` (which demands `db`) in `event`.
    fn token(&self, ip: &str, event: Event) -> String {
        self.state.invocations.register(Invocation {
            alloc_id: format!("alloc-{ip}"),
            job: "api".into(),
            worker_ip: ip.into(),
            event,
            command: "command_service".into(),
            upstream: vec!["db".into()],
        })
    }

    fn call(&self, token: &str, method: &str, path: &str, body: &str) -> ApiResponse {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let alloc = self.state.invocations.get(token).map(|i| i.alloc_id);
        handle(
            &self.state,
            &ApiRequest {
                method: method.into(),
                path: path.into(),
                query: query.into(),
                token: Some(token.into()),
                allocation_id: alloc,
                body: body.as_bytes().to_vec(),
            },
        )
    }

    fn kv(&self, ns: &str, key: &str) -> Option<String> {
        lock_kv(&self.state.kv).get(ns, key).map(str::to_string)
    }
}

fn assert_status(r: &ApiResponse, status: u16, body: &str) {
    assert_eq!(r.status, status, "{r:?}");
    assert!(r.body.contains(body), "{body:?} not in {r:?}");
}

#[test]
fn every_request_needs_a_live_token_and_its_allocation() {
    let f = Fixture::new();
    let t = f.token("10.0.0.1", Event::Cli);
    let mut req = ApiRequest {
        method: "GET".into(),
        path: "/kv".into(),
        query: String::new(),
        token: None,
        allocation_id: Some("alloc-10.0.0.1".into()),
        body: br#"{"namespace":"vars/job/api","key":"a"}"#.to_vec(),
    };
    assert_status(&handle(&f.state, &req), 401, UNAUTHORIZED);
    req.token = Some("forged".into());
    assert_status(&handle(&f.state, &req), 401, UNAUTHORIZED);
    req.token = Some(t.clone());
    assert_status(&handle(&f.state, &req), 200, r#""value":"1""#);
    req.allocation_id = None;
    assert_status(&handle(&f.state, &req), 400, MISSING_ALLOCATION);
    req.allocation_id = Some("alloc-10.0.0.2".into());
    assert_status(&handle(&f.state, &req), 404, INVALID_ALLOCATION);
    req.allocation_id = Some("alloc-10.0.0.1".into());
    f.state.invocations.end(&t);
    assert_status(&handle(&f.state, &req), 401, UNAUTHORIZED);
}

#[test]
fn reads_follow_the_namespace_rules() {
    let f = Fixture::new();
    let t = f.token("10.0.0.1", Event::Cli);
    let r = f.call(&t, "GET", "/kv", r#"{"namespace":"secrets/job/db","key":"root"}"#);
    assert_eq!(r.status, 200);
    assert!(r.json);
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v, json!({"namespace": "secrets/job/db", "key": "root", "value": "s3cret"}), "upstream secret");
    assert_status(&f.call(&t, "GET", "/kv", r#"{"namespace":"maand","key":"api_port"}"#), 200, "31000");
    assert_status(
        &f.call(&t, "GET", "/kv", r#"{"namespace":"maand/job/api/worker/10.0.0.1","key":"certs/tls.key"}"#),
        200,
        r#""value":"KEY PEM""#,
    );
    assert_status(&f.call(&t, "GET", "/kv?namespace=vars%2Fjob%2Fapi&key=b", ""), 200, r#""value":"2""#);
    assert_status(
        &f.call(&t, "GET", "/kv", r#"{"namespace":"maand/job/other","key":"workers"}"#),
        400,
        UNAUTHORIZED_NAMESPACE,
    );
    assert_status(&f.call(&t, "GET", "/kv", r#"{"namespace":"vars/job/api","key":"missing"}"#), 404, GET_FAILED);
    assert_status(&f.call(&t, "GET", "/kv", r#"{"namespace":"vars/job/api"}"#), 400, NAMESPACE_AND_KEY);
    assert_status(&f.call(&t, "GET", "/kv", ""), 400, EMPTY_BODY);
    assert_status(&f.call(&t, "GET", "/kv", "{nope"), 400, BAD_JSON);
    assert_status(&f.call(&t, "POST", "/kv", "{}"), 405, "");
    assert_status(&f.call(&t, "GET", "/nowhere", "{}"), 404, NOT_FOUND);
}

#[test]
fn writes_only_to_the_own_namespaces() {
    let f = Fixture::new();
    let t = f.token("10.0.0.1", Event::AfterAllocationStarted);
    assert_status(&f.call(&t, "PUT", "/kv", r#"{"namespace":"vars/job/api","key":"k","value":"  v  "}"#), 200, "");
    assert_eq!(f.kv("vars/job/api", "k").as_deref(), Some("v"), "values are trimmed and visible at once");
    assert_status(&f.call(&t, "PUT", "/kv", r#"{"namespace":"vars/job/api","key":"n","value":3}"#), 200, "");
    assert_eq!(f.kv("vars/job/api", "n").as_deref(), Some("3"));
    for (body, status, msg) in [
        (r#"{"namespace":"vars/job/db","key":"k","value":"v"}"#, 400, UNAUTHORIZED_NAMESPACE),
        (r#"{"namespace":"secrets/job/api","key":"k","value":"v"}"#, 400, UNAUTHORIZED_NAMESPACE),
        (r#"{"namespace":"maand/job/api","key":"rollout_order","value":"x"}"#, 400, UNAUTHORIZED_NAMESPACE),
        (r#"{"namespace":"vars/job/api","key":"k","value":"  "}"#, 400, VALUE_REQUIRED),
        (r#"{"namespace":"vars/job/api","key":"k"}"#, 400, VALUE_REQUIRED),
    ] {
        assert_status(&f.call(&t, "PUT", "/kv", body), status, msg);
    }
    assert_status(&f.call(&t, "DELETE", "/kv", r#"{"namespace":"vars/job/api","key":"k"}"#), 200, "");
    assert_eq!(f.kv("vars/job/api", "k"), None);
    assert_status(&f.call(&t, "DELETE", "/kv", r#"{"namespace":"vars/job/api","key":"k"}"#), 404, DELETE_FAILED);
    assert_status(
        &f.call(&t, "DELETE", "/kv", r#"{"namespace":"vars/job/db","key":"password_hint"}"#),
        400,
        UNAUTHORIZED_NAMESPACE,
    );
}

#[test]
fn rollout_order_is_writable_in_pre_deploy_and_cli_only() {
    let f = Fixture::new();
    let body = r#"{"namespace":"maand/job/api","key":"rollout_order","value":"10.0.0.2,10.0.0.1"}"#;
    for event in [Event::PreDeploy, Event::Cli] {
        let t = f.token("10.0.0.1", event);
        assert_status(&f.call(&t, "PUT", "/kv", body), 200, "");
    }
    assert_eq!(f.kv("maand/job/api", "rollout_order").as_deref(), Some("10.0.0.2,10.0.0.1"));
    for event in [Event::PostDeploy, Event::AfterAllocationStarted, Event::JobControl, Event::PostBuild] {
        let t = f.token("10.0.0.1", event);
        assert_status(&f.call(&t, "PUT", "/kv", body), 400, UNAUTHORIZED_NAMESPACE);
    }
    let t = f.token("10.0.0.1", Event::PreDeploy);
    let other = r#"{"namespace":"maand/job/api","key":"workers","value":"x"}"#;
    assert_status(&f.call(&t, "PUT", "/kv", other), 400, UNAUTHORIZED_NAMESPACE);
}

#[test]
fn health_checks_cannot_write_whatever_event_header_they_send() {
    let f = Fixture::new();
    let t = f.token("10.0.0.1", Event::HealthCheck);
    // The EVENT header is not part of the request model at all: identity is the token's.
    assert_status(
        &f.call(&t, "PUT", "/kv", r#"{"namespace":"vars/job/api","key":"k","value":"v"}"#),
        400,
        HEALTH_CHECK_WRITE,
    );
    assert_status(&f.call(&t, "DELETE", "/kv", r#"{"namespace":"vars/job/api","key":"a"}"#), 400, HEALTH_CHECK_WRITE);
    assert_status(
        &f.call(&t, "PUT", "/kv/secret", r#"{"namespace":"secrets/job/api","key":"k","value":"v"}"#),
        400,
        HEALTH_CHECK_WRITE,
    );
    assert_status(
        &f.call(&t, "DELETE", "/kv/secret", r#"{"namespace":"secrets/job/api","key":"k"}"#),
        400,
        HEALTH_CHECK_WRITE,
    );
    assert_eq!(f.kv("vars/job/api", "a").as_deref(), Some("1"));
    assert_status(&f.call(&t, "GET", "/kv", r#"{"namespace":"vars/job/api","key":"a"}"#), 200, "");
}

#[test]
fn secrets_are_encrypted_into_the_own_namespace_only() {
    let f = Fixture::new();
    let t = f.token("10.0.0.1", Event::AfterAllocationStarted);
    assert_status(
        &f.call(&t, "PUT", "/kv/secret", r#"{"namespace":"secrets/job/api","key":"unseal","value":" k1 "}"#),
        200,
        "",
    );
    let stored = f.kv("secrets/job/api", "unseal").unwrap();
    assert!(stored.starts_with("enc:v1:"), "{stored}");
    let r = f.call(&t, "GET", "/kv", r#"{"namespace":"secrets/job/api","key":"unseal"}"#);
    assert_status(&r, 200, r#""value":" k1 ""#);
    assert_status(
        &f.call(&t, "PUT", "/kv/secret", r#"{"namespace":"secrets/job/db","key":"x","value":"v"}"#),
        400,
        UNAUTHORIZED_NAMESPACE,
    );
    assert_status(
        &f.call(&t, "PUT", "/kv/secret", r#"{"namespace":"vars/job/api","key":"x","value":"v"}"#),
        400,
        UNAUTHORIZED_NAMESPACE,
    );
    assert_status(&f.call(&t, "DELETE", "/kv/secret", r#"{"namespace":"secrets/job/api","key":"unseal"}"#), 200, "");
    assert_status(
        &f.call(&t, "DELETE", "/kv/secret", r#"{"namespace":"secrets/job/api","key":"unseal"}"#),
        404,
        DELETE_FAILED,
    );
}

#[test]
fn keys_are_sorted_and_limited_to_own_namespaces() {
    let f = Fixture::new();
    let t = f.token("10.0.0.1", Event::Cli);
    let r = f.call(&t, "GET", "/kv/keys", "");
    assert_eq!(r.status, 200);
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v, json!({"namespaces": {"vars/job/api": ["a", "b"], "secrets/job/api": []}}));
    let r = f.call(&t, "GET", "/kv/keys", r#"{"namespace":"vars/job/api"}"#);
    assert_eq!(serde_json::from_str::<Value>(&r.body).unwrap(), json!({"namespaces": {"vars/job/api": ["a", "b"]}}));
    assert_status(&f.call(&t, "GET", "/kv/keys", r#"{"namespace":"vars/job/db"}"#), 400, UNAUTHORIZED_NAMESPACE);
}

#[test]
fn demands_list_the_commands_demanding_this_one() {
    let f = Fixture::new();
    let t = f.token("10.0.0.1", Event::Cli);
    let r = f.call(&t, "GET", "/demands", "");
    assert_eq!(r.status, 200);
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v, json!([{"job": "web", "command": "command_wait", "demand_config": {"min_version": "1.0.0"}}]));
}

#[test]
fn semaphores_over_the_api() {
    let f = Fixture::new();
    let t1 = f.token("10.0.0.1", Event::Cli);
    let t2 = f.token("10.0.0.2", Event::Cli);
    let r = f.call(&t1, "POST", "/semaphore/acquire", r#"{"name":"crit","capacity":1,"timeout_seconds":5}"#);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        serde_json::from_str::<Value>(&r.body).unwrap(),
        json!({"name": "crit", "allocation_id": "alloc-10.0.0.1", "capacity": 1, "acquired": true})
    );
    let r = f.call(&t2, "POST", "/semaphore/acquire", r#"{"name":"crit","capacity":2,"timeout_seconds":1}"#);
    assert_status(&r, 409, SEMAPHORE_FAILED);
    let r = f.call(&t2, "POST", "/semaphore/acquire", r#"{"name":"crit","timeout_seconds":0.2}"#);
    assert_status(&r, 408, SEMAPHORE_TIMEOUT);
    let r = f.call(&t2, "GET", "/semaphore/status?name=crit", "");
    assert_eq!(
        serde_json::from_str::<Value>(&r.body).unwrap(),
        json!({"name": "crit", "capacity": 1, "holders": ["alloc-10.0.0.1"], "waiting": 0, "available": 0})
    );
    assert_status(&f.call(&t2, "POST", "/semaphore/release", r#"{"name":"crit"}"#), 409, SEMAPHORE_FAILED);
    assert_status(&f.call(&t2, "POST", "/semaphore/acquire", r#"{"capacity":1}"#), 400, SEMAPHORE_NAME);
    // A waiter gets it when the holder's process ends.
    let waiter = {
        let state = Arc::clone(&f.state);
        let t2 = t2.clone();
        std::thread::spawn(move || {
            handle(
                &state,
                &ApiRequest {
                    method: "POST".into(),
                    path: "/semaphore/acquire".into(),
                    query: String::new(),
                    token: Some(t2),
                    allocation_id: Some("alloc-10.0.0.2".into()),
                    body: br#"{"name":"crit","timeout_seconds":30}"#.to_vec(),
                },
            )
        })
    };
    while f.state.semaphores.status("api/cli/crit").waiting == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    f.state.invocations.end(&t1);
    f.state.semaphores.release_owner(&t1);
    assert_eq!(waiter.join().unwrap().status, 200);
    // Same name under another event: another semaphore.
    let t3 = f.token("10.0.0.1", Event::PreDeploy);
    assert_eq!(f.call(&t3, "POST", "/semaphore/acquire", r#"{"name":"crit","timeout_seconds":1}"#).status, 200);
    assert_status(&f.call(&t2, "POST", "/semaphore/release", r#"{"name":"crit"}"#), 200, "released");
}

#[test]
fn query_strings_decode() {
    let p = query_params("namespace=vars%2Fjob%2Fa&key=a+b&x=%zz&empty");
    assert_eq!(p.get("namespace"), Some(&json!("vars/job/a")));
    assert_eq!(p.get("key"), Some(&json!("a b")));
    assert_eq!(p.get("x"), Some(&json!("%zz")));
    assert_eq!(p.get("empty"), Some(&json!("")));
}
