//! What hangs off a contact: tasks, notes, appointments and tags.

use super::contacts::object_body;
use super::errors::GhlError;
use super::state::{Note, Task, iso};
use super::{Emu, GhlLocation};
use axum::Extension;
use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

type Body = Result<Json<Value>, axum::extract::rejection::JsonRejection>;

fn require_contact(emu: &GhlLocation, id: &str) -> Result<(), GhlError> {
    if emu
        .state
        .read()
        .expect("ghl state lock")
        .contacts
        .contains_key(id)
    {
        Ok(())
    } else {
        Err(GhlError::contact_not_found(id))
    }
}

fn respond(result: Result<Response, GhlError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

fn str_field(body: &Map<String, Value>, key: &str) -> Option<String> {
    body.get(key).and_then(Value::as_str).map(str::to_string)
}

/// Updates `dateUpdated` of a contact whose tags changed.
fn touch_contact(
    emu: &GhlLocation,
    id: &str,
    change: impl FnOnce(&mut super::state::Contact),
) -> Option<Vec<String>> {
    let mut state = emu.state.write().expect("ghl state lock");
    let mut contact = state.contacts.get(id).cloned()?;
    let before = contact.tags.clone();
    change(&mut contact);
    if contact.tags != before {
        let now = emu.core.clock.now();
        contact.date_updated = iso(now);
        contact.date_updated_ms = now.timestamp_millis();
        contact.searchable_from_ms =
            contact.date_updated_ms + emu.options.search_index_lag_ms as i64;
        emu.core.stats.record_write();
    }
    let tags = contact.tags.clone();
    state.insert(contact);
    Some(tags)
}

fn tags_of(body: &Map<String, Value>) -> Result<Vec<String>, GhlError> {
    match body.get("tags") {
        Some(Value::Array(items)) => Ok(items
            .iter()
            .filter_map(|t| t.as_str().map(|s| s.trim().to_string()))
            .filter(|t| !t.is_empty())
            .collect()),
        _ => Err(GhlError::unprocessable(vec![
            "tags must be an array".into(),
        ])),
    }
}

/// `POST /contacts/{id}/tags` → 201 `{tags}`.
pub(super) async fn add_tags(
    Extension(emu): Extension<Emu>,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    respond((|| {
        let tags = tags_of(&object_body(body)?)?;
        let result = touch_contact(&emu, &id, |c| {
            for t in tags {
                if !c.tags.iter().any(|x| x.eq_ignore_ascii_case(&t)) {
                    c.tags.push(t);
                }
            }
        })
        .ok_or_else(|| GhlError::contact_not_found(&id))?;
        Ok((StatusCode::CREATED, Json(json!({"tags": result}))).into_response())
    })())
}

/// `DELETE /contacts/{id}/tags` → 200 `{tags}`.
pub(super) async fn remove_tags(
    Extension(emu): Extension<Emu>,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    respond((|| {
        let tags = tags_of(&object_body(body)?)?;
        let result = touch_contact(&emu, &id, |c| {
            c.tags
                .retain(|x| !tags.iter().any(|t| t.eq_ignore_ascii_case(x)));
        })
        .ok_or_else(|| GhlError::contact_not_found(&id))?;
        Ok(Json(json!({"tags": result})).into_response())
    })())
}

/// `GET /contacts/{id}/tasks`.
pub(super) async fn list_tasks(Extension(emu): Extension<Emu>, Path(id): Path<String>) -> Response {
    respond((|| {
        require_contact(&emu, &id)?;
        let state = emu.state.read().expect("ghl state lock");
        let tasks = state.tasks.get(&id).cloned().unwrap_or_default();
        Ok(Json(json!({"tasks": tasks})).into_response())
    })())
}

/// `POST /contacts/{id}/tasks` → 201 `{task}`.
pub(super) async fn create_task(
    Extension(emu): Extension<Emu>,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    respond((|| {
        let body = object_body(body)?;
        require_contact(&emu, &id)?;
        let mut errors = Vec::new();
        let title = str_field(&body, "title");
        if title.is_none() {
            errors.push("title should not be empty".to_string());
        }
        let due = str_field(&body, "dueDate");
        if due.is_none() {
            errors.push("dueDate should not be empty".to_string());
        }
        let completed = body.get("completed").and_then(Value::as_bool);
        if completed.is_none() {
            errors.push("completed must be a boolean value".to_string());
        }
        if !errors.is_empty() {
            return Err(GhlError::unprocessable(errors));
        }
        let task = Task {
            id: emu.new_id(),
            contact_id: id.clone(),
            title: title.unwrap_or_default(),
            body: str_field(&body, "body"),
            assigned_to: str_field(&body, "assignedTo"),
            due_date: due.unwrap_or_default(),
            completed: completed.unwrap_or(false),
        };
        emu.state
            .write()
            .expect("ghl state lock")
            .tasks
            .entry(id)
            .or_default()
            .push(task.clone());
        emu.core.stats.record_write();
        Ok((StatusCode::CREATED, Json(json!({"task": task}))).into_response())
    })())
}

fn with_task(
    emu: &GhlLocation,
    contact: &str,
    task: &str,
    change: impl FnOnce(&mut Task) -> bool,
) -> Result<Task, GhlError> {
    require_contact(emu, contact)?;
    let mut state = emu.state.write().expect("ghl state lock");
    let t = state
        .tasks
        .get_mut(contact)
        .and_then(|ts| ts.iter_mut().find(|t| t.id == task))
        .ok_or_else(|| GhlError::bad_request(format!("Task with id {task} not found")))?;
    if change(t) {
        emu.core.stats.record_write();
    }
    Ok(t.clone())
}

/// `GET /contacts/{id}/tasks/{taskId}`.
pub(super) async fn get_task(
    Extension(emu): Extension<Emu>,
    Path((id, task)): Path<(String, String)>,
) -> Response {
    respond(
        with_task(&emu, &id, &task, |_| false).map(|t| Json(json!({"task": t})).into_response()),
    )
}

/// `PUT /contacts/{id}/tasks/{taskId}`.
pub(super) async fn update_task(
    Extension(emu): Extension<Emu>,
    Path((id, task)): Path<(String, String)>,
    body: Body,
) -> Response {
    respond((|| {
        let body = object_body(body)?;
        let t = with_task(&emu, &id, &task, |t| {
            let before = t.clone();
            if let Some(v) = str_field(&body, "title") {
                t.title = v;
            }
            if let Some(v) = str_field(&body, "body") {
                t.body = Some(v);
            }
            if let Some(v) = str_field(&body, "dueDate") {
                t.due_date = v;
            }
            if let Some(v) = body.get("completed").and_then(Value::as_bool) {
                t.completed = v;
            }
            if let Some(v) = str_field(&body, "assignedTo") {
                t.assigned_to = Some(v);
            }
            *t != before
        })?;
        Ok(Json(json!({"task": t})).into_response())
    })())
}

/// `PUT /contacts/{id}/tasks/{taskId}/completed`.
pub(super) async fn complete_task(
    Extension(emu): Extension<Emu>,
    Path((id, task)): Path<(String, String)>,
    body: Body,
) -> Response {
    respond((|| {
        let body = object_body(body)?;
        let completed = body
            .get("completed")
            .and_then(Value::as_bool)
            .ok_or_else(|| {
                GhlError::unprocessable(vec!["completed must be a boolean value".into()])
            })?;
        let t = with_task(&emu, &id, &task, |t| {
            let changed = t.completed != completed;
            t.completed = completed;
            changed
        })?;
        Ok(Json(json!({"task": t})).into_response())
    })())
}

/// `DELETE /contacts/{id}/tasks/{taskId}`.
pub(super) async fn delete_task(
    Extension(emu): Extension<Emu>,
    Path((id, task)): Path<(String, String)>,
) -> Response {
    respond((|| {
        require_contact(&emu, &id)?;
        let mut state = emu.state.write().expect("ghl state lock");
        let tasks = state.tasks.entry(id).or_default();
        let before = tasks.len();
        tasks.retain(|t| t.id != task);
        if tasks.len() == before {
            return Err(GhlError::bad_request(format!(
                "Task with id {task} not found"
            )));
        }
        emu.core.stats.record_write();
        Ok(Json(json!({"succeded": true})).into_response())
    })())
}

/// `GET /contacts/{id}/notes`.
pub(super) async fn list_notes(Extension(emu): Extension<Emu>, Path(id): Path<String>) -> Response {
    respond((|| {
        require_contact(&emu, &id)?;
        let state = emu.state.read().expect("ghl state lock");
        let notes = state.notes.get(&id).cloned().unwrap_or_default();
        Ok(Json(json!({"notes": notes})).into_response())
    })())
}

/// `POST /contacts/{id}/notes` → 201 `{note}`.
pub(super) async fn create_note(
    Extension(emu): Extension<Emu>,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    respond((|| {
        let body = object_body(body)?;
        require_contact(&emu, &id)?;
        let text = str_field(&body, "body")
            .filter(|b| !b.is_empty())
            .ok_or_else(|| GhlError::unprocessable(vec!["body should not be empty".into()]))?;
        let note = Note {
            id: emu.new_id(),
            contact_id: id.clone(),
            body: text,
            user_id: str_field(&body, "userId"),
            date_added: iso(emu.core.clock.now()),
        };
        emu.state
            .write()
            .expect("ghl state lock")
            .notes
            .entry(id)
            .or_default()
            .push(note.clone());
        emu.core.stats.record_write();
        Ok((StatusCode::CREATED, Json(json!({"note": note}))).into_response())
    })())
}

fn find_note(emu: &GhlLocation, contact: &str, note: &str) -> Result<Note, GhlError> {
    require_contact(emu, contact)?;
    emu.state
        .read()
        .expect("ghl state lock")
        .notes
        .get(contact)
        .and_then(|ns| ns.iter().find(|n| n.id == note).cloned())
        .ok_or_else(|| GhlError::bad_request(format!("Note with id {note} not found")))
}

/// `GET /contacts/{id}/notes/{noteId}`.
pub(super) async fn get_note(
    Extension(emu): Extension<Emu>,
    Path((id, note)): Path<(String, String)>,
) -> Response {
    respond(find_note(&emu, &id, &note).map(|n| Json(json!({"note": n})).into_response()))
}

/// `PUT /contacts/{id}/notes/{noteId}`.
pub(super) async fn update_note(
    Extension(emu): Extension<Emu>,
    Path((id, note)): Path<(String, String)>,
    body: Body,
) -> Response {
    respond((|| {
        let body = object_body(body)?;
        find_note(&emu, &id, &note)?;
        let mut state = emu.state.write().expect("ghl state lock");
        let n = state
            .notes
            .get_mut(&id)
            .and_then(|ns| ns.iter_mut().find(|n| n.id == note))
            .ok_or_else(|| GhlError::bad_request(format!("Note with id {note} not found")))?;
        if let Some(text) = str_field(&body, "body")
            && text != n.body
        {
            n.body = text;
            emu.core.stats.record_write();
        }
        Ok(Json(json!({"note": n.clone()})).into_response())
    })())
}

/// `DELETE /contacts/{id}/notes/{noteId}`.
pub(super) async fn delete_note(
    Extension(emu): Extension<Emu>,
    Path((id, note)): Path<(String, String)>,
) -> Response {
    respond((|| {
        find_note(&emu, &id, &note)?;
        let mut state = emu.state.write().expect("ghl state lock");
        if let Some(ns) = state.notes.get_mut(&id) {
            ns.retain(|n| n.id != note);
        }
        emu.core.stats.record_write();
        Ok(Json(json!({"succeded": true})).into_response())
    })())
}

/// `GET /contacts/{id}/appointments` → `{events}`.
pub(super) async fn appointments(
    Extension(emu): Extension<Emu>,
    Path(id): Path<String>,
) -> Response {
    respond((|| {
        require_contact(&emu, &id)?;
        let state = emu.state.read().expect("ghl state lock");
        let events = state.appointments.get(&id).cloned().unwrap_or_default();
        Ok(Json(json!({"events": events})).into_response())
    })())
}
