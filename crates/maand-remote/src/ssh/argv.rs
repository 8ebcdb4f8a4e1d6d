//! The exact command lines: ssh options shared by the ControlMaster, the sessions multiplexed on it
//! and rsync's `--rsh`; control socket naming; the remote shell command; rsync's flags.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use maand_core::{Error, ErrorKind, Result};

use super::settings::{HostKeyPolicy, SshSettings};
use crate::executor::RsyncArgs;
use crate::script::is_plain_shell_word;

/// Unix socket paths longer than this do not fit `sun_path` (108 bytes, minus ssh's temp suffix).
pub(crate) const MAX_CONTROL_PATH: usize = 100;
/// Keepalive probes: a worker that stops answering is detected within interval × count seconds.
pub(crate) const SERVER_ALIVE_INTERVAL_SECS: u64 = 5;
pub(crate) const SERVER_ALIVE_COUNT_MAX: u64 = 3;

/// Where the ControlMaster socket of one worker for one executor lives:
/// `<control_dir>/<executor_id>-<host>-<port>`, or a hashed name in the system temp directory
/// when that path would be too long for a unix socket.
pub(crate) fn control_path(control_dir: &Path, executor_id: &str, host: &str, port: u16) -> PathBuf {
    let name = format!("{executor_id}-{}-{port}", sanitize_host(host));
    let path = control_dir.join(&name);
    if path.as_os_str().len() <= MAX_CONTROL_PATH {
        return path;
    }
    let mut hasher = DefaultHasher::new();
    path.hash(&mut hasher);
    hashed_control_dir().join(format!("{executor_id}-{:016x}", hasher.finish()))
}

/// Where control sockets whose path in the control directory would be too long live (shared by
/// every bucket).
pub(crate) fn hashed_control_dir() -> PathBuf {
    std::env::temp_dir().join("maand-ssh")
}

/// Host as a file-name fragment: anything but letters, digits and `-` becomes `_`.
fn sanitize_host(host: &str) -> String {
    host.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect()
}

/// `timeout <secs> [sudo -E] bash -s`: the script arrives on stdin.
pub(crate) fn remote_command(timeout_secs: u64, use_sudo: bool) -> String {
    let shell = if use_sudo { "sudo -E bash -s" } else { "bash -s" };
    format!("timeout {timeout_secs} {shell}")
}

/// Options every ssh invocation of one worker carries (without the destination).
pub(crate) fn common_options(settings: &SshSettings, port: u16, control_path: &Path) -> Vec<String> {
    let (strict, known_hosts) = match settings.host_key_checking {
        HostKeyPolicy::Off => (HostKeyPolicy::Off.ssh_value(), PathBuf::from("/dev/null")),
        policy => (policy.ssh_value(), settings.known_hosts.clone()),
    };
    let options = [
        "BatchMode=yes".to_string(),
        "IdentitiesOnly=yes".to_string(),
        "LogLevel=ERROR".to_string(),
        format!("ConnectTimeout={}", settings.connect_timeout_secs.max(1)),
        format!("ServerAliveInterval={SERVER_ALIVE_INTERVAL_SECS}"),
        format!("ServerAliveCountMax={SERVER_ALIVE_COUNT_MAX}"),
        format!("StrictHostKeyChecking={strict}"),
        path_option("UserKnownHostsFile", &known_hosts),
        path_option("ControlPath", control_path),
    ];
    let mut args = Vec::with_capacity(options.len() * 2 + 4);
    for option in options {
        args.push("-o".to_string());
        args.push(option);
    }
    args.push("-i".to_string());
    args.push(settings.key_path.display().to_string());
    args.push("-p".to_string());
    args.push(port.to_string());
    args
}

/// `Name=path`, the path double-quoted when it holds whitespace (ssh splits option values on it).
fn path_option(name: &str, path: &Path) -> String {
    let path = path.display().to_string();
    if path.chars().any(char::is_whitespace) {
        format!("{name}=\"{path}\"")
    } else {
        format!("{name}={path}")
    }
}

