//! What the ledger says about a new plan: operations already done are left out, event-fired ones an
//! earlier run owes are carried over, and this plan's event-fired ones become owed before the plan
//! file is written (so whatever is killed next, a later plan carries them until a load settles them).

use super::ledger::{Ledger, LedgerError, OpStatus};
use crate::snapshot::contract::plan::{Plan, PlanOp, PlannedOperation};
use std::collections::HashSet;

/// Leaves out of the plan the operations the ledger says took effect (the digest of a date
/// already sent, a rerun of the same run): the plan shows only what load will really do. Returns
/// how many were left out.
pub fn leave_out_done(plan: &mut Plan, ledger: &Ledger) -> Result<usize, LedgerError> {
    let mut done = HashSet::new();
    for op in &plan.operations {
        if let Some(entry) = ledger.get(&op.key)?
            && matches!(entry.status, OpStatus::Succeeded | OpStatus::Skipped)
        {
            done.insert(op.key.clone());
        }
    }
    if !done.is_empty() {
        plan.operations.retain(|op| !done.contains(&op.key));
    }
    Ok(done.len())
}

/// Carries into the plan the event-fired operations an earlier run owes (planned and not applied,
/// failed, or with a lost outcome), under the same key, to be read back before they are retried.
/// Sends and notes fire on what changed since the previous run, so a later transform does not ask
/// for them again. When this plan has the same key (the digest of the same date), the operation as
/// first planned wins: the digest is sent with the counts of the run that planned it, not with
/// counts a half-applied earlier load has already changed. Returns how many were carried.
pub fn carry_over_owed(plan: &mut Plan, ledger: &Ledger) -> Result<usize, LedgerError> {
    let mut carried = 0;
    for (key, from_run, payload) in ledger.unfinished()? {
        let Ok(op) = serde_json::from_str::<PlanOp>(&payload) else {
            tracing::warn!(key, "Unreadable operation in the ledger; not carried over");
            continue;
        };
        if !op.is_event_fired() {
            continue;
        }
        let carried_op = PlannedOperation::new(op, format!("retry: owed since run {from_run}"));
        if carried_op.key != key {
            continue;
        }
        match plan.operations.iter_mut().find(|o| o.key == key) {
            Some(planned) => *planned = carried_op,
            None => plan.operations.push(carried_op),
        }
        carried += 1;
    }
    Ok(carried)
}

/// Records this plan's event-fired operations as owed by `run_id`.
pub fn register_owed(plan: &Plan, run_id: &str, ledger: &mut Ledger) -> Result<usize, LedgerError> {
    let owed: Vec<(&str, &str, String, String)> = plan
        .operations
        .iter()
        .filter(|o| o.op.is_event_fired())
        .map(|o| {
            (
                o.key.as_str(),
                o.op.kind(),
                o.op.target(),
                serde_json::to_string(&o.op).expect("PlanOp serialises"),
            )
        })
        .collect();
    ledger.register_owed(run_id, &owed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(contact: &str) -> PlannedOperation {
        PlannedOperation::new(
            PlanOp::CreateNote {
                contact_id: contact.into(),
                body: "hello".into(),
            },
            "trigger",
        )
    }

    fn tags(contact: &str) -> PlannedOperation {
        PlannedOperation::new(
            PlanOp::AddTags {
                contact_id: contact.into(),
                tags: vec!["vip".into()],
                event: None,
            },
            "golden",
        )
    }

    #[test]
    fn owed_event_fired_ops_carry_over_and_done_ones_are_left_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ledger = Ledger::open(&dir.path().join("ledger.sqlite")).expect("ledger");
        let first = Plan {
            run_id: "r1".into(),
            operations: vec![note("c1"), note("c2"), tags("c3")],
        };
        // Only event-fired operations become owed: the tags are asked for again by the next
        // transform if still needed.
        assert_eq!(register_owed(&first, "r1", &mut ledger).expect("owe"), 2);
        let c2 = note("c2");
        ledger
            .begin(&c2.key, "r1", c2.op.kind(), &c2.op.target(), "{}")
            .expect("begin");
        ledger
            .finish(&c2.key, OpStatus::Succeeded, None, None)
            .expect("finish");

        let mut second = Plan {
            run_id: "r2".into(),
            operations: vec![note("c2"), tags("c4")],
        };
        assert_eq!(leave_out_done(&mut second, &ledger).expect("done"), 1);
        assert_eq!(carry_over_owed(&mut second, &ledger).expect("carry"), 1);
        let keys: Vec<&str> = second.operations.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, [tags("c4").key.as_str(), note("c1").key.as_str()]);
        assert_eq!(second.operations[1].reason, "retry: owed since run r1");
    }
}
