//! `POST /messages`, `GET /messages/send`, `GET /messages`, `GET /messages/{id}` and
//! `GET /messages/{id}/relatedReceivedMessages`.

use super::errors::BulkSmsError;
use super::filter;
use super::state::{DEDUP_WINDOW_HOURS, DedupEntry, Direction, Message, Outcome};
use super::{BulkSmsEmulator, Emu};
use crate::sms_encoding::{self, Encoding};
use axum::Json;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;

/// Credits one part costs per routing group (documented choice: BulkSMS prices vary by country).
fn credits_per_part(routing_group: &str) -> Option<f64> {
    match routing_group {
        "ECONOMY" => Some(0.8),
        "STANDARD" => Some(1.0),
        "PREMIUM" => Some(1.5),
        _ => None,
    }
}

/// The test number: delivery fails, nothing is charged.
pub const TEST_NUMBER: &str = "1111111";

/// Digits of a recipient, or why it is not a number.
fn recipient_digits(raw: &str) -> Result<String, BulkSmsError> {
    let trimmed = raw.trim();
    let body = trimmed.strip_prefix('+').unwrap_or(trimmed);
    if body.len() < 7 || body.len() > 15 || !body.chars().all(|c| c.is_ascii_digit()) {
        return Err(BulkSmsError::bad_request(format!(
            "The recipient '{raw}' is not a valid international number (7 to 15 digits, optionally starting with +)"
        )));
    }
    Ok(body.to_string())
}

fn recipients(to: &Value) -> Result<Vec<String>, BulkSmsError> {
    match to {
        Value::String(s) => Ok(vec![recipient_digits(s)?]),
        Value::Array(items) => {
            let mut all = Vec::new();
            for item in items {
                all.extend(recipients(item)?);
            }
            Ok(all)
        }
        Value::Object(map) => match map.get("type").and_then(Value::as_str) {
            Some("INTERNATIONAL") | None => {
                let address = map.get("address").and_then(Value::as_str).ok_or_else(|| {
                    BulkSmsError::bad_request("A recipient object needs an address")
                })?;
                Ok(vec![recipient_digits(address)?])
            }
            Some("GROUP") => Err(BulkSmsError::bad_request(
                "GROUP recipients are managed in the web app and are not emulated by the sandbox",
            )),
            Some(other) => Err(BulkSmsError::bad_request(format!(
                "Unknown recipient type '{other}'"
            ))),
        },
        _ => Err(BulkSmsError::bad_request("'to' is required")),
    }
}

struct Planned {
    to: String,
    from: String,
    body: String,
    encoding: &'static str,
    parts: u32,
    cost: f64,
    user_supplied_id: Option<String>,
}

fn plan_entry(entry: &Value, auto_unicode: bool) -> Result<Vec<Planned>, BulkSmsError> {
    let map = entry
        .as_object()
        .ok_or_else(|| BulkSmsError::bad_request("Each message must be a JSON object"))?;
    let body = map
        .get("body")
        .and_then(Value::as_str)
        .ok_or_else(|| BulkSmsError::bad_request("'body' is required"))?;
    let to = recipients(map.get("to").unwrap_or(&Value::Null))?;
    let user_supplied_id = map
        .get("userSuppliedId")
        .and_then(Value::as_str)
        .map(str::to_string);
    if user_supplied_id
        .as_ref()
        .is_some_and(|u| u.chars().count() > 20)
    {
        return Err(BulkSmsError::bad_request(
            "userSuppliedId may not be longer than 20 characters",
        ));
    }
    let from = match map.get("from") {
        Some(Value::String(s)) => s.trim_start_matches('+').to_string(),
        Some(Value::Object(o)) => o
            .get("address")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim_start_matches('+')
            .to_string(),
        _ => "BulkSMS".to_string(),
    };
    let requested = map
        .get("encoding")
        .and_then(Value::as_str)
        .unwrap_or("TEXT");
    let (encoding, units_body): (Encoding, String) = match requested {
        "UNICODE" => (Encoding::Unicode, body.to_string()),
        "TEXT" => match sms_encoding::encoding_for(body, auto_unicode) {
            Encoding::Unicode => (Encoding::Unicode, body.to_string()),
            Encoding::Text => (Encoding::Text, sms_encoding::text_substituted(body)),
        },
        "BINARY" => {
            return Err(BulkSmsError::bad_request(
                "BINARY encoding is not emulated by the sandbox",
            ));
        }
        other => {
            return Err(BulkSmsError::bad_request(format!(
                "Invalid encoding '{other}'"
            )));
        }
    };
    let count = sms_encoding::count_parts(&units_body, encoding);
    let max_parts = map
        .get("longMessageMaxParts")
        .and_then(Value::as_u64)
        .unwrap_or(3) as u32;
    if count.parts > max_parts {
        return Err(BulkSmsError::bad_request(format!(
            "The message needs {} parts but longMessageMaxParts is {max_parts}",
            count.parts
        )));
    }
    let routing = map
        .get("routingGroup")
        .and_then(Value::as_str)
        .unwrap_or("STANDARD");
    let per_part = credits_per_part(routing)
        .ok_or_else(|| BulkSmsError::bad_request(format!("Invalid routingGroup '{routing}'")))?;
    Ok(to
        .into_iter()
        .map(|to| {
            let cost = if to == TEST_NUMBER {
                0.0
            } else {
                per_part * f64::from(count.parts)
            };
            Planned {
                to,
                from: from.clone(),
                body: units_body.clone(),
                encoding: encoding.api_name(),
                parts: count.parts,
                cost,
                user_supplied_id: user_supplied_id.clone(),
            }
        })
        .collect())
}

