//! `POST /contacts/search`: filters, sort, `page` + `pageLimit` up to 10,000 records, `searchAfter`
//! keyset paging beyond. Sorting by `dateUpdated` or `dateAdded` walks an index, so a page costs
//! O(page) however large the location is.

use super::Emu;
use super::contacts::object_body;
use super::errors::GhlError;
use super::state::{Contact, GhlState, phone_key};
use axum::Extension;
use axum::Json;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::cmp::Ordering;
use std::ops::Bound;

/// Largest `pageLimit`.
pub const MAX_PAGE_LIMIT: u64 = 500;
/// Records reachable with `page` + `pageLimit`.
pub const MAX_STANDARD_RECORDS: u64 = 10_000;

#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum SortValue {
    Num(i64),
    Text(String),
}

impl SortValue {
    fn to_json(&self) -> Value {
        match self {
            SortValue::Num(n) => json!(n),
            SortValue::Text(s) => json!(s),
        }
    }
}

fn field_value(contact: &Contact, field: &str) -> Value {
    match field {
        "dateAdded" => json!(contact.date_added_ms),
        "dateUpdated" => json!(contact.date_updated_ms),
        _ => {
            let json = contact.to_json();
            let mut cur = &json;
            for part in field.split('.') {
                cur = match cur.get(part) {
                    Some(v) => v,
                    None => return Value::Null,
                };
            }
            cur.clone()
        }
    }
}

fn sort_value(contact: &Contact, field: &str) -> SortValue {
    match field {
        "dateAdded" => SortValue::Num(contact.date_added_ms),
        "dateUpdated" => SortValue::Num(contact.date_updated_ms),
        _ => match field_value(contact, field) {
            Value::Number(n) => SortValue::Num(n.as_i64().unwrap_or(0)),
            Value::String(s) => SortValue::Text(s.to_lowercase()),
            Value::Null => SortValue::Text(String::new()),
            other => SortValue::Text(other.to_string()),
        },
    }
}

/// Reads a date bound given as epoch ms or ISO-8601.
fn as_millis(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|d| d.timestamp_millis())
            .or_else(|| s.parse().ok()),
        _ => None,
    }
}

/// A parsed filter.
#[derive(Debug, Clone)]
enum Filter {
    Leaf {
        field: String,
        operator: String,
        value: Value,
    },
    Group {
        any: bool,
        filters: Vec<Filter>,
    },
}

fn parse_filter(v: &Value) -> Result<Filter, String> {
    if let Some(group) = v.get("group").and_then(Value::as_str) {
        let any = match group {
            "OR" => true,
            "AND" => false,
            other => return Err(format!("group must be AND or OR, got {other}")),
        };
        let filters = v
            .get("filters")
            .and_then(Value::as_array)
            .ok_or("a group needs filters")?
            .iter()
            .map(parse_filter)
            .collect::<Result<_, _>>()?;
        return Ok(Filter::Group { any, filters });
    }
    let field = v
        .get("field")
        .and_then(Value::as_str)
        .ok_or("filter.field should not be empty")?;
    let operator = v
        .get("operator")
        .and_then(Value::as_str)
        .ok_or("filter.operator should not be empty")?;
    if !matches!(
        operator,
        "eq" | "not_eq" | "contains" | "not_contains" | "exists" | "not_exists" | "range"
    ) {
        return Err(format!("filter.operator {operator} is not supported"));
    }
    Ok(Filter::Leaf {
        field: field.to_string(),
        operator: operator.to_string(),
        value: v.get("value").cloned().unwrap_or(Value::Null),
    })
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_lowercase(),
        other => other.to_string().to_lowercase(),
    }
}

fn matches(filter: &Filter, contact: &Contact) -> bool {
    match filter {
        Filter::Group { any, filters } => {
            if *any {
                filters.iter().any(|f| matches(f, contact))
            } else {
                filters.iter().all(|f| matches(f, contact))
            }
        }
        Filter::Leaf {
            field,
            operator,
            value,
        } => {
            let have = field_value(contact, field);
            let present = match &have {
                Value::Null => false,
                Value::String(s) => !s.is_empty(),
                Value::Array(a) => !a.is_empty(),
                _ => true,
            };
            let equal = |have: &Value| match (have, value) {
                (Value::Array(items), v) => items.iter().any(|i| text_of(i) == text_of(v)),
                // Phones compare as numbers, as duplicate search does: `+14155550134` finds a
                // contact imported as `(415) 555-0134`.
                (Value::String(h), Value::String(v)) if field == "phone" => {
                    phone_key(h).is_some() && phone_key(h) == phone_key(v)
                }
                (h, v) => text_of(h) == text_of(v),
            };
            match operator.as_str() {
                "exists" => present,
                "not_exists" => !present,
                "eq" => equal(&have),
                "not_eq" => !equal(&have),
                "contains" => text_of(&have).contains(&text_of(value)),
                "not_contains" => !text_of(&have).contains(&text_of(value)),
                "range" => {
                    let Some(x) = as_millis(&have) else {
                        return false;
                    };
                    let bound = |k: &str| value.get(k).and_then(as_millis);
                    bound("gte").is_none_or(|b| x >= b)
                        && bound("gt").is_none_or(|b| x > b)
                        && bound("lte").is_none_or(|b| x <= b)
                        && bound("lt").is_none_or(|b| x < b)
                }
                _ => false,
            }
        }
    }
}

