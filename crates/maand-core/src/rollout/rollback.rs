//! Rollback decisions: which kept release an allocation goes back to (`maand rollback`, with or
//! without `--to`, and the automatic rollback of a failed deploy), and the rollout that takes the
//! allocations a failed deploy rolled back again — in the reverse of the order they were rolled.

use super::job_rollout::{plan_job_rollout, JobRollout, RolloutInput};
use super::order::OrderSource;
use std::collections::BTreeSet;

/// Which kept release an allocation goes back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollbackTo {
    /// The release before the one it runs now (its latest kept release).
    Previous,
    /// Its latest release at or before this number (`maand rollback --to N`).
    AtOrBefore(i64),
    /// Its latest release before this number: what it ran before the run that keeps release N
    /// (the automatic rollback of a failed deploy).
    Before(i64),
}

/// The release an allocation goes back to, given the numbers of its kept releases (any order).
/// None when it has no such release.
pub fn rollback_release(kept: &[i64], to: RollbackTo) -> Option<i64> {
    let latest = kept.iter().copied().max()?;
    let bound = match to {
        RollbackTo::Previous => latest.saturating_sub(1),
        RollbackTo::AtOrBefore(n) => n,
        RollbackTo::Before(n) => n.saturating_sub(1),
    };
    kept.iter().copied().filter(|r| *r <= bound).max()
}

/// The `--to` that takes every allocation back to the releases chosen for it, so an interrupted
/// or failed rollback resumes where it stopped (the allocations already back are skipped): the
/// highest of them. None when nothing was chosen.
pub fn resume_release(chosen: &[i64]) -> Option<i64> {
    chosen.iter().copied().max()
}

/// The allocations a failed rollout rolled — those promoted in this run, then those of the batch
/// that failed — in the order an automatic rollback takes them back: the reverse, each once.
pub fn rollback_order(promoted: &[String], unproven: &[String]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let rolled: Vec<&String> = promoted.iter().chain(unproven).filter(|ip| seen.insert(*ip)).collect();
    rolled.into_iter().rev().cloned().collect()
}

/// The rollout of an automatic rollback: the deploy's batches and gates over the allocations
/// going back, in `order`; none of them is put first for failing its health check (the one that
/// failed is first in `order` already).
pub fn plan_rollback_rollout(input: &RolloutInput<'_>, order: &[String]) -> JobRollout {
    let joined = order.join(",");
    let healthy = BTreeSet::new();
    let mut plan =
        plan_job_rollout(&RolloutInput { stored_order: Some(&joined), unhealthy: &healthy, ..input.clone() });
    plan.order_source = OrderSource::Rollback.as_str();
    plan.warnings.clear();
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::{AllocationAction, PlannedAction};

    fn ips(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn previous_is_the_release_before_the_latest_kept_one() {
        assert_eq!(rollback_release(&[1, 2, 3], RollbackTo::Previous), Some(2));
        assert_eq!(rollback_release(&[3, 1], RollbackTo::Previous), Some(1), "a release it was not in is skipped");
        assert_eq!(rollback_release(&[4], RollbackTo::Previous), None, "nothing before its only release");
        assert_eq!(rollback_release(&[], RollbackTo::Previous), None);
    }

    #[test]
    fn to_picks_the_latest_at_or_before() {
        assert_eq!(rollback_release(&[1, 2, 4], RollbackTo::AtOrBefore(3)), Some(2));
        assert_eq!(rollback_release(&[1, 2, 4], RollbackTo::AtOrBefore(4)), Some(4), "already there");
        assert_eq!(rollback_release(&[2, 4], RollbackTo::AtOrBefore(1)), None);
    }

    #[test]
    fn before_a_run_is_what_ran_before_it() {
        // Promoted in the run that keeps release 5: back to 3. Not promoted in it: its latest.
        assert_eq!(rollback_release(&[1, 3, 5], RollbackTo::Before(5)), Some(3));
        assert_eq!(rollback_release(&[1, 3], RollbackTo::Before(5)), Some(3));
        assert_eq!(rollback_release(&[5], RollbackTo::Before(5)), None, "new in that run");
    }

    #[test]
    fn resume_is_the_highest_chosen_release() {
        assert_eq!(resume_release(&[2, 3, 2]), Some(3));
        assert_eq!(resume_release(&[]), None);
    }

    #[test]
    fn the_rolled_allocations_go_back_in_reverse_order() {
        assert_eq!(rollback_order(&ips(&["a", "b"]), &ips(&["c"])), ips(&["c", "b", "a"]));
        assert_eq!(rollback_order(&[], &ips(&["a"])), ips(&["a"]));
        assert_eq!(rollback_order(&ips(&["a"]), &ips(&["a", "b"])), ips(&["b", "a"]), "each once");
    }

    #[test]
    fn the_rollback_rollout_follows_the_given_order_and_gates_each_batch() {
        let restart = PlannedAction::Restart { matched: vec![] };
        let allocs: Vec<AllocationAction> = ["a", "b", "c"]
            .iter()
            .map(|ip| AllocationAction { worker_ip: ip.to_string(), active: true, action: restart.clone() })
            .collect();
        let unhealthy: BTreeSet<String> = ["a".to_string()].into();
        let input = RolloutInput {
            job: "db",
            allocations: &allocs,
            stored_order: Some("a,b,c"),
            unhealthy: &unhealthy,
            max_concurrent_starts: 0,
            max_concurrent_upgrades: 1,
            job_control: false,
        };
        let plan = plan_rollback_rollout(&input, &ips(&["c", "b", "a"]));
        let batches: Vec<(Vec<String>, Vec<String>)> =
            plan.batches.iter().map(|b| (b.allocations.clone(), b.gate.clone().unwrap().allocations)).collect();
        assert_eq!(
            batches,
            vec![(ips(&["c"]), ips(&["c"])), (ips(&["b"]), ips(&["c", "b"])), (ips(&["a"]), ips(&["a", "b", "c"])),]
        );
        assert!(plan.batches.iter().all(|b| !b.repair), "no allocation goes first for its health");
        assert_eq!(plan.order_source, "rollback");
        assert_eq!(plan.order, "c,b,a");
    }
}
