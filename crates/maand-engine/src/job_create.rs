//! `maand job create <job> [-s a,b]`: scaffold a job directory (spec/features.md §2.12).

use maand_core::{Error, ErrorKind, Result};
use maand_store::paths::BucketPaths;
use std::path::Path;

const MAKEFILE: &str = "start:\n\nstop:\n\nrestart:\n";

pub fn create_job(root: &Path, job: &str, selectors: &[String]) -> Result<std::path::PathBuf> {
    let valid = !job.is_empty()
        && job.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        && !job.starts_with('.');
    if !valid {
        return Err(Error::msg(format!(
            "invalid job name {job:?}: use letters, digits, '_', '-' or '.' (it becomes the directory workspace/jobs/{job})"
        )));
    }
    let paths = BucketPaths::new(root);
    let dir = paths.jobs_dir().join(job);
    if dir.exists() {
        return Err(Error::msg(format!("job directory already exists: {job}")));
    }
    let manifest = serde_json::json!({ "version": "1.0", "selectors": selectors });
    let mut text = String::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut buf = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, formatter);
    serde::Serialize::serialize(&manifest, &mut ser).map_err(|e| Error::new(ErrorKind::Unexpected, e.to_string()))?;
    text.push_str(&String::from_utf8_lossy(&buf));
    text.push('\n');
    let io = |e: std::io::Error| Error::new(ErrorKind::Unexpected, format!("{}: {e}", dir.display()));
    std::fs::create_dir_all(&dir).map_err(io)?;
    std::fs::write(dir.join("manifest.json"), text).map_err(io)?;
    std::fs::write(dir.join("Makefile"), MAKEFILE).map_err(io)?;
    Ok(dir)
}
