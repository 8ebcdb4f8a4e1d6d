//! The environment of a job-command process (spec §8.3, DESIGN §3.9): the allocation's identity and
//! versions, the runtime API's address and the invocation's token, and the bucket's real SSH
//! settings for the SSH helpers of `maand.py` (`MAAND_SSH_*`).

use super::catalog::CommandAllocation;
use crate::bucket::Bucket;
use crate::transport::ssh_settings;
use maand_core::manifest::Event;
use maand_remote::HostKeyPolicy;
use std::collections::BTreeMap;
use std::path::Path;

pub type Env = Vec<(String, String)>;

/// Bucket-wide variables: where the bucket is and how to reach workers over SSH.
pub fn bucket_env(bucket: &Bucket, root: &Path, bucket_id: &str, worker_ports: &BTreeMap<String, u16>) -> Env {
    let ssh = ssh_settings(bucket);
    let checking = match ssh.host_key_checking {
        HostKeyPolicy::AcceptNew => "accept-new",
        HostKeyPolicy::Strict => "yes",
        HostKeyPolicy::Off => "no",
    };
    let ports: Vec<String> = worker_ports.iter().map(|(ip, port)| format!("{ip}={port}")).collect();
    [
        ("MAAND_BUCKET_ROOT", root.display().to_string()),
        ("MAAND_BUCKET_ID", bucket_id.to_string()),
        ("MAAND_SSH_USER", ssh.user),
        ("MAAND_SSH_KEY", ssh.key_path.display().to_string()),
        ("MAAND_SSH_PORT", ssh.default_port.to_string()),
        ("MAAND_SSH_PORTS", ports.join(",")),
        ("MAAND_SSH_USE_SUDO", if ssh.use_sudo { "1" } else { "0" }.to_string()),
        ("MAAND_SSH_HOST_KEY_CHECKING", checking.to_string()),
        ("MAAND_SSH_KNOWN_HOSTS", ssh.known_hosts.display().to_string()),
        ("MAAND_SSH_CONNECT_TIMEOUT", ssh.connect_timeout_secs.to_string()),
        ("PYTHONUNBUFFERED", "1".to_string()),
        ("PYTHONDONTWRITEBYTECODE", "1".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// What one invocation is: its allocation, hook and API access.
pub struct InvocationEnv<'a> {
    pub allocation: &'a CommandAllocation,
    pub allocation_index: &'a str,
    pub event: Event,
    pub command: &'a str,
    pub api_port: u16,
    pub token: &'a str,
}

/// The spec §8.3 variables of one invocation.
pub fn invocation_env(inv: &InvocationEnv<'_>) -> Env {
    let a = inv.allocation;
    [
        ("ALLOCATION_ID", a.alloc_id.as_str()),
        ("ALLOCATION_IP", a.worker_ip.as_str()),
        ("ALLOCATION_INDEX", inv.allocation_index),
        ("JOB", a.job.as_str()),
        ("EVENT", inv.event.as_str()),
        ("COMMAND", inv.command),
        ("DISABLED", if a.disabled { "1" } else { "0" }),
        ("CURRENT_VERSION", a.current_version.as_str()),
        ("NEW_VERSION", a.new_version.as_str()),
        ("JOB_COMMAND_API_HOST", "127.0.0.1"),
        ("JOB_COMMAND_API_PORT", &inv.api_port.to_string()),
        ("JOB_COMMAND_API_TOKEN", inv.token),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invocation_variables() {
        let a = CommandAllocation {
            alloc_id: "id1".into(),
            job: "vault".into(),
            worker_ip: "10.0.0.2".into(),
            disabled: true,
            removed: false,
            new_version: "2.0.0".into(),
            current_version: "1.0.0".into(),
            deployment_seq: 0,
        };
        let env = invocation_env(&InvocationEnv {
            allocation: &a,
            allocation_index: "1",
            event: Event::AfterAllocationStarted,
            command: "command_node_up",
            api_port: 4321,
            token: "tok",
        });
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("ALLOCATION_ID"), Some("id1"));
        assert_eq!(get("ALLOCATION_IP"), Some("10.0.0.2"));
        assert_eq!(get("ALLOCATION_INDEX"), Some("1"));
        assert_eq!(get("JOB"), Some("vault"));
        assert_eq!(get("EVENT"), Some("after_allocation_started"));
        assert_eq!(get("COMMAND"), Some("command_node_up"));
        assert_eq!(get("DISABLED"), Some("1"));
        assert_eq!(get("CURRENT_VERSION"), Some("1.0.0"));
        assert_eq!(get("NEW_VERSION"), Some("2.0.0"));
        assert_eq!(get("JOB_COMMAND_API_HOST"), Some("127.0.0.1"));
        assert_eq!(get("JOB_COMMAND_API_PORT"), Some("4321"));
        assert_eq!(get("JOB_COMMAND_API_TOKEN"), Some("tok"));
    }
}
