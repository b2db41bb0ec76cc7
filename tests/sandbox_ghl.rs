//! Contract tests of the GHL emulator against HighLevel's own OpenAPI file, and its OAuth, scope,
//! rate-limit and paging behaviour.

mod common;
mod contract;

use common::Harness;
use contactsync::sandbox::SandboxOptions;
use contract::Spec;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SPEC: &str = "../shared/api/ghl/spec/contacts.json";
const VERSION: &str = "2021-07-28";

/// Properties the spec declares that the emulator leaves out on purpose (never populated by the
/// real API for these calls, or outside this product's scope).
const NOT_EMULATED: &[&str] = &[
    "name",
    "attachments",
    "ssn",
    "keyword",
    "fullNameLowerCase",
    "lastActivity",
    "attributionSource",
    "lastAttributionSource",
    "visitorId",
    "gender",
    "deleted",
    "type",
    "birthMonth",
    "birthDay",
    "bounceEmail",
    "unsubscribeEmail",
    "lastSessionActivityAt",
    "offers",
    "products",
    "followers",
    "title",
    "color",
    "pinned",
    "inboundDndSettings",
];

struct Client<'a> {
    h: &'a Harness,
    token: String,
}

impl Client<'_> {
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let mut req = self
            .h
            .http
            .request(
                method,
                format!("{}{path}", self.h.sandbox.info.ghl_base_url),
            )
            .bearer_auth(&self.token)
            .header("Version", VERSION);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let json = resp.json().await.unwrap_or(Value::Null);
        (status, json, headers)
    }
}

