//! `contactsync bench serve`: sustained GHL events per second through `contactsync serve` with
//! durable (fsynced) acknowledgements, and the acknowledgement latency's percentiles.
//!
//! The receiver runs as its own process, as in production; this process is the sender: it signs
//! every event beforehand with a throw-away Ed25519 key (the receiver is configured with its public
//! key), then keeps `--concurrency` requests in flight and times each from send to 200.

use super::BenchArgs;
use anyhow::{Context, bail};
use base64::Engine as _;
use ed25519_dalek::pkcs8::EncodePublicKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::{Signer, SigningKey};
use serde::Serialize;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Serialize)]
pub(super) struct ServeAckResults {
    machine: String,
    method: String,
    events: usize,
    concurrency: usize,
    acknowledged: usize,
    refused: usize,
    wall_secs: f64,
    events_per_sec: f64,
    ack_p50_ms: f64,
    ack_p90_ms: f64,
    ack_p99_ms: f64,
    ack_max_ms: f64,
    spool_bytes: u64,
}

const LOCATION: &str = "bench-location";
const APP_ID: &str = "benchapp";

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

pub(super) async fn bench_serve(args: &BenchArgs) -> anyhow::Result<ServeAckResults> {
    let exe = std::env::current_exe().context("locating the contactsync binary")?;
    let dir = args.out.join("serve-ack");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let seed: [u8; 32] = rand::random();
    let key = SigningKey::from_bytes(&seed);
    let pem = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .context("encoding the bench key")?;
    let pipeline = dir.join("pipeline.toml");
    std::fs::write(
        &pipeline,
        format!(
            "[pipeline]\nname = \"bench-serve\"\nstate_dir = \"state\"\n\n[ghl]\nbase_url = \
             \"http://127.0.0.1:9/ghl\"\nlocation_id = \"{LOCATION}\"\nauth = {{ kind = \
             \"private_token\", token = \"unused\" }}\n\n[bulksms]\nbase_url = \
             \"http://127.0.0.1:9/bulksms/v1\"\ntoken_id = \"unused\"\ntoken_secret = \
             \"unused\"\n\n[serve]\nmax_connections = 4096\n\n[serve.ghl]\napp_id = \
             \"{APP_ID}\"\npublic_key_pem = \"\"\"\n{pem}\"\"\"\n\n[serve.spool]\nmax_bytes = \
             17179869184\n"
        ),
    )
    .with_context(|| format!("writing {}", pipeline.display()))?;

    let warmup = 500.min(args.events / 10);
    let total = args.events + warmup;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let bodies: Vec<(String, String)> = (0..total)
        .map(|i| {
            // A ContactCreate of typical size (about 600 bytes).
            let body = serde_json::json!({
                "type": "ContactCreate", "locationId": LOCATION, "appId": APP_ID,
                "id": format!("bench{i:015}"), "firstName": "Bench", "lastName": format!("Contact {i}"),
                "email": format!("bench{i}@example.com"), "phone": "+14155550123",
                "address1": "1 Market St", "city": "San Francisco", "state": "CA",
                "postalCode": "94105", "country": "US", "source": "bench", "tags": ["bench"],
                "dateAdded": now, "dnd": false, "customFields": [],
                "timestamp": now, "webhookId": format!("bench-{i:09}"),
            })
            .to_string();
            let signature =
                base64::engine::general_purpose::STANDARD.encode(key.sign(body.as_bytes()).to_bytes());
            (body, signature)
        })
        .collect();

    let mut child = Command::new(&exe)
        .args(["serve", "--listen", "127.0.0.1:0", "--pipeline"])
        .arg(&pipeline)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting contactsync serve")?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("serve's stdout")?)
        .read_line(&mut line)
        .context("reading serve's ready line")?;
    let ready: serde_json::Value =
        serde_json::from_str(&line).with_context(|| format!("serve's ready line {line:?}"))?;
    let Some(addr) = ready["listen"].as_str() else {
        bail!("serve's ready line has no listen address: {line:?}");
    };
    let url = format!("http://{addr}/webhooks/ghl");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the HTTP client")?;
    let bodies = Arc::new(bodies);

    let run = |from: usize, to: usize| {
        let next = Arc::new(AtomicUsize::new(from));
        let tasks: Vec<_> = (0..args.concurrency)
            .map(|_| {
                let (client, url, bodies, next) =
                    (client.clone(), url.clone(), bodies.clone(), next.clone());
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    let mut refused = 0usize;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= to {
                            break;
                        }
                        let (body, signature) = &bodies[i];
                        let started = Instant::now();
                        let answer = client
                            .post(&url)
                            .header("x-ghl-signature", signature)
                            .header("content-type", "application/json")
                            .body(body.clone())
                            .send()
                            .await;
                        match answer {
                            Ok(response) if response.status() == 200 => {
                                latencies.push(started.elapsed())
                            }
                            _ => refused += 1,
                        }
                    }
                    (latencies, refused)
                })
            })
            .collect();
        async move {
            let mut latencies = Vec::new();
            let mut refused = 0;
            for task in tasks {
                let (l, r) = task.await.unwrap_or_default();
                latencies.extend(l);
                refused += r;
            }
            (latencies, refused)
        }
    };
    run(0, warmup).await;
    let started = Instant::now();
    let (mut latencies, refused) = run(warmup, total).await;
    let wall = started.elapsed().as_secs_f64();
    let pid = child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let _ = child.wait();
    latencies.sort();
    let spool_bytes = std::fs::read_dir(dir.join("state").join("spool"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "seg"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    Ok(ServeAckResults {
        machine: machine_description(),
        method: format!(
            "contactsync serve as a child process on loopback; this process signs {} ContactCreate \
             events (about 600 bytes) beforehand and keeps {} requests in flight over keep-alive \
             connections; each latency runs from send to the 200 that follows the event's fsync; \
             {warmup} warm-up events are not counted; sender and receiver share the machine's cores",
            args.events, args.concurrency
        ),
        events: args.events,
        concurrency: args.concurrency,
        acknowledged: latencies.len(),
        refused,
        wall_secs: wall,
        events_per_sec: latencies.len() as f64 / wall,
        ack_p50_ms: percentile(&latencies, 0.50),
        ack_p90_ms: percentile(&latencies, 0.90),
        ack_p99_ms: percentile(&latencies, 0.99),
        ack_max_ms: latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
        spool_bytes,
    })
}

pub(super) fn machine_description() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cpus} cores, {model}")
}
