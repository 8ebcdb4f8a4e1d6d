//! The deploy plan: for every job of every wave, what happens to each allocation (start, restart,
//! reload, sync, skip, stop, promote) and why, and the job's rollout — batches in order with the
//! allocations each gate checks. Dry-run prints this value; deploy executes it.

use super::diff::FileDiff;
use maand_core::rollout::{AllocationClass, Batch, FileChanges, JobRollout, PlannedAction};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct AllocationPlan {
    pub worker_ip: String,
    pub alloc_id: String,
    pub action: String,
    #[serde(skip)]
    pub planned: PlannedAction,
    #[serde(skip)]
    pub class: AllocationClass,
    pub disabled: bool,
    pub removed: bool,
    pub previous_hash: Option<String>,
    pub current_hash: Option<String>,
    pub current_version: String,
    pub new_version: String,
    /// Changed paths that matched restart_globs (restart under the reload policy).
    pub matched: Vec<String>,
    /// The shipped files this rollout adds, changes and removes on the worker.
    pub files: FileChanges,
    /// With `--diff`: each of those files' diff against the last promoted release.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diff: Vec<FileDiff>,
    /// A rollback: the kept release this allocation's files come from (`new_version` is its).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct JobPlan {
    pub job: String,
    pub deployment_seq: i64,
    /// "deploy" | "skip" | "blocked" | "failed"
    pub decision: String,
    pub reason: Option<String>,
    pub allocations: Vec<AllocationPlan>,
    /// Active allocations that failed the health check taken before the rollout, with why.
    pub unhealthy: Vec<(String, String)>,
    /// The batches the deploy runs, in order.
    pub rollout: JobRollout,
    /// The job's `pre_deploy` hook: "ran", "skipped (--no-hooks)", or None (it has none).
    pub pre_deploy: Option<String>,
}

impl JobPlan {
    pub fn deploys(&self) -> bool {
        self.decision == "deploy"
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct WavePlan {
    pub deployment_seq: i64,
    pub jobs: Vec<JobPlan>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct DeployPlan {
    pub waves: Vec<WavePlan>,
    /// Stops of disabled/removed allocations that happen before the waves.
    pub reconcile: Vec<(String, AllocationPlan)>,
    /// The job a rollback takes back to kept releases (nothing else is planned then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback: Option<String>,
}

impl DeployPlan {
    pub fn required(&self) -> bool {
        !self.reconcile.is_empty() || self.waves.iter().flat_map(|w| &w.jobs).any(JobPlan::deploys)
    }

    /// The dry-run text of spec §5.9 (`rollback dry-run: …` for a rollback).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let command = if self.rollback.is_some() { "rollback" } else { "deploy" };
        if self.waves.is_empty() && self.reconcile.is_empty() {
            out.push_str(&format!("{command} dry-run: no jobs matched\n"));
            return out;
        }
        let required = if self.required() { "deployment required" } else { "no deployment required" };
        out.push_str(&format!("{command} dry-run: {required}\n"));
        if !self.reconcile.is_empty() {
            out.push_str("\nreconcile (disabled and removed allocations):\n");
            for (job, a) in &self.reconcile {
                out.push_str(&format!("  job \"{job}\": {}\n", allocation_line(a).trim_start()));
            }
        }
        for wave in &self.waves {
            out.push_str(&format!("\ndeployment sequence {}:\n", wave.deployment_seq));
            for job in &wave.jobs {
                match job.decision.as_str() {
                    "deploy" => {
                        out.push_str(&format!("  job \"{}\": deploy required\n", job.job));
                        if let Some(hook) = &job.pre_deploy {
                            out.push_str(&format!("    pre_deploy hook: {hook}\n"));
                        }
                        for a in &job.allocations {
                            out.push_str(&allocation_line(a));
                            out.push_str(&file_lines(a));
                        }
                        for (ip, why) in &job.unhealthy {
                            out.push_str(&format!("    {ip} fails its health check now ({why}): it goes first\n"));
                        }
                        if let Some(why) = job.rollout.refusal(&job.job) {
                            out.push_str(&format!("    refused: {why}\n"));
                        }
                        if !job.rollout.swap_at_once.is_empty() {
                            out.push_str(&format!(
                                "    files swapped in at once: {}\n",
                                job.rollout.swap_at_once.join(", ")
                            ));
                        }
                        if job.rollout.has_batches() {
                            out.push_str(&format!("    batches (rollout order: {}):\n", job.rollout.order_source));
                            for (i, b) in job.rollout.batches.iter().enumerate() {
                                out.push_str(&batch_line(i, b));
                            }
                        }
                    }
                    "skip" => out.push_str(&format!(
                        "  job \"{}\": skip ({})\n",
                        job.job,
                        job.reason.as_deref().unwrap_or("already promoted on all allocations")
                    )),
                    other => out.push_str(&format!(
                        "  job \"{}\": {other} ({})\n",
                        job.job,
                        job.reason.as_deref().unwrap_or("")
                    )),
                }
            }
        }
        out
    }
}

fn batch_line(i: usize, b: &Batch) -> String {
    let repair = if b.repair { " (repair)" } else { "" };
    let gate = match &b.gate {
        Some(g) if g.whole_job => " -> gate: whole job".to_string(),
        Some(g) => format!(" -> gate: {}", g.allocations.join(", ")),
        None => String::new(),
    };
    format!("      {}. {} {}{repair}: {}{gate}\n", i + 1, b.phase.as_str(), b.target, b.allocations.join(", "))
}

/// The allocation's changed files (`+` added, `~` changed, `-` removed), each followed by its
/// diff or note when there is one.
fn file_lines(a: &AllocationPlan) -> String {
    if matches!(a.planned, PlannedAction::Skip | PlannedAction::Stop) {
        return String::new();
    }
    let mut out = String::new();
    let marks =
        [("+", &a.files.added, "added"), ("~", &a.files.changed, "changed"), ("-", &a.files.removed, "removed")];
    for (mark, paths, change) in marks {
        for path in paths {
            let d = a.diff.iter().find(|d| d.path == *path && d.change == change);
            let note = d.and_then(|d| d.note.as_deref()).map(|n| format!(" ({n})")).unwrap_or_default();
            out.push_str(&format!("      {mark} {path}{note}\n"));
            if let Some(diff) = d.and_then(|d| d.diff.as_deref()) {
                for line in diff.lines() {
                    out.push_str(&format!("        {line}\n"));
                }
            }
        }
    }
    out
}

fn allocation_line(a: &AllocationPlan) -> String {
    let prev = a.previous_hash.as_deref().unwrap_or("");
    let cur = a.current_hash.as_deref().unwrap_or("");
    let detail = match &a.planned {
        PlannedAction::Start if a.current_hash.is_none() => "(no hash row yet)".to_string(),
        PlannedAction::Start => format!("current_hash={cur}"),
        PlannedAction::Restart { matched } if !matched.is_empty() => {
            format!("previous_hash={prev} current_hash={cur} matched={}", matched.join(","))
        }
        PlannedAction::Skip => format!("hash={cur}"),
        PlannedAction::Stop => format!("previous_hash={prev}"),
        _ => format!("previous_hash={prev} current_hash={cur}"),
    };
    let version = if a.current_version != a.new_version && !matches!(a.planned, PlannedAction::Stop) {
        format!("version {} -> {} ", a.current_version, a.new_version)
    } else {
        String::new()
    };
    let release = a.release.map(|r| format!("from release {r} ")).unwrap_or_default();
    format!("    {:<15} {:<7} {version}{release}{detail}\n", a.worker_ip, a.action)
}