/// Runs the ControlMaster in the foreground (`-N`, `ControlPersist=no` whatever ~/.ssh/config
/// says), so it stays maand's child and dies with it.
pub(crate) fn master_args(settings: &SshSettings, host: &str, port: u16, control_path: &Path) -> Vec<String> {
    let mut args = common_options(settings, port, control_path);
    args.extend(["-o", "ControlMaster=yes", "-o", "ControlPersist=no", "-N"].map(String::from));
    push_destination(&mut args, settings, host);
    args
}

/// Asks the master over its socket: `check` (is it alive) or `exit`.
pub(crate) fn control_args(
    settings: &SshSettings,
    host: &str,
    port: u16,
    control_path: &Path,
    op: &str,
) -> Vec<String> {
    let mut args = common_options(settings, port, control_path);
    args.extend(["-O", op].map(String::from));
    push_destination(&mut args, settings, host);
    args
}

/// One session multiplexed over the master, running `remote_command`.
pub(crate) fn session_args(
    settings: &SshSettings,
    host: &str,
    port: u16,
    control_path: &Path,
    remote_command: &str,
) -> Vec<String> {
    let mut args = common_options(settings, port, control_path);
    args.extend(["-o", "ControlMaster=no"].map(String::from));
    push_destination(&mut args, settings, host);
    args.push(remote_command.to_string());
    args
}

fn push_destination(args: &mut Vec<String>, settings: &SshSettings, host: &str) {
    args.extend(["-l".to_string(), settings.user.clone(), "--".to_string(), host.to_string()]);
}

/// The full rsync argument list (spec internals §2.7): fixed flags, excludes, sudo rsync path,
/// filter, `--rsh` on the worker's ControlMaster socket, source (contents of `local_dir`) and
/// destination. `--perms` (ours; the Go maand kept only executability): every shipped file gets
/// exactly its staged mode, so a key or a private rendered file is 0600 on the worker too. Ours
/// adds `--links` as well: a job's symbolic links (the build keeps only those inside the job) ship
/// as links.
pub(crate) fn rsync_args(
    settings: &SshSettings,
    host: &str,
    port: u16,
    control_path: &Path,
    local_dir: &Path,
    remote_dir: &str,
    extra: &RsyncArgs,
) -> Result<Vec<String>> {
    let mut args: Vec<String> = vec![format!("--timeout={}", settings.command_timeout_secs.max(1))];
    args.extend(
        [
            "--inplace",
            "--whole-file",
            "--checksum",
            "--recursive",
            "--links",
            "--force",
            "--delete-after",
            "--delete",
            "--group",
            "--owner",
            "--perms",
            "--compress",
            "--verbose",
        ]
        .map(String::from),
    );
    args.extend(extra.excludes.iter().map(|pattern| format!("--exclude={pattern}")));
    if settings.use_sudo {
        args.push("--rsync-path=sudo rsync".to_string());
    }
    if let Some(filter) = &extra.filter_file {
        args.push(format!("--filter=merge {}", filter.display()));
    }
    args.push(format!("--rsh={}", rsh_command(settings, port, control_path)?));
    let mut source = local_dir.display().to_string();
    if !source.ends_with('/') {
        source.push('/');
    }
    args.push(source);
    let host = if host.contains(':') { format!("[{host}]") } else { host.to_string() };
    args.push(format!("{}@{host}:{remote_dir}", settings.user));
    Ok(args)
}

/// The `--rsh` command: ssh with the common options, using the existing master.
fn rsh_command(settings: &SshSettings, port: u16, control_path: &Path) -> Result<String> {
    let mut words = vec!["ssh".to_string()];
    words.extend(common_options(settings, port, control_path));
    words.extend(["-o", "ControlMaster=no"].map(String::from));
    let quoted: Result<Vec<String>> = words.iter().map(|w| rsh_word(w)).collect();
    Ok(quoted?.join(" "))
}

