//! Update action resolution (spec §5.8, internals §7.3 `resolveUpdateAction`): what an already
//! running allocation with a pending change gets — the worker target `restart` or `reload`, or
//! `sync` (files only, no make target).

use super::file_manifest::counts_as_content;
use crate::globs::paths_matching_any;
use crate::manifest::RestartPolicy;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateAction {
    /// `runner.py … restart`. `matched` = the changed paths that hit a `restart_glob` (empty
    /// under policy `always`).
    Restart { matched: Vec<String> },
    /// `runner.py … reload`.
    Reload,
    /// Files and promotion only; no make target.
    Sync,
}

impl UpdateAction {
    /// The worker target name, or `None` for `sync`.
    pub fn target(&self) -> Option<&'static str> {
        match self {
            UpdateAction::Restart { .. } => Some("restart"),
            UpdateAction::Reload => Some("reload"),
            UpdateAction::Sync => None,
        }
    }
}

/// Spec §5.8 in order: `--sync-only` → sync; policy `never` → sync; `always` → restart; `reload`:
/// version-only → reload; no previous manifest (`changed` = `None`) → reload; no globs → reload;
/// a changed content path matching a glob → restart (the matched paths reported); else reload.
/// Helper files in `changed` are ignored (they are never content).
pub fn resolve_update_action(
    sync_only: bool,
    policy: RestartPolicy,
    globs: &[String],
    changed: Option<&[String]>,
    version_only: bool,
) -> UpdateAction {
    if sync_only {
        return UpdateAction::Sync;
    }
    match policy {
        RestartPolicy::Never => UpdateAction::Sync,
        RestartPolicy::Always => UpdateAction::Restart { matched: Vec::new() },
        RestartPolicy::Reload => {
            let Some(changed) = changed.filter(|_| !version_only && !globs.is_empty()) else {
                return UpdateAction::Reload;
            };
            let content: Vec<String> = changed.iter().filter(|p| counts_as_content(p)).cloned().collect();
            let matched = paths_matching_any(globs, &content);
            if matched.is_empty() {
                UpdateAction::Reload
            } else {
                UpdateAction::Restart { matched }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RestartPolicy::{Always, Never, Reload};

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn sync_only_wins_over_every_policy() {
        let globs = strings(&["*"]);
        let changed = strings(&["Makefile"]);
        for policy in [Always, Reload, Never] {
            assert_eq!(resolve_update_action(true, policy, &globs, Some(&changed), false), UpdateAction::Sync);
        }
    }

    #[test]
    fn never_syncs_and_always_restarts() {
        let changed = strings(&["Makefile"]);
        assert_eq!(resolve_update_action(false, Never, &[], Some(&changed), false), UpdateAction::Sync);
        assert_eq!(resolve_update_action(false, Never, &[], None, true), UpdateAction::Sync);
        let restart = UpdateAction::Restart { matched: vec![] };
        assert_eq!(resolve_update_action(false, Always, &[], Some(&changed), false), restart);
        assert_eq!(resolve_update_action(false, Always, &strings(&["x"]), None, true), restart);
    }

    #[test]
    fn reload_policy_branches_in_order() {
        let globs = strings(&["conf/*.yml", "Makefile"]);
        let hits = strings(&["Makefile", "conf/a.yml", "data.txt"]);
        // version-only comes first, even with matching paths
        assert_eq!(resolve_update_action(false, Reload, &globs, Some(&hits), true), UpdateAction::Reload);
        // legacy: no previous manifest
        assert_eq!(resolve_update_action(false, Reload, &globs, None, false), UpdateAction::Reload);
        // no globs
        assert_eq!(resolve_update_action(false, Reload, &[], Some(&hits), false), UpdateAction::Reload);
        // globs hit
        assert_eq!(
            resolve_update_action(false, Reload, &globs, Some(&hits), false),
            UpdateAction::Restart { matched: strings(&["Makefile", "conf/a.yml"]) }
        );
        // globs miss
        let misses = strings(&["conf/sub/a.yml", "README"]);
        assert_eq!(resolve_update_action(false, Reload, &globs, Some(&misses), false), UpdateAction::Reload);
        // nothing changed (forced rollout)
        assert_eq!(resolve_update_action(false, Reload, &globs, Some(&[]), false), UpdateAction::Reload);
    }

    #[test]
    fn helper_files_never_trigger_a_restart() {
        let globs = strings(&["*.py"]);
        let changed = strings(&["_modules/maand.py"]);
        assert_eq!(resolve_update_action(false, Reload, &globs, Some(&changed), false), UpdateAction::Reload);
        let changed = strings(&["_modules/maand.py", "_modules/command_x.py"]);
        assert_eq!(
            resolve_update_action(false, Reload, &globs, Some(&changed), false),
            UpdateAction::Restart { matched: strings(&["_modules/command_x.py"]) }
        );
    }

    #[test]
    fn targets_are_the_action_names() {
        assert_eq!(UpdateAction::Restart { matched: vec![] }.target(), Some("restart"));
        assert_eq!(UpdateAction::Reload.target(), Some("reload"));
        assert_eq!(UpdateAction::Sync.target(), None);
    }
}
