//! Allocation classification and rollout need (spec §5.4, internals §6.2): which allocations of a
//! job are new, updated, version-pending or unchanged, and whether the job needs a rollout at all.
//! "Updated" is decided by per-file manifests ([`content_changed`]), not raw hash inequality.

use super::file_manifest::{changed_files, content_changed, was_promoted, FileManifest};

/// The hash row of an allocation (namespace `<job>_allocation`, key `alloc_id`) after staging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashState {
    pub current_hash: String,
    pub previous_hash: Option<String>,
    pub current_files: FileManifest,
    /// `None` for a NULL column or a legacy row without a manifest.
    pub previous_files: Option<FileManifest>,
    /// Last promoted version; `"0.0.0"` when NULL.
    pub current_version: String,
}

/// One allocation of a job as the deploy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocationPlanInput {
    pub ip: String,
    pub alloc_id: String,
    pub disabled: bool,
    pub removed: bool,
    /// `None` when no hash row exists yet (never staged, or removed and re-added).
    pub hash_row: Option<HashState>,
}

/// What an allocation needs, before policy and flags turn it into an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllocationClass {
    /// Active and never promoted (no hash row, or `previous_hash` NULL): needs `start`.
    New,
    /// Active and its content changed since promotion. `files` = the changed content paths, or
    /// `None` when there is no previous manifest to compare (legacy row).
    Updated {
        files: Option<Vec<String>>,
    },
    /// Active, content unchanged, but the promoted version differs from the build's `new_version`.
    VersionPending,
    /// Active and fully promoted.
    Unchanged,
    Disabled,
    Removed,
}

/// Version normalisation of the catalog (internals §6.2): missing, `""` and `unknown` (any case)
/// are `"0.0.0"`; anything else is compared as written.
pub fn normalize_version(version: Option<&str>) -> &str {
    match version {
        None => "0.0.0",
        Some(v) if v.is_empty() || v.eq_ignore_ascii_case("unknown") => "0.0.0",
        Some(v) => v,
    }
}

fn version_pending(row: &HashState, new_version: &str) -> bool {
    normalize_version(Some(&row.current_version)) != normalize_version(Some(new_version))
}

fn row_content_changed(row: &HashState) -> bool {
    content_changed(row.previous_hash.as_deref(), row.previous_files.as_ref(), &row.current_hash, &row.current_files)
}

/// Classify one allocation (spec §5.4). Removed and disabled come first; an active allocation is
/// New when never promoted, else Updated when its content changed (Updated wins over
/// VersionPending when both hold), else VersionPending, else Unchanged.
pub fn classify(a: &AllocationPlanInput, new_version: &str) -> AllocationClass {
    if a.removed {
        return AllocationClass::Removed;
    }
    if a.disabled {
        return AllocationClass::Disabled;
    }
    let Some(row) = &a.hash_row else {
        return AllocationClass::New;
    };
    if !was_promoted(row.previous_hash.as_deref()) {
        return AllocationClass::New;
    }
    if row_content_changed(row) {
        let files = row.previous_files.as_ref().map(|prev| changed_files(prev, &row.current_files));
        return AllocationClass::Updated { files };
    }
    if version_pending(row, new_version) {
        return AllocationClass::VersionPending;
    }
    AllocationClass::Unchanged
}

/// Whether a non-removed allocation (active or disabled) has something to promote: no hash row,
/// never promoted, content changed, or version pending. Removed allocations never do.
///
/// Decision: for a disabled allocation that was never promoted this is true (Go only counts it
/// when its version is pending), so its hash is recorded once and its state becomes steady.
pub fn has_pending_change(a: &AllocationPlanInput, new_version: &str) -> bool {
    if a.removed {
        return false;
    }
    match &a.hash_row {
        None => true,
        Some(row) => row_content_changed(row) || version_pending(row, new_version),
    }
}

