//! Per-file content manifests of a staged allocation (internals §6.1) and the change decision built
//! on them (DESIGN §2 "change detection across the switch", §3.13): the aggregate plan hash, the
//! stored JSON form, which paths count as content, and whether content changed since promotion.

use md5::{Digest, Md5};
use std::collections::BTreeMap;

/// Per-file manifest: job-relative path → content MD5 hex (the `hash.current_files` /
/// `previous_files` JSON). Sorted by path (byte order, as Go sorts the walked paths).
pub type FileManifest = BTreeMap<String, String>;

/// Helper files maand writes next to job commands. They never count as content (DESIGN §3.13), so
/// a maand upgrade that changes them restarts nothing, and a bucket promoted by the Go maand
/// (whose manifests include its own `maand.py`) does not look changed to us.
pub const HELPER_FILES: [&str; 3] = ["_modules/maand.py", "_modules/maand.ts", "_modules/maand.js"];

/// The `previous_hash` the Go maand once wrote after a failed health check: "roll this out again".
pub const HEALTH_FAILED_MARKER: &str = "__maand_health_failed__";

/// Whether `path` (job-relative) is one of the [`HELPER_FILES`].
pub fn is_helper_file(path: &str) -> bool {
    HELPER_FILES.contains(&path.trim_start_matches("./"))
}

/// Whether `path` is part of a job's content: not a helper file and not under a `__pycache__`
/// directory (Python byte code written on the CLI host by job commands).
pub fn counts_as_content(path: &str) -> bool {
    !is_helper_file(path) && !path.contains("__pycache__")
}

/// The aggregate plan hash (internals §6.1): MD5 hex of the concatenated per-file MD5 hex digests
/// in sorted path order, over the paths that [count as content](counts_as_content). File names
/// are not hashed, as in Go (a rename keeping the sort position is no change here; the per-file
/// manifest catches it).
///
/// Decision: helper files are left out of the aggregate too (DESIGN §3.13: they "do not count in a
/// job's content hash"), so after our first promotion `previous_hash == current_hash` whenever the
/// content is unchanged, even across maand upgrades.
pub fn plan_hash(files: &FileManifest) -> String {
    let mut hasher = Md5::new();
    for (_, digest) in files.iter().filter(|(path, _)| counts_as_content(path)) {
        hasher.update(digest.as_bytes());
    }
    to_hex(&hasher.finalize())
}

/// MD5 hex of a file's bytes: the value stored per path in a [`FileManifest`].
pub fn file_md5(content: &[u8]) -> String {
    to_hex(&Md5::digest(content))
}

/// The mode of a rendered file whose template's mode is unknown (a catalog written by the Go
/// maand), which is also the mode every rendered file had before it followed its template.
pub const DEFAULT_RENDERED_MODE: u32 = 0o644;

/// The manifest value of a rendered file (DESIGN §3.18): its content MD5, followed by
/// `:<octal mode>` when its mode (its template's) is not [`DEFAULT_RENDERED_MODE`]. So
/// `chmod 600 app.conf.tpl` alone is a change that ships the file with its new mode, while an
/// allocation promoted by the Go maand (rendered files 0644) does not look changed.
pub fn rendered_file_entry(content_md5: &str, mode: u32) -> String {
    let mode = mode & 0o777;
    if mode == DEFAULT_RENDERED_MODE {
        content_md5.to_string()
    } else {
        format!("{content_md5}:{mode:04o}")
    }
}

