//! ed25519 key pairs made with `ssh-keygen`: sandbox host keys and the throwaway client key that
//! sandbox workers authorize.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use maand_core::{Error, Result};

/// Creates an unencrypted ed25519 key pair at `path` and `path.pub` (both mode 0600).
pub(crate) fn generate(path: &Path, comment: &str) -> Result<()> {
    let output = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| key_error(path, format!("cannot run ssh-keygen: {e} (install openssh-client)")))?;
    if !output.status.success() {
        return Err(key_error(path, format!("ssh-keygen failed: {}", String::from_utf8_lossy(&output.stderr).trim())));
    }
    for file in [path.to_path_buf(), public_path(path)] {
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).map_err(|e| key_error(&file, e))?;
    }
    Ok(())
}

/// Makes sure a client key exists at `path` (creating an ed25519 pair if missing, restoring a
/// missing `.pub` from the private key) and returns the public key line.
pub fn ensure_client_key(path: &Path) -> Result<String> {
    if !path.exists() {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| key_error(dir, e))?;
        }
        generate(path, "maand-sandbox")?;
    }
    let public = public_path(path);
    if !public.exists() {
        let output = Command::new("ssh-keygen")
            .arg("-y")
            .arg("-f")
            .arg(path)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| key_error(path, format!("cannot run ssh-keygen: {e}")))?;
        if !output.status.success() {
            return Err(key_error(
                path,
                format!("not a readable private key: {}", String::from_utf8_lossy(&output.stderr).trim()),
            ));
        }
        fs::write(&public, &output.stdout).map_err(|e| key_error(&public, e))?;
        fs::set_permissions(&public, fs::Permissions::from_mode(0o600)).map_err(|e| key_error(&public, e))?;
    }
    let line = fs::read_to_string(&public).map_err(|e| key_error(&public, e))?;
    Ok(line.trim().to_string())
}

fn public_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".pub");
    PathBuf::from(name)
}

fn key_error(path: &Path, detail: impl std::fmt::Display) -> Error {
    Error::msg(format!("ssh key {}: {detail}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_once_and_restores_public_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("secrets/sandbox.key");
        let first = ensure_client_key(&key).unwrap();
        assert!(first.starts_with("ssh-ed25519 "), "{first}");
        assert_eq!(fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(public_path(&key)).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(ensure_client_key(&key).unwrap(), first, "existing key kept");
        fs::remove_file(public_path(&key)).unwrap();
        let restored = ensure_client_key(&key).unwrap();
        assert_eq!(
            restored.split_whitespace().take(2).collect::<Vec<_>>(),
            first.split_whitespace().take(2).collect::<Vec<_>>()
        );
    }
}