fn assert_conforms(spec: &Spec, answer: &Value, path: &str, method: &str, status: &str) {
    let schema = spec.response_schema(path, method, status);
    let errors = spec.type_errors(answer, schema, &format!("{method} {path}"));
    assert!(errors.is_empty(), "{errors:#?}");
    let missing: Vec<String> = spec
        .missing(answer, schema)
        .into_iter()
        .filter(|m| !NOT_EMULATED.contains(&m.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{method} {path} lacks {missing:?}: {answer}"
    );
}

fn options() -> SandboxOptions {
    SandboxOptions {
        contacts: 300,
        messages: 10,
        rate_limit: false,
        ..SandboxOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_contacts_endpoint_answers_as_the_spec_says() {
    let spec = Spec::load_json(SPEC);
    let h = Harness::start(options()).await;
    let c = Client {
        h: &h,
        token: h.sandbox.info.ghl_token.clone(),
    };
    let location = h.sandbox.info.ghl_location_id.clone();

    let (status, created, _) = c
        .call(Method::POST, "/contacts/", Some(json!({"locationId": location, "firstName": "Ada",
            "lastName": "Lovelace", "email": "ada@example.com", "phone": "(415) 555-0134", "tags": ["lead"]})))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_conforms(&spec, &created, "/contacts/", "post", "201");
    let contact = &created["contact"];
    assert_eq!(contact["phone"], "+14155550134", "stored as E.164");
    let schema = spec.property(spec.response_schema("/contacts/", "post", "201"), "contact");
    let errors = spec.type_errors(contact, schema, "contact");
    assert!(errors.is_empty(), "{errors:?}");
    let id = contact["id"].as_str().expect("id").to_string();

    let (status, got, _) = c.call(Method::GET, &format!("/contacts/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_conforms(&spec, &got, "/contacts/{contactId}", "get", "200");

    let (status, updated, _) = c
        .call(
            Method::PUT,
            &format!("/contacts/{id}"),
            Some(json!({"firstName": "Augusta"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_conforms(&spec, &updated, "/contacts/{contactId}", "put", "200");
    assert_eq!(updated["succeded"], true);

    let (status, upserted, _) = c
        .call(
            Method::POST,
            "/contacts/upsert",
            Some(json!({"locationId": location, "email": "ADA@example.com", "city": "London"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_conforms(&spec, &upserted, "/contacts/upsert", "post", "200");
    assert_eq!(
        upserted["new"], false,
        "matched by email, case-insensitively"
    );
    assert_eq!(upserted["contact"]["id"], id.as_str());

    let (status, tags, _) = c
        .call(
            Method::POST,
            &format!("/contacts/{id}/tags"),
            Some(json!({"tags": ["vip"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_conforms(&spec, &tags, "/contacts/{contactId}/tags", "post", "201");
    assert_eq!(tags["tags"], json!(["lead", "vip"]));

    let (status, task, _) = c
        .call(
            Method::POST,
            &format!("/contacts/{id}/tasks"),
            Some(json!({"title": "Call", "dueDate": "2026-12-01T10:00:00Z", "completed": false})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_conforms(&spec, &task, "/contacts/{contactId}/tasks", "post", "201");
    let (status, tasks, _) = c
        .call(Method::GET, &format!("/contacts/{id}/tasks"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_conforms(&spec, &tasks, "/contacts/{contactId}/tasks", "get", "200");
    // One task by its id, and its update: load reads a follow-up back and keeps it current.
    let task_path = format!(
        "/contacts/{id}/tasks/{}",
        task["task"]["id"].as_str().expect("id")
    );
    let (status, one, _) = c.call(Method::GET, &task_path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_conforms(
        &spec,
        &one,
        "/contacts/{contactId}/tasks/{taskId}",
        "get",
        "200",
    );
    assert_eq!(one["task"], task["task"]);
    let (status, updated, _) = c
        .call(
            Method::PUT,
            &task_path,
            Some(
                json!({"body": "Call back", "dueDate": "2026-12-02T10:00:00Z", "completed": false}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_conforms(
        &spec,
        &updated,
        "/contacts/{contactId}/tasks/{taskId}",
        "put",
        "200",
    );
    assert_eq!(
        (&updated["task"]["title"], &updated["task"]["body"]),
        (&json!("Call"), &json!("Call back")),
        "fields not sent are kept"
    );
    let (status, _, _) = c
        .call(
            Method::GET,
            &format!("/contacts/{id}/tasks/no-such-task"),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "GHL answers 400 for a task it does not have"
    );

    let (status, note, _) = c
        .call(
            Method::POST,
            &format!("/contacts/{id}/notes"),
            Some(json!({"body": "hello"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_conforms(&spec, &note, "/contacts/{contactId}/notes", "post", "201");

    let (status, dup, _) = c
        .call(
            Method::GET,
            &format!("/contacts/search/duplicate?locationId={location}&number=%2B14155550134"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        dup["contact"]["id"],
        id.as_str(),
        "phone in any form finds the contact"
    );

    let (status, bad, _) = c
        .call(
            Method::PUT,
            &format!("/contacts/{id}"),
            Some(json!({"companyName": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        bad["message"],
        json!(["property companyName should not exist"])
    );

    let (status, deleted, _) = c
        .call(Method::DELETE, &format!("/contacts/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_conforms(&spec, &deleted, "/contacts/{contactId}", "delete", "200");
    let (status, gone, _) = c.call(Method::GET, &format!("/contacts/{id}"), None).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "an unknown id answers 400, as GHL does"
    );
    assert!(
        gone["message"]
            .as_str()
            .expect("message")
            .contains("not found")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_codes_are_single_use_refresh_tokens_rotate_and_scopes_hold() {
    let h = Harness::start(options()).await;
    let info = &h.sandbox.info;
    let creds = h.control("ghl/credentials").await;
    let token_url = format!("{}/oauth/token", info.ghl_base_url);
    let exchange = |code: String| {
        h.http.post(&token_url).form(&[
            ("client_id", info.ghl_client_id.as_str()),
            ("client_secret", info.ghl_client_secret.as_str()),
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("user_type", "Location"),
        ])
    };
    let first: Value = exchange(info.ghl_auth_code.clone())
        .send()
        .await
        .expect("exchange")
        .json()
        .await
        .expect("json");
    assert_eq!(first["token_type"], "Bearer");
    assert_eq!(first["scope"], "contacts.readonly contacts.write");
    assert_eq!(first["locationId"], info.ghl_location_id.as_str());
    let again = exchange(info.ghl_auth_code.clone())
        .send()
        .await
        .expect("again");
    assert_eq!(again.status(), StatusCode::BAD_REQUEST, "a code works once");

    let refresh = |rt: &str| {
        h.http.post(&token_url).form(&[
            ("client_id", info.ghl_client_id.as_str()),
            ("client_secret", info.ghl_client_secret.as_str()),
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
        ])
    };
    let rt1 = first["refresh_token"].as_str().expect("rt").to_string();
    let second: Value = refresh(&rt1)
        .send()
        .await
        .expect("refresh")
        .json()
        .await
        .expect("json");
    let reused = refresh(&rt1).send().await.expect("reuse");
    assert_eq!(
        reused.status(),
        StatusCode::BAD_REQUEST,
        "a used refresh token is refused"
    );
    assert_eq!(
        reused.json::<Value>().await.expect("json")["error"],
        "invalid_grant"
    );

    // Expiry on the simulated clock.
    let access = second["access_token"].as_str().expect("at").to_string();
    let c = Client {
        h: &h,
        token: access,
    };
    let location = info.ghl_location_id.clone();
    let (status, _, _) = c
        .call(
            Method::GET,
            &format!("/contacts/?locationId={location}&limit=1"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    h.http
        .post(format!(
            "{}/_sandbox/clock/advance?seconds=90000",
            info.control_url
        ))
        .send()
        .await
        .expect("advance");
    let (status, body, _) = c
        .call(
            Method::GET,
            &format!("/contacts/?locationId={location}&limit=1"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["message"], "Invalid token: access token is invalid");

    // A read-only grant cannot write.
    let ro = Client {
        h: &h,
        token: creds["readonly_private_token"]
            .as_str()
            .expect("ro")
            .to_string(),
    };
    let (status, body, _) = ro
        .call(
            Method::POST,
            "/contacts/",
            Some(json!({"locationId": location, "firstName": "X"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body["message"],
        "The token is not authorized for this scope."
    );

    // The Version header is required; another location's id is refused.
    let resp = h
        .http
        .get(format!(
            "{}/contacts/?locationId={location}",
            info.ghl_base_url
        ))
        .bearer_auth(&info.ghl_token)
        .send()
        .await
        .expect("no version");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let full = Client {
        h: &h,
        token: info.ghl_token.clone(),
    };
    let (status, _, _) = full
        .call(Method::GET, "/contacts/?locationId=someoneElse", None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_pages_reach_ten_thousand_then_search_after_reads_every_contact_once() {
    let h = Harness::start(SandboxOptions {
        contacts: 12_500,
        messages: 0,
        rate_limit: false,
        ..SandboxOptions::default()
    })
    .await;
    let c = Client {
        h: &h,
        token: h.sandbox.info.ghl_token.clone(),
    };
    let location = h.sandbox.info.ghl_location_id.clone();
    let mut seen = std::collections::BTreeSet::new();
    let mut last = Value::Null;
    for page in 1..=20 {
        let (status, body, _) = c
            .call(
                Method::POST,
                "/contacts/search",
                Some(json!({"locationId": location, "page": page, "pageLimit": 500})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "page {page}: {body}");
        assert_eq!(body["total"], 12_500);
        for contact in body["contacts"].as_array().expect("contacts") {
            assert!(
                seen.insert(contact["id"].as_str().expect("id").to_string()),
                "repeated id"
            );
            last = contact["searchAfter"].clone();
        }
    }
    let (status, body, _) = c
        .call(
            Method::POST,
            "/contacts/search",
            Some(json!({"locationId": location, "page": 21, "pageLimit": 500})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "page 21 is past 10,000 records: {body}"
    );
    loop {
        let (status, body, _) = c
            .call(
                Method::POST,
                "/contacts/search",
                Some(json!({"locationId": location, "pageLimit": 500, "searchAfter": last})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let contacts = body["contacts"].as_array().expect("contacts");
        if contacts.is_empty() {
            break;
        }
        for contact in contacts {
            assert!(
                seen.insert(contact["id"].as_str().expect("id").to_string()),
                "repeated id"
            );
            last = contact["searchAfter"].clone();
        }
    }
    assert_eq!(seen.len(), 12_500);
    let (status, body, _) = c
        .call(
            Method::POST,
            "/contacts/search",
            Some(json!({"locationId": location, "pageLimit": 501})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _, _) = c
        .call(
            Method::POST,
            "/contacts/search",
            Some(json!({"pageLimit": 10})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "locationId is required"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_answers_429_with_headers_after_the_burst() {
    let h = Harness::start(SandboxOptions {
        contacts: 10,
        messages: 0,
        rate_limit: true,
        rate_limit_burst: 100,
        rate_limit_window_ms: 600_000,
        ..SandboxOptions::default()
    })
    .await;
    let c = Client {
        h: &h,
        token: h.sandbox.info.ghl_token.clone(),
    };
    let location = h.sandbox.info.ghl_location_id.clone();
    let path = format!("/contacts/?locationId={location}&limit=1");
    let mut remaining = Vec::new();
    for _ in 0..100 {
        let (status, _, headers) = c.call(Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK);
        remaining.push(
            headers["x-ratelimit-remaining"]
                .to_str()
                .expect("header")
                .parse::<u32>()
                .expect("n"),
        );
        assert_eq!(headers["x-ratelimit-max"], "100");
        assert_eq!(headers["x-ratelimit-interval-milliseconds"], "600000");
        assert!(headers.contains_key("x-ratelimit-daily-remaining"));
        assert!(headers.contains_key("x-ratelimit-limit-daily"));
    }
    assert!(
        remaining.windows(2).all(|w| w[1] < w[0]),
        "remaining counts down"
    );
    let (status, body, headers) = c.call(Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["statusCode"], 429);
    assert!(headers.contains_key("retry-after"));
    assert_eq!(h.control("stats").await["rate_limited"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_search_index_lags_writes_but_get_by_id_does_not() {
    let h = Harness::start(SandboxOptions {
        contacts: 5,
        messages: 0,
        rate_limit: false,
        search_index_lag_ms: 60_000,
        ..SandboxOptions::default()
    })
    .await;
    let c = Client {
        h: &h,
        token: h.sandbox.info.ghl_token.clone(),
    };
    let location = h.sandbox.info.ghl_location_id.clone();
    let (_, created, _) = c
        .call(
            Method::POST,
            "/contacts/",
            Some(json!({"locationId": location, "email": "fresh@example.com"})),
        )
        .await;
    let id = created["contact"]["id"].as_str().expect("id").to_string();
    let search = json!({"locationId": location, "pageLimit": 100, "query": "fresh@example.com"});
    let (_, found, _) = c
        .call(Method::POST, "/contacts/search", Some(search.clone()))
        .await;
    assert_eq!(
        found["contacts"].as_array().expect("contacts").len(),
        0,
        "not yet indexed"
    );
    let (status, _, _) = c.call(Method::GET, &format!("/contacts/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    h.http
        .post(format!(
            "{}/_sandbox/clock/advance?seconds=61",
            h.sandbox.info.control_url
        ))
        .send()
        .await
        .expect("advance");
    let (_, found, _) = c.call(Method::POST, "/contacts/search", Some(search)).await;
    assert_eq!(found["contacts"].as_array().expect("contacts").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_location_that_forbids_duplicates_refuses_a_second_create() {
    let h = Harness::start(SandboxOptions {
        contacts: 5,
        messages: 0,
        rate_limit: false,
        allow_duplicates: false,
        ..SandboxOptions::default()
    })
    .await;
    let c = Client {
        h: &h,
        token: h.sandbox.info.ghl_token.clone(),
    };
    let location = h.sandbox.info.ghl_location_id.clone();
    let body = json!({"locationId": location, "email": "twice@example.com"});
    let (status, first, _) = c.call(Method::POST, "/contacts/", Some(body.clone())).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, second, _) = c.call(Method::POST, "/contacts/", Some(body)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        second["message"],
        "This location does not allow duplicated contacts."
    );
    assert_eq!(second["meta"]["contactId"], first["contact"]["id"]);
    assert_eq!(second["meta"]["matchingField"], "email");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_get_by_id_carries_dnd_and_phone_filters_compare_numbers() {
    let h = Harness::start(SandboxOptions {
        contacts: 5,
        messages: 0,
        rate_limit: false,
        ..SandboxOptions::default()
    })
    .await;
    let c = Client {
        h: &h,
        token: h.sandbox.info.ghl_token.clone(),
    };
    let location = h.sandbox.info.ghl_location_id.clone();
    let (_, created, _) = c
        .call(
            Method::POST,
            "/contacts/",
            Some(json!({"locationId": location, "phone": "(202) 555-0188",
                        "dndSettings": {"SMS": {"status": "active", "message": "", "code": ""}}})),
        )
        .await;
    let id = created["contact"]["id"].as_str().expect("id").to_string();
    let (_, one, _) = c.call(Method::GET, &format!("/contacts/{id}"), None).await;
    assert_eq!(one["contact"]["dndSettings"]["SMS"]["status"], "active");
    assert_eq!(one["contact"]["dnd"], false);

    let search = json!({"locationId": location, "pageLimit": 100,
        "filters": [{"field": "phone", "operator": "eq", "value": "+12025550188"}]});
    let (_, found, _) = c.call(Method::POST, "/contacts/search", Some(search)).await;
    let rows = found["contacts"].as_array().expect("contacts");
    assert_eq!(rows.len(), 1, "a phone filter finds the number: {found}");
    let (_, duplicate, _) = c
        .call(
            Method::GET,
            &format!("/contacts/search/duplicate?locationId={location}&number=%2B12025550188"),
            None,
        )
        .await;
    let (_, listed, _) = c
        .call(
            Method::GET,
            &format!("/contacts/?locationId={location}&limit=100"),
            None,
        )
        .await;
    let listed_row = listed["contacts"]
        .as_array()
        .expect("contacts")
        .iter()
        .find(|r| r["id"] == id.as_str())
        .expect("listed")
        .clone();
    for (answer, row) in [
        ("search", &rows[0]),
        ("duplicate search", &duplicate["contact"]),
        ("list", &listed_row),
    ] {
        assert_eq!(row["id"], id.as_str(), "{answer}");
        assert!(
            row.get("dnd").is_none() && row.get("dndSettings").is_none(),
            "{answer} carried DND: {row}"
        );
    }
}
