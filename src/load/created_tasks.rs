//! The GHL tasks load created: their ids, for the updates and completions the message workflows
//! ask for, and the update and completion themselves.
//!
//! They come from the ledger, not from the extracted `ghl/tasks.parquet`: the ledger holds every
//! task contactsync created, under the key of the event it follows up, the moment its create
//! succeeded (or was found by read-back), whatever the contact. The extract reads tasks only for
//! the contacts a run touches, a run late, and would have to recognise our tasks by their text.

use super::ledger::{Ledger, LedgerError, OpStatus};
use crate::api::ApiError;
use crate::api::ghl::GhlClient;
use crate::snapshot::contract::plan::PlanOp;
use crate::snapshot::desired::DesiredTask;
use serde_json::{Value, json};
use std::collections::HashMap;

/// The task id in a create's recorded result: the answer of `POST /contacts/{id}/tasks`
/// (`{"task": {...}}`) or the task row a read-back found.
pub fn task_id_of(result: &str) -> Option<String> {
    let value: Value = serde_json::from_str(result).ok()?;
    let task = value.get("task").unwrap_or(&value);
    task.get("id").and_then(Value::as_str).map(str::to_string)
}

/// What the ledger says of the create of a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreatedTask {
    /// Made: its GHL id, and the body it was made with (marker included).
    Made { id: String, body: Option<String> },
    /// Owed (planned, in flight, failed) or made without an id the ledger kept: there is a task
    /// for the event, or will be, but nothing to update or complete yet.
    NoId,
}

/// The body in a create's recorded result.
fn task_body_of(result: &str) -> Option<String> {
    let value: Value = serde_json::from_str(result).ok()?;
    let task = value.get("task").unwrap_or(&value);
    task.get("body").and_then(Value::as_str).map(str::to_string)
}

/// What the ledger holds of the creates `tasks` need, by the create's key
/// ([`PlanOp::task_key`]): for a completion, the task created for its event; for a follow-up
/// (`replies`), the task of the earliest of its replies that has one (ledgers from before one task
/// per conversation hold a task per reply, and a conversation that began before a baseline run
/// has its task under a later reply). A create the ledger has never seen is left out.
pub fn created_tasks(
    tasks: &[DesiredTask],
    ledger: &Ledger,
) -> Result<HashMap<String, CreatedTask>, LedgerError> {
    let mut found = HashMap::new();
    for task in tasks {
        let events: &[String] = if task.complete {
            std::slice::from_ref(&task.event)
        } else {
            &task.replies
        };
        for event in events {
            let key = PlanOp::task_key(&task.contact_id, event);
            let Some(entry) = ledger.get(&key)? else {
                continue;
            };
            let created = match entry.result.as_deref().and_then(task_id_of) {
                Some(id) if entry.status == OpStatus::Succeeded => CreatedTask::Made {
                    id,
                    body: entry.result.as_deref().and_then(task_body_of),
                },
                None if entry.status == OpStatus::Succeeded => {
                    tracing::warn!(
                        key,
                        event,
                        "Created task has no id in the ledger; not updated or completed"
                    );
                    CreatedTask::NoId
                }
                _ => CreatedTask::NoId,
            };
            found.insert(key, created);
            break;
        }
    }
    Ok(found)
}

/// Whether `error` may mean GHL no longer has the task (GHL answers 400 "Task with id … not
/// found" for a task it does not have, and for a contact it does not have).
fn maybe_gone(error: &ApiError) -> bool {
    matches!(error.status(), Some(400 | 404))
}

/// What load records for a task GHL no longer has (deleted by a person, or with its contact):
/// settled, since there is nothing left to complete or update, and asking again every night would
/// fail every night.
fn gone(task_id: &str) -> Value {
    json!({"gone": task_id})
}

