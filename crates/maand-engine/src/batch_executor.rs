//! The one executor of rollout batches, for `maand deploy` and `maand job` alike: for each batch
//! of a plan, in order, run it, run what follows a batch (the deploy's `after_allocation_started`
//! hooks), then its gate; a batch that passed its gate is reported as passed (the deploy promotes
//! its allocations). Batches without a gate pass with the next gate. An interrupt is honoured
//! only between batches whose gates passed: the step in flight and its gate always finish, no new
//! batch starts.

use maand_core::rollout::{Batch, Gate};
use maand_core::{Error, Result};

/// What the executor asks of a deploy or a `maand job` run.
pub trait BatchSteps: Sync {
    /// Run the batch's target on its allocations.
    fn run(&self, batch: &Batch) -> Result<()>;
    /// What follows a batch before its gate.
    fn after(&self, batch: &Batch) -> Result<()>;
    /// The health gate over `gate.allocations`.
    fn gate(&self, batch: &Batch, gate: &Gate) -> Result<()>;
    /// These batches passed their gate.
    fn passed(&self, batches: &[&Batch]) -> Result<()>;
}

/// How an execution ended.
#[derive(Debug)]
pub enum Ending {
    Completed,
    /// Batch `at` (index into the plan) or its gate failed.
    Failed {
        at: usize,
        error: Error,
    },
    /// An interrupt arrived; batch `next` and the ones after it did not start.
    Interrupted {
        next: usize,
    },
}

#[derive(Debug)]
pub struct Execution {
    /// Indexes of the batches that passed their gate.
    pub passed: Vec<usize>,
    pub ending: Ending,
}

/// Execute `batches` in order through `steps`; `interrupted` is asked before each batch.
pub fn execute(batches: &[Batch], steps: &dyn BatchSteps, interrupted: &dyn Fn() -> bool) -> Execution {
    let mut passed = Vec::new();
    let mut pending: Vec<usize> = Vec::new();
    for (i, batch) in batches.iter().enumerate() {
        if pending.is_empty() && interrupted() {
            return Execution { passed, ending: Ending::Interrupted { next: i } };
        }
        let result = steps.run(batch).and_then(|()| steps.after(batch));
        pending.push(i);
        let result = result.and_then(|()| match &batch.gate {
            Some(gate) => {
                steps.gate(batch, gate)?;
                let done: Vec<&Batch> = pending.iter().map(|&p| &batches[p]).collect();
                steps.passed(&done)?;
                passed.append(&mut pending);
                Ok(())
            }
            None => Ok(()),
        });
        if let Err(error) = result {
            return Execution { passed, ending: Ending::Failed { at: i, error } };
        }
    }
    if !pending.is_empty() {
        // Ungated batches at the end (maand job without --health_check).
        let done: Vec<&Batch> = pending.iter().map(|&p| &batches[p]).collect();
        if let Err(error) = steps.passed(&done) {
            return Execution { passed, ending: Ending::Failed { at: batches.len() - 1, error } };
        }
        passed.append(&mut pending);
    }
    Execution { passed, ending: Ending::Completed }
}

#[cfg(test)]
mod tests {
    use super::*;
    use maand_core::rollout::{plan_job_rollout, AllocationAction, PlannedAction, RolloutInput};
    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;

    /// Records every call; fails the gate of the batch holding `fail_gate_on`.
    #[derive(Default)]
    struct Recorder {
        calls: Mutex<Vec<String>>,
        fail_gate_on: Option<String>,
        interrupt_after_run: Option<AtomicBool>,
    }

