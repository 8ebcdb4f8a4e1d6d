//! The rollout plan of one job (DESIGN §3.14–3.16), computed before anything runs: which
//! allocations get their files swapped in at once, the batches in order (rollout order resolved
//! and filtered, allocations that failed the pre-flight health check first), each batch's
//! lifecycle target and the allocations its gate checks. Dry-run prints this value, the deploy
//! and `maand job` execute exactly it.

use super::batches::batches;
use super::order::{resolve_rollout_order, OrderSource};
use super::planned_action::PlannedAction;
use serde::Serialize;
use std::collections::BTreeSet;

/// The rollout phase of a batch, as `DEPLOY_PHASE` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Allocations that never ran: `start`.
    New,
    /// Running allocations: `reload`/`restart` (or the target of `maand job`).
    Update,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::New => "new",
            Phase::Update => "update",
        }
    }
}

/// The health gate after a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gate {
    /// The allocations checked: those rolled so far in this run, this batch included (every active
    /// allocation of the job after the last batch of a deploy).
    pub allocations: Vec<String>,
    /// True when this is the gate over the whole job.
    pub whole_job: bool,
}

/// One batch: a lifecycle target run at once on some allocations, then (maybe) a gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Batch {
    pub phase: Phase,
    /// The Makefile target (`start`, `reload`, `restart`, …) or `job_control`.
    pub target: String,
    /// Worker IPs, in rollout order.
    pub allocations: Vec<String>,
    /// These allocations failed the health check taken before the rollout (they go first).
    pub repair: bool,
    /// Position among the batches of its phase (`BATCH_INDEX`, from 0) and their number.
    pub index: usize,
    pub count: usize,
    pub gate: Option<Gate>,
}

/// What is known about one non-removed allocation when planning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocationAction {
    pub worker_ip: String,
    /// False for disabled allocations.
    pub active: bool,
    pub action: PlannedAction,
}

/// Everything the plan of one job is computed from.
#[derive(Debug, Clone)]
pub struct RolloutInput<'a> {
    pub job: &'a str,
    /// Non-removed allocations in catalog order.
    pub allocations: &'a [AllocationAction],
    /// KV `maand/job/<job>:rollout_order`.
    pub stored_order: Option<&'a str>,
    /// Active allocations that failed the pre-flight health check.
    pub unhealthy: &'a BTreeSet<String>,
    pub max_concurrent_starts: i64,
    pub max_concurrent_upgrades: i64,
    /// The job's `job_control` commands replace the Makefile lifecycle.
    pub job_control: bool,
}

/// The plan of one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct JobRollout {
    /// Allocations whose shipped files are moved into place with no lifecycle step (policy
    /// `never`, `--sync-only`, disabled allocations with pending changes, `job_control` jobs).
    pub swap_at_once: Vec<String>,
    pub batches: Vec<Batch>,
    /// Active allocations that failed the pre-flight health check.
    pub unhealthy: Vec<String>,
    /// Unhealthy allocations with nothing to roll out while healthy ones would be restarted: the
    /// rollout does not start (a healthy member is never restarted while another one is down).
    pub refused_for: Vec<String>,
    /// `kv` or `default`, and the `ROLLOUT_ORDER` value.
    pub order_source: &'static str,
    pub order: String,
    pub warnings: Vec<String>,
}

impl JobRollout {
    /// True when the plan runs at least one lifecycle step.
    pub fn has_batches(&self) -> bool {
        !self.batches.is_empty()
    }

    /// Why the rollout may not start, or None.
    pub fn refusal(&self, job: &str) -> Option<String> {
        (!self.refused_for.is_empty()).then(|| {
            format!(
                "job {job}: {} failing its health check with nothing to roll out; maand does not restart a healthy \
                 allocation while another one is down: repair it (maand job restart {job} --allocations {}) or \
                 disable it, then re-run",
                self.refused_for.join(", "),
                self.refused_for.join(",")
            )
        })
    }
}

fn is_update(action: &PlannedAction) -> bool {
    matches!(action, PlannedAction::Reload | PlannedAction::Restart { .. })
}