/// `JobNeedsRollout` (spec §5.4): any non-removed allocation, disabled included, with a
/// [pending change](has_pending_change). Each allocation comes with its `new_version`.
pub fn job_needs_rollout(allocs: &[(AllocationPlanInput, String)]) -> bool {
    allocs.iter().any(|(a, new_version)| has_pending_change(a, new_version))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::rollout::file_manifest::{HEALTH_FAILED_MARKER, HELPER_FILES};

    pub(crate) fn files(entries: &[(&str, &str)]) -> FileManifest {
        entries.iter().map(|(p, h)| (p.to_string(), h.to_string())).collect()
    }

    /// A promoted row at version 1.0.0 whose content is `{Makefile: 1, conf: 1}`.
    pub(crate) fn promoted_row() -> HashState {
        let m = files(&[("Makefile", "1"), ("conf", "1")]);
        HashState {
            current_hash: "h1".into(),
            previous_hash: Some("h1".into()),
            current_files: m.clone(),
            previous_files: Some(m),
            current_version: "1.0.0".into(),
        }
    }

    pub(crate) fn alloc(row: Option<HashState>) -> AllocationPlanInput {
        AllocationPlanInput {
            ip: "10.0.0.1".into(),
            alloc_id: "a1".into(),
            disabled: false,
            removed: false,
            hash_row: row,
        }
    }

    pub(crate) fn edited(mut row: HashState, path: &str) -> HashState {
        row.current_files.insert(path.into(), "2".into());
        row.current_hash = "h2".into();
        row
    }

    #[test]
    fn removed_and_disabled_come_first() {
        let mut a = alloc(Some(edited(promoted_row(), "Makefile")));
        a.disabled = true;
        assert_eq!(classify(&a, "2.0.0"), AllocationClass::Disabled);
        a.removed = true;
        assert_eq!(classify(&a, "2.0.0"), AllocationClass::Removed);
    }

    #[test]
    fn new_without_row_or_without_previous_hash() {
        assert_eq!(classify(&alloc(None), "1.0.0"), AllocationClass::New);
        let mut row = promoted_row();
        row.previous_hash = None;
        assert_eq!(classify(&alloc(Some(row.clone())), "1.0.0"), AllocationClass::New);
        row.previous_hash = Some(String::new());
        assert_eq!(classify(&alloc(Some(row)), "1.0.0"), AllocationClass::New);
    }

    #[test]
    fn updated_reports_changed_files_and_wins_over_version_pending() {
        let row = edited(promoted_row(), "conf");
        let expected = AllocationClass::Updated { files: Some(vec!["conf".into()]) };
        assert_eq!(classify(&alloc(Some(row.clone())), "1.0.0"), expected);
        assert_eq!(classify(&alloc(Some(row)), "2.0.0"), expected);
    }

    #[test]
    fn legacy_row_updated_without_files() {
        let mut row = promoted_row();
        row.previous_files = None;
        assert_eq!(classify(&alloc(Some(row.clone())), "1.0.0"), AllocationClass::Unchanged);
        row.current_hash = "h2".into();
        assert_eq!(classify(&alloc(Some(row)), "1.0.0"), AllocationClass::Updated { files: None });
    }

    #[test]
    fn health_failed_marker_is_updated() {
        let mut row = promoted_row();
        row.previous_hash = Some(HEALTH_FAILED_MARKER.into());
        assert_eq!(classify(&alloc(Some(row)), "1.0.0"), AllocationClass::Updated { files: Some(vec![]) });
    }

    #[test]
    fn helper_only_change_is_unchanged() {
        let mut row = promoted_row();
        for helper in HELPER_FILES {
            row.current_files.insert(helper.into(), "new-helper".into());
        }
        row.current_hash = "different-aggregate".into();
        assert_eq!(classify(&alloc(Some(row)), "1.0.0"), AllocationClass::Unchanged);
    }

    #[test]
    fn version_pending_and_normalisation() {
        assert_eq!(classify(&alloc(Some(promoted_row())), "1.1.0"), AllocationClass::VersionPending);
        assert_eq!(classify(&alloc(Some(promoted_row())), "1.0.0"), AllocationClass::Unchanged);
        let mut row = promoted_row();
        row.current_version = "0.0.0".into();
        assert_eq!(classify(&alloc(Some(row.clone())), "unknown"), AllocationClass::Unchanged);
        assert_eq!(classify(&alloc(Some(row.clone())), "UNKNOWN"), AllocationClass::Unchanged);
        assert_eq!(classify(&alloc(Some(row.clone())), ""), AllocationClass::Unchanged);
        row.current_version = String::new();
        assert_eq!(classify(&alloc(Some(row)), "0.0.0"), AllocationClass::Unchanged);
        assert_eq!(normalize_version(None), "0.0.0");
        assert_eq!(normalize_version(Some("v2")), "v2");
    }

    #[test]
    fn pending_change_covers_disabled_but_not_removed() {
        let mut a = alloc(Some(edited(promoted_row(), "conf")));
        a.disabled = true;
        assert!(has_pending_change(&a, "1.0.0"));
        a.removed = true;
        assert!(!has_pending_change(&a, "1.0.0"));

        let mut steady = alloc(Some(promoted_row()));
        steady.disabled = true;
        assert!(!has_pending_change(&steady, "1.0.0"));
        assert!(has_pending_change(&steady, "1.0.1"), "disabled version-pending");
        steady.hash_row = None;
        assert!(has_pending_change(&steady, "1.0.0"), "no hash row yet");
    }

    #[test]
    fn job_needs_rollout_any_non_removed_pending() {
        let v = |a: AllocationPlanInput| (a, "1.0.0".to_string());
        let steady = v(alloc(Some(promoted_row())));
        assert!(!job_needs_rollout(&[]));
        assert!(!job_needs_rollout(std::slice::from_ref(&steady)));
        assert!(job_needs_rollout(&[steady.clone(), v(alloc(None))]));
        assert!(job_needs_rollout(&[steady.clone(), v(alloc(Some(edited(promoted_row(), "x"))))]));
        let mut removed = alloc(None);
        removed.removed = true;
        assert!(!job_needs_rollout(&[steady.clone(), v(removed)]));
        let mut disabled_changed = alloc(Some(edited(promoted_row(), "x")));
        disabled_changed.disabled = true;
        assert!(job_needs_rollout(&[steady.clone(), v(disabled_changed)]));
        assert!(job_needs_rollout(&[(alloc(Some(promoted_row())), "2.0.0".to_string())]));
    }
}
