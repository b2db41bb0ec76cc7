//! Reconciliation: reads one run's snapshot, transform outputs, plan and ledger (and the runs
//! before it) and builds the [`AuditReport`]. Reads files only; writes nothing but the report.

use super::AuditConfig;
use super::report::{
    AuditReport, FindingTable, HistogramBin, Metric, OperationCount, ThresholdResult, TrendPoint,
};
use crate::load::ledger::{Ledger, OpStatus};
use crate::load::plan::Plan;
use crate::load::plan_io::read_plan;
use crate::snapshot::contact::SnapshotContact;
use crate::snapshot::desired::read_rows;
use crate::snapshot::run::{RunDir, list_runs};
use anyhow::Context;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

#[derive(Debug, Clone, Default, Deserialize)]
struct Link {
    phone: String,
    #[serde(default)]
    contact_ids: Vec<String>,
    sent: u64,
    received: u64,
    failed: u64,
    last_sent_at: Option<String>,
    last_received_at: Option<String>,
    opted_out: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Blocked {
    phone_number: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct ClusterRow {
    id: String,
    cluster_id: String,
    match_probability: Option<f64>,
    survivor_id: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Golden {
    cluster_id: String,
    #[serde(default)]
    conflicts: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Summary {
    contacts: u64,
    duplicate_clusters: u64,
    opted_out_numbers: u64,
}

/// A scored pair: left id, right id, match probability, accepted, evidence (field weights).
type PairRow = (String, String, f64, bool, String);

/// Reads a run's pairs file.
fn read_pairs(path: &Path) -> anyhow::Result<Vec<PairRow>> {
    // The per-field columns depend on the model, so rows are read as JSON maps.
    let rows: Vec<serde_json::Map<String, serde_json::Value>> = read_rows(path)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let text = |k: &str| {
            row.get(k)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string()
        };
        let probability = row
            .get("match_probability")
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(0.0);
        let accepted = row
            .get("accepted")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        // Evidence: each field's weight, strongest first.
        let mut weights: Vec<(String, f64)> = row
            .iter()
            .filter_map(|(k, v)| {
                let field = k.strip_suffix("_weight")?;
                (field != "match").then(|| (field.to_string(), v.as_f64().unwrap_or(0.0)))
            })
            .collect();
        weights.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
        let evidence = weights
            .iter()
            .filter(|(_, w)| w.abs() >= 0.05)
            .map(|(f, w)| format!("{f} {w:+.1}"))
            .collect::<Vec<_>>()
            .join(", ");
        out.push((text("id_l"), text("id_r"), probability, accepted, evidence));
    }
    Ok(out)
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
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

/// Builds the report of `run`, compared with `against` (default: the run before it).
pub fn reconcile(
    pipeline: &str,
    state_dir: &Path,
    run: &RunDir,
    against: Option<&RunDir>,
    config: &AuditConfig,
    default_region: &str,
) -> anyhow::Result<AuditReport> {
    let region = crate::transform::normalize::region(default_region);
    let extract = run.extract_dir();
    let transform = run.transform_dir();
    anyhow::ensure!(
        transform.join("summary.json").exists(),
        "run {} has no finished transform; run `contactsync transform` first",
        run.id
    );
    let contacts: Vec<SnapshotContact> = read_rows(&extract.join("ghl/contacts.parquet"))?;
    let blocked: Vec<Blocked> = read_rows(&extract.join("bulksms/blocked_numbers.parquet"))?;
    let links: Vec<Link> = read_rows(&transform.join("links.parquet"))?;
    let clusters: Vec<ClusterRow> = read_rows(&transform.join("clusters.parquet"))?;
    let goldens: Vec<Golden> = read_rows(&transform.join("golden.parquet"))?;
    let pairs = read_pairs(&transform.join("pairs.parquet"))?;
    let plan: Option<Plan> = read_plan(&run.load_dir(), &run.id).ok();
    let ledger_path = state_dir.join("ledger.sqlite");
    let ledger = if ledger_path.exists() {
        Some(Ledger::open(&ledger_path)?)
    } else {
        None
    };

    let by_id: HashMap<&str, &SnapshotContact> =
        contacts.iter().map(|c| (c.id.as_str(), c)).collect();
    let blocked_set: HashSet<String> = blocked.iter().map(|b| digits(&b.phone_number)).collect();

    // Operations and their outcomes, from the ledger.
    let mut op_counts: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut failed_rows = Vec::new();
    let mut succeeded_dnd: HashSet<String> = HashSet::new();
    let mut blocked_now: HashSet<String> = HashSet::new();
    let (mut planned, mut applied, mut failed) = (0u64, 0u64, 0u64);
    if let Some(plan) = &plan {
        for op in &plan.operations {
            planned += 1;
            let entry = match &ledger {
                Some(l) => l.get(&op.key)?,
                None => None,
            };
            let status = entry.as_ref().map(|e| e.status);
            *op_counts
                .entry((op.op.kind().to_string(), status_name(status).to_string()))
                .or_default() += 1;
            match status {
                Some(OpStatus::Succeeded) => {
                    applied += 1;
                    match &op.op {
                        crate::load::plan::PlanOp::SetSmsDnd { contact_id, .. } => {
                            succeeded_dnd.insert(contact_id.clone());
                        }
                        crate::load::plan::PlanOp::BlockNumbers { numbers } => {
                            blocked_now.extend(numbers.iter().map(|n| digits(n)));
                        }
                        _ => {}
                    }
                }
                Some(OpStatus::Failed) | Some(OpStatus::InFlight) => {
                    failed += 1;
                    let e = entry.expect("status came from an entry");
                    failed_rows.push(vec![
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
    }

    // Compliance: a number that opted out (STOP or blocked) whose contact is not DND in GHL.
    let mut dnd_rows = Vec::new();
    let mut open_dnd = 0u64;
    for link in links.iter().filter(|l| l.opted_out) {
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
            let fixed = succeeded_dnd.contains(id);
            if !fixed {
                open_dnd += 1;
            }
            let why = if blocked_set.contains(&link.phone) {
                "blocked in BulkSMS"
            } else {
                "replied STOP"
            };
            dnd_rows.push(vec![
                format!("+{}", link.phone),
                id.clone(),
                c.name(),
                why.to_string(),
                in_snapshot.to_string(),
                if fixed { "fixed by this run" } else { "open" }.to_string(),
            ]);
        }
    }
    // The other direction: DND in GHL but the number can still be texted through BulkSMS.
    let mut dnd_not_blocked = Vec::new();
    for c in contacts.iter().filter(|c| c.sms_dnd_active()) {
        let number = match crate::transform::normalize::contact_phone(
            c.phone.as_deref(),
            c.country.as_deref(),
            region,
        ) {
            Some(crate::transform::normalize::PhoneKey::E164(e)) => digits(&e),
            _ => continue,
        };
        if !blocked_set.contains(&number) {
            let status = if blocked_now.contains(&number) {
                "blocked by this run"
            } else {
                "open"
            };
            dnd_not_blocked.push(vec![
                format!("+{number}"),
                c.id.clone(),
                c.name(),
                status.to_string(),
            ]);
        }
    }

    // Matching between the systems.
    let linked_contacts: HashSet<&str> = links
        .iter()
        .flat_map(|l| l.contact_ids.iter().map(String::as_str))
        .collect();
    let with_phone = contacts
        .iter()
        .filter(|c| c.phone.as_deref().is_some_and(|p| digits(p).len() >= 7))
        .count() as u64;
    let only_bulksms: Vec<&Link> = links
        .iter()
        .filter(|l| l.contact_ids.is_empty() && (l.sent + l.received) > 0)
        .collect();
    let only_ghl: Vec<&SnapshotContact> = contacts
        .iter()
        .filter(|c| !linked_contacts.contains(c.id.as_str()))
        .collect();
    let total = contacts.len() as u64;
    let matched = linked_contacts.len() as u64;
    let unmatched_share = if total == 0 {
        0.0
    } else {
        only_ghl.len() as f64 / total as f64
    };

    // Duplicate clusters with their evidence.
    let mut members: BTreeMap<&str, Vec<&ClusterRow>> = BTreeMap::new();
    for c in &clusters {
        members.entry(c.cluster_id.as_str()).or_default().push(c);
    }
    let conflicts: HashMap<&str, &Golden> =
        goldens.iter().map(|g| (g.cluster_id.as_str(), g)).collect();
    let cluster_of: HashMap<&str, &str> = clusters
        .iter()
        .map(|c| (c.id.as_str(), c.cluster_id.as_str()))
        .collect();
    let mut evidence: HashMap<&str, (f64, &str)> = HashMap::new();
    for (l, r, p, accepted, ev) in &pairs {
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
                let name = by_id
                    .get(r.id.as_str())
                    .map(|c| c.name())
                    .unwrap_or_default();
                let contact = by_id.get(r.id.as_str());
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

    // Match-score histogram.
    let mut histogram: Vec<HistogramBin> = (0..10)
        .map(|i| HistogramBin {
            low: i as f64 / 10.0,
            high: (i + 1) as f64 / 10.0,
            ..HistogramBin::default()
        })
        .collect();
    for (_, _, p, accepted, _) in &pairs {
        let bin = ((p * 10.0).floor() as usize).min(9);
        if *accepted {
            histogram[bin].accepted += 1;
        } else {
            histogram[bin].rejected += 1;
        }
    }

    let delivery_rows: Vec<Vec<String>> = links
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
        .collect();

    // Trend: this run and the ones before it (at most 30), oldest first.
    let runs = list_runs(state_dir)?;
    let mut trend = Vec::new();
    for r in runs.iter().filter(|r| r.id <= run.id) {
        let Ok(text) = std::fs::read(r.transform_dir().join("summary.json")) else {
            continue;
        };
        let Ok(s) = serde_json::from_slice::<Summary>(&text) else {
            continue;
        };
        let failed_ops = std::fs::read(r.load_dir().join("result.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v.pointer("/metrics/failed").and_then(|f| f.as_u64()))
            .unwrap_or(0);
        trend.push(TrendPoint {
            run_id: r.id.clone(),
            contacts: s.contacts,
            duplicate_clusters: s.duplicate_clusters,
            opted_out: s.opted_out_numbers,
            failed_operations: failed_ops,
        });
    }
    if trend.len() > 30 {
        trend.drain(..trend.len() - 30);
    }

    let against = match against {
        Some(a) => Some(a.clone()),
        None => runs
            .iter()
            .rev()
            .filter(|r| r.id < run.id)
            .find(|r| r.transform_dir().join("summary.json").exists())
            .cloned(),
    };

    let mut summary = vec![
        Metric::count("GHL contacts", total),
        Metric::count("Numbers with BulkSMS activity", links.len() as u64),
        Metric::count("Contacts matched to SMS activity", matched),
        Metric::count("Contacts only in GHL", only_ghl.len() as u64),
        Metric::count("Numbers only in BulkSMS", only_bulksms.len() as u64),
        Metric::count("Duplicate clusters", cluster_rows.len() as u64),
        Metric::count("Field conflicts", conflict_rows.len() as u64),
        Metric::count("Opt-outs not DND in GHL (open)", open_dnd),
        Metric::count("Operations planned", planned),
        Metric::count("Operations applied", applied),
        Metric::count("Operations failed", failed),
        Metric::percent("Share of contacts unmatched", unmatched_share),
    ];
    if let Some(a) = &against
        && let Some(prev) = trend.iter().find(|t| t.run_id == a.id)
    {
        summary.push(Metric::count(
            &format!("Contacts added since {}", a.id),
            total.saturating_sub(prev.contacts),
        ));
    }

    let in_sync = total.saturating_sub(
        plan.as_ref()
            .map(|p| {
                p.operations
                    .iter()
                    .filter_map(|o| {
                        let t = o.op.target();
                        by_id.contains_key(t.as_str()).then_some(t)
                    })
                    .collect::<HashSet<_>>()
                    .len() as u64
            })
            .unwrap_or(0),
    );
    let funnel = vec![
        Metric::count("GHL contacts", total),
        Metric::count("With a phone", with_phone),
        Metric::count("Matched to BulkSMS", matched),
        Metric::count("Already in sync", in_sync),
    ];

    let mut thresholds = Vec::new();
    let mut check = |name: &str, limit: Option<f64>, actual: f64| {
        if let Some(limit) = limit {
            thresholds.push(ThresholdResult {
                name: name.into(),
                limit,
                actual,
                breached: actual > limit,
            });
        }
    };
    check(
        "max_unmatched_share",
        config.max_unmatched_share,
        unmatched_share,
    );
    check(
        "max_failed_operations",
        config.max_failed_operations.map(|v| v as f64),
        failed as f64,
    );
    check(
        "max_dnd_mismatches",
        config.max_dnd_mismatches.map(|v| v as f64),
        open_dnd as f64,
    );

    // Sends held by quiet hours in this run and the ones before it.
    let quiet = crate::load::quiet_streak::QuietStreak::find(state_dir, &run.id, true)?;
    let warnings: Vec<String> = quiet.warning().into_iter().collect();
    let quiet_rows: Vec<Vec<String>> = if warnings.is_empty() {
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

    let s = |v: &[&str]| v.iter().map(|c| c.to_string()).collect::<Vec<_>>();
    let findings = vec![
        FindingTable {
            id: "quiet_hours_streak".into(),
            title: "Sends held by quiet hours run after run".into(),
            severity: "warning".into(),
            description: format!(
                "Listed once {} runs in a row (this one included) held sends because the recipient was inside quiet hours: at the time the job runs, these zones never get a text. Schedule the job when it is daytime there, or add a second daily run.",
                crate::load::quiet_streak::WARN_AFTER_RUNS
            ),
            columns: s(&["run_id", "sends_held", "by_time_zone"]),
            rows: quiet_rows,
        },
        FindingTable {
            id: "dnd_mismatches".into(),
            title: "Opted-out numbers not DND in GHL".into(),
            severity: "critical".into(),
            description: "The number replied STOP or is blocked in BulkSMS, but its GHL contact had no SMS DND in the snapshot, or its DND was not known there (`unknown`: search answers carry no DND and extract did not read it). Open rows are a compliance risk: another tool could still text them.".into(),
            columns: s(&["phone", "contact_id", "name", "why", "dnd_in_snapshot", "status"]),
            rows: dnd_rows,
        },
        FindingTable {
            id: "dnd_not_blocked".into(),
            title: "DND in GHL but not blocked in BulkSMS".into(),
            severity: "warning".into(),
            description: "Contacts with SMS DND whose number is not on the BulkSMS blocked list (the plan blocks them).".into(),
            columns: s(&["phone", "contact_id", "name", "status"]),
            rows: dnd_not_blocked,
        },
        FindingTable {
            id: "failed_operations".into(),
            title: "Operations that failed".into(),
            severity: "warning".into(),
            description: "Failed after their retries, with the API's reason; the next run tries them again.".into(),
            columns: s(&["kind", "target", "status", "attempts", "error", "key"]),
            rows: failed_rows,
        },
        FindingTable {
            id: "duplicate_clusters".into(),
            title: "Duplicate clusters".into(),
            severity: "info".into(),
            description: "Contacts the matcher merged, the survivor, the strongest pair's probability and the field weights behind it.".into(),
            columns: s(&["cluster_id", "size", "survivor_id", "members", "probability", "evidence", "conflicts"]),
            rows: cluster_rows,
        },
        FindingTable {
            id: "field_conflicts".into(),
            title: "Field conflicts inside clusters".into(),
            severity: "info".into(),
            description: "Fields whose duplicates disagree; the golden record took the value its survivorship rule chose.".into(),
            columns: s(&["cluster_id", "survivor_id", "field", "values"]),
            rows: conflict_rows,
        },
        FindingTable {
            id: "numbers_only_in_bulksms".into(),
            title: "Numbers only in BulkSMS".into(),
            severity: "info".into(),
            description: "Numbers with SMS activity that match no GHL contact (inbound ones become lead candidates).".into(),
            columns: s(&["phone", "sent", "received", "last_sent_at", "last_received_at", "opted_out"]),
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
        },
        FindingTable {
            id: "delivery_failures".into(),
            title: "Numbers with failed deliveries".into(),
            severity: "info".into(),
            description: "Sent messages that ended FAILED, by number.".into(),
            columns: s(&["phone", "contact_ids", "sent", "failed", "last_sent_at"]),
            rows: delivery_rows,
        },
        FindingTable {
            id: "contacts_only_in_ghl".into(),
            title: "Contacts only in GHL".into(),
            severity: "info".into(),
            description: "GHL contacts with no SMS activity in BulkSMS.".into(),
            columns: s(&["contact_id", "name", "email", "phone"]),
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
        },
    ];

    let mut findings = findings;
    let now = chrono::Utc::now();
    findings.push(super::tasks::open_tasks(&extract, &contacts, now)?);
    Ok(AuditReport {
        pipeline: pipeline.to_string(),
        run_id: run.id.clone(),
        against_run: against.map(|a| a.id),
        generated_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        summary,
        funnel,
        score_histogram: histogram,
        operations: op_counts
            .into_iter()
            .map(|((kind, status), count)| OperationCount {
                kind,
                status,
                count,
            })
            .collect(),
        trend,
        findings,
        thresholds,
        warnings,
    })
}

/// Writes `report.html`, `report.json` and one CSV per finding list into `dir`.
pub fn write_report(report: &AuditReport, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    crate::snapshot::atomic::write(
        &dir.join("report.html"),
        super::html::render(report).as_bytes(),
    )
    .with_context(|| format!("writing {}", dir.join("report.html").display()))?;
    crate::snapshot::atomic::write(
        &dir.join("report.json"),
        &serde_json::to_vec_pretty(report)?,
    )?;
    for table in &report.findings {
        let mut bytes = Vec::new();
        super::csv::write_table(&mut bytes, &table.columns, &table.rows)?;
        crate::snapshot::atomic::write(&dir.join(format!("{}.csv", table.id)), &bytes)?;
    }
    Ok(())
}