/// Plan one job's deploy rollout.
pub fn plan_job_rollout(input: &RolloutInput<'_>) -> JobRollout {
    let default: Vec<String> = input.allocations.iter().map(|a| a.worker_ip.clone()).collect();
    let active_ips = |pred: &dyn Fn(&PlannedAction) -> bool| -> Vec<String> {
        input.allocations.iter().filter(|a| a.active && pred(&a.action)).map(|a| a.worker_ip.clone()).collect()
    };
    let all_active = active_ips(&|_| true);
    let new = active_ips(&|p| *p == PlannedAction::Start);
    let update = active_ips(&is_update);
    let mut plan = JobRollout {
        unhealthy: all_active.iter().filter(|ip| input.unhealthy.contains(*ip)).cloned().collect(),
        order_source: OrderSource::Default.as_str(),
        ..JobRollout::default()
    };
    let disabled_pending = input
        .allocations
        .iter()
        .filter(|a| !a.active && matches!(a.action, PlannedAction::Promote | PlannedAction::StopAndPromote))
        .map(|a| a.worker_ip.clone());
    if input.job_control {
        let acting: Vec<String> = active_ips(&|p| *p != PlannedAction::Skip);
        plan.swap_at_once = acting.clone();
        plan.swap_at_once.extend(disabled_pending);
        if !acting.is_empty() {
            plan.batches.push(Batch {
                phase: Phase::Update,
                target: "job_control".into(),
                allocations: all_active.clone(),
                repair: false,
                index: 0,
                count: 1,
                gate: Some(Gate { allocations: all_active.clone(), whole_job: true }),
            });
        }
        return plan;
    }
    plan.swap_at_once = active_ips(&|p| *p == PlannedAction::Sync);
    plan.swap_at_once.extend(disabled_pending);

    let mut groups: Vec<(Phase, &str, Vec<String>, bool, i64)> = Vec::new();
    if !new.is_empty() {
        let order = resolve_rollout_order(input.job, &default, &new, input.stored_order);
        plan.warnings.extend(order.warnings);
        plan.order_source = order.source.as_str();
        plan.order = order.raw;
        groups.push((Phase::New, "start", order.order, false, input.max_concurrent_starts));
    }
    if !update.is_empty() {
        let order = resolve_rollout_order(input.job, &default, &update, input.stored_order);
        plan.warnings.extend(order.warnings);
        plan.order_source = order.source.as_str();
        plan.order = order.raw;
        let action_of = |ip: &str| input.allocations.iter().find(|a| a.worker_ip == ip).map(|a| &a.action);
        let upgrades = input.max_concurrent_upgrades.max(1);
        for repair in [true, false] {
            for target in ["reload", "restart"] {
                let ips: Vec<String> = order
                    .order
                    .iter()
                    .filter(|ip| input.unhealthy.contains(*ip) == repair)
                    .filter(|ip| action_of(ip).is_some_and(|a| a.label() == target))
                    .cloned()
                    .collect();
                if !ips.is_empty() {
                    groups.push((Phase::Update, target, ips, repair, upgrades));
                }
            }
        }
        let restarts_healthy = groups.iter().any(|(phase, _, _, repair, _)| *phase == Phase::Update && !repair);
        if restarts_healthy {
            plan.refused_for =
                plan.unhealthy.iter().filter(|ip| !update.contains(ip) && !new.contains(ip)).cloned().collect();
        }
    }
    let mut rolled: Vec<String> = Vec::new();
    for (phase, target, ips, repair, size) in groups {
        for chunk in batches(&ips, size) {
            rolled.extend(chunk.iter().cloned());
            plan.batches.push(Batch {
                phase,
                target: target.to_string(),
                allocations: chunk,
                repair,
                index: 0,
                count: 0,
                gate: Some(Gate { allocations: rolled.clone(), whole_job: false }),
            });
        }
    }
    number_batches(&mut plan.batches);
    // New allocations are gated once, after the last start batch: a bootstrapping cluster is
    // healthy only when enough members run.
    let last_new = plan.batches.iter().rposition(|b| b.phase == Phase::New);
    for (i, b) in plan.batches.iter_mut().enumerate() {
        if b.phase == Phase::New && Some(i) != last_new {
            b.gate = None;
        }
    }
    if let Some(last) = plan.batches.last_mut() {
        last.gate = Some(Gate { allocations: all_active, whole_job: true });
    }
    plan
}

