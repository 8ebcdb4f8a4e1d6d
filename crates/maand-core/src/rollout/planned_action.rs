//! The planned action per allocation (spec §5.9, DESIGN §3.6): the value dry-run prints and
//! deploy executes, from the allocation's class, its running state and the deploy flags.

use super::classify::{classify, has_pending_change, AllocationClass, AllocationPlanInput};
use super::file_manifest::was_promoted;
use super::update_action::{resolve_update_action, UpdateAction};
use crate::manifest::RestartPolicy;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlannedAction {
    /// New allocation: `start`.
    Start,
    /// `restart`; `matched` = changed paths that hit a `restart_glob`.
    Restart {
        matched: Vec<String>,
    },
    Reload,
    /// Files and promotion only.
    Sync,
    /// Nothing to do.
    Skip,
    /// Disabled or removed allocation that is still running: stop it (a removed one also loses
    /// its deployed files and hash row).
    Stop,
    /// Disabled, still running, with a pending change: stop it and promote the new content.
    StopAndPromote,
    /// Disabled, already stopped, with a pending change: promote only.
    Promote,
}

impl PlannedAction {
    /// The dry-run label: `start`, `restart`, `reload`, `sync`, `skip`, `stop`, `stop+promote`,
    /// `promote`.
    pub fn label(&self) -> &'static str {
        match self {
            PlannedAction::Start => "start",
            PlannedAction::Restart { .. } => "restart",
            PlannedAction::Reload => "reload",
            PlannedAction::Sync => "sync",
            PlannedAction::Skip => "skip",
            PlannedAction::Stop => "stop",
            PlannedAction::StopAndPromote => "stop+promote",
            PlannedAction::Promote => "promote",
        }
    }

    /// Whether the deploy has anything to do for this allocation (dry-run "deployment required").
    pub fn is_required(&self) -> bool {
        *self != PlannedAction::Skip
    }
}

impl From<UpdateAction> for PlannedAction {
    fn from(action: UpdateAction) -> Self {
        match action {
            UpdateAction::Restart { matched } => PlannedAction::Restart { matched },
            UpdateAction::Reload => PlannedAction::Reload,
            UpdateAction::Sync => PlannedAction::Sync,
        }
    }
}

/// The deploy flags and the job's update policy.
#[derive(Debug, Clone, Copy)]
pub struct DeploySettings<'a> {
    pub sync_only: bool,
    pub force: bool,
    pub policy: RestartPolicy,
    pub globs: &'a [String],
}

