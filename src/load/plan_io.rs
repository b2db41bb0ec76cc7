//! Writing a plan: `plan.parquet` (one row per operation, for machines and for `load`) and
//! `plan.md` (what a person reviews before applying). The file's schema and reader are in
//! [`crate::snapshot::contract::plan`], where audit reads them too.

use super::diff::Refusal;
use crate::snapshot::contract::plan::{Plan, PlanOp, PlanRow, PlannedOperation, plan_schema};
use crate::snapshot::desired::write_rows;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

/// The plan file's schema, row and reader are the contract's; re-exported for `load`'s callers.
pub use crate::snapshot::contract::plan::read_plan;

/// Writes `plan.md` and then `plan.parquet` into `dir`: the Parquet file is what `load` applies
/// and what marks the plan as made, so it comes last. A refused plan also gets `refused.json` (the
/// limits and the held operations), written before it; an accepted one removes a stale one.
pub fn write_plan(plan: &Plan, refusal: Option<&Refusal>, dir: &Path) -> anyhow::Result<()> {
    write_plan_with_warnings(plan, refusal, &[], dir)
}

/// [`write_plan`], with warnings for the reviewer at the head of `plan.md`.
pub fn write_plan_with_warnings(
    plan: &Plan,
    refusal: Option<&Refusal>,
    warnings: &[String],
    dir: &Path,
) -> anyhow::Result<()> {
    let refused_path = dir.join(crate::snapshot::run::REFUSED_FILE);
    let mut text = summary(plan);
    if !warnings.is_empty() {
        let mut head = String::from("# Warnings\n\n");
        for warning in warnings {
            let _ = writeln!(head, "- {warning}");
        }
        text = head + "\n" + &text;
    }
    match refusal {
        Some(refusal) => {
            text = refusal_summary(refusal) + &text;
            let held: Vec<PlanRow> = refusal.held.iter().map(PlanRow::from_planned).collect();
            let json = serde_json::to_vec_pretty(&serde_json::json!({
                "limits": refusal.limits.iter().map(|l| serde_json::json!({
                    "key": l.key, "count": l.count, "limit": l.limit, "message": l.to_string(),
                })).collect::<Vec<_>>(),
                "held": held,
            }))?;
            crate::snapshot::atomic::write(&refused_path, &json)?;
        }
        None => {
            if refused_path.exists() {
                std::fs::remove_file(&refused_path).map_err(|e| {
                    anyhow::anyhow!("removing the stale {}: {e}", refused_path.display())
                })?;
            }
        }
    }
    crate::snapshot::atomic::write(&dir.join("plan.md"), text.as_bytes())?;
    let rows: Vec<PlanRow> = plan.operations.iter().map(PlanRow::from_planned).collect();
    write_rows(
        &dir.join(crate::snapshot::run::PLAN_FILE),
        &plan_schema(),
        &rows,
    )?;
    Ok(())
}

/// The head of `plan.md` for a refused plan: which limits broke and what waits.
fn refusal_summary(refusal: &Refusal) -> String {
    let mut out = String::from("# Refused by a safety limit\n\n");
    for limit in &refusal.limits {
        let _ = writeln!(out, "- {limit}");
    }
    let mut held: BTreeMap<&str, u64> = BTreeMap::new();
    for op in &refusal.held {
        *held.entry(op.op.kind()).or_default() += 1;
    }
    let _ = writeln!(
        out,
        "\nOnly opt-outs (SMS DND, blocked numbers) are applied. Held back until the limit is raised \
         or the data is fixed (all in `refused.json`): {}.\n",
        held.iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    out
}

/// The readable summary: counts by kind, then each operation with its reason and changes.
pub fn summary(plan: &Plan) -> String {
    let mut out = format!("# Plan for run {}\n\n", plan.run_id);
    if plan.operations.is_empty() {
        out.push_str("Nothing to change: both systems already match the desired state.\n");
        return out;
    }
    out.push_str("| operation | count |\n|---|---|\n");
    for (kind, count) in plan.counts() {
        let _ = writeln!(out, "| {kind} | {count} |");
    }
    let mut by_kind: BTreeMap<&str, Vec<&PlannedOperation>> = BTreeMap::new();
    for op in &plan.operations {
        by_kind.entry(op.op.kind()).or_default().push(op);
    }
    for (kind, ops) in by_kind {
        let _ = writeln!(out, "\n## {kind}\n");
        for op in ops.iter().take(500) {
            let _ = write!(
                out,
                "- `{}` {} — {}",
                &op.key[..12],
                op.op.target(),
                op.reason
            );
            match &op.op {
                PlanOp::UpdateContact { before, after, .. } => {
                    for (field, new) in after {
                        let old = before.get(field).cloned().unwrap_or_default();
                        let _ = write!(out, "; {field}: {old} → {new}");
                    }
                }
                PlanOp::AddTags { tags, .. } | PlanOp::RemoveTags { tags, .. } => {
                    let _ = write!(out, "; tags: {}", tags.join(", "));
                }
                PlanOp::SendSms {
                    body,
                    encoding,
                    parts,
                    ..
                } => {
                    let _ = write!(out, "; {encoding}, {parts} part(s): {body:?}");
                }
                _ => {}
            }
            out.push('\n');
        }
        if ops.len() > 500 {
            let _ = writeln!(
                out,
                "- … and {} more (all in plan.parquet)",
                ops.len() - 500
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_round_trips_and_a_tampered_key_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let plan = Plan {
            run_id: "r1".into(),
            operations: vec![
                PlannedOperation::new(
                    PlanOp::AddTags {
                        contact_id: "c1".into(),
                        tags: vec!["vip".into()],
                        event: None,
                    },
                    "golden record",
                ),
                PlannedOperation::new(
                    PlanOp::BlockNumbers {
                        numbers: vec!["15550001".into()],
                    },
                    "opted out",
                ),
            ],
        };
        write_plan(&plan, None, dir.path()).expect("write");
        assert_eq!(read_plan(dir.path(), "r1").expect("read"), plan);
        let md = std::fs::read_to_string(dir.path().join("plan.md")).expect("md");
        assert!(md.contains("| add_tags | 1 |"), "{md}");
        assert!(!md.contains("# Warnings"), "{md}");
        write_plan_with_warnings(&plan, None, &["quiet hours, 3 runs".into()], dir.path())
            .expect("write");
        let md = std::fs::read_to_string(dir.path().join("plan.md")).expect("md");
        assert!(
            md.starts_with("# Warnings\n\n- quiet hours, 3 runs\n\n# Plan for run r1"),
            "{md}"
        );

        let mut tampered = plan.clone();
        tampered.operations[0].key = "0".repeat(32);
        write_plan(&tampered, None, dir.path()).expect("write");
        let err = read_plan(dir.path(), "r1").expect_err("tampered");
        assert!(err.to_string().contains("key does not match"), "{err}");
    }
}
