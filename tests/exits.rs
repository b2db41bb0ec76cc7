//! Every exit leaves a trace a job can read: the `--json` report on stdout, `metrics.prom` with
//! the exit code and the last success, and in JSON log mode a JSON fatal line.

mod common;

use common::Harness;
use common::effects::options;
use serde_json::Value;
use std::process::Command;

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(&format!("contactsync_{name}{{")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// A sandbox whose first run succeeded: the harness, `STATE/metrics.prom` (checked to record exit
/// code 0) and the last success's timestamp in it.
async fn after_a_good_run() -> (Harness, std::path::PathBuf, f64) {
    let h = Harness::start(options(31, 60)).await;
    h.authorise().await;
    h.run_ok(&["run", "--json"]).await;
    let metrics_path = h.state_dir().join("metrics.prom");
    let good = std::fs::read_to_string(&metrics_path).expect("metrics after a good run");
    assert_eq!(metric(&good, "last_run_exit_code"), Some(0.0), "{good}");
    let success = metric(&good, "last_success_timestamp_seconds").expect("last success");
    (h, metrics_path, success)
}

/// `metrics.prom` records `code` as the last run's exit code and keeps the last success.
fn assert_recorded(metrics_path: &std::path::Path, code: u8, success: f64) {
    let text = std::fs::read_to_string(metrics_path).expect("metrics after the run");
    assert_eq!(
        metric(&text, "last_run_exit_code"),
        Some(f64::from(code)),
        "{text}"
    );
    assert_eq!(
        metric(&text, "last_success_timestamp_seconds"),
        Some(success),
        "the last success is kept:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_reports_its_exit_code_in_json_and_metrics() {
    let (h, metrics_path, success) = after_a_good_run().await;

    // BulkSMS becomes unreachable: the next run fails.
    let text = std::fs::read_to_string(&h.pipeline).expect("pipeline");
    let broken = text.replace(
        &h.sandbox.info.bulksms_base_url,
        "http://127.0.0.1:9/bulksms/v1",
    );
    std::fs::write(&h.pipeline, broken).expect("write");
    let out = h.run(&["run", "--json"]).await;
    let code = out.status.code().expect("exit code");
    assert_ne!(code, 0);
    let report = common::json_report(&["run", "--json"], &out);
    assert_eq!(report["exit_code"], code, "{report}");
    assert_eq!(report["command"], "run");
    assert!(
        report["errors"][0].as_str().is_some_and(|e| !e.is_empty()),
        "{report}"
    );
    assert_recorded(
        &metrics_path,
        u8::try_from(code).expect("an exit code"),
        success,
    );
}

#[test]
fn a_bad_pipeline_file_still_prints_the_report_and_a_json_fatal_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = dir.path().join("broken.toml");
    std::fs::write(
        &pipeline,
        "[pipeline]\nname = \"x\"\nstate_dirr = \"state\"\n",
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_contactsync"))
        .args(["--log-format", "json", "plan", "--json", "--pipeline"])
        .arg(&pipeline)
        .output()
        .expect("binary runs");
    assert_eq!(out.status.code(), Some(2));
    let report = common::json_report(&["plan", "--json"], &out);
    assert_eq!(report["exit_code"], 2);
    assert!(
        report["errors"][0]
            .as_str()
            .is_some_and(|e| e.contains("state_dirr")),
        "{report}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let fatal = stderr
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .expect("a fatal line");
    let fatal: Value = serde_json::from_str(fatal)
        .unwrap_or_else(|e| panic!("the fatal line is not JSON ({e}): {fatal}"));
    assert_eq!(fatal["level"], "ERROR", "{fatal}");
    assert_eq!(fatal["exit_code"], 2, "{fatal}");
}

/// Exit 6: a run that finds the state directory locked by another still writes its report and
/// its metrics (exit code 6, the last success kept), so an alert can tell "skipped" from "ran".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_finds_the_lock_held_reports_exit_6_in_json_and_metrics() {
    use fs2::FileExt;
    let (h, metrics_path, success) = after_a_good_run().await;

    // Another run holds the lock, as `contactsync` itself takes it.
    let lock = std::fs::File::create(h.state_dir().join("lock")).expect("lock file");
    lock.try_lock_exclusive().expect("the lock is free");
    let out = h.run(&["run", "--json"]).await;
    assert_eq!(out.status.code(), Some(6), "{out:?}");
    let report = common::json_report(&["run", "--json"], &out);
    assert_eq!(report["exit_code"], 6, "{report}");
    assert_recorded(&metrics_path, 6, success);
    FileExt::unlock(&lock).expect("unlock");
}

/// Exit 2 after a deploy broke the pipeline file (here a `${VAR}` the environment lacks): the file
/// still names its state directory, so `metrics.prom` records the refusal where alerting looks,
/// with the last success kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_pipeline_file_records_exit_2_in_the_metrics_it_names() {
    let (h, metrics_path, success) = after_a_good_run().await;

    let text = std::fs::read_to_string(&h.pipeline).expect("pipeline");
    let broken = text.replace(
        &h.sandbox.info.bulksms_base_url,
        "${CONTACTSYNC_EXITS_TEST_NEVER_SET}",
    );
    assert_ne!(broken, text, "the pipeline names the BulkSMS URL");
    std::fs::write(&h.pipeline, broken).expect("write");
    let out = h.run(&["run", "--json"]).await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_recorded(&metrics_path, 2, success);
}
