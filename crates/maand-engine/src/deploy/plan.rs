//! The deploy plan: for every job of every wave, what happens to each allocation (start, restart,
//! reload, sync, skip, stop, promote) and why, and the job's rollout — batches in order with the
//! allocations each gate checks. Dry-run prints this value; deploy executes it.

use maand_core::rollout::{AllocationClass, Batch, JobRollout, PlannedAction};
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
}

impl DeployPlan {
    pub fn required(&self) -> bool {
        !self.reconcile.is_empty() || self.waves.iter().flat_map(|w| &w.jobs).any(JobPlan::deploys)
    }

    /// The dry-run text of spec §5.9.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        if self.waves.is_empty() && self.reconcile.is_empty() {
            out.push_str("deploy dry-run: no jobs matched\n");
            return out;
        }
        out.push_str(if self.required() {
            "deploy dry-run: deployment required\n"
        } else {
            "deploy dry-run: no deployment required\n"
        });
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
                        for a in &job.allocations {
                            out.push_str(&allocation_line(a));
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
    format!("    {:<15} {:<7} {detail}\n", a.worker_ip, a.action)
}
