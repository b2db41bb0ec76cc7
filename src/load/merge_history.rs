//! `merge = "delete"`: before a duplicate is deleted, what people recorded on it moves to the
//! contact that survives: its tags, its notes and its open tasks. Deleting a contact in GHL
//! deletes its notes and tasks with it, so without this a merge would lose the history.
//!
//! Every step can be repeated: tags are added as a set union, and each moved note or task carries
//! a marker naming the original, looked for on the survivor before it is written again. A crash or
//! a lost answer anywhere in the move therefore finishes it on the next attempt, once.

use crate::api::error::ApiError;
use crate::api::ghl::GhlClient;
use crate::snapshot::desired::DUPLICATE_TAG;
use serde_json::Value;

/// What was moved, for the ledger's response column and the logs.
#[derive(Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct MovedHistory {
    pub tags: usize,
    pub notes: usize,
    pub open_tasks: usize,
}

/// The marker of a note or task moved from `original_id`: how a repeated move finds it.
pub fn moved_marker(original_id: &str) -> String {
    format!("[contactsync:moved:{original_id}]")
}

/// Moves the duplicate's tags, notes and open tasks to the survivor. `None` when the duplicate no
/// longer exists (an earlier attempt deleted it after moving everything).
pub async fn move_to_survivor(
    ghl: &GhlClient,
    duplicate_id: &str,
    survivor_id: &str,
) -> Result<Option<MovedHistory>, ApiError> {
    let Some(duplicate) = ghl.get_contact(duplicate_id).await? else {
        return Ok(None);
    };
    let mut moved = MovedHistory::default();

    let tags: Vec<String> = string_array(&duplicate, "tags")
        .into_iter()
        .filter(|t| t != DUPLICATE_TAG)
        .collect();
    if !tags.is_empty() {
        ghl.add_tags(survivor_id, &tags).await?;
        moved.tags = tags.len();
    }

    let notes = ghl.contact_notes(duplicate_id).await?;
    let tasks = ghl.contact_tasks(duplicate_id).await?;
    let open_tasks: Vec<&Value> = tasks
        .iter()
        .filter(|t| !t.get("completed").and_then(Value::as_bool).unwrap_or(false))
        .collect();
    let notes_to_move: Vec<&Value> = notes.iter().filter(|n| !is_duplicate_note(n)).collect();

    if !notes_to_move.is_empty() {
        let on_survivor = ghl.contact_notes(survivor_id).await?;
        for (_, body) in still_to_copy(notes_to_move, &on_survivor, duplicate_id) {
            ghl.create_note(survivor_id, &body).await?;
            moved.notes += 1;
        }
    }

    if !open_tasks.is_empty() {
        let on_survivor = ghl.contact_tasks(survivor_id).await?;
        for (task, body) in still_to_copy(open_tasks, &on_survivor, duplicate_id) {
            ghl.create_task(
                survivor_id,
                str_of(task, "title").unwrap_or("Task"),
                &body,
                str_of(task, "dueDate").unwrap_or_default(),
                str_of(task, "assignedTo"),
            )
            .await?;
            moved.open_tasks += 1;
        }
    }
    Ok(Some(moved))
}

/// The rows (notes or tasks) of the duplicate whose copy the survivor does not hold yet, each with
/// the body its copy gets (the original's, a line naming the duplicate, and the marker).
fn still_to_copy<'a>(
    rows: Vec<&'a Value>,
    on_survivor: &[Value],
    duplicate_id: &str,
) -> Vec<(&'a Value, String)> {
    rows.into_iter()
        .filter_map(|row| {
            let mark = moved_marker(str_of(row, "id")?);
            (!body_contains(on_survivor, &mark)).then(|| {
                let body = format!(
                    "{}\n(Moved from duplicate contact {duplicate_id}.)\n{mark}",
                    str_of(row, "body").unwrap_or_default()
                );
                (row, body)
            })
        })
        .collect()
}

/// The note `MarkDuplicate` left on the duplicate: it points at the survivor, so it has no place
/// on the survivor itself.
fn is_duplicate_note(note: &Value) -> bool {
    str_of(note, "body").is_some_and(|b| b.starts_with("Duplicate of contact "))
}

fn body_contains(rows: &[Value], mark: &str) -> bool {
    rows.iter()
        .any(|r| str_of(r, "body").is_some_and(|b| b.contains(mark)))
}

fn str_of<'a>(row: &'a Value, key: &str) -> Option<&'a str> {
    row.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn string_array(row: &Value, key: &str) -> Vec<String> {
    row.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_duplicate_note_stays_behind_and_markers_are_found() {
        assert!(is_duplicate_note(&json!({
            "body": "Duplicate of contact abc (found by contactsync).\n[contactsync:123]"
        })));
        assert!(!is_duplicate_note(
            &json!({"body": "Called, wants a quote"})
        ));
        let rows = vec![json!({"body": format!("x\n{}", moved_marker("n1"))})];
        assert!(body_contains(&rows, &moved_marker("n1")));
        assert!(!body_contains(&rows, &moved_marker("n2")));
    }
}
