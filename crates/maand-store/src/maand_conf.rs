//! `maand.conf` at the bucket root (spec/features.md §1.3 plus DESIGN §3.1/§3.2/§3.12): reading,
//! type checks, defaults and normalisation, and the text `maand init` writes.
//!
//! Unlike the Go maand, an unknown `log_format` is an error (not a silent `kv`), and
//! `job_config_selector` must be a plain name, since it becomes part of a file name.

use crate::paths::BucketPaths;
use maand_core::{Error, ErrorKind, Result};
use std::path::Path;

/// Format of the structured log lines in `logs/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Kv,
    /// `json` and `jsonl` (identical: one JSON object per line).
    Json,
}

/// How ssh treats worker host keys (`secrets/known_hosts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKeyChecking {
    /// Trust on first use, refuse a changed key (default).
    AcceptNew,
    /// Only keys already in `secrets/known_hosts`.
    Strict,
    /// No verification (the Go maand's behaviour).
    Off,
}

impl HostKeyChecking {
    /// The `maand.conf` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            HostKeyChecking::AcceptNew => "accept-new",
            HostKeyChecking::Strict => "strict",
            HostKeyChecking::Off => "off",
        }
    }
}

/// Bucket settings after defaults and normalisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaandConf {
    pub ssh_user: String,
    /// File name under `secrets/`.
    pub ssh_key: String,
    pub ssh_port: u16,
    pub use_sudo: bool,
    /// Validity of new leaf certificates, days.
    pub certs_ttl: i64,
    /// Renew a leaf this many days before it expires.
    pub certs_renewal_buffer: i64,
    pub job_config_selector: String,
    pub log_format: LogFormat,
    pub host_key_checking: HostKeyChecking,
    pub remote_timeout_seconds: u64,
    pub connect_timeout_seconds: u64,
    pub parallel: usize,
    /// Releases of each job kept for diffs and rollback (older ones go at `maand gc`).
    pub releases_kept: usize,
    /// Time limit of rendering one template.
    pub template_timeout_seconds: u64,
}

const DEFAULT_SSH_USER: &str = "agent";
const DEFAULT_SSH_KEY: &str = "worker.key";
const DEFAULT_SSH_PORT: u16 = 22;
const DEFAULT_CERTS_TTL_DAYS: i64 = 60;
const DEFAULT_REMOTE_TIMEOUT_SECONDS: u64 = 300;
const DEFAULT_CONNECT_TIMEOUT_SECONDS: u64 = 15;
const DEFAULT_PARALLEL: usize = 32;
const DEFAULT_RELEASES_KEPT: usize = 10;
const DEFAULT_TEMPLATE_TIMEOUT_SECONDS: u64 = 10;

const DEFAULT_FILE_TEXT: &str = r#"use_sudo = true
ssh_user = "agent"
ssh_key = "worker.key"
certs_ttl = 60
ssh_port = 0
certs_renewal_buffer = 0

# Optional settings (defaults shown):
# job_config_selector = ""          # reads workspace/bucket.jobs.<selector>.conf instead of bucket.jobs.conf
# log_format = "kv"                 # kv | json
# host_key_checking = "accept-new"  # accept-new | strict | off (keys kept in secrets/known_hosts)
# remote_timeout_seconds = 300      # limit of one remote lifecycle step (a manifest may override it)
# connect_timeout_seconds = 15      # SSH connect timeout
# parallel = 32                     # workers contacted at the same time
# releases_kept = 10                # releases of each job kept for diffs and rollback (pruned by gc)
# template_timeout_seconds = 10     # time limit of rendering one template
"#;

impl Default for MaandConf {
    /// The settings of an empty (or missing) `maand.conf`.
    fn default() -> Self {
        MaandConf {
            ssh_user: DEFAULT_SSH_USER.to_string(),
            ssh_key: DEFAULT_SSH_KEY.to_string(),
            ssh_port: DEFAULT_SSH_PORT,
            use_sudo: false,
            certs_ttl: DEFAULT_CERTS_TTL_DAYS,
            certs_renewal_buffer: 0,
            job_config_selector: String::new(),
            log_format: LogFormat::Kv,
            host_key_checking: HostKeyChecking::AcceptNew,
            remote_timeout_seconds: DEFAULT_REMOTE_TIMEOUT_SECONDS,
            connect_timeout_seconds: DEFAULT_CONNECT_TIMEOUT_SECONDS,
            parallel: DEFAULT_PARALLEL,
            releases_kept: DEFAULT_RELEASES_KEPT,
            template_timeout_seconds: DEFAULT_TEMPLATE_TIMEOUT_SECONDS,
        }
    }
}

