//! Warnings: inputs the Go maand accepted and a real bucket may rely on (README, "Accepted with a
//! warning"). maand takes them as the Go maand did and says so, naming the file and the item,
//! instead of failing the command. Parsers collect them; the engine prints them.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The file, relative to the bucket (`workspace/disabled.json`).
    pub file: String,
    /// The item and how maand takes it (`jobs.ghost: no job "ghost" in workspace/jobs (ignored)`).
    pub message: String,
}

impl Warning {
    pub fn new(file: impl Into<String>, message: impl Into<String>) -> Self {
        Warning { file: file.into(), message: message.into() }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "warning: {}: {}", self.file, self.message)
    }
}
