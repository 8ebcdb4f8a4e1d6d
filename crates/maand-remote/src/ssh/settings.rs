//! How the OpenSSH transport connects: user, key, port, sudo, host-key policy, where sockets and
//! known hosts live, and its time limits.

use std::path::PathBuf;

use maand_core::{Error, ErrorKind, Result};

/// Host key verification (`host_key_checking` in maand.conf).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostKeyPolicy {
    /// Trust on first use: unknown keys are recorded, changed keys are refused.
    #[default]
    AcceptNew,
    /// Only keys already in known_hosts are accepted.
    Strict,
    /// No verification (known_hosts is /dev/null).
    Off,
}

impl HostKeyPolicy {
    /// Parses the maand.conf value: `accept-new` (also empty), `strict` or `off`.
    pub fn parse(value: &str) -> Result<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "accept-new" => Ok(HostKeyPolicy::AcceptNew),
            "strict" | "yes" => Ok(HostKeyPolicy::Strict),
            "off" | "no" => Ok(HostKeyPolicy::Off),
            other => Err(Error::new(
                ErrorKind::InvalidMaandConf,
                format!("host_key_checking = {other:?}: use \"accept-new\", \"strict\" or \"off\""),
            )),
        }
    }

    /// The `StrictHostKeyChecking` value.
    pub(crate) fn ssh_value(self) -> &'static str {
        match self {
            HostKeyPolicy::AcceptNew => "accept-new",
            HostKeyPolicy::Strict => "yes",
            HostKeyPolicy::Off => "no",
        }
    }
}

/// Everything the OpenSSH executor needs to reach workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshSettings {
    pub user: String,
    /// Private key (absolute path), passed with `-i` and `IdentitiesOnly=yes`.
    pub key_path: PathBuf,
    /// Port for workers without their own `port`.
    pub default_port: u16,
    /// Run scripts under `sudo -E bash -s` and rsync with `--rsync-path="sudo rsync"`.
    pub use_sudo: bool,
    pub host_key_checking: HostKeyPolicy,
    /// `UserKnownHostsFile` (the bucket's `secrets/known_hosts`).
    pub known_hosts: PathBuf,
    /// Directory for ControlMaster sockets (absolute; keep it short: sockets are limited to ~100
    /// characters, longer paths fall back to the system temp directory).
    pub control_dir: PathBuf,
    /// `ConnectTimeout`: TCP connect plus SSH banner exchange.
    pub connect_timeout_secs: u64,
    /// Default remote time limit of a script; also rsync's `--timeout` (I/O idle limit).
    pub command_timeout_secs: u64,
    /// Extra attempts (with 1 s, 2 s, 4 s … backoff) when the connection cannot be established.
    pub connect_retries: u32,
}
