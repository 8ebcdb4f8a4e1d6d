//! Shared pieces of the health tests: local TCP/HTTP listeners on 127.0.0.1 ephemeral ports, a
//! collector for progress lines, and spec builders.
#![allow(dead_code, clippy::unwrap_used)]

use maand_core::{HealthCheckSpec, ProbeKind};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Mutex;
use std::time::Duration;

pub fn spec(
    checks: Vec<ProbeKind>,
    timeout_seconds: u64,
    wait_attempts: u32,
    wait_interval_seconds: u64,
) -> HealthCheckSpec {
    HealthCheckSpec { checks, timeout_seconds, wait_attempts, wait_interval_seconds }
}

pub fn tcp(port: &str) -> ProbeKind {
    ProbeKind::Tcp { port: port.into() }
}

pub fn http(port: &str, path: &str, expect_status: u16) -> ProbeKind {
    ProbeKind::Http { port: port.into(), path: path.into(), expect_status, scheme: "http".into() }
}

pub fn ssh(command: &str) -> ProbeKind {
    ProbeKind::Ssh { command: command.into() }
}

/// A port nothing listens on (bound once, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Answers every request with `status` (and `Location: /elsewhere` for 3xx); records request lines.
pub fn http_server(status: u16) -> u16 {
    serve(move |mut stream| {
        let mut buf = [0u8; 4096];
        let mut request = Vec::new();
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
        let location = if (300..400).contains(&status) { "Location: /elsewhere\r\n" } else { "" };
        let _ =
            write!(stream, "HTTP/1.1 {status} Status\r\n{location}Content-Length: 2\r\nConnection: close\r\n\r\nok");
    })
}

/// Answers every connection with an SSH banner (as a live sshd does), then holds it a while.
pub fn ssh_server() -> u16 {
    serve(|mut stream| {
        let _ = stream.write_all(b"SSH-2.0-OpenSSH_test\r\n");
        std::thread::sleep(Duration::from_secs(30));
    })
}

/// An OpenSSH executor for liveness checks only (it never runs ssh): `default_port` for workers
/// without their own.
pub fn ssh_executor(default_port: u16) -> maand_remote::OpenSsh {
    maand_remote::OpenSsh::new(maand_remote::SshSettings {
        user: "root".into(),
        key_path: "/nonexistent/key".into(),
        default_port,
        use_sudo: false,
        host_key_checking: maand_remote::HostKeyPolicy::AcceptNew,
        known_hosts: "/nonexistent/known_hosts".into(),
        control_dir: std::env::temp_dir().join("maand-health-tests-no-ssh"),
        connect_timeout_secs: 5,
        command_timeout_secs: 5,
        connect_retries: 0,
    })
}

/// Accepts connections (a TCP probe passes) and never answers (an HTTP probe times out, and so
/// does a worker check: no SSH banner, as from a frozen host).
pub fn silent_server() -> u16 {
    serve(|stream| {
        std::thread::sleep(Duration::from_secs(30));
        drop(stream);
    })
}

fn serve(handle: impl Fn(TcpStream) + Send + Sync + Copy + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || handle(stream));
        }
    });
    port
}

/// A listener whose accept queue is full, so new connections hang until the client gives up.
/// Returns the listener and the connections that fill it (keep both alive).
pub fn saturated_listener() -> (TcpListener, Vec<TcpStream>, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    for _ in 0..2000 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(s) => held.push(s),
            Err(_) => return (listener, held, addr.port()),
        }
    }
    panic!("could not fill the accept queue of {addr}");
}

/// Progress lines reported by the code under test.
#[derive(Default)]
pub struct Lines(Mutex<Vec<String>>);

impl Lines {
    pub fn push(&self, line: &str) {
        self.0.lock().unwrap().push(line.to_string());
    }

    pub fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}