/// The lowest `dateUpdated` a top-level range filter allows, to seek the index there.
fn updated_floor(filters: &[Filter]) -> Option<i64> {
    filters.iter().find_map(|f| match f {
        Filter::Leaf {
            field,
            operator,
            value,
        } if field == "dateUpdated" && operator == "range" => value
            .get("gte")
            .and_then(as_millis)
            .or_else(|| value.get("gt").and_then(as_millis).map(|v| v + 1)),
        _ => None,
    })
}

struct Query {
    filters: Vec<Filter>,
    text: Option<String>,
    sort_field: String,
    descending: bool,
    page_limit: usize,
    page: Option<u64>,
    search_after: Option<(SortValue, String)>,
}

fn parse(emu: &Emu, body: &Map<String, Value>) -> Result<Query, GhlError> {
    let mut errors = Vec::new();
    match body.get("locationId").and_then(Value::as_str) {
        None => errors.push("locationId should not be empty".to_string()),
        Some(id) if id != emu.location_id => return Err(GhlError::forbidden_location()),
        Some(_) => {}
    }
    let page_limit = match body.get("pageLimit").and_then(Value::as_u64) {
        None => {
            errors.push("pageLimit should not be empty".to_string());
            0
        }
        Some(n) if n == 0 || n > MAX_PAGE_LIMIT => {
            errors.push(format!(
                "pageLimit must not be greater than {MAX_PAGE_LIMIT}"
            ));
            0
        }
        Some(n) => n as usize,
    };
    if !errors.is_empty() {
        return Err(GhlError::unprocessable(errors));
    }
    let page = body.get("page").and_then(Value::as_u64);
    let search_after = match body.get("searchAfter") {
        None | Some(Value::Null) => None,
        Some(Value::Array(pair)) if pair.len() == 2 => {
            let id = pair[1]
                .as_str()
                .ok_or_else(|| GhlError::bad_request("searchAfter must be [sortValue, id]"))?
                .to_string();
            let value = match &pair[0] {
                Value::Number(n) => SortValue::Num(n.as_i64().unwrap_or(0)),
                Value::String(s) => SortValue::Text(s.to_lowercase()),
                _ => SortValue::Text(String::new()),
            };
            Some((value, id))
        }
        Some(_) => return Err(GhlError::bad_request("searchAfter must be [sortValue, id]")),
    };
    if page.is_some() && search_after.is_some() {
        return Err(GhlError::bad_request(
            "page cannot be used together with searchAfter",
        ));
    }
    if let Some(p) = page
        && (p == 0 || p * page_limit as u64 > MAX_STANDARD_RECORDS)
    {
        return Err(GhlError::bad_request(
            "Standard pagination only reaches the first 10000 records; use searchAfter",
        ));
    }
    let filters = body
        .get("filters")
        .and_then(Value::as_array)
        .map(|fs| fs.iter().map(parse_filter).collect::<Result<Vec<_>, _>>())
        .transpose()
        .map_err(|e| GhlError::unprocessable(vec![e]))?
        .unwrap_or_default();
    let (sort_field, descending) = match body
        .get("sort")
        .and_then(Value::as_array)
        .and_then(|s| s.first())
    {
        Some(s) => (
            s.get("field")
                .and_then(Value::as_str)
                .unwrap_or("dateAdded")
                .to_string(),
            s.get("direction").and_then(Value::as_str) == Some("desc"),
        ),
        None => ("dateAdded".to_string(), true),
    };
    let text = body
        .get("query")
        .and_then(Value::as_str)
        .filter(|q| !q.is_empty())
        .map(str::to_lowercase);
    if text.as_ref().is_some_and(|q| q.chars().count() > 75) {
        return Err(GhlError::unprocessable(vec![
            "query must be shorter than or equal to 75 characters".into(),
        ]));
    }
    Ok(Query {
        filters,
        text,
        sort_field,
        descending,
        page_limit,
        page,
        search_after,
    })
}

fn visible(contact: &Contact, q: &Query, now_ms: i64) -> bool {
    if contact.searchable_from_ms > now_ms {
        return false;
    }
    if let Some(text) = &q.text {
        let hay = [
            contact.contact_name.as_deref(),
            contact.email.as_deref(),
            contact.phone.as_deref(),
            contact.company_name.as_deref(),
        ];
        if !hay
            .iter()
            .flatten()
            .any(|h| h.to_lowercase().contains(text.as_str()))
        {
            return false;
        }
    }
    q.filters.iter().all(|f| matches(f, contact))
}

fn compare(a: &(SortValue, String), b: &(SortValue, String), descending: bool) -> Ordering {
    let by_value = a.0.partial_cmp(&b.0).unwrap_or(Ordering::Equal);
    let by_value = if descending {
        by_value.reverse()
    } else {
        by_value
    };
    by_value.then_with(|| a.1.cmp(&b.1))
}

