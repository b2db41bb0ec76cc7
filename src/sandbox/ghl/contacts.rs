//! Contact CRUD, upsert, duplicate search, the deprecated list and contacts by business.

use super::errors::GhlError;
use super::fields::{self, Dto};
use super::state::{Contact, GhlState, iso};
use super::{Emu, GhlLocation};
use axum::Extension;
use axum::Json;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

type Body = Result<Json<Value>, axum::extract::rejection::JsonRejection>;

/// The JSON object of a request body, or the 400/422 GHL answers for a bad one.
pub(super) fn object_body(body: Body) -> Result<Map<String, Value>, GhlError> {
    match body {
        Ok(Json(Value::Object(map))) => Ok(map),
        Ok(Json(_)) => Err(GhlError::unprocessable(vec![
            "body must be an object".into(),
        ])),
        Err(e) => Err(GhlError::bad_request(format!(
            "Invalid JSON body: {}",
            e.body_text()
        ))),
    }
}

fn check_location(emu: &GhlLocation, given: Option<&str>) -> Result<(), GhlError> {
    match given {
        None => Err(GhlError::unprocessable(vec![
            "locationId should not be empty".into(),
        ])),
        Some(id) if id == emu.location_id => Ok(()),
        Some(_) => Err(GhlError::forbidden_location()),
    }
}

/// The contact a new email/phone would collide with (email first, then phone; the oldest wins).
pub(super) fn find_duplicate<'a>(
    state: &'a GhlState,
    email: Option<&str>,
    phone: Option<&str>,
) -> Option<&'a Contact> {
    let oldest = |set: Option<&std::collections::BTreeSet<(i64, String)>>| {
        set.and_then(|s| s.iter().next())
            .and_then(|(_, id)| state.contacts.get(id))
    };
    let email = email
        .map(|e| e.trim().to_lowercase())
        .filter(|e| !e.is_empty());
    if let Some(found) = email.and_then(|e| oldest(state.by_email.get(&e))) {
        return Some(found);
    }
    phone
        .and_then(super::state::phone_key)
        .and_then(|key| oldest(state.by_phone.get(&key)))
}

fn new_contact(emu: &GhlLocation, body: &Map<String, Value>) -> Contact {
    let now = emu.core.clock.now();
    let mut contact = super::state::contact_from_seed(
        &emu.location_id,
        &crate::sandbox::seed::SeedContact {
            id: emu.new_id(),
            date_added: now,
            date_updated: now,
            ..Default::default()
        },
    );
    fields::apply(&mut contact, body);
    contact.searchable_from_ms = now.timestamp_millis() + emu.options.search_index_lag_ms as i64;
    contact
}

fn touch(emu: &GhlLocation, contact: &mut Contact) {
    let now = emu.core.clock.now();
    contact.date_updated = iso(now);
    contact.date_updated_ms = now.timestamp_millis();
    contact.searchable_from_ms = contact.date_updated_ms + emu.options.search_index_lag_ms as i64;
}

