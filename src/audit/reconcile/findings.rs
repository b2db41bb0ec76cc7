//! The finding lists of an audit, one function each, in the order the report shows them.

use super::inputs::RunInputs;
use crate::audit::report::FindingTable;
use crate::snapshot::contact::SnapshotContact;
use crate::snapshot::contract::ledger::OpStatus;
use crate::snapshot::contract::plan::PlanOp;
use crate::snapshot::contract::transform_outputs::{ClusterRow, GoldenRecord, LinkRow};
use crate::snapshot::run::RunDir;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

fn columns(names: &[&str]) -> Vec<String> {
    names.iter().map(|c| c.to_string()).collect()
}

/// The ledger's word on the run's plan: outcome counts, failures and what this run fixed.
#[derive(Default)]
pub struct Outcomes {
    /// (kind, status) → operations.
    pub counts: BTreeMap<(String, String), u64>,
    pub failed_rows: Vec<Vec<String>>,
    /// Contacts whose SMS DND this run set.
    pub dnd_set: HashSet<String>,
    /// Numbers (digits) this run blocked.
    pub blocked: HashSet<String>,
    pub planned: u64,
    pub applied: u64,
    pub failed: u64,
}

fn status_name(status: Option<OpStatus>) -> &'static str {
    match status {
        Some(OpStatus::Succeeded) => "succeeded",
        Some(OpStatus::Failed) => "failed",
        Some(OpStatus::Skipped) => "skipped",
        Some(OpStatus::InFlight) => "in_flight",
        // Owed by the plan, not attempted yet (the load has not reached it).
        Some(OpStatus::Planned) | None => "not_attempted",
    }
}