/// The matching contacts in sort order, starting after the cursor, at most `limit` + `skip`.
fn ordered<'a>(state: &'a GhlState, q: &Query, now_ms: i64, want: usize) -> Vec<&'a Contact> {
    let indexed = match q.sort_field.as_str() {
        "dateUpdated" => Some(&state.by_updated),
        "dateAdded" => Some(&state.by_added),
        _ => None,
    };
    if let Some(index) = indexed {
        // Walk the index from the cursor (or the range filter's floor) in the asked direction.
        let start: Option<(i64, String)> = q.search_after.as_ref().map(|(v, id)| {
            let ms = match v {
                SortValue::Num(n) => *n,
                SortValue::Text(t) => t.parse().unwrap_or(0),
            };
            (ms, id.clone())
        });
        let floor = (q.sort_field == "dateUpdated")
            .then(|| updated_floor(&q.filters))
            .flatten();
        let mut out = Vec::with_capacity(want);
        let mut push = |key: &(i64, String)| {
            if let Some(c) = state.contacts.get(&key.1)
                && visible(c, q, now_ms)
            {
                out.push(c);
            }
            out.len() < want
        };
        if q.descending {
            // Descending by value, ascending id within a value: the index is (value, id) ascending,
            // so walk values downwards and ids upwards via a collected run per value.
            let upper = match &start {
                Some((ms, _)) => Bound::Included((*ms, String::from("\u{10FFFF}"))),
                None => Bound::Unbounded,
            };
            let mut run: Vec<&(i64, String)> = Vec::new();
            let mut run_value = None;
            for key in index.range((Bound::Unbounded, upper)).rev() {
                if run_value != Some(key.0) {
                    for k in run.drain(..).rev() {
                        if start
                            .as_ref()
                            .is_none_or(|s| k.0 < s.0 || (k.0 == s.0 && k.1 > s.1))
                            && !push(k)
                        {
                            return out;
                        }
                    }
                    run_value = Some(key.0);
                }
                run.push(key);
            }
            for k in run.drain(..).rev() {
                if start
                    .as_ref()
                    .is_none_or(|s| k.0 < s.0 || (k.0 == s.0 && k.1 > s.1))
                    && !push(k)
                {
                    return out;
                }
            }
        } else {
            let lower = match (&start, floor) {
                (Some(s), _) => Bound::Excluded(s.clone()),
                (None, Some(f)) => Bound::Included((f, String::new())),
                (None, None) => Bound::Unbounded,
            };
            for key in index.range((lower, Bound::Unbounded)) {
                if !push(key) {
                    break;
                }
            }
        }
        return out;
    }
    let mut all: Vec<((SortValue, String), &Contact)> = state
        .contacts
        .values()
        .filter(|c| visible(c, q, now_ms))
        .map(|c| ((sort_value(c, &q.sort_field), c.id.clone()), c))
        .collect();
    all.sort_by(|a, b| compare(&a.0, &b.0, q.descending));
    all.into_iter()
        .filter(|(key, _)| {
            q.search_after
                .as_ref()
                .is_none_or(|after| compare(key, after, q.descending) == Ordering::Greater)
        })
        .take(want)
        .map(|(_, c)| c)
        .collect()
}

/// Count of matching contacts, cached per filter set and state version (extract pages a million
/// contacts without recounting them two thousand times).
fn total(emu: &Emu, state: &GhlState, q: &Query, body: &Map<String, Value>, now_ms: i64) -> usize {
    let key = format!(
        "{}|{}",
        body.get("filters")
            .map(Value::to_string)
            .unwrap_or_default(),
        q.text.as_deref().unwrap_or("")
    );
    let mut cache = emu.search_totals.lock().expect("totals lock");
    if let Some((version, n)) = cache.get(&key)
        && *version == state.version
    {
        return *n;
    }
    let n = state
        .contacts
        .values()
        .filter(|c| visible(c, q, now_ms))
        .count();
    cache.insert(key, (state.version, n));
    n
}

/// The handler.
pub(super) async fn search(
    Extension(emu): Extension<Emu>,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let result: Result<Response, GhlError> = (|| {
        let body = object_body(body)?;
        let q = parse(&emu, &body)?;
        let now_ms = emu.now_ms();
        let state = emu.state.read().expect("ghl state lock");
        let skip = q
            .page
            .map(|p| ((p - 1) as usize) * q.page_limit)
            .unwrap_or(0);
        let found = ordered(&state, &q, now_ms, skip + q.page_limit);
        let contacts: Vec<Value> = found
            .into_iter()
            .skip(skip)
            .map(|c| {
                let mut json = c.to_list_json();
                json["searchAfter"] = json!([sort_value(c, &q.sort_field).to_json(), c.id]);
                json
            })
            .collect();
        let total = total(&emu, &state, &q, &body, now_ms);
        Ok(Json(json!({"contacts": contacts, "total": total})).into_response())
    })();
    result.unwrap_or_else(IntoResponse::into_response)
}