/// Decides how a new message to `to` ends, reproducibly from the seed and its id.
fn outcome_for(emu: &BulkSmsEmulator, id: u64, to: &str, blocked: bool) -> Outcome {
    if blocked {
        return Outcome::Failed("BLOCKED");
    }
    if to == TEST_NUMBER {
        return Outcome::Failed("HANDSET_ERROR");
    }
    let roll = (id ^ emu.core.seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 54; // 0..1023
    match roll {
        0..=15 => Outcome::Failed("HANDSET_ERROR"),
        16..=25 => Outcome::Failed("EXPIRED"),
        26..=30 => Outcome::Failed("NOT_SENT"),
        _ => Outcome::Delivered,
    }
}

fn submit(
    emu: &BulkSmsEmulator,
    entries: &[Value],
    query: &HashMap<String, String>,
) -> Result<Response, BulkSmsError> {
    let auto_unicode = query.get("auto-unicode").is_some_and(|v| v == "true");
    let dedup_id = match query.get("deduplication-id") {
        Some(raw) => Some(raw.parse::<i32>().map_err(|_| {
            BulkSmsError::bad_request(format!(
                "Invalid deduplication-id '{raw}': an int32 is required"
            ))
        })? as i64),
        None => None,
    };
    let now = emu.core.clock.now();
    let mut account = emu.account.lock().expect("account lock");
    if let Some(id) = dedup_id
        && let Some(entry) = account.dedup.get(&id)
        && now - entry.at < chrono::Duration::hours(DEDUP_WINDOW_HOURS)
    {
        // A replay within the window answers the first response and sends nothing.
        return Ok((StatusCode::CREATED, Json(entry.response.clone())).into_response());
    }
    let mut planned = Vec::new();
    for entry in entries {
        planned.extend(plan_entry(entry, auto_unicode)?);
    }
    if planned.is_empty() {
        return Err(BulkSmsError::bad_request("No messages to send"));
    }
    if planned.len() > 30_000 {
        return Err(BulkSmsError::bad_request(
            "At most 30000 messages may be sent in one request",
        ));
    }
    let cost: f64 = planned.iter().map(|p| p.cost).sum();
    if cost > account.credits + 1e-9 {
        return Err(BulkSmsError::insufficient_credits(format!(
            "The request needs {cost} credits; the balance is {}",
            account.credits
        )));
    }
    let billable = planned.iter().filter(|p| p.to != TEST_NUMBER).count() as i64;
    if billable > account.quota_remaining(now) {
        return Err(BulkSmsError::quota_exceeded(
            "The daily quota of the account does not allow this many messages",
        ));
    }
    account.next_submission += 1;
    let submission_id = format!("2-{:020}", account.next_submission);
    let mut answer = Vec::new();
    let mut reports = Vec::new();
    for p in planned {
        account.next_message_id += 1;
        let id = account.next_message_id;
        let blocked = account.blocked.contains_key(&p.to);
        let message = Message {
            id,
            direction: Direction::Sent,
            outcome: outcome_for(emu, id, &p.to, blocked),
            from: p.from,
            to: p.to,
            body: p.body,
            encoding: p.encoding,
            submission_id: submission_id.clone(),
            submitted_at: now,
            user_supplied_id: p.user_supplied_id,
            related_sent_message_id: None,
            parts: p.parts,
            credit_cost: p.cost,
        };
        answer.push(message.to_json(now, true));
        // The status report a SENT webhook gets: the message as it ends up (delivered, failed).
        reports.push(message.to_json(now + chrono::Duration::days(3), false));
        account.credits -= p.cost;
        if message.to != TEST_NUMBER {
            account.quota_used_today += 1;
        }
        account.insert(message);
    }
    let response = Value::Array(answer);
    if let Some(id) = dedup_id {
        account.dedup.insert(
            id,
            DedupEntry {
                at: now,
                response: response.clone(),
            },
        );
    }
    emu.core.stats.record_write();
    emu.core.webhooks.emit_bulksms_to_webhooks(
        &emu.core.faults.profile(),
        account.webhooks.values().map(|w| &w.body),
        "SENT",
        &reports,
    );
    Ok((StatusCode::CREATED, Json(response)).into_response())
}

/// `POST /messages`: one SubmissionEntry or an array of them.
pub(super) async fn send(
    State(emu): State<Emu>,
    Query(query): Query<HashMap<String, String>>,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let entries = match body {
        Ok(Json(Value::Array(items))) => items,
        Ok(Json(v @ Value::Object(_))) => vec![v],
        Ok(Json(_)) => {
            return BulkSmsError::bad_request(
                "The body must be a message object or an array of them",
            )
            .into_response();
        }
        Err(e) => {
            return BulkSmsError::bad_request(format!("Invalid JSON: {}", e.body_text()))
                .into_response();
        }
    };
    submit(&emu, &entries, &query).unwrap_or_else(IntoResponse::into_response)
}

/// `GET /messages/send?to=&body=`: the same send as a GET.
pub(super) async fn send_get(
    State(emu): State<Emu>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let entry = json!({
        "to": query.get("to").cloned().unwrap_or_default(),
        "body": query.get("body").cloned().unwrap_or_default(),
    });
    submit(&emu, &[entry], &query).unwrap_or_else(IntoResponse::into_response)
}

/// How many rows a page that would be full comes back short by: the spec says `limit` "is not a
/// guarantee" (150 messages, `limit=50`, and 49 may come back although more exist). Decided from
/// the seed and the page's first id, so a reread of the same page is short the same way; never the
/// whole page, so a short page is never mistaken for the end by a client that pages correctly.
fn short_by(seed: u64, first_id: u64, limit: usize) -> usize {
    let roll = (first_id ^ seed.rotate_left(13)).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 61; // 0..7
    // About half of the full pages lose 1 to 3 rows.
    let short = match roll {
        0..=3 => 0,
        n => ((n - 4) % 3 + 1) as usize,
    };
    short.min(limit.saturating_sub(1))
}

/// Cuts a full page short as the real service may (see [`short_by`]).
fn as_served(mut page: Vec<Value>, seed: u64, first_id: Option<u64>, limit: usize) -> Vec<Value> {
    if page.len() == limit
        && let Some(first_id) = first_id
    {
        page.truncate(limit - short_by(seed, first_id, limit));
    }
    page
}

/// The `filter` of a raw query string as the service reads it: clauses after `filter=` joined by
/// a raw `&` (the spec's own example is `type%3DSENT&submission.id%3D1-00000000000522347562`,
/// and curl users write `filter=type=SENT&id<5`) belong to the filter, not to new parameters.
fn filter_of(raw_query: Option<&str>) -> String {
    let mut filter: Option<String> = None;
    for (key, value) in url::form_urlencoded::parse(raw_query.unwrap_or("").as_bytes()) {
        match (key.as_ref(), filter.as_mut()) {
            ("filter", _) => filter = Some(value.into_owned()),
            ("limit" | "sortOrder", _) | (_, None) => {}
            (clause, Some(filter)) => {
                filter.push('&');
                filter.push_str(clause);
                if !value.is_empty() {
                    filter.push('=');
                    filter.push_str(&value);
                }
            }
        }
    }
    filter.unwrap_or_default()
}

/// `GET /messages?limit=&sortOrder=&filter=`.
pub(super) async fn list(
    State(emu): State<Emu>,
    Query(query): Query<HashMap<String, String>>,
    RawQuery(raw_query): RawQuery,
) -> Response {
    let result: Result<Response, BulkSmsError> = (|| {
        let limit = match query.get("limit") {
            None => 1000,
            Some(raw) => match raw.parse::<usize>() {
                // Documented choice: a limit above 1000 is served as 1000 ("may return fewer").
                Ok(n) if n >= 1 => n.min(1000),
                _ => return Err(BulkSmsError::bad_request(format!("Invalid limit '{raw}'"))),
            },
        };
        let ascending = match query.get("sortOrder").map(String::as_str) {
            None | Some("DESCENDING") => false,
            Some("ASCENDING") => true,
            Some(other) => {
                return Err(BulkSmsError::bad_request(format!(
                    "Invalid sortOrder '{other}': use ASCENDING or DESCENDING"
                )));
            }
        };
        let clauses = filter::parse(&filter_of(raw_query.as_deref()))?;
        let now = emu.core.clock.now();
        let seed = emu.core.seed;
        let serve = |rows: &[&Message]| {
            let page = rows.iter().map(|m| m.to_json(now, false)).collect();
            as_served(page, seed, rows.first().map(|m| m.id), limit)
        };
        let account = emu.account.lock().expect("account lock");
        if let Some(filter::Clause::UserSuppliedId(u)) = clauses
            .iter()
            .find(|c| matches!(c, filter::Clause::UserSuppliedId(_)))
        {
            let mut ids = account.by_user_id.get(u).cloned().unwrap_or_default();
            ids.sort_unstable();
            if !ascending {
                ids.reverse();
            }
            let rows: Vec<&Message> = ids
                .iter()
                .filter_map(|id| account.messages.get(id))
                .filter(|m| filter::accepts(&clauses, m, now))
                .take(limit)
                .collect();
            return Ok(Json(serve(&rows)).into_response());
        }
        let (above, below) = filter::id_bounds(&clauses);
        let range = account.messages.range((
            above.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded),
            below.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded),
        ));
        let pick = |m: &&Message| filter::accepts(&clauses, m, now);
        let rows: Vec<&Message> = if ascending {
            range.map(|(_, m)| m).filter(pick).take(limit).collect()
        } else {
            range
                .rev()
                .map(|(_, m)| m)
                .filter(pick)
                .take(limit)
                .collect()
        };
        Ok(Json(serve(&rows)).into_response())
    })();
    result.unwrap_or_else(IntoResponse::into_response)
}

