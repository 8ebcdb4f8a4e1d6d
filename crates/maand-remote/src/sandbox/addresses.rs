//! Machine-wide reservation of loopback addresses for sandbox workers, so sandboxes of concurrent
//! tests and buckets never share one: an exclusively created marker file per address, naming the
//! sandbox that owns it and the process that reserved it.

use std::fs;
use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use maand_core::{Error, Result};

use crate::procfs::pid_is_alive;

/// Where the markers live (one file per reserved address).
pub const RESERVATION_DIR: &str = "/tmp/maand-sandbox-addrs";
/// First port probed on each address (the host's own sshd may hold 22 on every address).
pub(crate) const FIRST_PORT: u16 = 2222;
const PORT_PROBES: u16 = 200;
/// A marker that cannot be read is someone's reservation in progress until it is this old.
const UNREADABLE_MARKER_GRACE: Duration = Duration::from_secs(60);

/// The marker file of `ip`.
pub fn marker_path(ip: &str) -> PathBuf {
    Path::new(RESERVATION_DIR).join(ip)
}

/// Reserves the first free loopback address (127.0.0.2 upward, skipping 127.0.0.1) for the sandbox
/// in `state_dir`, reclaiming markers whose sandbox no longer records the address and whose
/// reserving process is gone.
pub(crate) fn reserve(state_dir: &Path) -> Result<String> {
    fs::create_dir_all(RESERVATION_DIR)
        .map_err(|e| reservation_error(format!("cannot create {RESERVATION_DIR}: {e}")))?;
    for ip in candidates() {
        let ip = ip.to_string();
        if try_claim(&ip, state_dir)? {
            return Ok(ip);
        }
        if is_stale(&ip) {
            let _ = fs::remove_file(marker_path(&ip));
            if try_claim(&ip, state_dir)? {
                return Ok(ip);
            }
        }
    }
    Err(reservation_error(format!(
        "no free loopback address left: every 127.0.x.y is reserved in {RESERVATION_DIR}; run `maand sandbox down` in unused buckets"
    )))
}

/// Makes sure the marker of an address this sandbox already records exists and names it
/// (markers vanish when /tmp is cleaned).
pub(crate) fn reclaim_own(ip: &str, state_dir: &Path) -> Result<()> {
    match owner_state_dir(ip) {
        Some(owner) if owner == state_dir => Ok(()),
        Some(owner) if !is_stale(ip) => Err(reservation_error(format!(
            "address {ip} recorded by the sandbox in {} is now reserved by the sandbox in {}: run `maand sandbox down` and up again",
            state_dir.display(),
            owner.display()
        ))),
        _ => {
            let _ = fs::remove_file(marker_path(ip));
            fs::create_dir_all(RESERVATION_DIR).map_err(|e| reservation_error(format!("cannot create {RESERVATION_DIR}: {e}")))?;
            if try_claim(ip, state_dir)? {
                Ok(())
            } else {
                Err(reservation_error(format!("address {ip} was just reserved by another sandbox")))
            }
        }
    }
}

/// Removes the marker of `ip` if it belongs to the sandbox in `state_dir`.
pub(crate) fn release(ip: &str, state_dir: &Path) {
    if owner_state_dir(ip).is_some_and(|owner| owner == state_dir) {
        let _ = fs::remove_file(marker_path(ip));
    }
}

/// The first port from 2222 upward that nothing listens on at `ip`.
pub(crate) fn free_port(ip: &str) -> Result<u16> {
    (FIRST_PORT..FIRST_PORT + PORT_PROBES)
        .find(|port| TcpListener::bind((ip, *port)).is_ok())
        .ok_or_else(|| reservation_error(format!("no free port in {FIRST_PORT}..{} on {ip}", FIRST_PORT + PORT_PROBES)))
}

fn candidates() -> impl Iterator<Item = Ipv4Addr> {
    (0u8..=255).flat_map(|third| (1u8..=254).map(move |fourth| Ipv4Addr::new(127, 0, third, fourth))).skip(1)
}

/// Creates the marker exclusively; false when it already exists.
fn try_claim(ip: &str, state_dir: &Path) -> Result<bool> {
    match fs::OpenOptions::new().write(true).create_new(true).open(marker_path(ip)) {
        Ok(mut file) => {
            let content = format!("pid={}\nstate_dir={}\n", std::process::id(), state_dir.display());
            file.write_all(content.as_bytes())
                .map_err(|e| reservation_error(format!("cannot write {}: {e}", marker_path(ip).display())))?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(reservation_error(format!("cannot create {}: {e}", marker_path(ip).display()))),
    }
}

struct Marker {
    pid: u32,
    state_dir: PathBuf,
}

fn read_marker(ip: &str) -> Option<Marker> {
    let text = fs::read_to_string(marker_path(ip)).ok()?;
    let mut pid = None;
    let mut state_dir = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("pid=") {
            pid = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("state_dir=") {
            state_dir = Some(PathBuf::from(v));
        }
    }
    Some(Marker { pid: pid?, state_dir: state_dir? })
}

fn owner_state_dir(ip: &str) -> Option<PathBuf> {
    read_marker(ip).map(|m| m.state_dir)
}

/// A reservation nobody holds: its sandbox no longer records the address and the process that
/// reserved it is gone (or the marker is unreadable and old).
fn is_stale(ip: &str) -> bool {
    match read_marker(ip) {
        Some(marker) => !super::record_path(&marker.state_dir, ip).exists() && !pid_is_alive(marker.pid),
        None => fs::metadata(marker_path(ip))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| SystemTime::now().duration_since(modified).ok())
            .is_some_and(|age| age > UNREADABLE_MARKER_GRACE),
    }
}

fn reservation_error(detail: String) -> Error {
    Error::msg(format!("sandbox addresses: {detail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_start_after_localhost_and_stay_in_loopback() {
        let first: Vec<String> = candidates().take(3).map(|a| a.to_string()).collect();
        assert_eq!(first, ["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
        assert!(candidates().all(|a| a.is_loopback() && a.octets()[3] != 0 && a.octets()[3] != 255));
        assert!(candidates().any(|a| a == Ipv4Addr::new(127, 0, 1, 1)));
    }

    #[test]
    fn reservations_are_exclusive_and_released() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let ip_a = reserve(a.path()).unwrap();
        let ip_b = reserve(b.path()).unwrap();
        assert_ne!(ip_a, ip_b);
        // Our own process holds them, so they are not stale even without a worker record.
        assert!(!is_stale(&ip_a));
        release(&ip_a, b.path());
        assert!(marker_path(&ip_a).exists(), "only the owner may release");
        release(&ip_a, a.path());
        release(&ip_b, b.path());
        assert!(!marker_path(&ip_a).exists());
        assert!(!marker_path(&ip_b).exists());
    }

    #[test]
    fn marker_of_dead_owner_without_record_is_stale() {
        let dir = tempfile::tempdir().unwrap();
        let ip = reserve(dir.path()).unwrap();
        // Rewrite the marker as if a process that no longer exists had reserved it.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = child.id();
        child.wait().unwrap();
        fs::write(marker_path(&ip), format!("pid={dead_pid}\nstate_dir={}\n", dir.path().display())).unwrap();
        assert!(is_stale(&ip));
        release(&ip, dir.path());
    }
}
