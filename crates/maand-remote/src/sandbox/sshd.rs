//! One sandbox worker's sshd: its files (config, host key, authorized_keys, log, private opt dir),
//! launching it detached inside a new mount namespace with that opt dir bound on `/opt`, and
//! waiting until it accepts connections.

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use maand_core::{Error, Result};

use super::keys;
use crate::procfs::pid_is_alive;
use crate::script::shell_word;

pub(crate) const SSHD: &str = "/usr/sbin/sshd";
/// sshd refuses to start without its privilege separation directory.
const PRIVSEP_DIR: &str = "/run/sshd";
/// Bound on waiting for a started sshd to accept connections.
const READY_DEADLINE: Duration = Duration::from_secs(15);

/// The files of one worker, all under its directory.
pub(crate) struct WorkerFiles<'a> {
    pub dir: &'a Path,
}

impl WorkerFiles<'_> {
    pub(crate) fn opt_dir(&self) -> PathBuf {
        self.dir.join("opt")
    }
    /// Bound on `/root`: the worker's own empty home, so the CLI host's dotfiles (a `~/.bashrc`
    /// that bash sources for every SSH command) never run on the worker, as on a fresh host.
    fn home_dir(&self) -> PathBuf {
        self.dir.join("root")
    }
    fn config(&self) -> PathBuf {
        self.dir.join("sshd_config")
    }
    pub(crate) fn host_key(&self) -> PathBuf {
        self.dir.join("host_key")
    }
    fn authorized_keys(&self) -> PathBuf {
        self.dir.join("authorized_keys")
    }
    pub(crate) fn pid_file(&self) -> PathBuf {
        self.dir.join("sshd.pid")
    }
    pub(crate) fn log(&self) -> PathBuf {
        self.dir.join("sshd.log")
    }
    fn start_log(&self) -> PathBuf {
        self.dir.join("start.log")
    }

    /// The pid sshd recorded, if any.
    pub(crate) fn recorded_pid(&self) -> Option<u32> {
        fs::read_to_string(self.pid_file()).ok()?.trim().parse().ok()
    }

    /// Writes everything sshd needs (keeping an existing host key so known_hosts stays valid).
    pub(crate) fn prepare(&self, ip: &str, port: u16, authorized_pubkey: &str) -> Result<()> {
        for dir in [self.opt_dir(), self.home_dir()] {
            fs::create_dir_all(&dir).map_err(|e| file_error(&dir, e))?;
        }
        if !self.host_key().exists() {
            keys::generate(&self.host_key(), &format!("maand-sandbox-host-{ip}"))?;
        }
        let authorized = format!("{}\n", authorized_pubkey.trim());
        fs::write(self.authorized_keys(), authorized).map_err(|e| file_error(&self.authorized_keys(), e))?;
        fs::write(self.config(), self.config_text(ip, port)).map_err(|e| file_error(&self.config(), e))?;
        Ok(())
    }

    fn config_text(&self, ip: &str, port: u16) -> String {
        let quoted = |p: PathBuf| {
            let p = p.display().to_string();
            if p.chars().any(char::is_whitespace) {
                format!("\"{p}\"")
            } else {
                p
            }
        };
        format!(
            "# sandbox worker {ip} (written by maand; regenerated on every start)\n\
             ListenAddress {ip}:{port}\n\
             HostKey {}\n\
             AuthorizedKeysFile {}\n\
             PidFile {}\n\
             PermitRootLogin prohibit-password\n\
             PubkeyAuthentication yes\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             UsePAM no\n\
             StrictModes no\n\
             UseDNS no\n\
             PrintMotd no\n\
             MaxSessions 64\n\
             MaxStartups 64:30:128\n\
             LogLevel VERBOSE\n",
            quoted(self.host_key()),
            quoted(self.authorized_keys()),
            quoted(self.pid_file()),
        )
    }

    /// Starts sshd detached (own session, parent exits at once) in a new private mount namespace
    /// where the worker's opt dir is bound on `/opt` and its home dir on `/root`.
    pub(crate) fn launch(&self, ip: &str) -> Result<()> {
        ensure_privsep_dir()?;
        let _ = fs::remove_file(self.pid_file());
        let start_log = fs::File::create(self.start_log()).map_err(|e| file_error(&self.start_log(), e))?;
        let start_log_err = start_log.try_clone().map_err(|e| file_error(&self.start_log(), e))?;
        let inner = format!(
            "mount --bind {} /opt && {{ [ ! -d /root ] || mount --bind {} /root; }} && exec {SSHD} -D -E {} -f {}",
            shell_word(&self.opt_dir().display().to_string()),
            shell_word(&self.home_dir().display().to_string()),
            shell_word(&self.log().display().to_string()),
            shell_word(&self.config().display().to_string()),
        );
        let status = Command::new("setsid")
            .args(["-f", "unshare", "--mount", "--propagation", "private", "--", "sh", "-c", &inner])
            .stdin(Stdio::null())
            .stdout(Stdio::from(start_log))
            .stderr(Stdio::from(start_log_err))
            .status()
            .map_err(|e| sandbox_error(ip, format!("cannot run setsid: {e} (install util-linux)")))?;
        if !status.success() {
            return Err(sandbox_error(ip, format!("starting sshd failed ({status}): {}", self.diagnostics())));
        }
        Ok(())
    }

    /// Waits until sshd has written its pid and accepts TCP connections; returns the pid.
    pub(crate) fn wait_ready(&self, ip: &str, port: u16) -> Result<u32> {
        let address: SocketAddr =
            format!("{ip}:{port}").parse().map_err(|e| sandbox_error(ip, format!("bad address {ip}:{port}: {e}")))?;
        let until = Instant::now() + READY_DEADLINE;
        loop {
            if let Some(pid) = self.recorded_pid() {
                if !pid_is_alive(pid) {
                    return Err(sandbox_error(ip, format!("sshd exited right after start: {}", self.diagnostics())));
                }
                if TcpStream::connect_timeout(&address, Duration::from_millis(300)).is_ok() {
                    return Ok(pid);
                }
            }
            if Instant::now() >= until {
                return Err(sandbox_error(
                    ip,
                    format!(
                        "sshd did not accept connections on port {port} within {} s: {}",
                        READY_DEADLINE.as_secs(),
                        self.diagnostics()
                    ),
                ));
            }
            thread::sleep(Duration::from_millis(25));
        }
    }

    /// The tails of the start and sshd logs, for error messages.
    fn diagnostics(&self) -> String {
        let tail = |path: PathBuf| {
            let text = fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
            lines[lines.len().saturating_sub(3)..].join(" | ")
        };
        let (start, sshd) = (tail(self.start_log()), tail(self.log()));
        match (start.is_empty(), sshd.is_empty()) {
            (true, true) => format!("no output (see {})", self.dir.display()),
            (false, true) => start,
            (true, false) => sshd,
            (false, false) => format!("{start} | {sshd}"),
        }
    }
}

fn ensure_privsep_dir() -> Result<()> {
    let dir = Path::new(PRIVSEP_DIR);
    if !dir.exists() {
        fs::create_dir_all(dir).map_err(|e| file_error(dir, e))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).map_err(|e| file_error(dir, e))?;
    }
    Ok(())
}

pub(crate) fn sandbox_error(ip: &str, detail: impl std::fmt::Display) -> Error {
    Error::msg(format!("sandbox worker {ip}: {detail}"))
}

pub(crate) fn file_error(path: &Path, e: std::io::Error) -> Error {
    Error::msg(format!("sandbox: {}: {e}", path.display()))
}