/// A word of rsync's `--rsh`, which splits on spaces and honours single and double quotes but no
/// backslashes.
fn rsh_word(word: &str) -> Result<String> {
    if is_plain_shell_word(word) {
        Ok(word.to_string())
    } else if !word.contains('\'') {
        Ok(format!("'{word}'"))
    } else if !word.contains('"') {
        Ok(format!("\"{word}\""))
    } else {
        Err(Error::new(
            ErrorKind::Unexpected,
            format!(
                "ssh argument {word:?} holds both kinds of quotes and cannot be passed to rsync --rsh: rename the path"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> SshSettings {
        SshSettings {
            user: "agent".into(),
            key_path: "/b/secrets/worker.key".into(),
            default_port: 22,
            use_sudo: true,
            host_key_checking: HostKeyPolicy::AcceptNew,
            known_hosts: "/b/secrets/known_hosts".into(),
            control_dir: "/b/tmp/ssh".into(),
            connect_timeout_secs: 15,
            command_timeout_secs: 300,
            connect_retries: 2,
        }
    }

    #[test]
    fn control_path_is_per_executor_worker_and_port() {
        let p = control_path(Path::new("/b/tmp/ssh"), "42-1", "10.0.0.1", 2222);
        assert_eq!(p, PathBuf::from("/b/tmp/ssh/42-1-10_0_0_1-2222"));
        let v6 = control_path(Path::new("/b/tmp/ssh"), "42-1", "fe80::1", 22);
        assert_eq!(v6, PathBuf::from("/b/tmp/ssh/42-1-fe80__1-22"));
        assert_ne!(p, control_path(Path::new("/b/tmp/ssh"), "42-2", "10.0.0.1", 2222));
    }

    #[test]
    fn long_control_dir_falls_back_to_short_hashed_path() {
        let long_dir = PathBuf::from(format!("/{}", "d".repeat(120)));
        let p = control_path(&long_dir, "42-1", "10.0.0.1", 22);
        assert!(p.as_os_str().len() <= MAX_CONTROL_PATH, "{}", p.display());
        assert!(p.starts_with(std::env::temp_dir().join("maand-ssh")));
        assert_eq!(p, control_path(&long_dir, "42-1", "10.0.0.1", 22), "stable");
        assert_ne!(p, control_path(&long_dir, "42-1", "10.0.0.2", 22), "distinct per worker");
    }

    #[test]
    fn remote_command_with_and_without_sudo() {
        assert_eq!(remote_command(300, true), "timeout 300 sudo -E bash -s");
        assert_eq!(remote_command(5, false), "timeout 5 bash -s");
    }

    #[test]
    fn session_argv_is_exact() {
        let args = session_args(&settings(), "10.0.0.1", 2222, Path::new("/b/tmp/ssh/c"), "timeout 300 bash -s");
        let expected = "-o BatchMode=yes -o IdentitiesOnly=yes -o LogLevel=ERROR -o ConnectTimeout=15 \
             -o ServerAliveInterval=5 -o ServerAliveCountMax=3 -o StrictHostKeyChecking=accept-new \
             -o UserKnownHostsFile=/b/secrets/known_hosts -o ControlPath=/b/tmp/ssh/c \
             -i /b/secrets/worker.key -p 2222 -o ControlMaster=no -l agent -- 10.0.0.1";
        let mut want: Vec<String> = expected.split_whitespace().map(String::from).collect();
        want.push("timeout 300 bash -s".into());
        assert_eq!(args, want);
    }

    #[test]
    fn host_key_policies_map_to_ssh_options() {
        let mut s = settings();
        s.host_key_checking = HostKeyPolicy::Strict;
        let args = common_options(&s, 22, Path::new("/c"));
        assert!(args.contains(&"StrictHostKeyChecking=yes".to_string()));
        assert!(args.contains(&"UserKnownHostsFile=/b/secrets/known_hosts".to_string()));
        s.host_key_checking = HostKeyPolicy::Off;
        let args = common_options(&s, 22, Path::new("/c"));
        assert!(args.contains(&"StrictHostKeyChecking=no".to_string()));
        assert!(args.contains(&"UserKnownHostsFile=/dev/null".to_string()));
    }

    #[test]
    fn paths_with_spaces_are_quoted_inside_options() {
        let mut s = settings();
        s.known_hosts = "/my bucket/secrets/known_hosts".into();
        let args = common_options(&s, 22, Path::new("/c"));
        assert!(args.contains(&"UserKnownHostsFile=\"/my bucket/secrets/known_hosts\"".to_string()));
    }

    #[test]
    fn master_argv_stays_in_the_foreground() {
        let args = master_args(&settings(), "10.0.0.1", 22, Path::new("/c"));
        let tail: Vec<&str> = args.iter().rev().take(9).rev().map(String::as_str).collect();
        assert_eq!(tail, ["-o", "ControlMaster=yes", "-o", "ControlPersist=no", "-N", "-l", "agent", "--", "10.0.0.1"]);
    }

    #[test]
    fn parse_host_key_policy() {
        assert_eq!(HostKeyPolicy::parse("").unwrap(), HostKeyPolicy::AcceptNew);
        assert_eq!(HostKeyPolicy::parse("Strict").unwrap(), HostKeyPolicy::Strict);
        assert_eq!(HostKeyPolicy::parse("off").unwrap(), HostKeyPolicy::Off);
        let err = HostKeyPolicy::parse("maybe").unwrap_err().to_string();
        assert!(err.starts_with("invalid maand.conf: host_key_checking"), "{err}");
    }

    #[test]
    fn rsync_argv_is_exact_with_sudo() {
        let extra = RsyncArgs::worker_tree("/b/tmp/workers/10.0.0.1.rsync");
        let args = rsync_args(
            &settings(),
            "10.0.0.1",
            2222,
            Path::new("/b/tmp/ssh/c"),
            Path::new("/b/tmp/workers/10.0.0.1"),
            "/opt/worker/bkt",
            &extra,
        )
        .unwrap();
        let head: Vec<&str> = args.iter().take(14).map(String::as_str).collect();
        assert_eq!(
            head,
            [
                "--timeout=300",
                "--inplace",
                "--whole-file",
                "--checksum",
                "--recursive",
                "--links",
                "--force",
                "--delete-after",
                "--delete",
                "--group",
                "--owner",
                "--perms",
                "--compress",
                "--verbose"
            ]
        );
        let rest: Vec<&str> = args.iter().skip(14).map(String::as_str).collect();
        assert_eq!(
            rest[..8],
            [
                "--exclude=jobs/*/bin",
                "--exclude=jobs/*/data",
                "--exclude=jobs/*/logs",
                "--exclude=jobs/*/_modules",
                "--exclude=jobs/*/_prometheus",
                "--rsync-path=sudo rsync",
                "--filter=merge /b/tmp/workers/10.0.0.1.rsync",
                "--rsh=ssh -o BatchMode=yes -o IdentitiesOnly=yes -o LogLevel=ERROR -o ConnectTimeout=15 \
                 -o ServerAliveInterval=5 -o ServerAliveCountMax=3 -o StrictHostKeyChecking=accept-new \
                 -o UserKnownHostsFile=/b/secrets/known_hosts -o ControlPath=/b/tmp/ssh/c \
                 -i /b/secrets/worker.key -p 2222 -o ControlMaster=no",
            ]
        );
        assert_eq!(rest[8..], ["/b/tmp/workers/10.0.0.1/", "agent@10.0.0.1:/opt/worker/bkt"]);
    }

    #[test]
    fn rsync_without_sudo_has_no_rsync_path_and_brackets_ipv6() {
        let mut s = settings();
        s.use_sudo = false;
        let args =
            rsync_args(&s, "fe80::1", 22, Path::new("/c"), Path::new("/src/"), "/dst", &RsyncArgs::default()).unwrap();
        assert!(!args.iter().any(|a| a.starts_with("--rsync-path")));
        assert!(!args.iter().any(|a| a.starts_with("--filter")));
        assert_eq!(args[args.len() - 2..], ["/src/", "agent@[fe80::1]:/dst"]);
    }

    #[test]
    fn rsh_quotes_words_with_spaces() {
        let mut s = settings();
        s.key_path = "/my bucket/secrets/worker.key".into();
        let rsh = rsh_command(&s, 22, Path::new("/c")).unwrap();
        assert!(rsh.contains(" -i '/my bucket/secrets/worker.key' "), "{rsh}");
        assert_eq!(rsh_word("it's").unwrap(), "\"it's\"");
        assert!(rsh_word("it's \"x\"").is_err());
    }
}
