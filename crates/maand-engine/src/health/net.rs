//! Reaching `host:port` from the CLI host: a TCP connect and an HTTP GET, each bounded by a timeout
//! and failing with a short reason (`connection refused`, `timed out after 5 s`, `HTTP 503`).

use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// `host` ready to be joined with `:port` (IPv6 addresses in brackets).
pub(crate) fn host_for_url(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// Connects to `host:port` (every resolved address in turn) within `timeout`, then closes.
pub(crate) fn tcp_connect(host: &str, port: u16, timeout: Duration) -> Result<(), String> {
    let addrs: Vec<SocketAddr> = (host.trim_matches(|c| c == '[' || c == ']'), port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    let mut reason = format!("cannot resolve {host}: no addresses");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(_) => return Ok(()),
            Err(e) => reason = io_reason(&e, timeout),
        }
    }
    Err(reason)
}

/// `GET url` within `timeout`, without following redirects or using a proxy; passes when the
/// status is `expect_status`.
pub(crate) fn http_get(url: &str, expect_status: u16, timeout: Duration) -> Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .max_redirects(0)
        .http_status_as_error(false)
        .proxy(None)
        .build()
        .into();
    let status = match agent.get(url).call() {
        Ok(response) => response.status().as_u16(),
        Err(ureq::Error::Timeout(_)) => return Err(timed_out(timeout)),
        Err(ureq::Error::Io(e)) => return Err(io_reason(&e, timeout)),
        Err(e) => return Err(e.to_string()),
    };
    if status == expect_status {
        Ok(())
    } else {
        Err(format!("HTTP {status} (expected {expect_status})"))
    }
}

fn io_reason(e: &io::Error, timeout: Duration) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => timed_out(timeout),
        _ => e.to_string(),
    }
}

pub(crate) fn timed_out(timeout: Duration) -> String {
    format!("timed out after {} s", timeout.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_hosts_get_brackets() {
        assert_eq!(host_for_url("10.0.0.1"), "10.0.0.1");
        assert_eq!(host_for_url("::1"), "[::1]");
        assert_eq!(host_for_url("[::1]"), "[::1]");
    }

    #[test]
    fn timeouts_read_in_seconds() {
        assert_eq!(timed_out(Duration::from_secs(5)), "timed out after 5 s");
        assert_eq!(timed_out(Duration::from_millis(1500)), "timed out after 1.5 s");
    }
}
