//! Reaching workers from a bucket: the OpenSSH executor built from maand.conf, and worker
//! addresses (IP plus the worker's own SSH port) from the catalog.

use crate::bucket::Bucket;
use maand_remote::{HostKeyPolicy, OpenSsh, SshSettings, WorkerAddr};
use maand_store::catalog::WorkerRow;
use maand_store::HostKeyChecking;
use std::path::PathBuf;

/// Extra connection attempts (1 s, 2 s, 4 s backoff) when a worker cannot be reached.
const CONNECT_RETRIES: u32 = 2;

pub fn ssh_settings(bucket: &Bucket) -> SshSettings {
    let conf = &bucket.conf;
    let root = absolute(&bucket.paths.root);
    let paths = maand_store::BucketPaths::new(&root);
    SshSettings {
        user: conf.ssh_user.clone(),
        key_path: paths.ssh_key(&conf.ssh_key),
        default_port: conf.ssh_port,
        use_sudo: conf.use_sudo,
        host_key_checking: match conf.host_key_checking {
            HostKeyChecking::AcceptNew => HostKeyPolicy::AcceptNew,
            HostKeyChecking::Strict => HostKeyPolicy::Strict,
            HostKeyChecking::Off => HostKeyPolicy::Off,
        },
        known_hosts: paths.known_hosts(),
        control_dir: paths.tmp().join("ssh"),
        connect_timeout_secs: conf.connect_timeout_seconds,
        command_timeout_secs: conf.remote_timeout_seconds,
        connect_retries: CONNECT_RETRIES,
    }
}

/// The executor for a command run; connections open lazily on first use.
pub fn ssh_executor(bucket: &Bucket) -> OpenSsh {
    OpenSsh::new(ssh_settings(bucket))
}

pub fn worker_addr(row: &WorkerRow) -> WorkerAddr {
    WorkerAddr::new(row.worker_ip.clone(), row.ssh_port)
}

fn absolute(p: &std::path::Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}
