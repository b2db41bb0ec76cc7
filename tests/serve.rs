//! `contactsync serve`: real Ed25519 signatures, the BulkSMS gate, the spool's limits, and kill -9
//! under a steady stream of events.

use base64::Engine as _;
use chrono::{DateTime, Duration as ChronoDuration, TimeZone, Utc};
use contactsync::serve::ghl::{GhlVerifier, HIGHLEVEL_PUBLIC_KEY_PEM, parse_public_key_pem};
use contactsync::serve::spool::{EventSource, SpoolLimits, SpoolReader, SpooledEvent};
use contactsync::serve::{BulkSmsGate, Clock, RunningServer, ServeOptions, parse_cidr, start};
use ed25519_dalek::pkcs8::EncodePublicKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::{Signer, SigningKey};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

const LOCATION: &str = "loc-serve-1";
const APP_ID: &str = "65f0a1b2c3d4e5f6a7b8c9d0";
const BULKSMS_TOKEN: &str = "bulksms-path-token-0123456789";

#[derive(Debug)]
struct FixedClock(DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

fn fixed_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
        .single()
        .expect("valid")
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn pem_of(key: &SigningKey) -> String {
    key.verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("encode PEM")
}

fn sign(key: &SigningKey, body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(key.sign(body).to_bytes())
}

fn event_body(webhook_id: &str, at: DateTime<Utc>, location: &str, app: &str) -> String {
    serde_json::json!({
        "type": "ContactCreate",
        "locationId": location,
        "id": format!("c-{webhook_id}"),
        "email": "ann@example.com",
        "firstName": "Ann",
        "appId": app,
        "timestamp": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "webhookId": webhook_id,
    })
    .to_string()
}

fn options(state: &Path, signer: &SigningKey, clock: Arc<dyn Clock>) -> ServeOptions {
    ServeOptions {
        listen: "127.0.0.1:0".parse().expect("addr"),
        state_dir: state.to_path_buf(),
        ghl: GhlVerifier::new(
            parse_public_key_pem(&pem_of(signer)).expect("own key parses"),
            Some(APP_ID.to_string()),
            LOCATION.to_string(),
            Duration::from_secs(
                contactsync::serve::config::ServeGhlConfig::default().timestamp_window_secs,
            ),
        ),
        bulksms: Some(BulkSmsGate {
            path_token: BULKSMS_TOKEN.to_string(),
            basic_auth: None,
            allow: Vec::new(),
        }),
        max_body_bytes: 4096,
        header_timeout: Duration::from_secs(5),
        body_timeout: Duration::from_secs(5),
        max_connections: 64,
        drain_grace: Duration::from_millis(0),
        spool: SpoolLimits::default(),
        clock,
    }
}

async fn post(
    client: &reqwest::Client,
    url: String,
    body: impl Into<reqwest::Body>,
    signature: Option<&str>,
) -> (u16, String) {
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    if let Some(signature) = signature {
        request = request.header("x-ghl-signature", signature);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

fn spooled(state: &Path) -> Vec<SpooledEvent> {
    SpoolReader::new(state)
        .read_from(0, usize::MAX)
        .expect("read spool")
}

async fn stop(server: RunningServer) {
    server.shutdown().await;
}

#[tokio::test]
async fn a_signed_event_is_stored_and_every_forgery_or_replay_is_refused_without_detail() {
    let state = tempfile::tempdir().expect("tempdir");
    let signer = key(7);
    let now = fixed_now();
    let server = start(options(state.path(), &signer, Arc::new(FixedClock(now))))
        .await
        .expect("start");
    let url = format!("http://{}/webhooks/ghl", server.addr);
    let client = reqwest::Client::new();

    let good = event_body("wh-1", now - ChronoDuration::seconds(30), LOCATION, APP_ID);
    let (status, text) = post(
        &client,
        url.clone(),
        good.clone(),
        Some(&sign(&signer, good.as_bytes())),
    )
    .await;
    assert_eq!((status, text.as_str()), (200, ""));

    // Altered body: one byte changed after signing.
    let altered = good.replace("Ann", "Bob");
    let (status, text) = post(
        &client,
        url.clone(),
        altered,
        Some(&sign(&signer, good.as_bytes())),
    )
    .await;
    assert_eq!((status, text.as_str()), (401, ""), "altered body");

    // Wrong key.
    let other = event_body("wh-2", now, LOCATION, APP_ID);
    let (status, _) = post(
        &client,
        url.clone(),
        other.clone(),
        Some(&sign(&key(8), other.as_bytes())),
    )
    .await;
    assert_eq!(status, 401, "wrong key");

    // No signature, and a signature that is not base64.
    assert_eq!(post(&client, url.clone(), other.clone(), None).await.0, 401);
    assert_eq!(
        post(&client, url.clone(), other.clone(), Some("%%%"))
            .await
            .0,
        401
    );

    // Replayed webhookId, validly signed.
    let (status, text) = post(
        &client,
        url.clone(),
        good.clone(),
        Some(&sign(&signer, good.as_bytes())),
    )
    .await;
    assert_eq!((status, text.as_str()), (409, ""), "replay");

    // GHL's retries after a 429 resend the first attempt's bytes (and timestamp), up to 6 times
    // about 10 minutes apart: those are taken. Older than any retry, or from the future beyond
    // clock skew: refused, though validly signed.
    for (id, minutes_ago, expected) in [
        ("wh-retry-1", 10, 200),
        ("wh-retry-6", 65, 200),
        ("wh-stale", 76, 401),
        ("wh-future", -6, 401),
    ] {
        let body = event_body(
            id,
            now - ChronoDuration::minutes(minutes_ago),
            LOCATION,
            APP_ID,
        );
        let (status, _) = post(
            &client,
            url.clone(),
            body.clone(),
            Some(&sign(&signer, body.as_bytes())),
        )
        .await;
        assert_eq!(status, expected, "{id}");
    }

    // Foreign appId and foreign locationId, validly signed.
    let foreign_app = event_body("wh-app", now, LOCATION, "someoneelsesapp");
    let (status, _) = post(
        &client,
        url.clone(),
        foreign_app.clone(),
        Some(&sign(&signer, foreign_app.as_bytes())),
    )
    .await;
    assert_eq!(status, 401, "foreign appId");
    let foreign_location = event_body("wh-loc", now, "loc-other", APP_ID);
    let (status, _) = post(
        &client,
        url.clone(),
        foreign_location.clone(),
        Some(&sign(&signer, foreign_location.as_bytes())),
    )
    .await;
    assert_eq!(status, 401, "foreign locationId");

    // A second genuine event is stored too.
    let second = event_body("wh-3", now, LOCATION, APP_ID);
    assert_eq!(
        post(
            &client,
            url.clone(),
            second.clone(),
            Some(&sign(&signer, second.as_bytes()))
        )
        .await
        .0,
        200
    );

    stop(server).await;
    let events = spooled(state.path());
    let keys: Vec<&str> = events.iter().filter_map(|e| e.key.as_deref()).collect();
    assert_eq!(
        keys,
        ["ghl:wh-1", "ghl:wh-retry-1", "ghl:wh-retry-6", "ghl:wh-3"],
        "only the genuine events and the retries"
    );
    assert_eq!(events[0].body, good, "the exact bytes are kept");
    assert_eq!(events[0].key.as_deref(), Some("ghl:wh-1"));
    assert_eq!(events[0].source, EventSource::Ghl);
    assert_eq!(
        events[0].received_at_ms,
        now.timestamp_millis(),
        "the injected clock"
    );
    assert_eq!(events[3].body, second);
}

#[tokio::test]
async fn anything_else_is_refused_with_an_empty_body_and_bodies_are_bounded() {
    let state = tempfile::tempdir().expect("tempdir");
    let signer = key(7);
    let server = start(options(
        state.path(),
        &signer,
        Arc::new(FixedClock(fixed_now())),
    ))
    .await
    .expect("start");
    let base = format!("http://{}", server.addr);
    let client = reqwest::Client::new();
    for path in [
        "/",
        "/webhooks",
        "/webhooks/ghl/x",
        "/webhooks/bulksms",
        "/admin",
    ] {
        let (status, text) = post(&client, format!("{base}{path}"), "{}", None).await;
        assert_eq!((status, text.as_str()), (404, ""), "{path}");
    }
    let response = client
        .get(format!("{base}/webhooks/ghl"))
        .send()
        .await
        .expect("get");
    assert!(response.status().is_client_error());
    assert_eq!(response.text().await.expect("body"), "");
    // A body over the limit (4 KiB here) is refused before any parsing.
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(8192));
    let signature = sign(&signer, big.as_bytes());
    let (status, text) = post(
        &client,
        format!("{base}/webhooks/ghl"),
        big,
        Some(&signature),
    )
    .await;
    assert_eq!((status, text.as_str()), (413, ""));
    stop(server).await;
    assert!(spooled(state.path()).is_empty());
}

#[tokio::test]
async fn bulksms_needs_the_path_token_basic_auth_and_an_allowed_source() {
    let state = tempfile::tempdir().expect("tempdir");
    let signer = key(7);
    let mut opts = options(state.path(), &signer, Arc::new(FixedClock(fixed_now())));
    opts.bulksms = Some(BulkSmsGate {
        path_token: BULKSMS_TOKEN.to_string(),
        basic_auth: Some(("hook".into(), "pa55word".into())),
        allow: vec![parse_cidr("127.0.0.0/8").expect("cidr")],
    });
    let server = start(opts).await.expect("start");
    let base = format!("http://{}/webhooks/bulksms", server.addr);
    let client = reqwest::Client::new();
    let report = r#"[{"id":"m1","type":"SENT","to":"447700900001","status":{"id":"DELIVERED.null","type":"DELIVERED","subtype":null}}]"#;
    let send = |path: String, user: Option<(&str, &str)>, body: &'static str| {
        let mut request = client.post(path).body(body);
        if let Some((u, p)) = user {
            request = request.basic_auth(u, Some(p));
        }
        async move {
            let response = request.send().await.expect("request");
            (
                response.status().as_u16(),
                response.text().await.expect("text"),
            )
        }
    };
    let good = format!("{base}/{BULKSMS_TOKEN}");
    assert_eq!(
        send(
            format!("{base}/wrong-token-0123456789"),
            Some(("hook", "pa55word")),
            report
        )
        .await,
        (404, String::new())
    );
    assert_eq!(send(good.clone(), None, report).await, (401, String::new()));
    assert_eq!(
        send(good.clone(), Some(("hook", "wrong")), report).await,
        (401, String::new())
    );
    assert_eq!(
        send(good.clone(), Some(("hook", "pa55word")), report)
            .await
            .0,
        200
    );
    // BulkSMS tests a URL with an empty array: answered 200, nothing stored.
    assert_eq!(
        send(good.clone(), Some(("hook", "pa55word")), "[]").await.0,
        200
    );
    assert_eq!(
        send(
            good.clone(),
            Some(("hook", "pa55word")),
            "{\"not\":\"an array\"}"
        )
        .await
        .0,
        400
    );
    stop(server).await;
    let events = spooled(state.path());
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].source, EventSource::Bulksms);
    assert_eq!(events[0].body, report);

    // The same request from outside the allowlist is refused.
    let mut opts = options(state.path(), &signer, Arc::new(FixedClock(fixed_now())));
    opts.bulksms = Some(BulkSmsGate {
        path_token: BULKSMS_TOKEN.to_string(),
        basic_auth: None,
        allow: vec![parse_cidr("203.0.113.0/24").expect("cidr")],
    });
    let server = start(opts).await.expect("restart");
    let good = format!("http://{}/webhooks/bulksms/{BULKSMS_TOKEN}", server.addr);
    assert_eq!(send(good, None, report).await, (404, String::new()));
    stop(server).await;
    assert_eq!(spooled(state.path()).len(), 1);
}

