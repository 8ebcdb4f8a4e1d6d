//! The runtime API's routes (spec §8.4, §8.5, DESIGN §3.9), independent of the HTTP server: a
//! request (method, path, query, token, allocation header, body) in, a status and body out — or,
//! for a semaphore acquire that has to wait, a [`SemaphoreWait`] to answer when it is decided.
//! Every request needs a live invocation token (401 otherwise); the job, allocation and event are
//! the token's, whatever `EVENT`/`COMMAND` headers say.

use super::invocations::{Invocation, Invocations};
use super::semaphores::{normalize_timeout, AcquireError, Enqueued, Semaphores, Ticket};
use crate::jobcmd::{lock_kv, SharedKv};
use maand_core::kv_access::{canonical_namespace, is_encrypted_at_rest, is_readable};
use maand_core::manifest::Event;
use maand_store::catalog::CommandRow;
use maand_store::secrets::SecretKey;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;

/// Everything the routes read and change.
pub struct ApiState {
    pub kv: SharedKv,
    pub key: Option<SecretKey>,
    /// Every `job_commands` row (for `/demands`).
    pub commands: Vec<CommandRow>,
    pub invocations: Invocations,
    pub semaphores: Semaphores,
}

/// One HTTP request, as the routes see it.
#[derive(Debug, Clone, Default)]
pub struct ApiRequest {
    pub method: String,
    pub path: String,
    /// The raw query string (without `?`).
    pub query: String,
    /// The `Authorization: Bearer …` token.
    pub token: Option<String>,
    /// The `X-ALLOCATION-ID` header.
    pub allocation_id: Option<String>,
    pub body: Vec<u8>,
}

/// The answer: a status, and a JSON body (`json`) or a plain-text one.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    pub body: String,
    pub json: bool,
}

impl ApiResponse {
    fn ok_json(value: Value) -> ApiResponse {
        ApiResponse { status: 200, body: value.to_string(), json: true }
    }

    fn ok_empty() -> ApiResponse {
        ApiResponse { status: 200, body: String::new(), json: false }
    }

    /// A plain-text error (`message\n`, as Go's `http.Error`).
    fn error(status: u16, message: &str) -> ApiResponse {
        ApiResponse { status, body: format!("{message}\n"), json: false }
    }
}

pub const UNAUTHORIZED: &str = "Missing or invalid job command API token";
pub const MISSING_ALLOCATION: &str = "X-ALLOCATION-ID header is missing";
pub const INVALID_ALLOCATION: &str = "Invalid allocation ID";
pub const EMPTY_BODY: &str = "Failed to read request body";
pub const BAD_JSON: &str = "Invalid JSON format";
pub const NAMESPACE_AND_KEY: &str = "Both namespace and key are required";
pub const VALUE_REQUIRED: &str = "Value is required";
pub const UNAUTHORIZED_NAMESPACE: &str = "Invalid or unauthorized namespace";
pub const GET_FAILED: &str = "KV get operation failed";
pub const DELETE_FAILED: &str = "KV delete operation failed";
pub const HEALTH_CHECK_WRITE: &str = "KV writes are not allowed during health_check";
pub const SEMAPHORE_NAME: &str = "Semaphore name is required";
pub const SEMAPHORE_TIMEOUT: &str = "Timed out waiting for semaphore";
pub const SEMAPHORE_FAILED: &str = "Semaphore acquire or release failed";
pub const INTERNAL: &str = "Internal server error";
pub const NOT_FOUND: &str = "Not found";

type Reply = Result<ApiResponse, ApiResponse>;

/// What a request got: its answer, or a queued semaphore acquire.
#[derive(Debug)]
pub enum Outcome {
    Reply(ApiResponse),
    Wait(SemaphoreWait),
}

/// An acquire waiting in its semaphore's queue; [`SemaphoreWait::poll`] gives its answer once
/// decided (granted, timed out, cancelled).
#[derive(Debug)]
pub struct SemaphoreWait {
    ticket: Ticket,
    name: String,
    alloc_id: String,
}

impl SemaphoreWait {
    /// The answer, when decided; and the semaphores' change generation it was checked at.
    pub fn poll(&self, semaphores: &Semaphores) -> (Option<ApiResponse>, u64) {
        let (decided, generation) = semaphores.poll(&self.ticket);
        (decided.map(|r| acquire_answer(&self.name, &self.alloc_id, r)), generation)
    }

