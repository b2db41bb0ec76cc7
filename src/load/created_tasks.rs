//! The ids of the GHL tasks load created, for the completions the message workflows ask for.
//!
//! They come from the ledger, not from the extracted `ghl/tasks.parquet`: the ledger holds every
//! task contactsync created, under the key of the event it follows up, the moment its create
//! succeeded (or was found by read-back), whatever the contact. The extract reads tasks only for
//! the contacts a run touches, a run late, and would have to recognise our tasks by their text.

use super::ledger::{Ledger, LedgerError, OpStatus};
use crate::snapshot::contract::plan::PlanOp;
use crate::snapshot::desired::DesiredTask;
use serde_json::Value;
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
