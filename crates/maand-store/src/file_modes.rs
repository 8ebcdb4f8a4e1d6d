//! Files and directories with the exact mode maand means, whatever the process umask: a mode is
//! set explicitly at creation (and again on an existing file that is rewritten), never inherited
//! from the umask.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Set the permission bits of `path` (symlinks are followed).
pub fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    fs::set_permissions(path, Permissions::from_mode(mode))
}

/// The permission bits of `path` (without file type bits).
pub fn mode_of(path: &Path) -> io::Result<u32> {
    Ok(fs::metadata(path)?.permissions().mode() & 0o7777)
}

/// Create `path` and its missing parents; every directory created gets `mode` (existing ones are
/// left as they are). The directory is never more open than `mode`, not even for a moment.
pub fn create_dir_all_with_mode(path: &Path, mode: u32) -> io::Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir_all_with_mode(parent, mode)?;
    }
    match DirBuilder::new().mode(mode).create(path) {
        Ok(()) => set_mode(path, mode),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Write `content` to `path` (created or truncated) and give it `mode`. A new file is never more
/// open than `mode`, not even for a moment.
pub fn write_with_mode(path: &Path, content: &[u8], mode: u32) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(path)?;
    file.set_permissions(Permissions::from_mode(mode))?;
    file.write_all(content)
}

/// Open `path` for appending (created when missing) with `mode`.
pub fn open_append_with_mode(path: &Path, mode: u32) -> io::Result<File> {
    let file = OpenOptions::new().create(true).append(true).mode(mode).open(path)?;
    file.set_permissions(Permissions::from_mode(mode))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The modes asked for below include group and other write bits, which the usual umask (022)
    // removes: getting them exactly proves the mode does not come from the umask.

    #[test]
    fn directories_get_their_mode_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b/c");
        create_dir_all_with_mode(&deep, 0o777).unwrap();
        for d in ["a", "a/b", "a/b/c"] {
            assert_eq!(mode_of(&dir.path().join(d)).unwrap(), 0o777, "{d}");
        }
        create_dir_all_with_mode(&deep.join("d"), 0o700).unwrap();
        assert_eq!(mode_of(&deep).unwrap(), 0o777, "an existing directory keeps its mode");
        assert_eq!(mode_of(&deep.join("d")).unwrap(), 0o700);
        create_dir_all_with_mode(&deep, 0o700).unwrap();
    }

    #[test]
    fn files_get_their_mode_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        write_with_mode(&f, b"one", 0o666).unwrap();
        assert_eq!(mode_of(&f).unwrap(), 0o666);
        write_with_mode(&f, b"two", 0o600).unwrap();
        assert_eq!(mode_of(&f).unwrap(), 0o600, "a rewritten file gets the mode too");
        assert_eq!(fs::read(&f).unwrap(), b"two");

        let log = dir.path().join("log");
        writeln!(open_append_with_mode(&log, 0o666).unwrap(), "a").unwrap();
        assert_eq!(mode_of(&log).unwrap(), 0o666);
        writeln!(open_append_with_mode(&log, 0o600).unwrap(), "b").unwrap();
        assert_eq!(mode_of(&log).unwrap(), 0o600);
        assert_eq!(fs::read_to_string(&log).unwrap(), "a\nb\n");
    }
}