    /// When the wait times out.
    pub fn deadline(&self) -> std::time::Instant {
        self.ticket.deadline()
    }

    /// Block until decided.
    pub fn answer(self, semaphores: &Semaphores) -> ApiResponse {
        acquire_answer(&self.name, &self.alloc_id, semaphores.wait(&self.ticket))
    }
}

fn acquire_answer(name: &str, alloc_id: &str, result: Result<usize, AcquireError>) -> ApiResponse {
    match result {
        Ok(capacity) => ApiResponse::ok_json(
            json!({"name": name, "allocation_id": alloc_id, "capacity": capacity, "acquired": true}),
        ),
        Err(AcquireError::TimedOut) => ApiResponse::error(408, SEMAPHORE_TIMEOUT),
        Err(AcquireError::Conflict | AcquireError::Cancelled) => ApiResponse::error(409, SEMAPHORE_FAILED),
    }
}

/// Route one request, blocking while a semaphore acquire waits.
pub fn handle(state: &ApiState, req: &ApiRequest) -> ApiResponse {
    match dispatch(state, req) {
        Outcome::Reply(response) => response,
        Outcome::Wait(wait) => wait.answer(&state.semaphores),
    }
}

/// Route one request without blocking: an acquire that has to wait comes back as
/// [`Outcome::Wait`].
pub fn dispatch(state: &ApiState, req: &ApiRequest) -> Outcome {
    let Some(inv) = req.token.as_deref().and_then(|t| state.invocations.get(t)) else {
        return Outcome::Reply(ApiResponse::error(401, UNAUTHORIZED));
    };
    let token = req.token.as_deref().unwrap_or_default();
    match req.allocation_id.as_deref().map(str::trim) {
        None | Some("") => return Outcome::Reply(ApiResponse::error(400, MISSING_ALLOCATION)),
        Some(id) if id != inv.alloc_id => return Outcome::Reply(ApiResponse::error(404, INVALID_ALLOCATION)),
        Some(_) => {}
    }
    let call = Call { state, req, inv: &inv, token };
    let result = match (req.path.trim_end_matches('/'), req.method.as_str()) {
        ("/kv", "GET") => call.get_kv(),
        ("/kv", "PUT") => call.put_kv(),
        ("/kv", "DELETE") => call.delete_kv(),
        ("/kv/secret", "PUT") => call.put_secret(),
        ("/kv/secret", "DELETE") => call.delete_secret(),
        ("/kv/keys", "GET") => call.keys(),
        ("/demands", "GET") => Ok(call.demands()),
        ("/semaphore/acquire", "POST") => return call.acquire().unwrap_or_else(Outcome::Reply),
        ("/semaphore/release", "POST") => call.release(),
        ("/semaphore/status", "GET") => call.status(),
        (
            "/kv" | "/kv/secret" | "/kv/keys" | "/demands" | "/semaphore/acquire" | "/semaphore/release"
            | "/semaphore/status",
            _,
        ) => Err(ApiResponse { status: 405, body: String::new(), json: false }),
        _ => Err(ApiResponse::error(404, NOT_FOUND)),
    };
    Outcome::Reply(result.unwrap_or_else(|e| e))
}

struct Call<'a> {
    state: &'a ApiState,
    req: &'a ApiRequest,
    inv: &'a Invocation,
    token: &'a str,
}

