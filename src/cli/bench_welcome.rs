//! `contactsync bench welcome`: contact created in GHL → welcome text sent, through the sandbox's
//! signed webhooks, `contactsync serve` and its micro-batches, with GHL's rate limit on.
//!
//! A sandbox (in this process, rate limit on) gets a baseline nightly `run`; then `serve` runs as
//! its own process with micro-batches every `--batch-interval` seconds, and this process creates
//! `--created` contacts with phones, one every `--create-interval-ms`, timing each from its create
//! call's answer to the first poll (every 100 ms) of the sandbox's state that shows its welcome
//! SENT. Each new contact costs five GHL requests (the create, the batch's read-back, and load's
//! three DND re-checks before the send), so at one create every 500 ms the location's 100 per 10 s
//! are all in use and the figure is the rate limit's.

use super::BenchArgs;
use super::bench_serve::machine_description;
use crate::sandbox::{self, SandboxOptions};
use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Serialize)]
pub(super) struct WelcomeLatencyResults {
    machine: String,
    build: &'static str,
    method: String,
    created: usize,
    create_interval_ms: u64,
    welcomed: usize,
    batch_interval_secs: u64,
    ghl_rate_limit: String,
    latency_p50_secs: f64,
    latency_p90_secs: f64,
    latency_p99_secs: f64,
    latency_max_secs: f64,
}

/// Kills the child when dropped, so a failed bench leaves no `serve` behind.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn run_step(
    exe: &std::path::Path,
    args: &[&str],
    pipeline: &std::path::Path,
) -> anyhow::Result<()> {
    let out = Command::new(exe)
        .args(args)
        .arg("--pipeline")
        .arg(pipeline)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("running contactsync {args:?}"))?;
    if !matches!(out.status.code(), Some(0 | 3)) {
        bail!(
            "contactsync {args:?} exited {:?}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

pub(super) async fn bench_welcome(args: &BenchArgs) -> anyhow::Result<WelcomeLatencyResults> {
    let exe = std::env::current_exe().context("locating the contactsync binary")?;
    let dir = args.out.join("serve-welcome");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let sandbox = sandbox::start(SandboxOptions {
        seed: 23,
        contacts: 200,
        messages: 200,
        rate_limit: true,
        ..SandboxOptions::default()
    })
    .await
    .context("starting the sandbox")?;
    let info = sandbox.info.clone();
    let limit = info
        .ghl_rate_limit
        .map(|l| format!("{} requests per {} ms", l.burst, l.window_ms))
        .unwrap_or_else(|| "none".into());
    let pipeline = dir.join("pipeline.toml");
    let text = format!(
        "{}\n[transform.triggers.welcome]\ntemplate = \"Hi {{first_name|there}}, welcome!\"\n\n\
         [serve]\nlisten = \"127.0.0.1:0\"\nbatch_interval_secs = {}\n\n[serve.ghl]\n\
         public_key_pem = \"\"\"\n{}\"\"\"\n",
        super::sandbox_pipeline_toml(&info, "state"),
        args.batch_interval,
        info.ghl_webhook_public_key_pem
    );
    std::fs::write(&pipeline, text).with_context(|| format!("writing {}", pipeline.display()))?;
    let (exe2, pipeline2) = (exe.clone(), pipeline.clone());
    tokio::task::spawn_blocking(move || {
        run_step(&exe2, &["auth", "ghl"], &pipeline2)?;
        // The baseline: the first run fires nothing, later ones measure "new" against it.
        run_step(&exe2, &["run"], &pipeline2)
    })
    .await
    .context("baseline thread")??;

    let mut serve = KillOnDrop(
        Command::new(&exe)
            .args(["serve", "--pipeline"])
            .arg(&pipeline)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting contactsync serve")?,
    );
    let stdout = serve.0.stdout.take().context("serve's stdout")?;
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await
    .context("serve reader thread")?
    .context("reading serve's ready line")?;
    let ready: Value =
        serde_json::from_str(&line).with_context(|| format!("serve's ready line {line:?}"))?;
    let Some(addr) = ready["listen"].as_str() else {
        bail!("serve's ready line has no listen address: {line:?}");
    };
    let http = reqwest::Client::new();
    let registered = http
        .post(format!("{}/_sandbox/webhooks/ghl", info.control_url))
        .json(&json!({ "url": format!("http://{addr}/webhooks/ghl") }))
        .send()
        .await
        .context("registering serve's URL")?;
    if !registered.status().is_success() {
        bail!("registering serve's URL: {}", registered.status());
    }

    let created_count = args.created;
    let mut created_at: HashMap<String, Instant> = HashMap::new();
    let mut welcomed_at: HashMap<String, Instant> = HashMap::new();
    let mut next_create = Instant::now();
    let deadline_after_last = Duration::from_secs(args.batch_interval * 3 + 120);
    let mut last_created = Instant::now();
    loop {
        if created_at.len() < created_count && Instant::now() >= next_create {
            let i = created_at.len();
            let phone = format!("+1415559{i:04}");
            let answer = http
                .post(format!("{}/contacts/", info.ghl_base_url))
                .bearer_auth(&info.ghl_token)
                .header("Version", "2021-07-28")
                .json(&json!({
                    "locationId": info.ghl_location_id, "firstName": format!("Bench{i}"),
                    "lastName": "Welcome", "email": format!("bench.welcome{i}@example.com"),
                    "phone": phone,
                }))
                .send()
                .await
                .context("creating a contact")?;
            if !answer.status().is_success() {
                bail!("creating contact {i}: {}", answer.status());
            }
            last_created = Instant::now();
            created_at.insert(digits(&phone), last_created);
            next_create += Duration::from_millis(args.create_interval_ms);
        }
        let state: Value = http
            .get(format!("{}/_sandbox/state", info.control_url))
            .send()
            .await
            .context("reading the sandbox's state")?
            .json()
            .await
            .context("the sandbox's state")?;
        let seen = Instant::now();
        for m in state["bulksms"]["messages"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let to = digits(m["to"].as_str().unwrap_or(""));
            if m["type"] == "SENT"
                && created_at.contains_key(&to)
                && m["body"].as_str().is_some_and(|b| b.contains("welcome"))
            {
                welcomed_at.entry(to).or_insert(seen);
            }
        }
        if created_at.len() == created_count
            && (welcomed_at.len() == created_count || last_created.elapsed() > deadline_after_last)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(serve);
    sandbox.shutdown().await.context("stopping the sandbox")?;
    let mut latencies: Vec<f64> = welcomed_at
        .iter()
        .map(|(phone, at)| at.duration_since(created_at[phone]).as_secs_f64())
        .collect();
    latencies.sort_by(f64::total_cmp);
    Ok(WelcomeLatencyResults {
        machine: machine_description(),
        build: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        method: format!(
            "in-process sandbox (200 seeded contacts, GHL rate limit on) after a baseline nightly \
             run; contactsync serve as a child process with micro-batches every {} s; {} \
             contacts with phones created through the GHL API one every {} ms; latency from the \
             create call's answer to the first 100 ms poll of the sandbox's state showing the \
             welcome SMS as SENT",
            args.batch_interval, created_count, args.create_interval_ms
        ),
        created: created_count,
        create_interval_ms: args.create_interval_ms,
        welcomed: latencies.len(),
        batch_interval_secs: args.batch_interval,
        ghl_rate_limit: limit,
        latency_p50_secs: percentile(&latencies, 0.50),
        latency_p90_secs: percentile(&latencies, 0.90),
        latency_p99_secs: percentile(&latencies, 0.99),
        latency_max_secs: latencies.last().copied().unwrap_or(0.0),
    })
}