/// `POST /contacts/`.
pub(super) async fn create(Extension(emu): Extension<Emu>, body: Body) -> Response {
    let result: Result<Response, GhlError> = (|| {
        let body = object_body(body)?;
        let errors = fields::validate(&body, Dto::Create);
        if !errors.is_empty() {
            return Err(GhlError::unprocessable(errors));
        }
        check_location(&emu, body.get("locationId").and_then(Value::as_str))?;
        let mut state = emu.state.write().expect("ghl state lock");
        if !emu.options.allow_duplicates {
            let email = body.get("email").and_then(Value::as_str);
            let phone = body.get("phone").and_then(Value::as_str);
            if let Some(existing) = find_duplicate(&state, email, phone) {
                let matching = if email.is_some_and(|e| {
                    existing.email_lower_case.as_deref() == Some(e.trim().to_lowercase().as_str())
                }) {
                    "email"
                } else {
                    "phone"
                };
                return Err(GhlError {
                    status: StatusCode::BAD_REQUEST,
                    body: json!({
                        "statusCode": 400,
                        "message": "This location does not allow duplicated contacts.",
                        "meta": {"contactId": existing.id, "contactName": existing.contact_name, "matchingField": matching}
                    }),
                });
            }
        }
        let contact = new_contact(&emu, &body);
        let json = contact.to_json();
        state.insert(contact);
        emu.core.stats.record_write();
        emit_contact_event(&emu, "ContactCreate", &json);
        Ok((StatusCode::CREATED, Json(json!({"contact": json}))).into_response())
    })();
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /contacts/upsert`.
pub(super) async fn upsert(Extension(emu): Extension<Emu>, body: Body) -> Response {
    let result: Result<Response, GhlError> = (|| {
        let mut body = object_body(body)?;
        let errors = fields::validate(&body, Dto::Upsert);
        if !errors.is_empty() {
            return Err(GhlError::unprocessable(errors));
        }
        check_location(&emu, body.get("locationId").and_then(Value::as_str))?;
        let force_new = body
            .remove("createNewIfDuplicateAllowed")
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
            && emu.options.allow_duplicates;
        let mut state = emu.state.write().expect("ghl state lock");
        let email = body
            .get("email")
            .and_then(Value::as_str)
            .map(str::to_string);
        let phone = body
            .get("phone")
            .and_then(Value::as_str)
            .map(str::to_string);
        let existing = (!force_new)
            .then(|| {
                find_duplicate(&state, email.as_deref(), phone.as_deref()).map(|c| c.id.clone())
            })
            .flatten();
        let trace = format!("trace-{}", emu.new_id());
        match existing {
            Some(id) => {
                let mut contact = state.contacts.get(&id).cloned().expect("found above");
                let before = contact.clone();
                // The first matching field wins; a conflicting second field is ignored, as GHL does.
                let matched_by_email = email.as_deref().is_some_and(|e| {
                    contact.email_lower_case.as_deref() == Some(e.trim().to_lowercase().as_str())
                });
                if matched_by_email && contact.phone.is_some() {
                    body.remove("phone");
                }
                body.remove("locationId");
                fields::apply(&mut contact, &body);
                if contact != before {
                    touch(&emu, &mut contact);
                    emu.core.stats.record_write();
                    emit_change_events(&emu, &before, &contact);
                }
                let json = contact.to_json();
                state.insert(contact);
                Ok(Json(json!({"new": false, "contact": json, "traceId": trace})).into_response())
            }
            None => {
                let contact = new_contact(&emu, &body);
                let json = contact.to_json();
                state.insert(contact);
                emu.core.stats.record_write();
                emit_contact_event(&emu, "ContactCreate", &json);
                Ok(Json(json!({"new": true, "contact": json, "traceId": trace})).into_response())
            }
        }
    })();
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /contacts/{id}`.
pub(super) async fn get_one(Extension(emu): Extension<Emu>, Path(id): Path<String>) -> Response {
    let state = emu.state.read().expect("ghl state lock");
    match state.contacts.get(&id) {
        Some(c) => Json(json!({"contact": c.to_json()})).into_response(),
        None => GhlError::contact_not_found(&id).into_response(),
    }
}

/// `PUT /contacts/{id}`.
pub(super) async fn update(
    Extension(emu): Extension<Emu>,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let result: Result<Response, GhlError> = (|| {
        let body = object_body(body)?;
        let errors = fields::validate(&body, Dto::Update);
        if !errors.is_empty() {
            return Err(GhlError::unprocessable(errors));
        }
        let mut state = emu.state.write().expect("ghl state lock");
        let mut contact = state
            .contacts
            .get(&id)
            .cloned()
            .ok_or_else(|| GhlError::contact_not_found(&id))?;
        let before = contact.clone();
        fields::apply(&mut contact, &body);
        if contact != before {
            touch(&emu, &mut contact);
            emu.core.stats.record_write();
            emit_change_events(&emu, &before, &contact);
        }
        let json = contact.to_json();
        state.insert(contact);
        Ok(Json(json!({"succeded": true, "contact": json})).into_response())
    })();
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `DELETE /contacts/{id}`.
pub(super) async fn delete(Extension(emu): Extension<Emu>, Path(id): Path<String>) -> Response {
    let mut state = emu.state.write().expect("ghl state lock");
    match state.remove(&id) {
        Some(_) => {
            emu.core.stats.record_write();
            emit_contact_event(&emu, "ContactDelete", &json!({"id": id}));
            Json(json!({"succeded": true})).into_response()
        }
        None => GhlError::contact_not_found(&id).into_response(),
    }
}

/// `GET /contacts/search/duplicate?locationId=&email=&number=`.
pub(super) async fn duplicate(
    Extension(emu): Extension<Emu>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(e) = check_location(&emu, q.get("locationId").map(String::as_str)) {
        return e.into_response();
    }
    let state = emu.state.read().expect("ghl state lock");
    let found = find_duplicate(
        &state,
        q.get("email").map(String::as_str),
        q.get("number").map(String::as_str),
    );
    Json(json!({"contact": found.map(Contact::to_list_json)})).into_response()
}

fn parse_limit(q: &HashMap<String, String>, default: usize, max: usize) -> Result<usize, GhlError> {
    match q.get("limit") {
        None => Ok(default),
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(GhlError::unprocessable(vec![format!(
                "limit must not be greater than {max}"
            )])),
        },
    }
}

/// `GET /contacts/?locationId=&limit=&startAfterId=&startAfter=` (deprecated; `limit` ≤ 100).
pub(super) async fn list(
    Extension(emu): Extension<Emu>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let result: Result<Response, GhlError> = (|| {
        check_location(&emu, q.get("locationId").map(String::as_str))?;
        let limit = parse_limit(&q, 20, 100)?;
        let state = emu.state.read().expect("ghl state lock");
        let after = match (q.get("startAfter"), q.get("startAfterId")) {
            (Some(ms), Some(id)) => Some((ms.parse::<i64>().unwrap_or(0), id.clone())),
            _ => None,
        };
        let iter: Box<dyn Iterator<Item = &(i64, String)>> = match &after {
            Some(key) => Box::new(state.by_added.range((
                std::ops::Bound::Excluded(key.clone()),
                std::ops::Bound::Unbounded,
            ))),
            None => Box::new(state.by_added.iter()),
        };
        let page: Vec<&Contact> = iter
            .take(limit)
            .filter_map(|(_, id)| state.contacts.get(id))
            .collect();
        let last = page.last();
        let meta = json!({
            "total": state.contacts.len(),
            "startAfterId": last.map(|c| c.id.clone()),
            "startAfter": last.map(|c| c.date_added_ms),
            "nextPageUrl": last.map(|c| format!(
                "/contacts/?locationId={}&limit={limit}&startAfterId={}&startAfter={}",
                emu.location_id, c.id, c.date_added_ms)),
        });
        Ok(Json(json!({
            "contacts": page.iter().map(|c| c.to_list_json()).collect::<Vec<_>>(),
            "count": state.contacts.len(),
            "meta": meta,
        }))
        .into_response())
    })();
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /contacts/business/{businessId}?locationId=&limit=&skip=`.
pub(super) async fn by_business(
    Extension(emu): Extension<Emu>,
    Path(business_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let result: Result<Response, GhlError> = (|| {
        check_location(&emu, q.get("locationId").map(String::as_str))?;
        let limit = parse_limit(&q, 25, 100)?;
        let skip = q
            .get("skip")
            .map(|s| s.parse::<usize>())
            .transpose()
            .map_err(|_| GhlError::unprocessable(vec!["skip must be a number".into()]))?
            .unwrap_or(0);
        let state = emu.state.read().expect("ghl state lock");
        let mut members: Vec<&Contact> = state
            .contacts
            .values()
            .filter(|c| c.business_id.as_deref() == Some(business_id.as_str()))
            .collect();
        members.sort_by(|a, b| a.date_added_ms.cmp(&b.date_added_ms).then(a.id.cmp(&b.id)));
        let count = members.len();
        let page: Vec<Value> = members
            .into_iter()
            .skip(skip)
            .take(limit)
            .map(Contact::to_list_json)
            .collect();
        Ok(Json(json!({"contacts": page, "count": count})).into_response())
    })();
    result.unwrap_or_else(IntoResponse::into_response)
}

/// A contact webhook: the event's fields are the contact's, flat, as GHL sends them.
fn emit_contact_event(emu: &Emu, event_type: &str, contact: &Value) {
    let fields = contact.as_object().cloned().unwrap_or_default();
    emu.emit_webhook(event_type, fields);
}

/// What GHL sends for a change: ContactUpdate, and ContactDndUpdate / ContactTagUpdate when DND or
/// tags changed.
pub(super) fn emit_change_events(emu: &Emu, before: &Contact, after: &Contact) {
    let json = after.to_json();
    emit_contact_event(emu, "ContactUpdate", &json);
    if before.dnd != after.dnd || before.dnd_settings != after.dnd_settings {
        emit_contact_event(emu, "ContactDndUpdate", &json);
    }
    if before.tags != after.tags {
        emit_contact_event(emu, "ContactTagUpdate", &json);
    }
}

/// Which location a control route acts on: `?location=ID`, else the first.
#[derive(Debug, Deserialize)]
pub(super) struct ControlLocation {
    location: Option<String>,
}

/// `POST /_sandbox/ghl/contacts/{id}/type {"type": "customer"}`: a user changing a contact's type
/// in GHL's UI. GHL's API cannot (its create, update and upsert bodies have no `type`), yet a
/// reminder on a type change must be rehearsed: this is the UI's edit, with its ContactUpdate
/// webhook, and it counts as no API write.
pub(super) async fn set_type_as_a_user(
    axum::extract::State(app): axum::extract::State<super::App>,
    Path(id): Path<String>,
    Query(at): Query<ControlLocation>,
    Json(body): Json<Value>,
) -> Response {
    let location_id = at
        .location
        .unwrap_or_else(|| app.credentials.location_id.clone());
    let Some(emu) = app.location(&location_id) else {
        return (StatusCode::NOT_FOUND, format!("no location {location_id}")).into_response();
    };
    let Some(new_type) = body.get("type").and_then(Value::as_str) else {
        return (StatusCode::BAD_REQUEST, "body must be {\"type\": \"...\"}").into_response();
    };
    let mut state = emu.state.write().expect("ghl state lock");
    let Some(mut contact) = state.contacts.get(&id).cloned() else {
        return GhlError::contact_not_found(&id).into_response();
    };
    let before = contact.clone();
    contact.contact_type = Some(new_type.to_string());
    if contact != before {
        touch(emu, &mut contact);
        emit_change_events(emu, &before, &contact);
    }
    let json = contact.to_json();
    state.insert(contact);
    Json(json!({"contact": json})).into_response()
}
