//! Contract tests of the BulkSMS emulator against the vendor's OpenAPI spec and observed answers:
//! auth, send shapes, deduplication-id replay, encodings and billing, statuses over simulated
//! time, blocking, the filter language and paging.

mod common;

use common::Harness;
use contactsync::sandbox::SandboxOptions;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// Keys of a Message in the order observed on the wire (`shared/api/bulksms/observed.md` §1;
/// the properties of `Message` in `openapi.yaml`).
const MESSAGE_KEYS: &[&str] = &[
    "id",
    "type",
    "from",
    "to",
    "body",
    "encoding",
    "protocolId",
    "messageClass",
    "submission",
    "status",
    "relatedSentMessageId",
    "userSuppliedId",
    "numberOfParts",
    "creditCost",
];

/// Property names of a schema in `openapi.yaml`, read with a line-based scan (no YAML parser is
/// needed for the flat `properties:` block of these schemas).
fn spec_properties(schema: &str) -> BTreeSet<String> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/api/bulksms/openapi.yaml");
    let text = std::fs::read_to_string(&path).expect("bulksms spec");
    let header = format!("    {schema}:");
    let mut lines = text.lines().skip_while(|l| *l != header).skip(1);
    let mut props = BTreeSet::new();
    let mut in_props = false;
    for line in lines.by_ref() {
        if !line.starts_with("      ") && !line.trim().is_empty() {
            break;
        }
        if line == "      properties:" {
            in_props = true;
            continue;
        }
        if in_props {
            if line.starts_with("      ") && !line.starts_with("       ") {
                in_props = false;
                continue;
            }
            if let Some(name) = line.strip_prefix("        ")
                && !name.starts_with(' ')
                && let Some(name) = name.strip_suffix(':')
            {
                props.insert(name.to_string());
            }
        }
    }
    props
}

struct Api<'a> {
    h: &'a Harness,
}

impl Api<'_> {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.h.sandbox.info.bulksms_base_url)
    }

    fn auth(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let info = &self.h.sandbox.info;
        req.basic_auth(&info.bulksms_token_id, Some(&info.bulksms_token_secret))
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let resp = self
            .auth(self.h.http.get(self.url(path)))
            .send()
            .await
            .expect("get");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let resp = self
            .auth(self.h.http.post(self.url(path)))
            .json(&body)
            .send()
            .await
            .expect("post");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn advance(&self, seconds: u64) {
        self.h
            .http
            .post(format!(
                "{}/_sandbox/clock/advance?seconds={seconds}",
                self.h.sandbox.info.control_url
            ))
            .send()
            .await
            .expect("advance");
    }
}

