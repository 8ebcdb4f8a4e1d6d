//! Whether a worker's SSH server answers: a TCP connection to its SSH port and the identification
//! line (`SSH-2.0-…`) the server sends first, both within one time limit. The kernel of a host
//! whose processes are all stopped (SIGSTOP, a hung machine) still completes TCP connections on
//! its listening sockets, so a connect alone proves nothing; the banner comes from a running sshd.

use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// RFC 4253 §4.2 lets a server send other lines before its identification line; this bounds them.
const MAX_PREAMBLE_BYTES: usize = 8 * 1024;

/// Connects to `host:port` (each resolved address in turn) and reads the server's identification
/// line, all within `timeout`. Returns the line (`SSH-2.0-OpenSSH_9.2p1 …`), or why there was none.
pub(crate) fn read_banner(host: &str, port: u16, timeout: Duration) -> Result<String, String> {
    let deadline = Instant::now() + timeout;
    let addrs: Vec<SocketAddr> = (host.trim_matches(['[', ']']), port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    let mut reason = format!("cannot resolve {host}: no addresses");
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("timed out after {}", seconds(timeout)));
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(stream) => return identification(stream, deadline, timeout),
            Err(e) => reason = connect_failure(&e, timeout),
        }
    }
    Err(reason)
}

/// Reads lines until one starts with `SSH-`.
fn identification(mut stream: TcpStream, deadline: Instant, timeout: Duration) -> Result<String, String> {
    let silent = || {
        format!(
            "connected, but no SSH banner within {} (the worker or its sshd is frozen or overloaded)",
            seconds(timeout)
        )
    };
    let mut received: Vec<u8> = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        // Complete lines only: the last piece of `received` may be a line still arriving.
        let complete = received.iter().rposition(|&b| b == b'\n').map_or(&received[..0], |end| &received[..end]);
        if let Some(line) = complete.split(|&b| b == b'\n').find(|line| line.starts_with(b"SSH-")) {
            return Ok(String::from_utf8_lossy(line).trim_end().to_string());
        }
        if received.len() > MAX_PREAMBLE_BYTES {
            return Err(format!("answered without an SSH banner in its first {MAX_PREAMBLE_BYTES} bytes"));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(silent());
        }
        stream.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
        match stream.read(&mut buf) {
            Ok(0) if received.is_empty() => return Err("closed the connection before sending an SSH banner".into()),
            Ok(0) => return Err("closed the connection without sending an SSH banner".into()),
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => return Err(silent()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("{e} while waiting for the SSH banner")),
        }
    }
}

fn connect_failure(e: &io::Error, timeout: Duration) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => format!("timed out after {}", seconds(timeout)),
        _ => e.to_string(),
    }
}

/// `5 s`, `1.5 s`.
fn seconds(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;
    use std::thread;

    /// A listener on 127.0.0.1 whose every connection is handed to `serve`.
    fn server(serve: fn(TcpStream)) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                thread::spawn(move || serve(stream));
            }
        });
        port
    }

    #[test]
    fn reads_the_identification_line_also_after_other_lines() {
        let port = server(|mut s| {
            let _ = s.write_all(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n");
            thread::sleep(Duration::from_secs(2));
        });
        assert_eq!(read_banner("127.0.0.1", port, Duration::from_secs(5)).unwrap(), "SSH-2.0-OpenSSH_9.2p1 Debian-2");
        let port = server(|mut s| {
            let _ = s.write_all(b"welcome\r\n");
            thread::sleep(Duration::from_millis(100));
            let _ = s.write_all(b"SSH-2.0-x");
            thread::sleep(Duration::from_millis(100));
            let _ = s.write_all(b"\r\n");
            thread::sleep(Duration::from_secs(2));
        });
        assert_eq!(read_banner("127.0.0.1", port, Duration::from_secs(5)).unwrap(), "SSH-2.0-x");
    }

    #[test]
    fn a_port_that_accepts_and_stays_silent_fails_at_the_time_limit() {
        let port = server(|s| {
            thread::sleep(Duration::from_secs(10));
            drop(s);
        });
        let started = Instant::now();
        let err = read_banner("127.0.0.1", port, Duration::from_millis(500)).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
        assert_eq!(err, "connected, but no SSH banner within 0.5 s (the worker or its sshd is frozen or overloaded)");
    }

    #[test]
    fn refused_closed_and_foreign_answers_are_named() {
        let free = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        assert_eq!(read_banner("127.0.0.1", free, Duration::from_secs(2)).unwrap_err(), "connection refused");
        let closing = server(drop);
        assert_eq!(
            read_banner("127.0.0.1", closing, Duration::from_secs(2)).unwrap_err(),
            "closed the connection before sending an SSH banner"
        );
        let chatty = server(|mut s| {
            let line = [b'x'; 100];
            for _ in 0..200 {
                if s.write_all(&line).and_then(|_| s.write_all(b"\n")).is_err() {
                    return;
                }
            }
        });
        assert_eq!(
            read_banner("127.0.0.1", chatty, Duration::from_secs(2)).unwrap_err(),
            "answered without an SSH banner in its first 8192 bytes"
        );
        assert!(read_banner("no-such-host.invalid", 22, Duration::from_secs(2))
            .unwrap_err()
            .starts_with("cannot resolve"));
    }
}