impl MaandConf {
    /// Read `maand.conf`; a missing file gives the defaults of an empty file.
    pub fn load(paths: &BucketPaths) -> Result<MaandConf> {
        let path = paths.maand_conf();
        match std::fs::read_to_string(&path) {
            Ok(text) => MaandConf::parse(&text).map_err(|e| e.context(path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(MaandConf::default()),
            Err(e) => Err(conf_error(&path, format!("cannot read the file: {e}"))),
        }
    }

    /// Parse the text of a `maand.conf`.
    pub fn parse(text: &str) -> Result<MaandConf> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let location = e.span().map(|span| line_and_column(text, span.start));
            let message = e.message().trim();
            Error::new(
                ErrorKind::InvalidMaandConf,
                match location {
                    Some((line, column)) => format!("line {line}, column {column}: {message}"),
                    None => message.to_string(),
                },
            )
        })?;
        let fields = Fields(&table);
        let d = MaandConf::default();
        Ok(MaandConf {
            ssh_user: fields.string("ssh_user")?.unwrap_or_default().trim().to_string(),
            ssh_key: fields.string("ssh_key")?.unwrap_or_default().trim().to_string(),
            ssh_port: fields.ssh_port()?,
            use_sudo: fields.boolean("use_sudo")?.unwrap_or(false),
            certs_ttl: fields.count("certs_ttl", d.certs_ttl as u64)? as i64,
            certs_renewal_buffer: fields.count("certs_renewal_buffer", 0)? as i64,
            job_config_selector: parse_job_config_selector(&fields.string("job_config_selector")?.unwrap_or_default())?,
            log_format: parse_log_format(&fields.string("log_format")?.unwrap_or_default())?,
            host_key_checking: parse_host_key_checking(&fields.string("host_key_checking")?.unwrap_or_default())?,
            remote_timeout_seconds: fields.count("remote_timeout_seconds", d.remote_timeout_seconds)?,
            connect_timeout_seconds: fields.count("connect_timeout_seconds", d.connect_timeout_seconds)?,
            parallel: usize::try_from(fields.count("parallel", d.parallel as u64)?)
                .map_err(|_| Error::new(ErrorKind::InvalidMaandConf, "parallel is too large"))?,
            releases_kept: releases_kept(fields.count("releases_kept", d.releases_kept as u64)?)?,
            template_timeout_seconds: fields.count("template_timeout_seconds", d.template_timeout_seconds)?,
        }
        .with_empty_names_defaulted())
    }

    /// The `maand.conf` written by the first `maand init`.
    pub fn default_file_text() -> &'static str {
        DEFAULT_FILE_TEXT
    }

    fn with_empty_names_defaulted(mut self) -> Self {
        if self.ssh_user.is_empty() {
            self.ssh_user = DEFAULT_SSH_USER.to_string();
        }
        if self.ssh_key.is_empty() {
            self.ssh_key = DEFAULT_SSH_KEY.to_string();
        }
        self
    }
}

/// At least one release (what runs) is always kept.
fn releases_kept(n: u64) -> Result<usize> {
    match usize::try_from(n) {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(Error::new(ErrorKind::InvalidMaandConf, format!("releases_kept must be 1 or more, got {n}"))),
    }
}

fn conf_error(path: &Path, detail: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::InvalidMaandConf, format!("{}: {detail}", path.display()))
}

/// 1-based line and column of a byte offset.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn parse_log_format(text: &str) -> Result<LogFormat> {
    match text.trim().to_ascii_lowercase().as_str() {
        "" | "kv" => Ok(LogFormat::Kv),
        "json" | "jsonl" => Ok(LogFormat::Json),
        _ => Err(Error::new(
            ErrorKind::InvalidMaandConf,
            format!("log_format must be \"kv\" or \"json\" (\"jsonl\" is the same as \"json\"), got {text:?}"),
        )),
    }
}

/// `job_config_selector`: trimmed; empty, or a name of letters, digits, `-`, `_` and `.` that does
/// not start with `.` (it selects `workspace/bucket.jobs.<selector>.conf`).
fn parse_job_config_selector(text: &str) -> Result<String> {
    let selector = text.trim();
    let plain = selector.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !plain || selector.starts_with('.') {
        return Err(Error::new(
            ErrorKind::InvalidMaandConf,
            format!(
                "job_config_selector must be a name of letters, digits, '-', '_' and '.' (it selects \
                 workspace/bucket.jobs.<selector>.conf), got {text:?}"
            ),
        ));
    }
    Ok(selector.to_string())
}

