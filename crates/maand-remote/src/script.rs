//! The bash script sent to a worker on stdin: `#!/bin/bash`, `set -e`, `set -u`, one quoted
//! `export` per environment entry, then the command lines (spec internals §2.1, with values quoted).

use maand_core::{Error, ErrorKind, Result};

/// A script to run on a worker: environment exported first, then the command lines in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteScript {
    pub env: Vec<(String, String)>,
    pub lines: Vec<String>,
}

impl RemoteScript {
    /// A script made of these command lines and no environment.
    pub fn from_lines<I, S>(lines: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RemoteScript { env: Vec::new(), lines: lines.into_iter().map(Into::into).collect() }
    }

    /// Adds `export key='value'` (builder style).
    pub fn with_env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Appends a command line (builder style).
    pub fn with_line(mut self, line: impl Into<String>) -> Self {
        self.lines.push(line.into());
        self
    }

    /// The script text. Every value is single-quoted so spaces, quotes, `$` and newlines reach the
    /// worker unchanged; a key that is not a shell variable name is an error.
    pub fn render(&self) -> Result<String> {
        let mut out = String::from("#!/bin/bash\nset -e\nset -u\n");
        for (key, value) in &self.env {
            if !is_shell_name(key) {
                return Err(Error::new(
                    ErrorKind::Unexpected,
                    format!("invalid environment variable name {key:?}: use letters, digits and '_' only, not starting with a digit"),
                ));
            }
            out.push_str(&format!("export {key}={}\n", shell_quote(value)));
        }
        for line in &self.lines {
            out.push_str(line);
            out.push('\n');
        }
        Ok(out)
    }
}

/// `value` as one POSIX shell word: wrapped in single quotes, each `'` written as `'\''`.
pub fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// A word that needs no quoting in a POSIX shell (letters, digits and `-_./=:,@+%`).
pub(crate) fn is_plain_shell_word(value: &str) -> bool {
    !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%".contains(c))
}

/// `value` unchanged when it is a plain word, else single-quoted.
pub(crate) fn shell_word(value: &str) -> String {
    if is_plain_shell_word(value) {
        value.to_string()
    } else {
        shell_quote(value)
    }
}

fn is_shell_name(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn renders_header_exports_and_lines() {
        let script = RemoteScript::from_lines(["make -s -C /opt/x start"]).with_env("NEW_VERSION", "1.2");
        assert_eq!(
            script.render().unwrap(),
            "#!/bin/bash\nset -e\nset -u\nexport NEW_VERSION='1.2'\nmake -s -C /opt/x start\n"
        );
    }

    #[test]
    fn quotes_single_quotes() {
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn rejects_bad_env_names() {
        for bad in ["", "1A", "A-B", "A B", "A=B"] {
            let err = RemoteScript::default().with_env(bad, "v").render().unwrap_err();
            assert!(err.to_string().contains("invalid environment variable name"), "{bad}: {err}");
        }
        assert!(RemoteScript::default().with_env("_a1", "v").render().is_ok());
    }

    #[test]
    fn shell_word_quotes_only_when_needed() {
        assert_eq!(shell_word("/tmp/a-b_c.d"), "/tmp/a-b_c.d");
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word(""), "''");
    }

    /// The rendered script, run by a real bash, prints every value exactly as given.
    #[test]
    fn values_survive_bash() {
        let values = ["two words", "it's \"quoted\"", "$HOME and `date` and $(id)", "line1\nline2", "back\\slash", "*"];
        let mut script = RemoteScript::default();
        for (i, value) in values.iter().enumerate() {
            script = script.with_env(format!("V{i}"), *value).with_line(format!("printf '%s\\0' \"$V{i}\""));
        }
        let out = Command::new("bash").arg("-c").arg(script.render().unwrap()).output().unwrap();
        assert!(out.status.success());
        let printed: Vec<String> = out
            .stdout
            .split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect();
        assert_eq!(printed, values);
    }
}