    impl Recorder {
        fn push(&self, s: String) {
            self.calls.lock().unwrap().push(s);
        }
        fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }
    }

    impl BatchSteps for Recorder {
        fn run(&self, batch: &Batch) -> Result<()> {
            self.push(format!("{} {}", batch.target, batch.allocations.join(",")));
            if let Some(flag) = &self.interrupt_after_run {
                flag.store(true, Ordering::SeqCst);
            }
            Ok(())
        }
        fn after(&self, batch: &Batch) -> Result<()> {
            self.push(format!("after {}", batch.allocations.join(",")));
            Ok(())
        }
        fn gate(&self, _batch: &Batch, gate: &Gate) -> Result<()> {
            self.push(format!("gate {}", gate.allocations.join(",")));
            if self.fail_gate_on.as_ref().is_some_and(|ip| gate.allocations.contains(ip)) {
                return Err(Error::msg("unhealthy"));
            }
            Ok(())
        }
        fn passed(&self, batches: &[&Batch]) -> Result<()> {
            let ips: Vec<String> = batches.iter().flat_map(|b| b.allocations.clone()).collect();
            self.push(format!("promote {}", ips.join(",")));
            Ok(())
        }
    }

    fn plan(actions: &[(&str, PlannedAction)], unhealthy: &[&str], order: Option<&str>) -> Vec<Batch> {
        let allocations: Vec<AllocationAction> = actions
            .iter()
            .map(|(ip, a)| AllocationAction { worker_ip: ip.to_string(), active: true, action: a.clone() })
            .collect();
        let unhealthy: BTreeSet<String> = unhealthy.iter().map(|s| s.to_string()).collect();
        plan_job_rollout(&RolloutInput {
            job: "db",
            allocations: &allocations,
            stored_order: order,
            unhealthy: &unhealthy,
            max_concurrent_starts: 1,
            max_concurrent_upgrades: 1,
            job_control: false,
        })
        .batches
    }

    fn restart() -> PlannedAction {
        PlannedAction::Restart { matched: vec![] }
    }

    #[test]
    fn batch_then_hooks_then_scoped_gate_then_promotion_in_rollout_order() {
        let batches = plan(&[("a", restart()), ("b", restart()), ("c", restart())], &[], Some("b,c,a"));
        let rec = Recorder::default();
        let run = execute(&batches, &rec, &|| false);
        assert!(matches!(run.ending, Ending::Completed));
        assert_eq!(
            rec.calls(),
            [
                "restart b",
                "after b",
                "gate b",
                "promote b",
                "restart c",
                "after c",
                "gate b,c",
                "promote c",
                "restart a",
                "after a",
                "gate a,b,c",
                "promote a"
            ]
        );
        assert_eq!(run.passed, vec![0, 1, 2]);
    }

    #[test]
    fn unhealthy_first_and_a_failed_repair_stops_before_any_healthy_restart() {
        let batches = plan(&[("a", restart()), ("b", restart()), ("c", restart())], &["c"], None);
        let rec = Recorder { fail_gate_on: Some("c".into()), ..Default::default() };
        let run = execute(&batches, &rec, &|| false);
        assert_eq!(rec.calls(), ["restart c", "after c", "gate c"]);
        assert!(matches!(run.ending, Ending::Failed { at: 0, .. }));
        assert!(run.passed.is_empty());
    }

    #[test]
    fn new_allocations_are_promoted_together_after_their_one_gate() {
        let batches = plan(&[("a", PlannedAction::Start), ("b", PlannedAction::Start), ("c", restart())], &[], None);
        let rec = Recorder::default();
        execute(&batches, &rec, &|| false);
        assert_eq!(
            rec.calls(),
            [
                "start a",
                "after a",
                "start b",
                "after b",
                "gate a,b",
                "promote a,b",
                "restart c",
                "after c",
                "gate a,b,c",
                "promote c"
            ]
        );
    }

    #[test]
    fn an_interrupt_lets_the_batch_and_its_gate_finish_and_starts_nothing_new() {
        let batches = plan(&[("a", restart()), ("b", restart()), ("c", restart())], &[], None);
        let rec = Recorder { interrupt_after_run: Some(AtomicBool::new(false)), ..Default::default() };
        let flag = || rec.interrupt_after_run.as_ref().is_some_and(|f| f.load(Ordering::SeqCst));
        let run = execute(&batches, &rec, &flag);
        assert_eq!(rec.calls(), ["restart a", "after a", "gate a", "promote a"]);
        assert!(matches!(run.ending, Ending::Interrupted { next: 1 }));
        assert_eq!(run.passed, vec![0]);
    }

    #[test]
    fn a_failed_gate_keeps_earlier_batches_promoted() {
        let batches = plan(&[("a", restart()), ("b", restart()), ("c", restart())], &[], None);
        let rec = Recorder { fail_gate_on: Some("b".into()), ..Default::default() };
        let run = execute(&batches, &rec, &|| false);
        assert_eq!(run.passed, vec![0]);
        assert!(matches!(run.ending, Ending::Failed { at: 1, .. }));
        assert!(!rec.calls().iter().any(|c| c == "restart c"));
    }
}
