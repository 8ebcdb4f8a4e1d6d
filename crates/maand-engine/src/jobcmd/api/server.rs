//! The runtime API's HTTP server (DESIGN §3.9): bound to 127.0.0.1 on a free port (a bind failure
//! is an error, never ignored), each request served on its own thread (semaphore waits block),
//! stopped — waiters woken — when dropped.

use super::handlers::{handle, ApiRequest, ApiResponse, ApiState};
use maand_core::{Error, ErrorKind, Result};
use std::io::Read;
use std::sync::Arc;
use std::thread::JoinHandle;

/// Largest request body read; anything longer is refused as unreadable.
const MAX_BODY: u64 = 1 << 20;

pub struct RuntimeApi {
    state: Arc<ApiState>,
    server: Arc<tiny_http::Server>,
    port: u16,
    acceptor: Option<JoinHandle<()>>,
}

impl RuntimeApi {
    /// Bind 127.0.0.1:0 and start serving.
    pub fn start(state: ApiState) -> Result<RuntimeApi> {
        let server = tiny_http::Server::http("127.0.0.1:0").map_err(|e| {
            Error::new(ErrorKind::Unexpected, format!("job command runtime API: cannot listen on 127.0.0.1: {e}"))
        })?;
        let port = server.server_addr().to_ip().map(|a| a.port()).ok_or_else(|| {
            Error::new(ErrorKind::Unexpected, "job command runtime API: no TCP port was assigned".to_string())
        })?;
        let server = Arc::new(server);
        let state = Arc::new(state);
        let acceptor = {
            let (server, state) = (Arc::clone(&server), Arc::clone(&state));
            std::thread::Builder::new()
                .name("maand-runtime-api".into())
                .spawn(move || {
                    for request in server.incoming_requests() {
                        let state = Arc::clone(&state);
                        let _ = std::thread::Builder::new()
                            .name("maand-api-request".into())
                            .spawn(move || serve(&state, request));
                    }
                })
                .map_err(|e| Error::new(ErrorKind::Unexpected, format!("job command runtime API: {e}")))?
        };
        Ok(RuntimeApi { state, server, port, acceptor: Some(acceptor) })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &ApiState {
        &self.state
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.state.semaphores.close();
        self.server.unblock();
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn serve(state: &ApiState, mut request: tiny_http::Request) {
    let header = |name: &str| {
        request
            .headers()
            .iter()
            .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str().trim().to_string())
    };
    let token = header("Authorization")
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")).map(|t| t.trim().to_string()));
    let allocation_id = header("X-ALLOCATION-ID");
    let (path, query) = match request.url().split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (request.url().to_string(), String::new()),
    };
    let mut body = Vec::new();
    let read = request.as_reader().take(MAX_BODY + 1).read_to_end(&mut body);
    let api_request = ApiRequest {
        method: request.method().as_str().to_ascii_uppercase(),
        path,
        query,
        token,
        allocation_id,
        body: if read.is_ok() && (body.len() as u64) <= MAX_BODY { body } else { Vec::new() },
    };
    let response = handle(state, &api_request);
    let _ = request.respond(to_http(response));
}

fn to_http(r: ApiResponse) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let content_type = if r.json { "application/json" } else { "text/plain; charset=utf-8" };
    let mut response = tiny_http::Response::from_string(r.body).with_status_code(r.status);
    if let Ok(h) = tiny_http::Header::from_bytes("Content-Type", content_type) {
        response = response.with_header(h);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobcmd::api::{Invocation, Invocations, Semaphores};
    use crate::jobcmd::shared_kv;
    use maand_core::manifest::Event;
    use maand_store::kv::KvStore;
    use std::io::Write;
    use std::net::TcpStream;

    fn send(port: u16, request: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn serves_on_loopback_and_requires_the_token() {
        let mut kv = KvStore::default();
        kv.put("vars/job/api", "k", "v");
        let api = RuntimeApi::start(ApiState {
            kv: shared_kv(kv),
            key: None,
            commands: vec![],
            invocations: Invocations::default(),
            semaphores: Semaphores::default(),
        })
        .unwrap();
        assert_ne!(api.port(), 8080);
        let token = api.state().invocations.register(Invocation {
            alloc_id: "a1".into(),
            job: "api".into(),
            worker_ip: "10.0.0.1".into(),
            event: Event::Cli,
            command: "command_x".into(),
            upstream: vec![],
        });
        let body = r#"{"namespace":"vars/job/api","key":"k"}"#;
        let without = send(
            api.port(),
            &format!("GET /kv HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-ALLOCATION-ID: a1\r\nContent-Length: {}\r\n\r\n{body}", body.len()),
        );
        assert!(without.starts_with("HTTP/1.1 401"), "{without}");
        let with = send(
            api.port(),
            &format!(
                "GET /kv HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nX-ALLOCATION-ID: a1\r\nEVENT: health_check\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
        );
        assert!(with.starts_with("HTTP/1.1 200"), "{with}");
        assert!(with.contains(r#""value":"v""#) && with.contains("application/json"), "{with}");
    }
}
