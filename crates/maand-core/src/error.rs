//! The one error type of maand: a kind (the spec's sentinel errors, whose text starts every message)
//! plus the details that say what is wrong, where, and what to do.

use std::fmt;

/// Error categories. Each kind's `text()` is the sentinel text of spec/features.md §11; the
/// `Message` kind prints its details alone (messages the spec gives without a sentinel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    NotInitialized,
    SchemaUpgradeRequired,
    SchemaTooNew,
    InvalidMaandConf,
    InvalidBucketConf,
    InvalidPortRange,
    InvalidWorkerJson,
    InvalidDisabledJson,
    InvalidManifest,
    InvalidJob,
    InvalidJobVars,
    PortKeyFormat,
    InvalidManifestPort,
    PortCollision,
    PortRangeExhausted,
    InvalidJobCommandConfiguration,
    JobCommandFileNotFound,
    InvalidJobCommandDemand,
    InvalidJobVersion,
    JobCommandDemandVersionMismatch,
    CircularJobCommandDependency,
    InsufficientAllocations,
    InsufficientResource,
    UnsupportedResourceConfiguration,
    HostPrerequisites,
    WorkerPrerequisites,
    JobCommandFailed,
    RunCommand,
    HealthCheckFailed,
    KeyNotFound,
    KvKey,
    Database,
    Unexpected,
    /// A bucket lock held by another maand process.
    Locked,
    /// A worker that could not be reached over SSH, or whose connection broke or hung (the
    /// detail names the worker; printed without a prefix).
    WorkerUnreachable,
    /// Plain message without a sentinel prefix (usage errors, spec messages such as
    /// `job directory already exists: x`).
    Message,
}

impl ErrorKind {
    /// The sentinel text that starts every message of this kind.
    pub fn text(self) -> &'static str {
        use ErrorKind::*;
        match self {
            NotInitialized => "maand is not initialized",
            SchemaUpgradeRequired => "database schema upgrade required",
            SchemaTooNew => "database schema is newer than this maand binary",
            InvalidMaandConf => "invalid maand.conf",
            InvalidBucketConf => "invalid bucket.conf",
            InvalidPortRange => "invalid port range in bucket.conf",
            InvalidWorkerJson => "invalid worker.json",
            InvalidDisabledJson => "invalid disabled.json",
            InvalidManifest => "invalid manifest.json",
            InvalidJob => "invalid job",
            InvalidJobVars => "invalid vars.toml",
            PortKeyFormat => "invalid port key format",
            InvalidManifestPort => "invalid manifest port declaration",
            PortCollision => "port collision",
            PortRangeExhausted => "port range exhausted",
            InvalidJobCommandConfiguration => "invalid job command configuration",
            JobCommandFileNotFound => "job command file not found",
            InvalidJobCommandDemand => "invalid job command demand",
            InvalidJobVersion => "invalid job version",
            JobCommandDemandVersionMismatch => "job command demand version mismatch",
            CircularJobCommandDependency => "circular job command dependency",
            InsufficientAllocations => "missing allocations",
            InsufficientResource => "insufficient resource",
            UnsupportedResourceConfiguration => "unsupported resource configuration",
            HostPrerequisites => "host prerequisites not met",
            WorkerPrerequisites => "worker prerequisites not met",
            JobCommandFailed => "job command failed",
            RunCommand => "run command failed",
            HealthCheckFailed => "health check failed",
            KeyNotFound => "key not found",
            KvKey => "kv encryption key is missing or invalid",
            Database => "database error",
            Unexpected => "unexpected error",
            Locked => "bucket is locked",
            Message | WorkerUnreachable => "",
        }
    }
}

/// A maand error: `kind` decides the prefix, `detail` says what, where and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub detail: String,
}

impl Error {
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Error { kind, detail: detail.into() }
    }

    /// A message printed as is, without a sentinel prefix.
    pub fn msg(detail: impl Into<String>) -> Self {
        Error::new(ErrorKind::Message, detail)
    }

    pub fn is(&self, kind: ErrorKind) -> bool {
        self.kind == kind
    }

    /// Prefix more context to the detail, keeping the kind: `job api: …`.
    pub fn context(mut self, ctx: impl fmt::Display) -> Self {
        self.detail = if self.detail.is_empty() { ctx.to_string() } else { format!("{ctx}: {}", self.detail) };
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.kind.text();
        match (text.is_empty(), self.detail.is_empty()) {
            (true, _) => f.write_str(&self.detail),
            (false, true) => f.write_str(text),
            (false, false) => write!(f, "{text}: {}", self.detail),
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::new(ErrorKind::Unexpected, e.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shorthand constructors used across crates: `err(InvalidManifest, format!(..))`.
pub fn err<T>(kind: ErrorKind, detail: impl Into<String>) -> Result<T> {
    Err(Error::new(kind, detail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_joins_sentinel_and_detail() {
        let e = Error::new(ErrorKind::InvalidManifest, "job api: restart_globs requires restart_policy reload");
        assert_eq!(e.to_string(), "invalid manifest.json: job api: restart_globs requires restart_policy reload");
        assert_eq!(Error::msg("job directory already exists: api").to_string(), "job directory already exists: api");
        assert_eq!(Error::new(ErrorKind::KeyNotFound, "").to_string(), "key not found");
    }

    #[test]
    fn context_prefixes_detail() {
        let e = Error::new(ErrorKind::InvalidWorkerJson, "duplicate host").context("workspace/workers.json");
        assert_eq!(e.to_string(), "invalid worker.json: workspace/workers.json: duplicate host");
    }
}
