//! Which program runs a job command (spec §8.2): `.py` with the job's own virtualenv
//! (`workspace/jobs/<job>/_modules/.venv` or `venv`) when present, else `python3`; `.ts` with Bun;
//! `.js` with Bun when installed, else Node. A missing runtime is a host-prerequisite error.

use maand_core::{Error, ErrorKind, Result};
use std::path::{Path, PathBuf};

/// `program` and the arguments before nothing else: the script path is the last argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interpreter {
    pub program: PathBuf,
    pub args: Vec<String>,
}

/// The interpreter for `script` (`command_x.py|ts|js`) of a job whose workspace `_modules`
/// directory is `modules_dir`, looking programs up in `path_var` (`$PATH`).
pub fn interpreter_for(script: &str, modules_dir: &Path, path_var: Option<&str>) -> Result<Interpreter> {
    let find = |name: &str| find_in_path(name, path_var);
    let missing = |what: &str| {
        Error::new(ErrorKind::HostPrerequisites, format!("{what} (needed to run {script}); install it on this host"))
    };
    let with_script = |program: PathBuf, mut args: Vec<String>| {
        args.push(script.to_string());
        Interpreter { program, args }
    };
    if script.ends_with(".py") {
        let venv = [".venv/bin/python3", ".venv/bin/python", "venv/bin/python3", "venv/bin/python"]
            .iter()
            .map(|rel| modules_dir.join(rel))
            .find(|p| is_executable(p));
        let program = venv.or_else(|| find("python3")).ok_or_else(|| missing("python3"))?;
        return Ok(with_script(program, Vec::new()));
    }
    if let Some(bun) = find("bun") {
        return Ok(with_script(bun, vec!["run".into()]));
    }
    if script.ends_with(".js") {
        let node = find("node").ok_or_else(|| missing("bun or node"))?;
        return Ok(with_script(node, Vec::new()));
    }
    Err(missing("bun"))
}

fn find_in_path(name: &str, path_var: Option<&str>) -> Option<PathBuf> {
    path_var?.split(':').filter(|d| !d.is_empty()).map(|d| Path::new(d).join(name)).find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn exe(dir: &Path, rel: &str) -> PathBuf {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn python_prefers_the_job_venv() {
        let tmp = tempfile::tempdir().unwrap();
        let bin = tmp.path().join("bin");
        let system = exe(&bin, "python3");
        let modules = tmp.path().join("modules");
        let path = bin.display().to_string();
        let i = interpreter_for("command_a.py", &modules, Some(&path)).unwrap();
        assert_eq!(i, Interpreter { program: system, args: vec!["command_a.py".into()] });
        let venv = exe(&modules, "venv/bin/python");
        assert_eq!(interpreter_for("command_a.py", &modules, Some(&path)).unwrap().program, venv);
        let dot_venv = exe(&modules, ".venv/bin/python3");
        assert_eq!(interpreter_for("command_a.py", &modules, Some(&path)).unwrap().program, dot_venv);
    }

    #[test]
    fn javascript_uses_bun_then_node_and_typescript_needs_bun() {
        let tmp = tempfile::tempdir().unwrap();
        let bin = tmp.path().join("bin");
        let path = bin.display().to_string();
        let node = exe(&bin, "node");
        let i = interpreter_for("command_a.js", tmp.path(), Some(&path)).unwrap();
        assert_eq!(i, Interpreter { program: node, args: vec!["command_a.js".into()] });
        let e = interpreter_for("command_a.ts", tmp.path(), Some(&path)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::HostPrerequisites);
        assert!(e.to_string().contains("bun") && e.to_string().contains("command_a.ts"), "{e}");
        let bun = exe(&bin, "bun");
        let i = interpreter_for("command_a.ts", tmp.path(), Some(&path)).unwrap();
        assert_eq!(i, Interpreter { program: bun, args: vec!["run".into(), "command_a.ts".into()] });
        let e = interpreter_for("command_a.py", tmp.path(), Some(&path)).unwrap_err();
        assert!(e.to_string().contains("host prerequisites not met: python3"), "{e}");
    }
}