#[tokio::test]
async fn a_full_spool_answers_429_to_ghl_and_503_to_bulksms_and_draining_answers_429() {
    let state = tempfile::tempdir().expect("tempdir");
    let signer = key(7);
    let now = fixed_now();
    let mut opts = options(state.path(), &signer, Arc::new(FixedClock(now)));
    opts.spool = SpoolLimits {
        max_bytes: 1500,
        segment_bytes: 1000,
        ..SpoolLimits::default()
    };
    let server = start(opts).await.expect("start");
    let url = format!("http://{}/webhooks/ghl", server.addr);
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    for i in 0..20 {
        let body = event_body(&format!("full-{i}"), now, LOCATION, APP_ID);
        statuses.push(
            post(
                &client,
                url.clone(),
                body.clone(),
                Some(&sign(&signer, body.as_bytes())),
            )
            .await
            .0,
        );
    }
    let stored = statuses.iter().filter(|s| **s == 200).count();
    assert!((1..20).contains(&stored), "{statuses:?}");
    assert!(
        statuses[stored..].iter().all(|s| *s == 429),
        "after the first 429 all are 429: {statuses:?}"
    );
    let (status, _) = post(
        &client,
        format!("http://{}/webhooks/bulksms/{BULKSMS_TOKEN}", server.addr),
        r#"[{"id":"m1"}]"#,
        None,
    )
    .await;
    assert_eq!(
        status, 503,
        "BulkSMS drops events answered 4xx, so a full spool answers 503"
    );
    stop(server).await;
    assert_eq!(spooled(state.path()).len(), stored);

    // Draining: a stop begins, and during its grace period events get 429.
    let state = tempfile::tempdir().expect("tempdir");
    let mut opts = options(state.path(), &signer, Arc::new(FixedClock(now)));
    opts.drain_grace = Duration::from_millis(800);
    let server = start(opts).await.expect("start");
    let url = format!("http://{}/webhooks/ghl", server.addr);
    let stopping = tokio::spawn(server.shutdown());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let body = event_body("drain-1", now, LOCATION, APP_ID);
    let (status, _) = post(
        &client,
        url,
        body.clone(),
        Some(&sign(&signer, body.as_bytes())),
    )
    .await;
    assert_eq!(status, 429);
    stopping.await.expect("stopped");
    assert!(spooled(state.path()).is_empty());
}