/// Completes a task ([`PlanOp::CompleteTask`]) or keeps a follow-up current
/// ([`PlanOp::UpdateTask`]: the whole body and due time, and open, since a reply came while someone
/// had closed it and it waits for an answer again; title and assignee are not sent, so what a
/// person set there stays). A task GHL no longer has is settled as gone: the task read by its id
/// tells a gone task from a bad request.
pub async fn write(ghl: &GhlClient, op: &PlanOp) -> Result<Value, ApiError> {
    let (contact_id, task_id, answer) = match op {
        PlanOp::CompleteTask {
            contact_id,
            task_id,
        } => (
            contact_id,
            task_id,
            ghl.complete_task(contact_id, task_id).await,
        ),
        PlanOp::UpdateTask {
            contact_id,
            task_id,
            body,
            due_date,
            ..
        } => {
            let fields = json!({"body": body, "dueDate": due_date, "completed": false});
            let answer = ghl.update_task(contact_id, task_id, fields).await;
            (contact_id, task_id, answer)
        }
        other => unreachable!("not a write to a created task: {}", other.kind()),
    };
    match answer {
        Err(e) if maybe_gone(&e) => match ghl.get_task(contact_id, task_id).await? {
            Some(_) => Err(e),
            None => Ok(gone(task_id)),
        },
        answer => answer,
    }
}

/// The read-back of a completion or an update whose outcome is unknown: the task read by its id.
/// `Some` when the write took effect (the task is completed, or holds the update's body, which no
/// one else writes) or the task is gone; `None` when it is to be made again.
pub async fn read_back(ghl: &GhlClient, op: &PlanOp) -> Result<Option<Value>, ApiError> {
    let (contact_id, task_id) = match op {
        PlanOp::CompleteTask {
            contact_id,
            task_id,
        }
        | PlanOp::UpdateTask {
            contact_id,
            task_id,
            ..
        } => (contact_id, task_id),
        _ => return Ok(None),
    };
    let Some(task) = ghl.get_task(contact_id, task_id).await? else {
        return Ok(Some(gone(task_id)));
    };
    let done = match op {
        PlanOp::UpdateTask { body, .. } => {
            task.get("body").and_then(Value::as_str) == Some(body.as_str())
        }
        _ => task.get("completed").and_then(Value::as_bool) == Some(true),
    };
    Ok(done.then_some(task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_task_id_is_read_from_a_create_answer_or_a_read_back_row() {
        assert_eq!(
            task_id_of(r#"{"task":{"id":"t1","title":"x"}}"#).as_deref(),
            Some("t1")
        );
        assert_eq!(
            task_id_of(r#"{"id":"t2","body":"b"}"#).as_deref(),
            Some("t2")
        );
        assert_eq!(task_id_of(r#"{"deleted":"c1"}"#), None);
        assert_eq!(task_id_of("not json"), None);
    }

    #[test]
    fn a_follow_up_finds_the_task_of_its_earliest_reply_that_has_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ledger = Ledger::open(&dir.path().join("ledger.sqlite")).expect("ledger");
        let key = |event: &str| PlanOp::task_key("c1", event);
        let made = |ledger: &mut Ledger, event: &str, result: &str| {
            ledger
                .begin(&key(event), "r1", "create_task", "c1", "{}")
                .expect("begin");
            ledger
                .finish(&key(event), OpStatus::Succeeded, Some(result), None)
                .expect("finish");
        };
        made(
            &mut ledger,
            "sms reply 8",
            r#"{"task":{"id":"t8","body":"two"}}"#,
        );
        made(
            &mut ledger,
            "sms reply 9",
            r#"{"task":{"id":"t9","body":"three"}}"#,
        );
        ledger
            .begin(&key("sms reply 5"), "r1", "create_task", "c1", "{}")
            .expect("begin");
        let follow_up = DesiredTask {
            contact_id: "c1".into(),
            event: "sms reply 7".into(),
            replies: vec![
                "sms reply 7".into(),
                "sms reply 8".into(),
                "sms reply 9".into(),
            ],
            ..DesiredTask::default()
        };
        let completion = |event: &str| DesiredTask {
            contact_id: "c1".into(),
            event: event.into(),
            complete: true,
            ..DesiredTask::default()
        };
        let found = created_tasks(
            &[
                follow_up,
                completion("sms reply 5"),
                completion("sms reply 6"),
            ],
            &ledger,
        )
        .expect("ledger reads");
        assert_eq!(
            found,
            HashMap::from([
                (
                    key("sms reply 8"),
                    CreatedTask::Made {
                        id: "t8".into(),
                        body: Some("two".into())
                    }
                ),
                // In flight: its id is not known yet.
                (key("sms reply 5"), CreatedTask::NoId),
            ])
        );
    }
}