fn parse_id(raw: &str) -> Result<u64, BulkSmsError> {
    raw.parse()
        .map_err(|_| BulkSmsError::not_found(format!("Message with id '{raw}' does not exist")))
}

/// `GET /messages/{id}`.
pub(super) async fn get_one(State(emu): State<Emu>, Path(id): Path<String>) -> Response {
    let result: Result<Response, BulkSmsError> = (|| {
        let n = parse_id(&id)?;
        let now = emu.core.clock.now();
        let account = emu.account.lock().expect("account lock");
        let m = account.messages.get(&n).ok_or_else(|| {
            BulkSmsError::not_found(format!("Message with id '{id}' does not exist"))
        })?;
        Ok(Json(m.to_json(now, false)).into_response())
    })();
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /messages/{id}/relatedReceivedMessages`.
pub(super) async fn related(State(emu): State<Emu>, Path(id): Path<String>) -> Response {
    let result: Result<Response, BulkSmsError> = (|| {
        let n = parse_id(&id)?;
        let now = emu.core.clock.now();
        let account = emu.account.lock().expect("account lock");
        if !account.messages.contains_key(&n) {
            return Err(BulkSmsError::not_found(format!(
                "Message with id '{id}' does not exist"
            )));
        }
        let replies: Vec<Value> = account
            .messages
            .range(n + 1..)
            .map(|(_, m)| m)
            .filter(|m| m.related_sent_message_id == Some(n))
            .map(|m| m.to_json(now, false))
            .collect();
        Ok(Json(replies).into_response())
    })();
    result.unwrap_or_else(IntoResponse::into_response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clauses_joined_by_a_raw_ampersand_stay_in_the_filter() {
        assert_eq!(filter_of(Some("filter=id%3C5&limit=3")), "id<5");
        assert_eq!(
            filter_of(Some("filter=type=SENT&id<5&limit=3&sortOrder=ASCENDING")),
            "type=SENT&id<5"
        );
        assert_eq!(
            filter_of(Some("filter=type%3DSENT&submission.id%3D1-0005")),
            "type=SENT&submission.id=1-0005"
        );
        assert_eq!(
            filter_of(Some(
                "filter=submission.date>=2017-01-01T10:00:00%2B01:00&limit=1"
            )),
            "submission.date>=2017-01-01T10:00:00+01:00"
        );
        assert_eq!(filter_of(Some("limit=3&stray=1")), "");
        assert_eq!(filter_of(None), "");
    }

    #[test]
    fn some_full_pages_come_back_short_but_never_empty() {
        let page = |n: usize| (0..n).map(|i| json!(i)).collect::<Vec<Value>>();
        let shorts: Vec<usize> = (0..200u64)
            .map(|first| 1000 - as_served(page(1000), 7, Some(first * 1013), 1000).len())
            .collect();
        assert!(shorts.iter().all(|s| *s <= 3));
        let short_pages = shorts.iter().filter(|s| **s > 0).count();
        assert!(
            (50..150).contains(&short_pages),
            "about half the full pages are short: {short_pages} of 200"
        );
        // The same page is short the same way; a page that is not full is served whole.
        assert_eq!(
            as_served(page(1000), 7, Some(5), 1000).len(),
            as_served(page(1000), 7, Some(5), 1000).len()
        );
        assert_eq!(as_served(page(999), 7, Some(5), 1000).len(), 999);
        for first in 0..50 {
            assert_eq!(
                as_served(page(1), 7, Some(first), 1).len(),
                1,
                "never empty"
            );
        }
    }
}