#[test]
fn highlevels_key_and_ours_share_one_pem_form() {
    // The default key is HighLevel's, SPKI PEM; a key we encode the same way parses the same way.
    let highlevel = parse_public_key_pem(HIGHLEVEL_PUBLIC_KEY_PEM).expect("HighLevel's key");
    let ours = pem_of(&key(3));
    assert!(
        ours.starts_with("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA"),
        "{ours}"
    );
    assert!(HIGHLEVEL_PUBLIC_KEY_PEM.starts_with("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA"));
    assert_ne!(highlevel, key(3).verifying_key());
}

// ---- kill -9 under a steady stream ------------------------------------------------------------

fn write_pipeline(dir: &Path, signer: &SigningKey) -> std::path::PathBuf {
    let path = dir.join("pipeline.toml");
    let text = format!(
        r#"[pipeline]
name = "serve-kill"
state_dir = "state"

[ghl]
base_url = "http://127.0.0.1:9/ghl"
location_id = "{LOCATION}"
auth = {{ kind = "private_token", token = "pit-1" }}

[bulksms]
base_url = "http://127.0.0.1:9/bulksms/v1"
token_id = "id"
token_secret = "secret"

[serve.ghl]
public_key_pem = """
{pem}"""
app_id = "{APP_ID}"
"#,
        pem = pem_of(signer)
    );
    std::fs::write(&path, text).expect("write pipeline");
    path
}