/// The manifest value of a symbolic link (shipped as a link): MD5 hex of `symlink:` and its
/// target, so a link whose target changes is a changed file.
pub fn link_md5(target: &str) -> String {
    file_md5(format!("symlink:{target}").as_bytes())
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parse a stored manifest (a JSON object of strings). `None` for a NULL/empty column, `null`, or
/// anything that is not such an object — callers treat that as "no manifest" (legacy row).
pub fn parse_file_manifest(json: &str) -> Option<FileManifest> {
    if json.trim().is_empty() {
        return None;
    }
    serde_json::from_str::<Option<FileManifest>>(json).ok().flatten()
}

/// Sorted-key compact JSON, byte-identical to Go's `json.Marshal` of a `map[string]string`
/// (which escapes `<`, `>`, `&`, U+2028 and U+2029).
pub fn file_manifest_json(m: &FileManifest) -> String {
    let plain = serde_json::to_string(m).unwrap_or_else(|_| "{}".to_string());
    let mut out = String::with_capacity(plain.len());
    for c in plain.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// Content paths added, removed or modified between two manifests, sorted; helper files and
/// `__pycache__` paths ignored.
pub fn changed_files(previous: &FileManifest, current: &FileManifest) -> Vec<String> {
    crate::globs::changed_paths(previous, current).into_iter().filter(|p| counts_as_content(p)).collect()
}

/// Whether a promoted hash is present: `NULL` and `""` both mean "never promoted" (Go tests
/// `previous_hash IS NULL` for new allocations and `!= ''` for "was deployed").
pub fn was_promoted(previous_hash: Option<&str>) -> bool {
    previous_hash.is_some_and(|h| !h.is_empty())
}

/// Has the content changed since promotion? Never promoted → changed. The Go health-failed marker
/// → changed. With a previous manifest: any [`changed_files`]. Without one (legacy row): the
/// aggregate hashes differ.
pub fn content_changed(
    previous_hash: Option<&str>,
    previous_files: Option<&FileManifest>,
    current_hash: &str,
    current_files: &FileManifest,
) -> bool {
    let Some(previous_hash) = previous_hash.filter(|h| !h.is_empty()) else {
        return true;
    };
    if previous_hash == HEALTH_FAILED_MARKER {
        return true;
    }
    match previous_files {
        Some(previous) => !changed_files(previous, current_files).is_empty(),
        None => previous_hash != current_hash,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(entries: &[(&str, &str)]) -> FileManifest {
        entries.iter().map(|(p, h)| (p.to_string(), h.to_string())).collect()
    }

    fn md5_hex(data: &[u8]) -> String {
        Md5::digest(data).iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn rendered_entry_carries_a_mode_other_than_0644() {
        let md5 = md5_hex(b"password=x\n");
        assert_eq!(rendered_file_entry(&md5, 0o644), md5, "the Go maand's rendered files look unchanged");
        assert_eq!(rendered_file_entry(&md5, 0o100644), md5, "file type bits are ignored");
        assert_eq!(rendered_file_entry(&md5, 0o600), format!("{md5}:0600"));
        assert_eq!(rendered_file_entry(&md5, 0o755), format!("{md5}:0755"));
        let private = manifest(&[("app.conf", &rendered_file_entry(&md5, 0o600))]);
        let public = manifest(&[("app.conf", &md5)]);
        assert_ne!(plan_hash(&private), plan_hash(&public), "a mode change alone changes the plan hash");
    }

    #[test]
    fn plan_hash_is_md5_of_concatenated_digests_in_path_order() {
        let makefile = md5_hex(b"start:\n\techo hi\n");
        let conf = md5_hex(b"port=1\n");
        let files = manifest(&[("conf/app.conf", &conf), ("Makefile", &makefile)]);
        // Byte order: "Makefile" (M = 0x4d) sorts before "conf/app.conf" (c = 0x63).
        let expected = md5_hex(format!("{makefile}{conf}").as_bytes());
        assert_eq!(plan_hash(&files), expected);
        assert_eq!(file_md5(b"port=1\n"), conf);
        assert_eq!(plan_hash(&FileManifest::new()), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn plan_hash_sorts_paths_bytewise_like_go() {
        // '-' (0x2d) < '/' (0x2f): "a-c" sorts before "a/b" although a directory walk visits a/ first.
        let files = manifest(&[("a/b", "11"), ("a-c", "22")]);
        assert_eq!(plan_hash(&files), md5_hex(b"2211"));
    }

    #[test]
    fn plan_hash_skips_pycache_and_helper_files() {
        let base = manifest(&[("Makefile", "aa")]);
        let mut with_noise = base.clone();
        with_noise.insert("_modules/__pycache__/x.cpython-311.pyc".into(), "bb".into());
        with_noise.insert("_modules/maand.py".into(), "cc".into());
        with_noise.insert("_modules/maand.ts".into(), "dd".into());
        with_noise.insert("_modules/maand.js".into(), "ee".into());
        assert_eq!(plan_hash(&with_noise), plan_hash(&base));
        with_noise.insert("_modules/command_x.py".into(), "ff".into());
        assert_ne!(plan_hash(&with_noise), plan_hash(&base));
    }

    #[test]
    fn helper_files_are_exactly_the_embedded_helpers() {
        for p in HELPER_FILES {
            assert!(is_helper_file(p), "{p}");
        }
        assert!(is_helper_file("./_modules/maand.py"));
        assert!(!is_helper_file("maand.py"));
        assert!(!is_helper_file("_modules/maand.pyc"));
        assert!(!is_helper_file("sub/_modules/maand.py"));
        assert!(!is_helper_file("_modules/command_maand.py"));
        assert!(!counts_as_content("bin/__pycache__/a.pyc"));
        assert!(counts_as_content("Makefile"));
    }

    #[test]
    fn manifest_json_round_trips_sorted_and_go_escaped() {
        let m = manifest(&[("z", "1"), ("a<b>&c", "2"), ("m\u{2028}", "3")]);
        let json = file_manifest_json(&m);
        assert_eq!(json, r#"{"a\u003cb\u003e\u0026c":"2","m\u2028":"3","z":"1"}"#);
        assert_eq!(parse_file_manifest(&json), Some(m));
        assert_eq!(file_manifest_json(&FileManifest::new()), "{}");
        assert_eq!(parse_file_manifest("{}"), Some(FileManifest::new()));
    }

    #[test]
    fn parse_file_manifest_rejects_non_manifests() {
        for bad in ["", "  ", "null", "[]", "{\"a\":1}", "{", "\"x\""] {
            assert_eq!(parse_file_manifest(bad), None, "{bad:?}");
        }
        assert_eq!(parse_file_manifest(" {\"b\":\"2\",\"a\":\"1\"} "), Some(manifest(&[("a", "1"), ("b", "2")])));
    }

    #[test]
    fn changed_files_ignores_helpers_and_pycache() {
        let prev = manifest(&[("Makefile", "1"), ("_modules/maand.py", "go"), ("gone", "3")]);
        let cur = manifest(&[
            ("Makefile", "2"),
            ("_modules/maand.py", "rust"),
            ("_modules/maand.js", "new"),
            ("__pycache__/x.pyc", "4"),
            ("added", "5"),
        ]);
        assert_eq!(changed_files(&prev, &cur), vec!["Makefile", "added", "gone"]);
        assert!(changed_files(&cur, &cur).is_empty());
    }

    #[test]
    fn content_changed_uses_manifests_ignoring_helpers() {
        let go_promoted = manifest(&[("Makefile", "1"), ("_modules/maand.py", "go-helper")]);
        let ours = manifest(&[("Makefile", "1"), ("_modules/maand.py", "rust-helper"), ("_modules/maand.js", "js")]);
        // The aggregate hashes differ (Go hashed its maand.py), yet nothing changed.
        assert!(!content_changed(Some("go-aggregate"), Some(&go_promoted), &plan_hash(&ours), &ours));
        let mut edited = ours.clone();
        edited.insert("Makefile".into(), "2".into());
        assert!(content_changed(Some("go-aggregate"), Some(&go_promoted), &plan_hash(&edited), &edited));
        // Same manifest but a different aggregate (e.g. an older hashing): the manifest decides.
        assert!(!content_changed(Some("x"), Some(&ours), "y", &ours));
    }

    #[test]
    fn content_changed_legacy_row_falls_back_to_aggregate_hashes() {
        let cur = manifest(&[("Makefile", "1")]);
        assert!(!content_changed(Some("h1"), None, "h1", &cur));
        assert!(content_changed(Some("h1"), None, "h2", &cur));
    }

    #[test]
    fn content_changed_when_never_promoted_or_health_failed() {
        let cur = manifest(&[("Makefile", "1")]);
        assert!(content_changed(None, None, "h", &cur));
        assert!(content_changed(Some(""), Some(&cur), "h", &cur));
        assert!(content_changed(Some(HEALTH_FAILED_MARKER), Some(&cur), "h", &cur));
        assert!(!was_promoted(None));
        assert!(!was_promoted(Some("")));
        assert!(was_promoted(Some("h")));
    }

    fn arb_manifest() -> impl proptest::strategy::Strategy<Value = FileManifest> {
        proptest::collection::btree_map("[a-z_]{1,3}(/[a-z_.]{1,4}){0,2}", "[0-9a-f]{4}", 0..8)
    }

    proptest::proptest! {
        #[test]
        fn helper_and_pycache_entries_never_change_anything(
            m in arb_manifest(),
            noise in proptest::collection::btree_map(
                proptest::prop_oneof![
                    proptest::strategy::Just("_modules/maand.py".to_string()),
                    proptest::strategy::Just("_modules/maand.js".to_string()),
                    "[a-z]{1,3}/__pycache__/[a-z]{1,3}\\.pyc",
                ],
                "[0-9a-f]{4}",
                0..4,
            ),
        ) {
            let mut noisy = m.clone();
            noisy.extend(noise);
            proptest::prop_assert_eq!(plan_hash(&noisy), plan_hash(&m));
            proptest::prop_assert!(!content_changed(Some("old"), Some(&m), &plan_hash(&noisy), &noisy));
            proptest::prop_assert!(!content_changed(Some("old"), Some(&noisy), &plan_hash(&m), &m));
            proptest::prop_assert_eq!(parse_file_manifest(&file_manifest_json(&noisy)), Some(noisy));
        }
    }
}
