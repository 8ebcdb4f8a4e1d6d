//! Pure deploy decisions (spec §5, internals §6–§7, DESIGN §2 and §3.5–§3.7, §3.13): content
//! change detection over per-file manifests, allocation classification, update actions, rollout
//! order and batches, the per-allocation plan, rollback targets, rsync filters, waves and
//! dependency gating. The engine executes what these functions decide; nothing here does I/O or
//! reads the clock.

mod batches;
mod blocked;
mod classify;
mod file_changes;
mod file_manifest;
mod job_rollout;
mod job_waves;
mod order;
mod planned_action;
mod rollback;
mod rsync_filter;
mod update_action;

pub use batches::batches;
pub use blocked::blocked_jobs;
pub use classify::{
    classify, has_pending_change, job_needs_rollout, normalize_version, AllocationClass, AllocationPlanInput, HashState,
};
pub use file_changes::{file_changes, is_shipped, FileChanges};
pub use file_manifest::{
    changed_files, content_changed, counts_as_content, file_manifest_json, file_md5, is_helper_file, link_md5,
    parse_file_manifest, plan_hash, rendered_file_entry, was_promoted, FileManifest, DEFAULT_RENDERED_MODE,
    HEALTH_FAILED_MARKER, HELPER_FILES,
};
pub use job_rollout::{
    plan_job_rollout, plan_target_rollout, AllocationAction, Batch, Gate, JobRollout, Phase, RolloutInput,
};
pub use job_waves::{wave_jobs, WaveCandidate};
pub use order::{resolve_rollout_order, OrderSource, RolloutOrder};
pub use planned_action::{planned_action, DeploySettings, PlannedAction};
pub use rollback::{plan_rollback_rollout, resume_release, rollback_order, rollback_release, RollbackTo};
pub use rsync_filter::{job_side_paths, rsync_filter, shipped_dir_name};
pub use update_action::{resolve_update_action, UpdateAction};
