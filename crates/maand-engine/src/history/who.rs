//! Who runs maand, for the run history: `user@host` from the environment and the kernel, without
//! a libc binding (`$USER`/`$LOGNAME`, else the uid's name in /etc/passwd; the kernel hostname).

/// The user running this process.
pub fn user() -> String {
    for var in ["USER", "LOGNAME"] {
        if let Some(name) = std::env::var(var).ok().filter(|v| !v.trim().is_empty()) {
            return name.trim().to_string();
        }
    }
    let uid = std::fs::read_to_string("/proc/self/status").ok().and_then(|s| uid_of_status(&s));
    let Some(uid) = uid else { return "unknown".to_string() };
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| name_of_uid(&p, &uid))
        .unwrap_or_else(|| format!("uid {uid}"))
}

/// The host this process runs on.
pub fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

/// The real uid from `/proc/self/status` (`Uid:\t<real>\t<effective>…`).
fn uid_of_status(status: &str) -> Option<String> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().next())
        .map(String::from)
}

/// The name of `uid` in an /etc/passwd text (`name:x:uid:gid:…`).
fn name_of_uid(passwd: &str, uid: &str) -> Option<String> {
    passwd.lines().find_map(|l| {
        let fields: Vec<&str> = l.split(':').collect();
        (fields.len() > 2 && fields[2] == uid).then(|| fields[0].to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_and_name_lookup() {
        assert_eq!(uid_of_status("Name:\tmaand\nUid:\t1000\t1000\t1000\t1000\n").as_deref(), Some("1000"));
        assert_eq!(uid_of_status("Name:\tx\n"), None);
        let passwd = "root:x:0:0:root:/root:/bin/bash\nops:x:1000:1000::/home/ops:/bin/sh\n";
        assert_eq!(name_of_uid(passwd, "1000").as_deref(), Some("ops"));
        assert_eq!(name_of_uid(passwd, "0").as_deref(), Some("root"));
        assert_eq!(name_of_uid(passwd, "7"), None);
    }

    #[test]
    fn user_and_host_are_never_empty() {
        assert!(!user().is_empty());
        assert!(!host().is_empty());
    }
}