fn options() -> SandboxOptions {
    SandboxOptions {
        contacts: 50,
        messages: 0,
        rate_limit: false,
        ..SandboxOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_have_the_spec_shape_and_auth_is_required() {
    let h = Harness::start(options()).await;
    let api = Api { h: &h };
    let unauth = h
        .http
        .get(api.url("/messages"))
        .send()
        .await
        .expect("no auth");
    assert_eq!(unauth.status(), StatusCode::UNAUTHORIZED);
    let body: Value = unauth.json().await.expect("error body");
    assert_eq!(body["status"], 401);
    assert!(body["type"].as_str().expect("type").contains("errors#"));

    let (status, sent) = api
        .post(
            "/messages",
            json!({"to": "+15005550006", "body": "Hello", "userSuppliedId": "t1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let message = &sent[0];
    let keys: Vec<&str> = message
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected: Vec<&str> = MESSAGE_KEYS.to_vec();
    expected.sort_unstable();
    let mut got = keys.clone();
    got.sort_unstable();
    assert_eq!(
        got, expected,
        "every documented key present, explicit nulls"
    );
    let spec_keys = spec_properties("Message");
    for key in MESSAGE_KEYS {
        assert!(
            spec_keys.contains(*key),
            "{key} not in the spec's Message ({spec_keys:?})"
        );
    }
    assert_eq!(message["status"]["id"], "ACCEPTED.null");
    assert!(message["numberOfParts"].is_null() && message["creditCost"].is_null());
    assert_eq!(message["to"], "15005550006", "echoed without +");
    assert!(
        message["submission"]["date"]
            .as_str()
            .expect("date")
            .ends_with('Z')
    );

    let (status, profile) = api.get("/profile").await;
    assert_eq!(status, StatusCode::OK);
    for key in spec_properties("Profile")
        .iter()
        .filter(|k| ["id", "username", "credits", "quota"].contains(&k.as_str()))
    {
        assert!(profile.get(key).is_some(), "profile lacks {key}");
    }
    assert!(profile["quota"]["remaining"].as_i64().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deduplication_id_replays_within_twelve_hours_and_not_after() {
    let h = Harness::start(options()).await;
    let api = Api { h: &h };
    let credits = |p: &Value| p["credits"]["balance"].as_f64().expect("balance");
    let before = credits(&api.get("/profile").await.1);
    let body = json!([{"to": "15005550006", "body": "Once"}]);
    let (s1, first) = api
        .post("/messages?deduplication-id=77", body.clone())
        .await;
    let (s2, replay) = api
        .post("/messages?deduplication-id=77", body.clone())
        .await;
    assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!(first, replay, "the replay answers the first response");
    let (_, all) = api.get("/messages?filter=type%3DSENT").await;
    assert_eq!(all.as_array().expect("list").len(), 1, "sent once");
    assert_eq!(
        credits(&api.get("/profile").await.1),
        before - 1.0,
        "charged once"
    );
    api.advance(12 * 3600 + 1).await;
    let (_, later) = api.post("/messages?deduplication-id=77", body).await;
    assert_ne!(
        later[0]["id"], first[0]["id"],
        "after 12 h the id sends again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encodings_parts_statuses_and_blocking() {
    let h = Harness::start(options()).await;
    let api = Api { h: &h };
    let (_, sent) = api
        .post("/messages?auto-unicode=true", json!([
            {"to": ["15005550006", {"type": "INTERNATIONAL", "address": "+15005550007"}], "body": "a".repeat(161)},
            {"to": "15005550008", "body": "Emoji 😀 here"},
        ]))
        .await;
    assert_eq!(
        sent.as_array().expect("array").len(),
        3,
        "string, array and object recipients"
    );
    api.advance(1).await;
    let (_, m) = api
        .get(&format!(
            "/messages/{}",
            sent[0]["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(m["status"]["type"], "ACCEPTED");
    api.advance(5).await;
    let (_, m) = api
        .get(&format!(
            "/messages/{}",
            sent[0]["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(m["status"]["type"], "SENT");
    api.advance(30).await;
    let (_, m) = api
        .get(&format!(
            "/messages/{}",
            sent[0]["id"].as_str().expect("id")
        ))
        .await;
    assert!(matches!(
        m["status"]["type"].as_str(),
        Some("DELIVERED" | "FAILED")
    ));
    assert_eq!(m["numberOfParts"], 2, "161 GSM characters take two parts");
    let (_, u) = api
        .get(&format!(
            "/messages/{}",
            sent[2]["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(u["encoding"], "UNICODE");

    let (status, too_long) = api
        .post(
            "/messages",
            json!({"to": "15005550006", "body": "b".repeat(500)}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "4 parts > longMessageMaxParts 3: {too_long}"
    );

    // STOP blocks; a later send fails FAILED.BLOCKED and is still billed.
    let inbound = h
        .control_post(
            "bulksms/inbound",
            json!({"from": "+15005550006", "body": " stop "}),
        )
        .await;
    assert_eq!(inbound["blocked"], true);
    assert!(
        inbound["message"]["relatedSentMessageId"].is_string(),
        "reply linked to the send"
    );
    let (_, blocked) = api.get("/blocked-numbers").await;
    assert_eq!(blocked[0]["phoneNumber"], "15005550006");
    let before = api.get("/profile").await.1["credits"]["balance"]
        .as_f64()
        .expect("balance");
    let (_, sent) = api
        .post(
            "/messages",
            json!({"to": "15005550006", "body": "Still there?"}),
        )
        .await;
    api.advance(30).await;
    let (_, m) = api
        .get(&format!(
            "/messages/{}",
            sent[0]["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(m["status"]["id"], "FAILED.BLOCKED");
    let after = api.get("/profile").await.1["credits"]["balance"]
        .as_f64()
        .expect("balance");
    assert_eq!(after, before - 1.0, "a blocked send is billed");
    let (status, _) = api
        .post("/blocked-numbers", json!(["15005550009", "+15005550006"]))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, blocked) = api.get("/blocked-numbers?min-id=2").await;
    assert_eq!(
        blocked.as_array().expect("list").len(),
        1,
        "min-id pages; no duplicate entry"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_filter_language_and_paging_read_every_message_once() {
    let h = Harness::start(SandboxOptions {
        contacts: 300,
        messages: 2_345,
        rate_limit: false,
        ..SandboxOptions::default()
    })
    .await;
    let api = Api { h: &h };
    let (status, err) = api.get("/messages?filter=colour%3Dred").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(err["detail"].as_str().expect("detail").contains("colour"));
    let (status, _) = api.get("/messages?sortOrder=SIDEWAYS").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Newest first with id< until an empty page (the spec's recipe).
    let mut newest_first = Vec::new();
    let mut filter = String::new();
    loop {
        let (_, page) = api.get(&format!("/messages?limit=1000{filter}")).await;
        let page = page.as_array().expect("page").clone();
        if page.is_empty() {
            break;
        }
        let smallest = page.last().expect("row")["id"]
            .as_str()
            .expect("id")
            .to_string();
        newest_first.extend(
            page.into_iter()
                .map(|m| m["id"].as_str().expect("id").to_string()),
        );
        filter = format!("&filter=id%3C{smallest}");
    }
    // Oldest first with id> (incremental extract).
    let mut oldest_first = Vec::new();
    let mut after = "0".to_string();
    loop {
        let (_, page) = api
            .get(&format!(
                "/messages?sortOrder=ASCENDING&limit=700&filter=id%3E{after}"
            ))
            .await;
        let page = page.as_array().expect("page").clone();
        if page.is_empty() {
            break;
        }
        after = page.last().expect("row")["id"]
            .as_str()
            .expect("id")
            .to_string();
        oldest_first.extend(
            page.into_iter()
                .map(|m| m["id"].as_str().expect("id").to_string()),
        );
    }
    assert_eq!(newest_first.len(), 2_345);
    let a: BTreeSet<_> = newest_first.iter().collect();
    let b: BTreeSet<_> = oldest_first.iter().collect();
    assert_eq!(a.len(), 2_345, "no repeats");
    assert_eq!(a, b);
    let (_, received) = api.get("/messages?filter=type%3DRECEIVED").await;
    assert!(
        received
            .as_array()
            .expect("list")
            .iter()
            .all(|m| m["type"] == "RECEIVED")
    );
    let (_, failed) = api.get("/messages?filter=status.type%3DFAILED").await;
    assert!(
        failed
            .as_array()
            .expect("list")
            .iter()
            .all(|m| m["status"]["type"] == "FAILED")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_crud_with_the_spec_error_bodies() {
    let h = Harness::start(options()).await;
    let api = Api { h: &h };
    let (status, created) = api
        .post("/webhooks", json!({"name": "replies", "url": "https://example.com/hook?secret=x", "triggerScope": "RECEIVED", "active": true}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let id = created["id"].as_str().expect("id").to_string();
    let (status, dup) = api
        .post(
            "/webhooks",
            json!({"name": "replies", "url": "https://example.com/2", "triggerScope": "SENT"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "names are unique: {dup}");
    let (status, updated) = api
        .post(
            &format!("/webhooks/{id}"),
            json!({"name": "replies", "url": "https://example.com/3", "triggerScope": "RECEIVED"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "update is a POST");
    assert_eq!(updated["url"], "https://example.com/3");
    let del = api
        .auth(h.http.delete(api.url(&format!("/webhooks/{id}"))))
        .send()
        .await
        .expect("delete");
    assert_eq!(del.status(), StatusCode::OK);
    let (status, missing) = api.get(&format!("/webhooks/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(missing["title"], "Not Found");
    assert_eq!(missing["status"], 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_numbers_are_listed_as_written_with_or_without_a_plus() {
    let h = Harness::start(SandboxOptions {
        contacts: 200,
        messages: 2_000,
        rate_limit: false,
        ..SandboxOptions::default()
    })
    .await;
    let api = Api { h: &h };
    let (status, _) = api
        .post("/blocked-numbers", json!(["+15005550010", "15005550011"]))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, listed) = api.get("/blocked-numbers").await;
    let numbers: Vec<&str> = listed
        .as_array()
        .expect("list")
        .iter()
        .map(|b| b["phoneNumber"].as_str().expect("phoneNumber"))
        .collect();
    assert!(numbers.contains(&"+15005550010") && numbers.contains(&"15005550011"));
    let seeded = &numbers[..numbers.len() - 2];
    assert!(
        seeded.iter().any(|n| n.starts_with('+')) && seeded.iter().any(|n| !n.starts_with('+')),
        "the seeded list shows both spellings: {seeded:?}"
    );
    // The same number in the other spelling is the same entry.
    api.post("/blocked-numbers", json!(["15005550010"])).await;
    let (_, again) = api.get("/blocked-numbers").await;
    assert_eq!(again.as_array().expect("list").len(), numbers.len());
}

/// `GET` with a request target written as the BulkSMS docs and curl write it (no encoding of `<`
/// or `>`, a raw `&` between clauses), over a plain socket: (status, JSON body).
async fn raw_get(h: &Harness, target: &str) -> (u16, Value) {
    use base64::Engine;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let info = &h.sandbox.info;
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        info.bulksms_token_id, info.bulksms_token_secret
    ));
    let mut stream = tokio::net::TcpStream::connect(h.sandbox.addr)
        .await
        .expect("connect");
    let request = format!(
        "GET /bulksms/v1{target} HTTP/1.1\r\nHost: sandbox\r\nAuthorization: Basic {credentials}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("read");
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    // A body without chunking (Connection: close) or with it: the JSON starts at the first [ or {.
    let json = body
        .find(['[', '{'])
        .and_then(|start| {
            let end = body.rfind([']', '}'])?;
            serde_json::from_str(&body[start..=end]).ok()
        })
        .unwrap_or(Value::Null);
    (status, json)
}

/// Issue 18 §13: the filter as the docs write it, unencoded, was refused with an empty 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_filter_is_accepted_unencoded_as_the_docs_write_it() {
    let h = Harness::start(SandboxOptions {
        contacts: 100,
        messages: 300,
        rate_limit: false,
        ..SandboxOptions::default()
    })
    .await;
    let api = Api { h: &h };
    let (_, all) = api.get("/messages?sortOrder=ASCENDING&limit=1000").await;
    let ids: Vec<u64> = all
        .as_array()
        .expect("list")
        .iter()
        .map(|m| m["id"].as_str().expect("id").parse().expect("numeric id"))
        .collect();
    let middle = ids[ids.len() / 2];

    let (status, older) = raw_get(&h, &format!("/messages?filter=id<{middle}&limit=20")).await;
    assert_eq!(status, 200, "id< unencoded: {older}");
    let older = older.as_array().expect("list");
    assert!(!older.is_empty());
    for m in older {
        let id: u64 = m["id"].as_str().expect("id").parse().expect("numeric");
        assert!(id < middle);
    }
    let (status, newer) = raw_get(
        &h,
        &format!("/messages?filter=type=SENT&id>{middle}&limit=20&sortOrder=ASCENDING"),
    )
    .await;
    assert_eq!(status, 200, "clauses joined by a raw &: {newer}");
    let newer = newer.as_array().expect("list");
    assert!(!newer.is_empty());
    for m in newer {
        let id: u64 = m["id"].as_str().expect("id").parse().expect("numeric");
        assert!(id > middle && m["type"] == "SENT", "{m}");
    }
    // The spec's own example: the first & raw, the clauses' = encoded.
    let (status, _) = raw_get(
        &h,
        "/messages?filter=type%3DSENT&submission.id%3D1-00000000000522347562",
    )
    .await;
    assert_eq!(status, 200);
    let (status, error) = raw_get(&h, "/messages?filter=colour<3").await;
    assert_eq!(status, 400);
    assert!(
        error["detail"]
            .as_str()
            .is_some_and(|d| d.contains("colour"))
    );
}