/// Operations and their outcomes, from the ledger.
pub fn outcomes(inputs: &RunInputs) -> anyhow::Result<Outcomes> {
    let mut out = Outcomes::default();
    let Some(plan) = &inputs.plan else {
        return Ok(out);
    };
    for op in &plan.operations {
        out.planned += 1;
        let entry = match &inputs.ledger {
            Some(l) => l.get(&op.key)?,
            None => None,
        };
        let status = entry.as_ref().map(|e| e.status);
        *out.counts
            .entry((op.op.kind().to_string(), status_name(status).to_string()))
            .or_default() += 1;
        match status {
            Some(OpStatus::Succeeded) => {
                out.applied += 1;
                match &op.op {
                    PlanOp::SetSmsDnd { contact_id, .. } => {
                        out.dnd_set.insert(contact_id.clone());
                    }
                    PlanOp::BlockNumbers { numbers } => {
                        out.blocked
                            .extend(numbers.iter().map(|n| crate::snapshot::phone::digits(n)));
                    }
                    _ => {}
                }
            }
            Some(OpStatus::Failed) | Some(OpStatus::InFlight) => {
                out.failed += 1;
                let e = entry.expect("status came from an entry");
                out.failed_rows.push(vec![
                    op.op.kind().to_string(),
                    op.op.target(),
                    status_name(status).to_string(),
                    e.attempts.to_string(),
                    e.error.unwrap_or_default(),
                    op.key.clone(),
                ]);
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Sends held by quiet hours in this run and the ones before it; the table lists the streak once
/// it is long enough to warn about, and the warning says so.
pub fn quiet_hours_streak(
    state_dir: &Path,
    run: &RunDir,
) -> anyhow::Result<(FindingTable, Vec<String>)> {
    let quiet =
        crate::snapshot::contract::quiet_streak::QuietStreak::find(state_dir, &run.id, true)?;
    let warnings: Vec<String> = quiet.warning().into_iter().collect();
    let rows: Vec<Vec<String>> = if warnings.is_empty() {
        Vec::new()
    } else {
        quiet
            .runs
            .iter()
            .map(|r| {
                let zones = r
                    .zones
                    .iter()
                    .map(|(zone, n)| format!("{zone} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                vec![r.run_id.clone(), r.deferred.to_string(), zones]
            })
            .collect()
    };
    let table = FindingTable {
        id: "quiet_hours_streak".into(),
        title: "Sends held by quiet hours run after run".into(),
        severity: "warning".into(),
        description: format!(
            "Listed once {} runs in a row (this one included) held sends because the recipient was inside quiet hours: at the time the job runs, these zones never get a text. Schedule the job when it is daytime there, or add a second daily run.",
            crate::snapshot::contract::quiet_streak::WARN_AFTER_RUNS
        ),
        columns: columns(&["run_id", "sends_held", "by_time_zone"]),
        rows,
    };
    Ok((table, warnings))
}

/// Compliance: a number that opted out (STOP or blocked) whose contact is not DND in GHL. Also
/// returns how many are still open.
pub fn dnd_mismatches(
    inputs: &RunInputs,
    by_id: &HashMap<&str, &SnapshotContact>,
    outcomes: &Outcomes,
) -> (FindingTable, u64) {
    let mut rows = Vec::new();
    let mut open = 0u64;
    for link in inputs.links.iter().filter(|l| l.opted_out) {
        for id in &link.contact_ids {
            let Some(c) = by_id.get(id.as_str()) else {
                continue;
            };
            // Unknown (search answers carry no DND) is listed too: nothing says the contact is DND.
            let in_snapshot = match c.sms_dnd() {
                Some(true) => continue,
                Some(false) => "off",
                None => "unknown",
            };
            let fixed = outcomes.dnd_set.contains(id);
            if !fixed {
                open += 1;
            }
            let why = if inputs.blocked.contains(&link.phone) {
                "blocked in BulkSMS"
            } else {
                "replied STOP"
            };
            rows.push(vec![
                format!("+{}", link.phone),
                id.clone(),
                c.name(),
                why.to_string(),
                in_snapshot.to_string(),
                if fixed { "fixed by this run" } else { "open" }.to_string(),
            ]);
        }
    }
    let table = FindingTable {
        id: "dnd_mismatches".into(),
        title: "Opted-out numbers not DND in GHL".into(),
        severity: "critical".into(),
        description: "The number replied STOP or is blocked in BulkSMS, but its GHL contact had no SMS DND in the snapshot, or its DND was not known there (`unknown`: search answers carry no DND and extract did not read it). Open rows are a compliance risk: another tool could still text them.".into(),
        columns: columns(&["phone", "contact_id", "name", "why", "dnd_in_snapshot", "status"]),
        rows,
    };
    (table, open)
}

/// The other direction: DND in GHL but the number can still be texted through BulkSMS.
pub fn dnd_not_blocked(inputs: &RunInputs, outcomes: &Outcomes) -> FindingTable {
    let mut rows = Vec::new();
    for c in inputs.contacts.iter().filter(|c| c.sms_dnd_active()) {
        let Some(number) = inputs.phone_digits.get(&c.id) else {
            continue;
        };
        if !inputs.blocked.contains(number) {
            let status = if outcomes.blocked.contains(number) {
                "blocked by this run"
            } else {
                "open"
            };
            rows.push(vec![
                format!("+{number}"),
                c.id.clone(),
                c.name(),
                status.to_string(),
            ]);
        }
    }
    FindingTable {
        id: "dnd_not_blocked".into(),
        title: "DND in GHL but not blocked in BulkSMS".into(),
        severity: "warning".into(),
        description: "Contacts with SMS DND whose number is not on the BulkSMS blocked list (the plan blocks them).".into(),
        columns: columns(&["phone", "contact_id", "name", "status"]),
        rows,
    }
}

/// Operations that failed after their retries.
pub fn failed_operations(outcomes: &Outcomes) -> FindingTable {
    FindingTable {
        id: "failed_operations".into(),
        title: "Operations that failed".into(),
        severity: "warning".into(),
        description:
            "Failed after their retries, with the API's reason; the next run tries them again."
                .into(),
        columns: columns(&["kind", "target", "status", "attempts", "error", "key"]),
        rows: outcomes.failed_rows.clone(),
    }
}

/// Duplicate clusters with their evidence, and the fields their members disagree on.
pub fn duplicate_clusters(
    inputs: &RunInputs,
    by_id: &HashMap<&str, &SnapshotContact>,
) -> (FindingTable, FindingTable) {
    let mut members: BTreeMap<&str, Vec<&ClusterRow>> = BTreeMap::new();
    for c in &inputs.clusters {
        members.entry(c.cluster_id.as_str()).or_default().push(c);
    }
    let conflicts: HashMap<&str, &GoldenRecord> = inputs
        .goldens
        .iter()
        .map(|g| (g.cluster_id.as_str(), g))
        .collect();
    let cluster_of: HashMap<&str, &str> = inputs
        .clusters
        .iter()
        .map(|c| (c.id.as_str(), c.cluster_id.as_str()))
        .collect();
    let mut evidence: HashMap<&str, (f64, &str)> = HashMap::new();
    for (l, r, p, accepted, ev) in &inputs.pairs {
        if !accepted {
            continue;
        }
        if let (Some(a), Some(b)) = (cluster_of.get(l.as_str()), cluster_of.get(r.as_str()))
            && a == b
        {
            let slot = evidence.entry(a).or_insert((*p, ev.as_str()));
            if *p > slot.0 {
                *slot = (*p, ev.as_str());
            }
        }
    }
    let mut cluster_rows = Vec::new();
    let mut conflict_rows = Vec::new();
    for (cluster, rows) in members.iter().filter(|(_, r)| r.len() > 1) {
        let survivor = rows[0].survivor_id.as_str();
        let names: Vec<String> = rows
            .iter()
            .map(|r| {
                let contact = by_id.get(r.id.as_str());
                let name = contact.map(|c| c.name()).unwrap_or_default();
                let key = contact
                    .and_then(|c| c.email.clone().or(c.phone.clone()))
                    .unwrap_or_default();
                format!("{} ({name}, {key})", r.id)
            })
            .collect();
        let min_p = rows
            .iter()
            .filter_map(|r| r.match_probability)
            .fold(1.0f64, f64::min);
        let (best_p, ev) = evidence.get(cluster).copied().unwrap_or((min_p, ""));
        let cluster_conflicts = conflicts
            .get(cluster)
            .map(|g| g.conflicts.clone())
            .unwrap_or_default();
        for c in &cluster_conflicts {
            let (field, values) = c.split_once(": ").unwrap_or((c.as_str(), ""));
            conflict_rows.push(vec![
                cluster.to_string(),
                survivor.to_string(),
                field.to_string(),
                values.to_string(),
            ]);
        }
        cluster_rows.push(vec![
            cluster.to_string(),
            rows.len().to_string(),
            survivor.to_string(),
            names.join("; "),
            format!("{best_p:.3}"),
            ev.to_string(),
            cluster_conflicts.len().to_string(),
        ]);
    }
    let clusters = FindingTable {
        id: "duplicate_clusters".into(),
        title: "Duplicate clusters".into(),
        severity: "info".into(),
        description: "Contacts the matcher merged, the survivor, the strongest pair's probability and the field weights behind it.".into(),
        columns: columns(&["cluster_id", "size", "survivor_id", "members", "probability", "evidence", "conflicts"]),
        rows: cluster_rows,
    };
    let field_conflicts = FindingTable {
        id: "field_conflicts".into(),
        title: "Field conflicts inside clusters".into(),
        severity: "info".into(),
        description: "Fields whose duplicates disagree; the golden record took the value its survivorship rule chose.".into(),
        columns: columns(&["cluster_id", "survivor_id", "field", "values"]),
        rows: conflict_rows,
    };
    (clusters, field_conflicts)
}

/// Numbers with SMS activity and no GHL contact.
pub fn only_in_bulksms(inputs: &RunInputs) -> Vec<&LinkRow> {
    inputs
        .links
        .iter()
        .filter(|l| l.contact_ids.is_empty() && (l.sent + l.received) > 0)
        .collect()
}

/// [`only_in_bulksms`] as a finding list.
pub fn numbers_only_in_bulksms(only_bulksms: &[&LinkRow]) -> FindingTable {
    FindingTable {
        id: "numbers_only_in_bulksms".into(),
        title: "Numbers only in BulkSMS".into(),
        severity: "info".into(),
        description: "Numbers with SMS activity that match no GHL contact (inbound ones become lead candidates).".into(),
        columns: columns(&["phone", "sent", "received", "last_sent_at", "last_received_at", "opted_out"]),
        rows: only_bulksms
            .iter()
            .map(|l| {
                vec![
                    format!("+{}", l.phone),
                    l.sent.to_string(),
                    l.received.to_string(),
                    l.last_sent_at.clone().unwrap_or_default(),
                    l.last_received_at.clone().unwrap_or_default(),
                    l.opted_out.to_string(),
                ]
            })
            .collect(),
    }
}

/// Numbers whose sent messages ended FAILED.
pub fn delivery_failures(inputs: &RunInputs) -> FindingTable {
    FindingTable {
        id: "delivery_failures".into(),
        title: "Numbers with failed deliveries".into(),
        severity: "info".into(),
        description: "Sent messages that ended FAILED, by number.".into(),
        columns: columns(&["phone", "contact_ids", "sent", "failed", "last_sent_at"]),
        rows: inputs
            .links
            .iter()
            .filter(|l| l.failed > 0)
            .map(|l| {
                vec![
                    format!("+{}", l.phone),
                    l.contact_ids.join(" "),
                    l.sent.to_string(),
                    l.failed.to_string(),
                    l.last_sent_at.clone().unwrap_or_default(),
                ]
            })
            .collect(),
    }
}

/// GHL contacts no SMS activity links to.
pub fn only_in_ghl(inputs: &RunInputs) -> Vec<&SnapshotContact> {
    let linked: HashSet<&str> = inputs
        .links
        .iter()
        .flat_map(|l| l.contact_ids.iter().map(String::as_str))
        .collect();
    inputs
        .contacts
        .iter()
        .filter(|c| !linked.contains(c.id.as_str()))
        .collect()
}

/// [`only_in_ghl`] as a finding list.
pub fn contacts_only_in_ghl(only_ghl: &[&SnapshotContact]) -> FindingTable {
    FindingTable {
        id: "contacts_only_in_ghl".into(),
        title: "Contacts only in GHL".into(),
        severity: "info".into(),
        description: "GHL contacts with no SMS activity in BulkSMS.".into(),
        columns: columns(&["contact_id", "name", "email", "phone"]),
        rows: only_ghl
            .iter()
            .map(|c| {
                vec![
                    c.id.clone(),
                    c.name(),
                    c.email.clone().unwrap_or_default(),
                    c.phone.clone().unwrap_or_default(),
                ]
            })
            .collect(),
    }
}
