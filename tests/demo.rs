//! `contactsync demo` end to end (sandbox in-process, two nights), and its HTML report opened in
//! headless Chromium: the page's script runs to the end and the console shows no error.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .filter_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join(name))
                    .find(|p| p.is_file())
            })
        })
        .next()
}

/// Loads `page` in headless Chromium; returns the DOM after scripts ran and the browser's log.
fn render(browser: &Path, page: &Path, profile: &Path) -> (String, String) {
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=3000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_demo_runs_two_nights_and_its_report_renders_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_contactsync"))
        .args([
            "demo",
            "--contacts",
            "150",
            "--messages",
            "300",
            "--json",
            "--out",
        ])
        .arg(dir.path())
        .env("RUST_LOG", "warn")
        .output()
        .expect("demo runs");
    assert!(
        out.status.success(),
        "demo exited {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .expect("a JSON line"),
    )
    .expect("JSON report");
    assert!(
        report["counts"]["first_run.applied"].as_u64() > Some(0),
        "{report}"
    );
    // Night 2: two welcomes, a reminder on a tag, one on a custom field and the digest; night 1
    // texted nobody.
    assert_eq!(report["counts"]["messages_fired"], 5, "{report}");
    assert_eq!(report["counts"]["failed"], 0, "{report}");
    let run_dir = PathBuf::from(report["run_dir"].as_str().expect("run_dir"));
    // The day's question by SMS becomes one follow-up task.
    let plan = std::fs::read_to_string(run_dir.join("load/plan.md")).expect("plan.md");
    assert!(
        plan.contains("| create_task | 1 |") && plan.contains("waits for an answer"),
        "night 2's plan has no follow-up task for the question:\n{plan}"
    );
    let page = run_dir.join("audit/report.html");
    let html = std::fs::read_to_string(&page).expect("report.html");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "the report loads nothing from the network"
    );
    assert!(html.contains("<svg"), "charts are inline SVG");

    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("CONTACTSYNC_REQUIRE_BROWSER").is_none(),
            "CONTACTSYNC_REQUIRE_BROWSER is set but no chromium is on PATH"
        );
        eprintln!(
            "chromium not found: the browser half of this test was not run (.ci/run installs it)"
        );
        return;
    };
    let (dom, log) = render(&browser, &page, &dir.path().join("chromium-profile"));
    assert!(
        dom.contains("data-ready=\"1\""),
        "the report's script did not run to the end; browser log:\n{log}"
    );
    // The page's script logs nothing, so any console line from it (an uncaught exception, an
    // error) is a failure.
    let console_errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("CONSOLE") && l.contains("report.html"))
        .collect();
    assert!(
        console_errors.is_empty(),
        "console errors: {console_errors:?}"
    );
    assert!(dom.contains("table class=\"sortable\""));
}