/// Decide one allocation's action. `was_stopped`: the engine's marker that this allocation has
/// already been stopped while disabled (DESIGN §3.6: stop once, not on every deploy).
///
/// * active: New → `Start` (also under `--sync-only`; the engine refuses the deploy then);
///   Updated / VersionPending → [`resolve_update_action`]; Unchanged → `Skip`, or with `--force`
///   the update action of an unchanged allocation.
/// * disabled: running = ever promoted and not yet stopped. Running → `Stop`, or `StopAndPromote`
///   with a pending change; stopped → `Skip`, or `Promote` with a pending change.
/// * removed: ever promoted → `Stop` (stop + remove files; its hash row is then dropped, so this
///   happens once), else `Skip`.
///
/// Jobs with `job_control` commands ignore the policy (spec §5.5); the engine handles that path.
pub fn planned_action(
    a: &AllocationPlanInput,
    new_version: &str,
    was_stopped: bool,
    settings: &DeploySettings,
) -> PlannedAction {
    let ever_promoted = a.hash_row.as_ref().is_some_and(|row| was_promoted(row.previous_hash.as_deref()));
    let update = |changed: Option<&[String]>, version_only: bool| -> PlannedAction {
        resolve_update_action(settings.sync_only, settings.policy, settings.globs, changed, version_only).into()
    };
    match classify(a, new_version) {
        AllocationClass::Removed if ever_promoted => PlannedAction::Stop,
        AllocationClass::Removed => PlannedAction::Skip,
        AllocationClass::Disabled => {
            let running = ever_promoted && !was_stopped;
            match (running, has_pending_change(a, new_version)) {
                (true, true) => PlannedAction::StopAndPromote,
                (true, false) => PlannedAction::Stop,
                (false, true) => PlannedAction::Promote,
                (false, false) => PlannedAction::Skip,
            }
        }
        AllocationClass::New => PlannedAction::Start,
        AllocationClass::Updated { files } => update(files.as_deref(), false),
        AllocationClass::VersionPending => update(Some(&[]), true),
        AllocationClass::Unchanged if settings.force => update(Some(&[]), false),
        AllocationClass::Unchanged => PlannedAction::Skip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::classify::tests::{alloc, edited, promoted_row};
    use RestartPolicy::{Always, Never, Reload};

    const NO_GLOBS: &[String] = &[];

    fn settings(policy: RestartPolicy, globs: &[String]) -> DeploySettings<'_> {
        DeploySettings { sync_only: false, force: false, policy, globs }
    }

    fn plan(a: &AllocationPlanInput, version: &str, was_stopped: bool, s: &DeploySettings) -> PlannedAction {
        planned_action(a, version, was_stopped, s)
    }

    #[test]
    fn new_allocations_start_even_when_sync_only() {
        let mut s = settings(Always, NO_GLOBS);
        assert_eq!(plan(&alloc(None), "1.0.0", false, &s), PlannedAction::Start);
        s.sync_only = true;
        assert_eq!(plan(&alloc(None), "1.0.0", false, &s), PlannedAction::Start);
    }

    #[test]
    fn updated_follows_the_policy() {
        let a = alloc(Some(edited(promoted_row(), "conf")));
        assert_eq!(plan(&a, "1.0.0", false, &settings(Always, NO_GLOBS)), PlannedAction::Restart { matched: vec![] });
        assert_eq!(plan(&a, "1.0.0", false, &settings(Never, NO_GLOBS)), PlannedAction::Sync);
        assert_eq!(plan(&a, "1.0.0", false, &settings(Reload, NO_GLOBS)), PlannedAction::Reload);
        let globs = vec!["conf".to_string()];
        assert_eq!(
            plan(&a, "1.0.0", false, &settings(Reload, &globs)),
            PlannedAction::Restart { matched: vec!["conf".into()] }
        );
        let mut s = settings(Always, NO_GLOBS);
        s.sync_only = true;
        assert_eq!(plan(&a, "1.0.0", false, &s), PlannedAction::Sync);
    }

    #[test]
    fn legacy_updated_reloads_under_reload_policy() {
        let mut row = edited(promoted_row(), "conf");
        row.previous_files = None;
        let globs = vec!["*".to_string()];
        assert_eq!(plan(&alloc(Some(row)), "1.0.0", false, &settings(Reload, &globs)), PlannedAction::Reload);
    }

    #[test]
    fn version_pending_is_version_only() {
        let a = alloc(Some(promoted_row()));
        let globs = vec!["*".to_string()];
        assert_eq!(plan(&a, "2.0.0", false, &settings(Reload, &globs)), PlannedAction::Reload);
        assert_eq!(plan(&a, "2.0.0", false, &settings(Always, NO_GLOBS)), PlannedAction::Restart { matched: vec![] });
        assert_eq!(plan(&a, "2.0.0", false, &settings(Never, NO_GLOBS)), PlannedAction::Sync);
    }

    #[test]
    fn unchanged_skips_unless_forced() {
        let a = alloc(Some(promoted_row()));
        let globs = vec!["*".to_string()];
        let mut s = settings(Reload, &globs);
        assert_eq!(plan(&a, "1.0.0", false, &s), PlannedAction::Skip);
        s.force = true;
        assert_eq!(plan(&a, "1.0.0", false, &s), PlannedAction::Reload);
        s.policy = Always;
        assert_eq!(plan(&a, "1.0.0", false, &s), PlannedAction::Restart { matched: vec![] });
        s.policy = Never;
        assert_eq!(plan(&a, "1.0.0", false, &s), PlannedAction::Sync);
    }

    #[test]
    fn disabled_is_stopped_once_and_promoted_when_changed() {
        let s = settings(Always, NO_GLOBS);
        let mut steady = alloc(Some(promoted_row()));
        steady.disabled = true;
        assert_eq!(plan(&steady, "1.0.0", false, &s), PlannedAction::Stop);
        assert_eq!(plan(&steady, "1.0.0", true, &s), PlannedAction::Skip);

        let mut changed = alloc(Some(edited(promoted_row(), "conf")));
        changed.disabled = true;
        assert_eq!(plan(&changed, "1.0.0", false, &s), PlannedAction::StopAndPromote);
        assert_eq!(plan(&changed, "1.0.0", true, &s), PlannedAction::Promote);
        assert_eq!(plan(&steady, "1.1.0", true, &s), PlannedAction::Promote, "version pending");

        let mut forced = settings(Always, NO_GLOBS);
        forced.force = true;
        assert_eq!(
            plan(&steady, "1.0.0", true, &forced),
            PlannedAction::Skip,
            "force never starts a disabled allocation"
        );
    }

    #[test]
    fn disabled_never_deployed_is_not_running() {
        let s = settings(Always, NO_GLOBS);
        let mut never = alloc(None);
        never.disabled = true;
        assert_eq!(plan(&never, "1.0.0", false, &s), PlannedAction::Promote);
        let mut row = promoted_row();
        row.previous_hash = None;
        never.hash_row = Some(row);
        assert_eq!(plan(&never, "1.0.0", false, &s), PlannedAction::Promote);
    }

    #[test]
    fn removed_stops_only_when_it_was_deployed() {
        let s = settings(Always, NO_GLOBS);
        let mut gone = alloc(Some(edited(promoted_row(), "conf")));
        gone.removed = true;
        assert_eq!(plan(&gone, "1.0.0", false, &s), PlannedAction::Stop);
        assert_eq!(plan(&gone, "1.0.0", true, &s), PlannedAction::Stop, "files still need removing");
        gone.hash_row = None;
        assert_eq!(plan(&gone, "1.0.0", false, &s), PlannedAction::Skip);
        let mut row = promoted_row();
        row.previous_hash = Some(String::new());
        gone.hash_row = Some(row);
        assert_eq!(plan(&gone, "1.0.0", false, &s), PlannedAction::Skip);
    }

    #[test]
    fn labels_match_the_dry_run_output() {
        let all = [
            (PlannedAction::Start, "start"),
            (PlannedAction::Restart { matched: vec![] }, "restart"),
            (PlannedAction::Reload, "reload"),
            (PlannedAction::Sync, "sync"),
            (PlannedAction::Skip, "skip"),
            (PlannedAction::Stop, "stop"),
            (PlannedAction::StopAndPromote, "stop+promote"),
            (PlannedAction::Promote, "promote"),
        ];
        for (action, label) in all {
            assert_eq!(action.label(), label);
            assert_eq!(action.is_required(), label != "skip");
        }
    }
}