impl Call<'_> {
    fn own(&self, prefix: &str) -> String {
        format!("{prefix}/{}", self.inv.job)
    }

    fn no_writes_in_health_check(&self) -> Result<(), ApiResponse> {
        if self.inv.event == Event::HealthCheck {
            Err(ApiResponse::error(400, HEALTH_CHECK_WRITE))
        } else {
            Ok(())
        }
    }

    /// The JSON object body (required), or for GET requests without a body, the query string.
    fn params(&self) -> Result<Map<String, Value>, ApiResponse> {
        if self.req.body.iter().all(u8::is_ascii_whitespace) {
            if self.req.method == "GET" && !self.req.query.is_empty() {
                return Ok(query_params(&self.req.query));
            }
            return Err(ApiResponse::error(400, EMPTY_BODY));
        }
        match serde_json::from_slice::<Value>(&self.req.body) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(ApiResponse::error(400, BAD_JSON)),
        }
    }

    /// Like `params`, but an absent body means no parameters.
    fn optional_params(&self) -> Result<Map<String, Value>, ApiResponse> {
        if self.req.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(query_params(&self.req.query));
        }
        self.params()
    }

    fn namespace_and_key(p: &Map<String, Value>) -> Result<(String, String), ApiResponse> {
        match (text(p, "namespace"), text(p, "key")) {
            (Some(ns), Some(key)) if !ns.trim().is_empty() && !key.trim().is_empty() => {
                Ok((ns.trim().to_string(), key.trim().to_string()))
            }
            _ => Err(ApiResponse::error(400, NAMESPACE_AND_KEY)),
        }
    }

    fn value(p: &Map<String, Value>) -> Result<String, ApiResponse> {
        text(p, "value").filter(|v| !v.trim().is_empty()).ok_or_else(|| ApiResponse::error(400, VALUE_REQUIRED))
    }

    fn get_kv(&self) -> Reply {
        let p = self.params()?;
        let (requested, key) = Self::namespace_and_key(&p)?;
        let inv = self.inv;
        if !is_readable(&inv.job, &inv.worker_ip, &inv.upstream, &requested) {
            return Err(ApiResponse::error(400, UNAUTHORIZED_NAMESPACE));
        }
        let ns = canonical_namespace(&requested).to_string();
        let kv = lock_kv(&self.state.kv);
        let value = if is_encrypted_at_rest(&ns, &key) {
            let secret_key = self.state.key.as_ref().ok_or_else(|| ApiResponse::error(500, INTERNAL))?;
            kv.get_secret(secret_key, &ns, &key).map_err(|_| ApiResponse::error(500, INTERNAL))?
        } else {
            kv.get(&ns, &key).map(str::to_string)
        };
        match value {
            Some(value) => Ok(ApiResponse::ok_json(json!({"namespace": requested, "key": key, "value": value}))),
            None => Err(ApiResponse::error(404, GET_FAILED)),
        }
    }

    fn put_kv(&self) -> Reply {
        let p = self.params()?;
        let (ns, key) = Self::namespace_and_key(&p)?;
        let value = Self::value(&p)?;
        let rollout_order = ns == self.own("maand/job")
            && key == "rollout_order"
            && matches!(self.inv.event, Event::PreDeploy | Event::Cli);
        if ns != self.own("vars/job") && !rollout_order {
            return Err(ApiResponse::error(400, UNAUTHORIZED_NAMESPACE));
        }
        self.no_writes_in_health_check()?;
        lock_kv(&self.state.kv).put(&ns, &key, &value);
        Ok(ApiResponse::ok_empty())
    }

    fn delete_kv(&self) -> Reply {
        let p = self.params()?;
        let (ns, key) = Self::namespace_and_key(&p)?;
        if ns != self.own("vars/job") {
            return Err(ApiResponse::error(400, UNAUTHORIZED_NAMESPACE));
        }
        self.no_writes_in_health_check()?;
        lock_kv(&self.state.kv).delete(&ns, &key).map_err(|_| ApiResponse::error(404, DELETE_FAILED))?;
        Ok(ApiResponse::ok_empty())
    }

    fn put_secret(&self) -> Reply {
        let p = self.params()?;
        let (ns, key) = Self::namespace_and_key(&p)?;
        if ns != self.own("secrets/job") {
            return Err(ApiResponse::error(400, UNAUTHORIZED_NAMESPACE));
        }
        let value =
            text(&p, "value").filter(|v| !v.is_empty()).ok_or_else(|| ApiResponse::error(400, VALUE_REQUIRED))?;
        self.no_writes_in_health_check()?;
        let secret_key = self.state.key.as_ref().ok_or_else(|| ApiResponse::error(500, INTERNAL))?;
        lock_kv(&self.state.kv)
            .put_secret(secret_key, &ns, &key, &value)
            .map_err(|_| ApiResponse::error(500, INTERNAL))?;
        Ok(ApiResponse::ok_empty())
    }

    fn delete_secret(&self) -> Reply {
        let p = self.params()?;
        let (ns, key) = Self::namespace_and_key(&p)?;
        if ns != self.own("secrets/job") {
            return Err(ApiResponse::error(400, UNAUTHORIZED_NAMESPACE));
        }
        self.no_writes_in_health_check()?;
        lock_kv(&self.state.kv).delete(&ns, &key).map_err(|_| ApiResponse::error(404, DELETE_FAILED))?;
        Ok(ApiResponse::ok_empty())
    }

    /// `{"namespaces": {"vars/job/<job>": [...], "secrets/job/<job>": [...]}}`, keys sorted.
    fn keys(&self) -> Reply {
        let p = self.optional_params()?;
        let own = [self.own("vars/job"), self.own("secrets/job")];
        let selected: Vec<String> = match text(&p, "namespace").map(|n| n.trim().to_string()).filter(|n| !n.is_empty())
        {
            Some(ns) if own.contains(&ns) => vec![ns],
            Some(_) => return Err(ApiResponse::error(400, UNAUTHORIZED_NAMESPACE)),
            None => own.to_vec(),
        };
        let kv = lock_kv(&self.state.kv);
        let namespaces: Map<String, Value> = selected.into_iter().map(|ns| (ns.clone(), json!(kv.keys(&ns)))).collect();
        Ok(ApiResponse::ok_json(json!({ "namespaces": namespaces })))
    }

    /// The commands of other jobs that demand this invocation's job and command.
    fn demands(&self) -> ApiResponse {
        let mut seen = BTreeSet::new();
        let rows: Vec<Value> = self
            .state
            .commands
            .iter()
            .filter(|c| c.demand_job == self.inv.job && c.demand_command == self.inv.command)
            .filter(|c| seen.insert((c.job.clone(), c.name.clone())))
            .map(|c| {
                let config: Value =
                    serde_json::from_str(&c.demand_config).ok().filter(Value::is_object).unwrap_or_else(|| json!({}));
                json!({"job": c.job, "command": c.name, "demand_config": config})
            })
            .collect();
        ApiResponse::ok_json(Value::Array(rows))
    }

    fn semaphore_key(&self, name: &str) -> String {
        format!("{}/{}/{name}", self.inv.job, self.inv.event)
    }

    fn semaphore_name(p: &Map<String, Value>) -> Result<String, ApiResponse> {
        text(p, "name")
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ApiResponse::error(400, SEMAPHORE_NAME))
    }

    fn acquire(&self) -> Result<Outcome, ApiResponse> {
        let p = self.params()?;
        let name = Self::semaphore_name(&p)?;
        let capacity = match p.get("capacity") {
            None | Some(Value::Null) => None,
            Some(v) => Some(number(v).ok_or_else(|| ApiResponse::error(400, BAD_JSON))? as i64),
        };
        let timeout = normalize_timeout(p.get("timeout_seconds").and_then(number));
        let alloc_id = &self.inv.alloc_id;
        let enqueued =
            self.state.semaphores.enqueue(&self.semaphore_key(&name), alloc_id, self.token, capacity, timeout);
        Ok(match enqueued {
            Ok(Enqueued::Waiting(ticket)) => Outcome::Wait(SemaphoreWait { ticket, name, alloc_id: alloc_id.clone() }),
            Ok(Enqueued::Granted(capacity)) => Outcome::Reply(acquire_answer(&name, alloc_id, Ok(capacity))),
            Err(e) => Outcome::Reply(acquire_answer(&name, alloc_id, Err(e))),
        })
    }

    fn release(&self) -> Reply {
        let p = self.params()?;
        let name = Self::semaphore_name(&p)?;
        if self.state.semaphores.release(&self.semaphore_key(&name), &self.inv.alloc_id) {
            Ok(ApiResponse::ok_json(json!({"name": name, "allocation_id": self.inv.alloc_id, "released": true})))
        } else {
            Err(ApiResponse::error(409, SEMAPHORE_FAILED))
        }
    }

    fn status(&self) -> Reply {
        let p = self.optional_params()?;
        let name = Self::semaphore_name(&p)?;
        let st = self.state.semaphores.status(&self.semaphore_key(&name));
        Ok(ApiResponse::ok_json(json!({
            "name": name,
            "capacity": st.capacity,
            "holders": st.holders,
            "waiting": st.waiting,
            "available": st.available,
        })))
    }
}

/// A field as text: strings as they are, numbers and booleans in their JSON spelling.
fn text(p: &Map<String, Value>, name: &str) -> Option<String> {
    match p.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `a=1&b=x%20y` as a JSON object of strings.
fn query_params(query: &str) -> Map<String, Value> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), Value::String(percent_decode(v)))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'+', _, _) => out.push(b' '),
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 2;
            }
            (b, _, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests;
