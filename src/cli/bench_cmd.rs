//! `contactsync bench`: benchmarks as programs, results written to a file for the README.
//!
//! Each benchmark runs the real binary as child processes (a sandbox and the stage under test), so
//! the figures are what a user sees, and the stage's peak memory is its own, not the sandbox's.

use super::bench_serve::machine_description;
use super::{BenchArgs, BenchTarget, CommandError};
use crate::exit_code::ExitCode;
use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(super) async fn run(args: BenchArgs) -> Result<ExitCode, CommandError> {
    let (file, results) = match args.target {
        BenchTarget::Extract => (
            "extract.json",
            serde_json::to_value(bench_extract(&args).await?)?,
        ),
        BenchTarget::Serve => (
            "serve_ack.json",
            serde_json::to_value(super::bench_serve::bench_serve(&args).await?)?,
        ),
        BenchTarget::Welcome => (
            "serve_welcome.json",
            serde_json::to_value(super::bench_welcome::bench_welcome(&args).await?)?,
        ),
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let path = args.out.join(file);
    std::fs::write(&path, serde_json::to_vec_pretty(&results)?)
        .with_context(|| format!("writing {}", path.display()))?;
    println!("{}", serde_json::to_string_pretty(&results)?);
    eprintln!("Benchmark results written to {}", path.display());
    Ok(ExitCode::Ok)
}

/// One measured extract.
#[derive(Debug, Clone, Serialize)]
struct ExtractMeasurement {
    label: String,
    contacts: usize,
    messages: usize,
    rate_limited: bool,
    wall_secs: f64,
    rows: u64,
    rows_per_sec: f64,
    peak_rss_mib: f64,
    ghl_requests: u64,
    ghl_429s: u64,
    min_ghl_requests: u64,
    achieved_ghl_rate_per_10s: f64,
    share_of_limit: f64,
}

#[derive(Debug, Clone, Serialize)]
struct ExtractResults {
    machine: String,
    method: String,
    measurements: Vec<ExtractMeasurement>,
}

async fn bench_extract(args: &BenchArgs) -> anyhow::Result<ExtractResults> {
    let exe = std::env::current_exe().context("locating the contactsync binary")?;
    let mut measurements = Vec::new();
    for &n in &args.sizes {
        measurements.push(measure_extract(&exe, args, n, n, false).await?);
    }
    if let Some(n) = args.limited_contacts {
        measurements.push(measure_extract(&exe, args, n, 1_000, true).await?);
    }
    Ok(ExtractResults {
        machine: machine_description(),
        method: "contactsync sandbox and contactsync extract as separate processes on loopback; \
                 peak RSS of the extract process sampled from /proc every 50 ms (VmHWM); \
                 rows = contacts + messages written to the snapshot"
            .into(),
        measurements,
    })
}

async fn measure_extract(
    exe: &Path,
    args: &BenchArgs,
    contacts: usize,
    messages: usize,
    rate_limited: bool,
) -> anyhow::Result<ExtractMeasurement> {
    let work = args.out.join(format!(
        "extract-{contacts}-{}",
        if rate_limited { "limited" } else { "unlimited" }
    ));
    if work.exists() {
        std::fs::remove_dir_all(&work).with_context(|| format!("clearing {}", work.display()))?;
    }
    std::fs::create_dir_all(&work)?;
    let pipeline = work.join("pipeline.toml");
    let mut sandbox_cmd = Command::new(exe);
    sandbox_cmd
        .args(["sandbox", "--seed", "1"])
        .args(["--contacts", &contacts.to_string()])
        .args(["--messages", &messages.to_string()])
        .arg("--emit-pipeline")
        .arg(&pipeline)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if !rate_limited {
        sandbox_cmd.arg("--no-rate-limit");
    }
    let mut sandbox = KillOnDrop(sandbox_cmd.spawn().context("starting the sandbox")?);
    let stdout = sandbox.0.stdout.take().context("sandbox stdout")?;
    let ready = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await
    .context("sandbox reader thread")?
    .context("reading the sandbox's ready line")?;
    let info: Value = serde_json::from_str(&ready).context("parsing the ready line")?;
    // With the sandbox's limit off, the pipeline file it emits lifts the client's own pacing too,
    // so the figure is the pipeline's throughput rather than the limiter's rate.
    let control = info["control_url"]
        .as_str()
        .context("control_url")?
        .to_string();

    let auth = Command::new(exe)
        .args(["auth", "ghl", "--pipeline"])
        .arg(&pipeline)
        .output()
        .context("running auth")?;
    if !auth.status.success() {
        bail!("auth failed: {}", String::from_utf8_lossy(&auth.stderr));
    }
    let started = Instant::now();
    let mut child = Command::new(exe)
        .args(["extract", "--json", "--pipeline"])
        .arg(&pipeline)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting extract")?;
    let pid = child.id();
    let mut peak_kib = 0u64;
    loop {
        if let Some(kib) = vm_hwm_kib(pid) {
            peak_kib = peak_kib.max(kib);
        }
        if child.try_wait()?.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let wall = started.elapsed().as_secs_f64();
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!("extract failed with {:?}", output.status.code());
    }
    let report: Value = serde_json::from_slice(
        output
            .stdout
            .split(|b| *b == b'\n')
            .rfind(|l| !l.is_empty())
            .unwrap_or_default(),
    )
    .context("parsing the extract report")?;
    let rows = report["counts"]["ghl/contacts.rows"].as_u64().unwrap_or(0)
        + report["counts"]["bulksms/messages.rows"]
            .as_u64()
            .unwrap_or(0);
    let stats: Value = ::reqwest::get(format!("{control}/_sandbox/stats"))
        .await
        .context("reading sandbox stats")?
        .json()
        .await
        .context("parsing sandbox stats")?;
    let (ghl_requests, ghl_429s) = ghl_request_counts(&stats);
    let min_ghl = contacts.div_ceil(500) as u64 + 1;
    let rate = ghl_requests as f64 / wall * 10.0;
    Ok(ExtractMeasurement {
        label: format!(
            "{contacts} contacts + {messages} messages, GHL rate limit {}",
            if rate_limited {
                "on (100 / 10 s)"
            } else {
                "off"
            }
        ),
        contacts,
        messages,
        rate_limited,
        wall_secs: wall,
        rows,
        rows_per_sec: rows as f64 / wall,
        peak_rss_mib: peak_kib as f64 / 1024.0,
        ghl_requests,
        ghl_429s,
        min_ghl_requests: min_ghl,
        achieved_ghl_rate_per_10s: rate,
        share_of_limit: rate / 100.0,
    })
}

/// GHL contact requests (not the token endpoint) and how many were answered 429.
fn ghl_request_counts(stats: &Value) -> (u64, u64) {
    let mut total = 0;
    let mut limited = 0;
    if let Some(routes) = stats["requests"].as_object() {
        for (route, by_status) in routes {
            if !route.contains("/ghl/") || route.contains("/oauth/") {
                continue;
            }
            for (status, n) in by_status.as_object().into_iter().flatten() {
                let n = n.as_u64().unwrap_or(0);
                total += n;
                if status == "429" {
                    limited += n;
                }
            }
        }
    }
    (total, limited)
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// Kills a child process when dropped (the sandbox must not outlive its benchmark).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _already_exited = self.0.kill();
        let _reaped = self.0.wait();
    }
}
