//! The GHL tasks load created: their ids, for the completions the message workflows ask for, and
//! the completion itself.
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

/// For each completion in `tasks`, the id of the task created for its event, by the create's key;
/// completions whose create has not succeeded yet are left out (a later run completes them).
pub fn created_tasks(
    tasks: &[DesiredTask],
    ledger: &Ledger,
) -> Result<HashMap<String, String>, LedgerError> {
    let mut ids = HashMap::new();
    for task in tasks.iter().filter(|t| t.complete) {
        let key = PlanOp::task_key(&task.contact_id, &task.event);
        if let Some(entry) = ledger.get(&key)?
            && entry.status == OpStatus::Succeeded
        {
            match entry.result.as_deref().and_then(task_id_of) {
                Some(id) => {
                    ids.insert(key, id);
                }
                None => tracing::warn!(
                    key,
                    event = task.event,
                    "Created task has no id in the ledger; not completed"
                ),
            }
        }
    }
    Ok(ids)
}

/// Completes a task. A task GHL no longer has (deleted by a person, or with its contact) is
/// settled as gone: there is nothing left to complete, and asking again every night would fail
/// every night. GHL answers such a completion 400 "Task with id … not found"; the contact's task
/// list tells a gone task from a bad request.
pub async fn complete(ghl: &GhlClient, contact_id: &str, task_id: &str) -> Result<Value, ApiError> {
    match ghl.complete_task(contact_id, task_id).await {
        Err(e) if matches!(e.status(), Some(400 | 404)) => {
            let tasks = match ghl.contact_tasks(contact_id).await {
                Ok(tasks) => tasks,
                Err(gone) if matches!(gone.status(), Some(400 | 404)) => Vec::new(),
                Err(other) => return Err(other),
            };
            if tasks
                .iter()
                .any(|t| t.get("id").and_then(Value::as_str) == Some(task_id))
            {
                Err(e)
            } else {
                Ok(json!({"gone": task_id}))
            }
        }
        answer => answer,
    }
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
}
