//! What every run carries besides its data: a tracing span per stage and per location on each JSON
//! log line, and the one clock all its times come from (`CONTACTSYNC_NOW` fixes it).

mod common;

use common::Harness;
use common::effects::options;
use serde_json::Value;
use std::process::{Command, Output};

/// Runs the binary with `args`, the harness's pipeline file and extra environment.
async fn run_with_env(h: &Harness, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut full: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    full.push("--pipeline".into());
    full.push(h.pipeline.display().to_string());
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_contactsync"))
            .args(&full)
            .envs(env)
            .output()
            .expect("binary runs")
    })
    .await
    .expect("join")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_lines_name_their_stage_and_location() {
    let h = Harness::start(options(41, 40)).await;
    h.authorise().await;
    let out = run_with_env(
        &h,
        &["--log-format", "json", "run", "--json"],
        &[("RUST_LOG", "info")],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "run failed:\n{stderr}");
    let location = h.sandbox.info.ghl_location_id.clone();
    let lines: Vec<Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect();
    assert!(!lines.is_empty(), "no JSON log lines:\n{stderr}");
    for stage in ["extract", "transform", "plan", "load", "audit"] {
        let in_stage: Vec<&Value> = lines
            .iter()
            .filter(|l| l["span"]["name"] == "stage" && l["span"]["stage"] == stage)
            .collect();
        assert!(
            !in_stage.is_empty(),
            "no log line carries span.stage = {stage}:\n{stderr}"
        );
        for line in in_stage {
            assert_eq!(line["span"]["location_id"], location.as_str(), "{line}");
            let spans = line["spans"].as_array().expect("span list");
            assert!(
                spans
                    .iter()
                    .any(|s| s["name"] == "location" && s["location_id"] == location.as_str()),
                "the stage span sits inside the location span: {line}"
            );
        }
    }

    // A stage run on its own sits in the location's span too.
    let out = run_with_env(
        &h,
        &["--log-format", "json", "audit"],
        &[("RUST_LOG", "info")],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let audit_line = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["span"]["stage"] == "audit")
        .unwrap_or_else(|| panic!("no audit line:\n{stderr}"));
    let names: Vec<&str> = audit_line["spans"]
        .as_array()
        .expect("span list")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["location", "stage"], "{audit_line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contactsync_now_fixes_the_clock_of_a_run() {
    let h = Harness::start(options(42, 30)).await;
    h.authorise().await;
    let now = "2031-02-03T04:05:06Z";
    let out = run_with_env(&h, &["extract", "--json"], &[("CONTACTSYNC_NOW", now)]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = common::json_report(&["extract", "--json"], &out);
    let run_id = report["run_id"].as_str().expect("run id");
    assert!(run_id.starts_with("20310203T040506Z-"), "{run_id}");
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(
            h.state_dir()
                .join("runs")
                .join(run_id)
                .join("extract/manifest.json"),
        )
        .expect("manifest"),
    )
    .expect("manifest JSON");
    for key in ["started_at", "finished_at"] {
        let at = manifest[key].as_str().expect(key);
        let at = chrono::DateTime::parse_from_rfc3339(at).expect("RFC 3339");
        assert_eq!(at.to_rfc3339(), "2031-02-03T04:05:06+00:00", "{key}");
    }

    let out = run_with_env(
        &h,
        &["extract", "--json"],
        &[("CONTACTSYNC_NOW", "tomorrow")],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("CONTACTSYNC_NOW"), "{stderr}");
}