struct ServeProcess {
    child: std::process::Child,
    url: String,
}

fn spawn_serve(pipeline: &Path) -> ServeProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_contactsync"))
        .args(["serve", "--listen", "127.0.0.1:0", "--pipeline"])
        .arg(pipeline)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("ready line");
    let ready: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    let addr = ready["listen"].as_str().expect("listen").to_string();
    ServeProcess {
        child,
        url: format!("http://{addr}/webhooks/ghl"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_a_steady_stream_loses_no_acknowledged_event_and_stores_none_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let signer = key(11);
    let pipeline = write_pipeline(dir.path(), &signer);
    let bodies: Vec<(String, String)> = (0..10_000)
        .map(|i| {
            let id = format!("kill-{i:05}");
            let body = event_body(&id, Utc::now(), LOCATION, APP_ID);
            (id, body)
        })
        .collect();
    let bodies = Arc::new(bodies);
    let mut serve = spawn_serve(&pipeline);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    // 32 senders share the events; each records which ones got 200.
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut senders = Vec::new();
    for _ in 0..32 {
        let (client, url, bodies, next, signer) = (
            client.clone(),
            serve.url.clone(),
            bodies.clone(),
            next.clone(),
            signer.clone(),
        );
        senders.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some((id, body)) = bodies.get(i) else {
                    break;
                };
                let sent = client
                    .post(&url)
                    .header("x-ghl-signature", sign(&signer, body.as_bytes()))
                    .body(body.clone())
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status() == 200 => acked.push(id.clone()),
                    Ok(_) => {}
                    // The server died: the rest of the stream is for after the restart.
                    Err(_) => break,
                }
            }
            acked
        }));
    }
    // Let the stream run, then kill -9 in the middle of it.
    tokio::time::sleep(Duration::from_millis(700)).await;
    serve.child.kill().expect("kill -9");
    serve.child.wait().expect("reaped");
    let mut acked: HashSet<String> = HashSet::new();
    for sender in senders {
        acked.extend(sender.await.expect("sender"));
    }
    assert!(
        acked.len() >= 50,
        "the stream was running when killed: {} acked",
        acked.len()
    );
    assert!(
        acked.len() < bodies.len(),
        "the kill landed before the stream ended"
    );
    eprintln!(
        "{} of {} acknowledged before the kill",
        acked.len(),
        bodies.len()
    );

    // A write cut half way by the kill, simulated on top of whatever the kill left.
    let spool = dir.path().join("state").join("spool");
    let mut segments: Vec<_> = std::fs::read_dir(&spool)
        .expect("spool dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segments.sort();
    let last = segments.last().expect("a segment");
    let mut torn = std::fs::read(last).expect("segment");
    torn.extend_from_slice(&[200, 0, 0, 0, 1, 2, 3, 4, b'{', b'"']);
    std::fs::write(last, &torn).expect("tear");

    // Restart on the same state and send everything again, as GHL would retry what it did not
    // get 200 for (and a replay of what it did).
    let mut serve = spawn_serve(&pipeline);
    let resend_started = std::time::Instant::now();
    use futures_util::StreamExt as _;
    let statuses: HashMap<String, u16> = futures_util::stream::iter(bodies.iter())
        .map(|(id, body)| {
            let request = client
                .post(&serve.url)
                .header("x-ghl-signature", sign(&signer, body.as_bytes()))
                .body(body.clone());
            async move {
                let response = request.send().await.expect("restarted serve answers");
                (id.clone(), response.status().as_u16())
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    eprintln!("resent {} in {:?}", bodies.len(), resend_started.elapsed());
    // SIGTERM: drain and flush.
    let pid = serve.child.id().to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill -TERM");
    let exit = serve.child.wait().expect("exit");
    assert!(exit.success(), "serve exits cleanly on SIGTERM: {exit:?}");

    for id in &acked {
        assert_eq!(
            statuses[id], 409,
            "{id} was acknowledged before the kill, so it is a replay"
        );
    }
    assert!(
        statuses.values().all(|s| *s == 200 || *s == 409),
        "no other answer"
    );
    let events = SpoolReader::new(&dir.path().join("state"))
        .read_from(0, usize::MAX)
        .expect("read spool after restart (torn tail dropped)");
    let mut counts: HashMap<String, usize> = HashMap::new();
    for (index, event) in events.iter().enumerate() {
        assert_eq!(event.seq, index as u64, "no gaps");
        *counts
            .entry(event.key.clone().expect("ghl key"))
            .or_default() += 1;
    }
    for (id, _) in bodies.iter() {
        assert_eq!(
            counts.get(&format!("ghl:{id}")),
            Some(&1),
            "{id} stored exactly once"
        );
    }
    assert_eq!(events.len(), bodies.len());
}

// ---- the sandbox delivers signed events -------------------------------------------------------

use contactsync::sandbox::faults::FaultProfile;
use contactsync::sandbox::{SandboxHandle, SandboxOptions};

async fn sandbox(faults: FaultProfile) -> SandboxHandle {
    contactsync::sandbox::start(SandboxOptions {
        seed: 23,
        contacts: 20,
        messages: 20,
        rate_limit: false,
        faults,
        ..SandboxOptions::default()
    })
    .await
    .expect("sandbox")
}

async fn register(client: &reqwest::Client, sandbox: &SandboxHandle, url: &str, retry_ms: u64) {
    let response = client
        .post(format!(
            "{}/_sandbox/webhooks/ghl",
            sandbox.info.control_url
        ))
        .json(&serde_json::json!({ "url": url, "retry_interval_ms": retry_ms }))
        .send()
        .await
        .expect("register");
    assert_eq!(response.status(), 204);
}

async fn create_contact(client: &reqwest::Client, sandbox: &SandboxHandle, email: &str) -> String {
    let answer: serde_json::Value = client
        .post(format!("{}/contacts/", sandbox.info.ghl_base_url))
        .bearer_auth(&sandbox.info.ghl_token)
        .header("Version", "2021-07-28")
        .json(&serde_json::json!({
            "locationId": sandbox.info.ghl_location_id,
            "firstName": "Webhook",
            "email": email,
        }))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    answer["contact"]["id"].as_str().expect("id").to_string()
}

async fn wait_for<T>(mut check: impl FnMut() -> Option<T>) -> T {
    for _ in 0..200 {
        if let Some(found) = check() {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("condition not met within 5 s");
}

#[tokio::test]
async fn sandbox_events_signed_with_its_published_pem_are_verified_and_spooled() {
    let client = reqwest::Client::new();
    let sandbox = sandbox(FaultProfile::default()).await;
    let pem = &sandbox.info.ghl_webhook_public_key_pem;
    assert!(
        pem.starts_with("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA"),
        "{pem}"
    );
    let state = tempfile::tempdir().expect("tempdir");
    let mut opts = options(
        state.path(),
        &key(1),
        Arc::new(contactsync::clock::SystemClock),
    );
    opts.ghl = GhlVerifier::new(
        parse_public_key_pem(pem).expect("the sandbox's PEM parses like HighLevel's"),
        Some(contactsync::serve::ghl::app_id_from_client_id(
            &sandbox.info.ghl_client_id,
        )),
        sandbox.info.ghl_location_id.clone(),
        Duration::from_secs(300),
    );
    let server = start(opts).await.expect("serve");
    register(
        &client,
        &sandbox,
        &format!("http://{}/webhooks/ghl", server.addr),
        50,
    )
    .await;

    let id = create_contact(&client, &sandbox, "hook@example.com").await;
    let updated = client
        .put(format!("{}/contacts/{id}", sandbox.info.ghl_base_url))
        .bearer_auth(&sandbox.info.ghl_token)
        .header("Version", "2021-07-28")
        .json(&serde_json::json!({ "tags": ["vip"] }))
        .send()
        .await
        .expect("update");
    assert!(updated.status().is_success());
    let emitted = client
        .post(format!("{}/_sandbox/webhooks/ghl/emit", sandbox.info.control_url))
        .json(&serde_json::json!({ "type": "InboundMessage", "contactId": id, "body": "hi", "messageType": "SMS" }))
        .send()
        .await
        .expect("emit");
    assert_eq!(emitted.status(), 202);

    let events = wait_for(|| {
        let events = spooled(state.path());
        (events.len() >= 4).then_some(events)
    })
    .await;
    let mut types: Vec<String> = events
        .iter()
        .map(|e| {
            let body: serde_json::Value = serde_json::from_str(&e.body).expect("json");
            assert_eq!(body["locationId"], sandbox.info.ghl_location_id.as_str());
            body["type"].as_str().expect("type").to_string()
        })
        .collect();
    types.sort();
    assert_eq!(
        types,
        [
            "ContactCreate",
            "ContactTagUpdate",
            "ContactUpdate",
            "InboundMessage"
        ]
    );
    stop(server).await;
    sandbox.shutdown().await.expect("sandbox stops");
}

/// A receiver that answers from a script of statuses (then 200) and records every body it got.
async fn scripted_receiver(
    script: Vec<u16>,
) -> (String, Arc<std::sync::Mutex<Vec<(String, String)>>>) {
    use axum::http::HeaderMap;
    let seen: Arc<std::sync::Mutex<Vec<(String, String)>>> = Arc::default();
    let script = Arc::new(std::sync::Mutex::new(std::collections::VecDeque::from(
        script,
    )));
    let (seen2, script2) = (seen.clone(), script.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let (seen, script) = (seen2.clone(), script2.clone());
            async move {
                let signature = headers
                    .get("x-ghl-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                seen.lock().expect("seen").push((signature, body));
                let code = script.lock().expect("script").pop_front().unwrap_or(200);
                axum::http::StatusCode::from_u16(code).expect("status")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), seen)
}

#[tokio::test]
async fn the_sandbox_retries_only_on_429_and_its_faults_drop_and_duplicate() {
    let client = reqwest::Client::new();
    let sandbox = sandbox(FaultProfile::default()).await;
    // 429 twice, then 200: three identical signed deliveries.
    let (url, seen) = scripted_receiver(vec![429, 429]).await;
    register(&client, &sandbox, &url, 20).await;
    create_contact(&client, &sandbox, "retry@example.com").await;
    let got = wait_for(|| {
        let seen = seen.lock().expect("seen").clone();
        (seen.len() >= 3).then_some(seen)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        seen.lock().expect("seen").len(),
        3,
        "no delivery after the 200"
    );
    assert!(
        got.iter().all(|d| d == &got[0]),
        "a retry resends the same signed bytes"
    );
    let key = parse_public_key_pem(&sandbox.info.ghl_webhook_public_key_pem).expect("pem");
    let signature = base64::engine::general_purpose::STANDARD
        .decode(&got[0].0)
        .expect("b64");
    key.verify_strict(
        got[0].1.as_bytes(),
        &ed25519_dalek::Signature::from_slice(&signature).expect("sig"),
    )
    .expect("the signature verifies over the exact body");

    // Any other failure is final: one attempt.
    let (url, seen) = scripted_receiver(vec![500]).await;
    register(&client, &sandbox, &url, 20).await;
    create_contact(&client, &sandbox, "final@example.com").await;
    wait_for(|| (!seen.lock().expect("seen").is_empty()).then_some(())).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(seen.lock().expect("seen").len(), 1, "a 500 is not retried");

    // Faults: every event duplicated, then every event dropped.
    let (url, seen) = scripted_receiver(vec![]).await;
    register(&client, &sandbox, &url, 20).await;
    let set_faults = |profile: FaultProfile| {
        client
            .post(format!("{}/_sandbox/faults", sandbox.info.control_url))
            .json(&profile)
            .send()
    };
    set_faults(FaultProfile {
        webhook_duplicate: 1.0,
        ..FaultProfile::default()
    })
    .await
    .expect("faults");
    create_contact(&client, &sandbox, "dup@example.com").await;
    wait_for(|| (seen.lock().expect("seen").len() >= 2).then_some(())).await;
    set_faults(FaultProfile {
        webhook_drop: 1.0,
        ..FaultProfile::default()
    })
    .await
    .expect("faults");
    create_contact(&client, &sandbox, "drop@example.com").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = seen.lock().expect("seen").clone();
    assert_eq!(seen.len(), 2, "duplicated once, then dropped");
    assert_eq!(seen[0], seen[1]);
    sandbox.shutdown().await.expect("sandbox stops");
}

#[tokio::test]
async fn the_sandbox_calls_bulksms_webhooks_with_status_reports_and_received_messages() {
    let client = reqwest::Client::new();
    let sandbox = sandbox(FaultProfile::default()).await;
    let state = tempfile::tempdir().expect("tempdir");
    let server = start(options(
        state.path(),
        &key(1),
        Arc::new(contactsync::clock::SystemClock),
    ))
    .await
    .expect("serve");
    let hook = format!("http://{}/webhooks/bulksms/{BULKSMS_TOKEN}", server.addr);
    let bulksms = |path: &str| {
        client
            .post(format!("{}{path}", sandbox.info.bulksms_base_url))
            .basic_auth(
                &sandbox.info.bulksms_token_id,
                Some(&sandbox.info.bulksms_token_secret),
            )
    };
    for (name, scope) in [("status", "SENT"), ("replies", "RECEIVED")] {
        let created = bulksms("/webhooks")
            .json(&serde_json::json!({
                "name": name, "url": hook, "triggerScope": scope, "active": true, "invokeOption": "ONE",
            }))
            .send()
            .await
            .expect("create webhook");
        assert!(
            created.status().is_success(),
            "{}",
            created.text().await.unwrap_or_default()
        );
    }
    let sent = bulksms("/messages")
        .json(&serde_json::json!({ "to": "447700900123", "body": "Welcome" }))
        .send()
        .await
        .expect("send");
    assert!(sent.status().is_success());
    let inbound = client
        .post(format!(
            "{}/_sandbox/bulksms/inbound",
            sandbox.info.control_url
        ))
        .json(&serde_json::json!({ "from": "447700900123", "body": "thanks" }))
        .send()
        .await
        .expect("inbound");
    assert!(inbound.status().is_success());
    let events = wait_for(|| {
        let events = spooled(state.path());
        (events.len() >= 2).then_some(events)
    })
    .await;
    let mut kinds: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            assert_eq!(e.source, EventSource::Bulksms);
            let messages: Vec<serde_json::Value> = serde_json::from_str(&e.body).expect("array");
            assert_eq!(messages.len(), 1);
            (
                messages[0]["type"].as_str().unwrap_or_default().to_string(),
                messages[0]["status"]["type"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    kinds.sort();
    assert_eq!(kinds[0].0, "RECEIVED");
    assert_eq!(kinds[1].0, "SENT");
    assert!(
        ["DELIVERED", "FAILED"].contains(&kinds[1].1.as_str()),
        "a final status: {kinds:?}"
    );
    stop(server).await;
    sandbox.shutdown().await.expect("sandbox stops");
}

#[test]
fn the_serve_table_is_validated_with_the_key_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = std::fs::read_to_string(write_pipeline(dir.path(), &key(2))).expect("read");
    let load = |extra: &str| {
        let path = dir.path().join("p.toml");
        std::fs::write(&path, format!("{base}{extra}")).expect("write");
        contactsync::config::PipelineConfig::load(&path)
    };
    let config = load("").expect("valid");
    assert_eq!(config.serve.ghl.timestamp_window_secs, 75 * 60);
    assert_eq!(config.serve.max_body_bytes, 256 * 1024);
    let options = contactsync::pipeline::serve::serve_options(
        &config,
        Arc::new(contactsync::clock::SystemClock),
    )
    .expect("options");
    assert!(
        options.bulksms.is_none(),
        "no path token: BulkSMS webhooks off"
    );
    for (extra, key_named) in [
        (
            "rsa_public_key_file = \"wh.pem\"\n",
            "serve.ghl.rsa_public_key_file",
        ),
        (
            "timestamp_window_secs = 0\n",
            "serve.ghl.timestamp_window_secs",
        ),
        (
            // Longer than the 24 h the webhookIds are remembered.
            "timestamp_window_secs = 90000\n",
            "serve.ghl.timestamp_window_secs",
        ),
        (
            "[serve.bulksms]\npath_token = \"short\"\n",
            "serve.bulksms.path_token",
        ),
        (
            "[serve.bulksms]\npath_token = \"long-enough-token-123\"\nallow = [\"10.0.0.0/33\"]\n",
            "serve.bulksms.allow",
        ),
    ] {
        let err = load(extra).expect_err(extra).to_string();
        assert!(err.contains(key_named), "{err}");
    }
    let config = load("[serve.bulksms]\npath_token = \"long-enough-token-123\"\nallow = [\"10.0.0.0/8\", \"::1\"]\n")
        .expect("valid bulksms table");
    let options = contactsync::pipeline::serve::serve_options(
        &config,
        Arc::new(contactsync::clock::SystemClock),
    )
    .expect("options");
    assert_eq!(options.bulksms.expect("on").allow.len(), 2);
}
