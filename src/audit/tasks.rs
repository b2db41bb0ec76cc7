//! Open follow-up tasks: the tasks in the snapshot not completed, overdue ones first.

use super::report::FindingTable;
use crate::snapshot::contact::SnapshotContact;
use crate::snapshot::contract::plan::BODY_MARKER_PREFIX;
use crate::snapshot::desired::read_rows;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;

#[derive(Debug, Clone, Default, Deserialize)]
struct Task {
    id: String,
    contact_id: String,
    title: Option<String>,
    body: Option<String>,
    /// As the Parquet reader writes a timestamp (RFC 3339).
    due_date: Option<String>,
    completed: Option<bool>,
    assigned_to: Option<String>,
}

/// The finding list of open tasks in `extract/ghl/tasks.parquet` (empty for snapshots written
/// before tasks were extracted), with each task's contact and whether it is past due at `now`.
pub fn open_tasks(
    extract_dir: &Path,
    contacts: &[SnapshotContact],
    now: DateTime<Utc>,
) -> anyhow::Result<FindingTable> {
    let path = extract_dir.join("ghl/tasks.parquet");
    let tasks: Vec<Task> = if path.exists() {
        read_rows(&path)?
    } else {
        Vec::new()
    };
    let names: HashMap<&str, String> = contacts.iter().map(|c| (c.id.as_str(), c.name())).collect();
    let mut open: Vec<(Option<DateTime<Utc>>, Task)> = tasks
        .into_iter()
        .filter(|t| t.completed != Some(true))
        .map(|t| {
            let due = t
                .due_date
                .as_deref()
                .and_then(|d| DateTime::parse_from_rfc3339(d).ok())
                .map(|d| d.with_timezone(&Utc));
            (due, t)
        })
        .collect();
    // Oldest due first (the most overdue on top), tasks without a due date last.
    open.sort_by(|(a, x), (b, y)| {
        (a.is_none(), a, &x.contact_id, &x.id).cmp(&(b.is_none(), b, &y.contact_id, &y.id))
    });
    let overdue = open
        .iter()
        .filter(|(due, _)| due.is_some_and(|d| d < now))
        .count();
    // The pipeline's own follow-ups (replies, failing numbers) carry its marker in the body.
    let by_pipeline = |t: &Task| {
        t.body
            .as_deref()
            .is_some_and(|b| b.contains(BODY_MARKER_PREFIX))
    };
    let follow_ups = open.iter().filter(|(_, t)| by_pipeline(t)).count();
    let rows = open
        .into_iter()
        .map(|(due, t)| {
            let created_by = if by_pipeline(&t) { "contactsync" } else { "" };
            vec![
                t.contact_id.clone(),
                names
                    .get(t.contact_id.as_str())
                    .cloned()
                    .unwrap_or_default(),
                t.title.unwrap_or_default(),
                due.map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_default(),
                due.is_some_and(|d| d < now).to_string(),
                t.assigned_to.unwrap_or_default(),
                t.id,
                created_by.to_string(),
            ]
        })
        .collect();
    Ok(FindingTable {
        id: "open_tasks".into(),
        title: "Open follow-up tasks".into(),
        severity: if overdue > 0 { "warning" } else { "info" }.into(),
        description: format!(
            "Tasks not completed on the contacts whose history extract read (those the pipeline touched, and all changed ones with `history_for_changed`), most overdue first; {overdue} past their due date; {follow_ups} created by contactsync (`created_by`: reply follow-ups, numbers to check)."
        ),
        columns: [
            "contact_id",
            "name",
            "title",
            "due_date",
            "overdue",
            "assigned_to",
            "task_id",
            "created_by",
        ]
        .iter()
        .map(|c| c.to_string())
        .collect(),
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::parts::write_part;
    use crate::snapshot::schema::{TaskRow, batch_from_rows, tasks_schema};

    #[test]
    fn open_tasks_are_listed_overdue_first_and_completed_ones_left_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = DateTime::parse_from_rfc3339("2026-12-06T12:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let task = |id: &str, due: Option<&str>, completed: bool| TaskRow {
            id: id.into(),
            contact_id: "c1".into(),
            title: Some(format!("task {id}")),
            due_date: due.map(|d| {
                DateTime::parse_from_rfc3339(d)
                    .expect("due")
                    .timestamp_millis()
            }),
            completed: Some(completed),
            body: (id == "late").then(|| "Call back\n[contactsync:0123456789ab]".to_string()),
            ..Default::default()
        };
        let rows = vec![
            task("later", Some("2026-12-07T09:00:00Z"), false),
            task("done", Some("2026-12-01T09:00:00Z"), true),
            task("late", Some("2026-12-05T09:00:00Z"), false),
            task("undated", None, false),
        ];
        let path = dir.path().join("ghl/tasks.parquet");
        write_part(
            &path,
            &batch_from_rows(&tasks_schema(), &rows).expect("batch"),
        )
        .expect("write");
        let contacts = vec![SnapshotContact {
            id: "c1".into(),
            first_name: Some("Ana".into()),
            ..Default::default()
        }];
        let table = open_tasks(dir.path(), &contacts, now).expect("table");
        let ids: Vec<&str> = table.rows.iter().map(|r| r[6].as_str()).collect();
        assert_eq!(ids, ["late", "later", "undated"]);
        assert_eq!(table.rows[0][4], "true", "{:?}", table.rows[0]);
        assert_eq!(table.rows[0][3], "2026-12-05T09:00:00Z");
        assert_eq!(table.rows[1][4], "false");
        assert!(table.rows[0][1].contains("Ana"));
        assert_eq!(table.severity, "warning");
        let created_by: Vec<&str> = table.rows.iter().map(|r| r[7].as_str()).collect();
        assert_eq!(created_by, ["contactsync", "", ""]);
        assert!(
            table.description.contains("1 created by contactsync"),
            "{}",
            table.description
        );
    }

    #[test]
    fn a_snapshot_without_tasks_gives_an_empty_list() {
        let dir = tempfile::tempdir().expect("tempdir");
        let table = open_tasks(dir.path(), &[], Utc::now()).expect("table");
        assert!(table.rows.is_empty());
    }
}