fn parse_host_key_checking(text: &str) -> Result<HostKeyChecking> {
    match text.trim().to_ascii_lowercase().as_str() {
        "" | "accept-new" => Ok(HostKeyChecking::AcceptNew),
        "strict" => Ok(HostKeyChecking::Strict),
        "off" => Ok(HostKeyChecking::Off),
        other => Err(Error::new(
            ErrorKind::InvalidMaandConf,
            format!("host_key_checking must be \"accept-new\", \"strict\" or \"off\", got {other:?}"),
        )),
    }
}

/// Typed access to the keys of the parsed table; a wrong type names the key and both types.
struct Fields<'a>(&'a toml::Table);

impl Fields<'_> {
    fn typed<T>(&self, key: &str, want: &str, pick: impl Fn(&toml::Value) -> Option<T>) -> Result<Option<T>> {
        match self.0.get(key) {
            None => Ok(None),
            Some(value) => pick(value).map(Some).ok_or_else(|| {
                Error::new(ErrorKind::InvalidMaandConf, format!("{key} must be {want}, got {}", value.type_str()))
            }),
        }
    }

    fn string(&self, key: &str) -> Result<Option<String>> {
        self.typed(key, "a string", |v| v.as_str().map(str::to_string))
    }

    fn boolean(&self, key: &str) -> Result<Option<bool>> {
        self.typed(key, "a boolean (true or false)", toml::Value::as_bool)
    }

    fn integer(&self, key: &str) -> Result<Option<i64>> {
        self.typed(key, "an integer", toml::Value::as_integer)
    }

    /// A non-negative integer where absent or 0 means `default`.
    fn count(&self, key: &str, default: u64) -> Result<u64> {
        match self.integer(key)? {
            None | Some(0) => Ok(default),
            Some(n) => u64::try_from(n)
                .map_err(|_| Error::new(ErrorKind::InvalidMaandConf, format!("{key} must not be negative, got {n}"))),
        }
    }

    /// `ssh_port`: absent or ≤ 0 means 22.
    fn ssh_port(&self) -> Result<u16> {
        match self.integer("ssh_port")? {
            None => Ok(DEFAULT_SSH_PORT),
            Some(n) if n <= 0 => Ok(DEFAULT_SSH_PORT),
            Some(n) => u16::try_from(n).map_err(|_| {
                Error::new(ErrorKind::InvalidMaandConf, format!("ssh_port must be at most 65535, got {n}"))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket_with(text: Option<&str>) -> (tempfile::TempDir, BucketPaths) {
        let dir = tempfile::tempdir().unwrap();
        let paths = BucketPaths::new(dir.path());
        if let Some(text) = text {
            std::fs::write(paths.maand_conf(), text).unwrap();
        }
        (dir, paths)
    }

    #[test]
    fn missing_file_gives_defaults_of_an_empty_file() {
        let (_dir, paths) = bucket_with(None);
        let conf = MaandConf::load(&paths).unwrap();
        assert_eq!(conf, MaandConf::default());
        assert_eq!(conf.ssh_user, "agent");
        assert_eq!(conf.ssh_key, "worker.key");
        assert_eq!(conf.ssh_port, 22);
        assert!(!conf.use_sudo);
        assert_eq!(conf.certs_ttl, 60);
        assert_eq!(conf.certs_renewal_buffer, 0);
        assert_eq!(conf.log_format, LogFormat::Kv);
        assert_eq!(conf.host_key_checking, HostKeyChecking::AcceptNew);
        assert_eq!(conf.remote_timeout_seconds, 300);
        assert_eq!(conf.connect_timeout_seconds, 15);
        assert_eq!(conf.parallel, 32);
        assert_eq!(conf.template_timeout_seconds, 10);
        assert_eq!(MaandConf::parse("").unwrap(), conf);
    }

    #[test]
    fn init_file_text_reads_back_as_init_defaults() {
        let (_dir, paths) = bucket_with(Some(MaandConf::default_file_text()));
        let conf = MaandConf::load(&paths).unwrap();
        assert!(conf.use_sudo);
        assert_eq!(conf.ssh_user, "agent");
        assert_eq!(conf.ssh_key, "worker.key");
        assert_eq!(conf.ssh_port, 22, "ssh_port = 0 means 22");
        assert_eq!(conf.certs_ttl, 60);
        assert_eq!(conf.certs_renewal_buffer, 0);
        for key in [
            "job_config_selector",
            "log_format",
            "host_key_checking",
            "remote_timeout_seconds",
            "parallel",
            "template_timeout_seconds",
        ] {
            assert!(MaandConf::default_file_text().contains(key), "{key} documented");
        }
    }

    #[test]
    fn empty_and_zero_values_are_normalised() {
        let conf = MaandConf::parse(
            "ssh_user = \"  \"\nssh_key = \"\"\nssh_port = -5\ncerts_ttl = 0\nremote_timeout_seconds = 0\n\
             parallel = 0\njob_config_selector = \" prod \"\nlog_format = \" \"\nhost_key_checking = \"\"\n",
        )
        .unwrap();
        assert_eq!(conf.ssh_user, "agent");
        assert_eq!(conf.ssh_key, "worker.key");
        assert_eq!(conf.ssh_port, 22);
        assert_eq!(conf.certs_ttl, 60);
        assert_eq!(conf.remote_timeout_seconds, 300);
        assert_eq!(conf.parallel, 32);
        assert_eq!(conf.job_config_selector, "prod");
        assert_eq!(conf.log_format, LogFormat::Kv);
        assert_eq!(conf.host_key_checking, HostKeyChecking::AcceptNew);
    }

    #[test]
    fn explicit_values_are_kept() {
        let conf = MaandConf::parse(
            "ssh_user = \"ops\"\nssh_key = \"id_ed25519\"\nssh_port = 2222\nuse_sudo = true\ncerts_ttl = 30\n\
             certs_renewal_buffer = 7\nlog_format = \"JSONL\"\nhost_key_checking = \"strict\"\n\
             remote_timeout_seconds = 900\nconnect_timeout_seconds = 5\nparallel = 4\nunknown_key = 1\n\
             template_timeout_seconds = 3\n",
        )
        .unwrap();
        assert_eq!(conf.ssh_user, "ops");
        assert_eq!(conf.ssh_key, "id_ed25519");
        assert_eq!(conf.ssh_port, 2222);
        assert!(conf.use_sudo);
        assert_eq!(conf.certs_ttl, 30);
        assert_eq!(conf.certs_renewal_buffer, 7);
        assert_eq!(conf.log_format, LogFormat::Json);
        assert_eq!(conf.host_key_checking, HostKeyChecking::Strict);
        assert_eq!(conf.remote_timeout_seconds, 900);
        assert_eq!(conf.connect_timeout_seconds, 5);
        assert_eq!(conf.parallel, 4);
        assert_eq!(conf.template_timeout_seconds, 3);
        assert_eq!(MaandConf::parse("host_key_checking = \"off\"").unwrap().host_key_checking, HostKeyChecking::Off);
    }

    #[test]
    fn invalid_toml_names_file_and_line() {
        let (_dir, paths) = bucket_with(Some("use_sudo = true\nssh_user = \n"));
        let e = MaandConf::load(&paths).unwrap_err();
        assert!(e.is(ErrorKind::InvalidMaandConf));
        let text = e.to_string();
        assert!(text.starts_with("invalid maand.conf: "), "{text}");
        assert!(text.contains("maand.conf: line 2, column"), "{text}");
    }

    #[test]
    fn wrong_value_types_are_named() {
        let cases = [
            ("ssh_port = \"22\"", "ssh_port must be an integer, got string"),
            ("use_sudo = \"yes\"", "use_sudo must be a boolean (true or false), got string"),
            ("ssh_user = 5", "ssh_user must be a string, got integer"),
            ("certs_ttl = -1", "certs_ttl must not be negative, got -1"),
            ("ssh_port = 70000", "ssh_port must be at most 65535, got 70000"),
            ("host_key_checking = \"no\"", "host_key_checking must be"),
            (
                "log_format = \"xml\"",
                "log_format must be \"kv\" or \"json\" (\"jsonl\" is the same as \"json\"), got \"xml\"",
            ),
            ("job_config_selector = \"../../x\"", "job_config_selector must be a name of letters"),
            ("job_config_selector = \"a/b\"", "got \"a/b\""),
            ("job_config_selector = \".hidden\"", "job_config_selector must be"),
        ];
        for (text, want) in cases {
            let e = MaandConf::parse(text).unwrap_err();
            assert!(e.is(ErrorKind::InvalidMaandConf), "{text}");
            assert!(e.to_string().contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn line_and_column_are_one_based() {
        assert_eq!(line_and_column("ab\ncd", 0), (1, 1));
        assert_eq!(line_and_column("ab\ncd", 4), (2, 2));
    }
}