/// `index`/`count` of each batch within its phase.
fn number_batches(batches: &mut [Batch]) {
    for phase in [Phase::New, Phase::Update] {
        let count = batches.iter().filter(|b| b.phase == phase).count();
        for (index, b) in batches.iter_mut().filter(|b| b.phase == phase).enumerate() {
            b.index = index;
            b.count = count;
        }
    }
}

/// The plan of `maand job <target>`: the selected allocations (already in rollout order) in
/// batches of `size`, unhealthy ones first, each batch gated (when `gated`) on what was rolled so
/// far in this run.
pub fn plan_target_rollout(
    target: &str,
    ordered: &[String],
    unhealthy: &BTreeSet<String>,
    size: i64,
    gated: bool,
) -> Vec<Batch> {
    let mut out = Vec::new();
    let mut rolled: Vec<String> = Vec::new();
    for repair in [true, false] {
        let ips: Vec<String> = ordered.iter().filter(|ip| unhealthy.contains(*ip) == repair).cloned().collect();
        for chunk in batches(&ips, size.max(1)) {
            rolled.extend(chunk.iter().cloned());
            out.push(Batch {
                phase: Phase::Update,
                target: target.to_string(),
                allocations: chunk,
                repair,
                index: 0,
                count: 0,
                gate: gated.then(|| Gate { allocations: rolled.clone(), whole_job: false }),
            });
        }
    }
    number_batches(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alloc(ip: &str, action: PlannedAction) -> AllocationAction {
        AllocationAction { worker_ip: ip.into(), active: true, action }
    }

    fn restart() -> PlannedAction {
        PlannedAction::Restart { matched: vec![] }
    }

    fn input<'a>(allocs: &'a [AllocationAction], unhealthy: &'a BTreeSet<String>) -> RolloutInput<'a> {
        RolloutInput {
            job: "db",
            allocations: allocs,
            stored_order: None,
            unhealthy,
            max_concurrent_starts: 0,
            max_concurrent_upgrades: 1,
            job_control: false,
        }
    }

    fn ips(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn shape(plan: &JobRollout) -> Vec<(String, Vec<String>, Option<Vec<String>>)> {
        plan.batches
            .iter()
            .map(|b| (b.target.clone(), b.allocations.clone(), b.gate.as_ref().map(|g| g.allocations.clone())))
            .collect()
    }

    #[test]
    fn gates_check_what_was_rolled_so_far_and_the_whole_job_last() {
        let allocs =
            [alloc("a", restart()), alloc("b", restart()), alloc("c", restart()), alloc("d", PlannedAction::Skip)];
        let none = BTreeSet::new();
        let mut i = input(&allocs, &none);
        i.stored_order = Some("c,a,b");
        let plan = plan_job_rollout(&i);
        assert_eq!(
            shape(&plan),
            vec![
                ("restart".into(), ips(&["c"]), Some(ips(&["c"]))),
                ("restart".into(), ips(&["a"]), Some(ips(&["c", "a"]))),
                ("restart".into(), ips(&["b"]), Some(ips(&["a", "b", "c", "d"]))),
            ]
        );
        assert!(plan.batches[2].gate.as_ref().unwrap().whole_job);
        assert_eq!((plan.batches[1].index, plan.batches[1].count), (1, 3));
        assert_eq!(plan.order_source, "kv");
        assert_eq!(plan.order, "c,a,b");
    }

    #[test]
    fn unhealthy_allocations_go_first_in_batches_of_their_own() {
        let allocs = [alloc("a", restart()), alloc("b", restart()), alloc("c", restart())];
        let unhealthy: BTreeSet<String> = ["c".to_string()].into();
        let mut i = input(&allocs, &unhealthy);
        i.max_concurrent_upgrades = 2;
        let plan = plan_job_rollout(&i);
        assert_eq!(
            shape(&plan),
            vec![
                ("restart".into(), ips(&["c"]), Some(ips(&["c"]))),
                ("restart".into(), ips(&["a", "b"]), Some(ips(&["a", "b", "c"]))),
            ]
        );
        assert!(plan.batches[0].repair && !plan.batches[1].repair);
        assert_eq!(plan.unhealthy, ips(&["c"]));
        assert!(plan.refusal("db").is_none());
    }

    #[test]
    fn an_unhealthy_allocation_with_nothing_to_roll_out_refuses_the_rollout() {
        let allocs = [alloc("a", restart()), alloc("b", PlannedAction::Skip)];
        let unhealthy: BTreeSet<String> = ["b".to_string()].into();
        let plan = plan_job_rollout(&input(&allocs, &unhealthy));
        assert_eq!(plan.refused_for, ips(&["b"]));
        let why = plan.refusal("db").unwrap();
        assert!(why.contains("b failing its health check") && why.contains("--allocations b"), "{why}");
    }

    #[test]
    fn new_allocations_start_first_and_are_gated_once() {
        let allocs = [
            alloc("a", PlannedAction::Start),
            alloc("b", PlannedAction::Start),
            alloc("c", PlannedAction::Reload),
            alloc("d", PlannedAction::Sync),
            AllocationAction { worker_ip: "e".into(), active: false, action: PlannedAction::Promote },
        ];
        let none = BTreeSet::new();
        let mut i = input(&allocs, &none);
        i.max_concurrent_starts = 1;
        let plan = plan_job_rollout(&i);
        assert_eq!(
            shape(&plan),
            vec![
                ("start".into(), ips(&["a"]), None),
                ("start".into(), ips(&["b"]), Some(ips(&["a", "b"]))),
                ("reload".into(), ips(&["c"]), Some(ips(&["a", "b", "c", "d"]))),
            ]
        );
        assert_eq!(plan.batches[0].phase, Phase::New);
        assert_eq!((plan.batches[2].index, plan.batches[2].count), (0, 1));
        assert_eq!(plan.swap_at_once, ips(&["d", "e"]));
    }

    #[test]
    fn reloads_before_restarts_and_nothing_to_do() {
        let allocs = [alloc("a", restart()), alloc("b", PlannedAction::Reload)];
        let none = BTreeSet::new();
        let plan = plan_job_rollout(&input(&allocs, &none));
        let targets: Vec<&str> = plan.batches.iter().map(|b| b.target.as_str()).collect();
        assert_eq!(targets, ["reload", "restart"]);
        let idle = [alloc("a", PlannedAction::Skip)];
        assert!(!plan_job_rollout(&input(&idle, &none)).has_batches());
    }

    #[test]
    fn job_control_is_one_batch_on_every_active_allocation() {
        let allocs = [alloc("a", PlannedAction::Start), alloc("b", PlannedAction::Skip)];
        let none = BTreeSet::new();
        let mut i = input(&allocs, &none);
        i.job_control = true;
        let plan = plan_job_rollout(&i);
        assert_eq!(shape(&plan), vec![("job_control".into(), ips(&["a", "b"]), Some(ips(&["a", "b"])))]);
        assert_eq!(plan.swap_at_once, ips(&["a"]));
    }

    #[test]
    fn target_rollout_puts_unhealthy_first_and_gates_cumulatively() {
        let unhealthy: BTreeSet<String> = ["b".to_string()].into();
        let batches = plan_target_rollout("restart", &ips(&["a", "b", "c"]), &unhealthy, 2, true);
        let got: Vec<(Vec<String>, Vec<String>)> =
            batches.iter().map(|b| (b.allocations.clone(), b.gate.clone().unwrap().allocations)).collect();
        assert_eq!(got, vec![(ips(&["b"]), ips(&["b"])), (ips(&["a", "c"]), ips(&["b", "a", "c"]))]);
        assert!(plan_target_rollout("stop", &ips(&["a"]), &BTreeSet::new(), 1, false)[0].gate.is_none());
    }
}
