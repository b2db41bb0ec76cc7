//! The binary as an operator gets it: installed into a prefix with `cargo install`, run from a
//! folder that has nothing of the checkout, configured by the nightly pipeline file and the
//! environment alone; and the shell completions and man pages it generates.

mod common;

use common::Harness;
use common::effects::options;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_contactsync")
}

fn run_bin(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .output()
        .expect("binary runs")
}

const SUBCOMMANDS: [&str; 9] = [
    "sandbox",
    "auth",
    "extract",
    "transform",
    "plan",
    "load",
    "run",
    "audit",
    "dedupe",
];

#[test]
fn completions_cover_every_subcommand_in_each_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = run_bin(&["completions", shell]);
        assert!(out.status.success(), "completions {shell}: {out:?}");
        let script = String::from_utf8(out.stdout).expect("UTF-8");
        for sub in SUBCOMMANDS.iter().chain(&["migrate", "completions", "man"]) {
            assert!(
                script.contains(sub),
                "the {shell} completions do not mention `{sub}`"
            );
        }
    }
    // Flags too, not only command names.
    let bash = String::from_utf8(run_bin(&["completions", "bash"]).stdout).expect("UTF-8");
    assert!(bash.contains("--pipeline") && bash.contains("--log-format"));
    let out = run_bin(&["completions", "tcsh"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

#[test]
fn the_man_page_lists_the_subcommands_and_out_writes_a_page_for_each() {
    let out = run_bin(&["man"]);
    assert!(out.status.success(), "{out:?}");
    let page = String::from_utf8(out.stdout).expect("UTF-8");
    assert!(
        page.starts_with(".ie") || page.contains(".TH contactsync 1"),
        "roff: {page}"
    );
    assert!(page.contains(".SH SUBCOMMANDS"), "{page}");
    for sub in SUBCOMMANDS {
        assert!(page.contains(sub), "the man page does not mention `{sub}`");
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let pages = dir.path().join("man1");
    let out = run_bin(&["man", "--out", pages.to_str().expect("UTF-8 path")]);
    assert!(out.status.success(), "{out:?}");
    for sub in SUBCOMMANDS {
        let path = pages.join(format!("contactsync-{sub}.1"));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(text.contains(".TH contactsync-"), "{}", path.display());
    }
    let run_page = std::fs::read_to_string(pages.join("contactsync-run.1")).expect("run page");
    assert!(
        run_page.contains("pipeline"),
        "the run page documents --pipeline"
    );
    assert!(pages.join("contactsync.1").exists());
}

/// `cargo install --path . --root PREFIX --offline --locked` (with `--debug` when the tests were
/// built in the dev profile), into the target folder this test binary was built in: the binary
/// there is already up to date, so cargo only copies it (under a second), and the outer
/// `cargo test` holds no build lock while tests run. Returns PREFIX/bin/contactsync.
fn cargo_install(prefix: &Path) -> PathBuf {
    let built = Path::new(bin());
    let profile_dir = built.parent().expect("profile folder");
    let target_dir = profile_dir.parent().expect("target folder");
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .args(["install", "--path", env!("CARGO_MANIFEST_DIR"), "--root"])
        .arg(prefix)
        .args(["--offline", "--locked", "--bin", "contactsync"]);
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => {
            command.arg("--debug");
        }
        Some("release") => {}
        other => panic!("tests built in an unexpected profile folder {other:?}"),
    }
    // What `cargo test` sets for its tests is not the install's business.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if name.starts_with("CARGO_") && name != "CARGO_HOME" {
            command.env_remove(&name);
        }
    }
    let clock = std::time::Instant::now();
    let out = command
        .env("CARGO_TARGET_DIR", target_dir)
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo install: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!(
        "cargo install took {:.1} s: {}",
        clock.elapsed().as_secs_f64(),
        stderr
            .lines()
            .filter(|l| l.contains("Compiling") || l.contains("Finished"))
            .collect::<Vec<_>>()
            .join("; ")
    );
    let installed = prefix.join("bin/contactsync");
    assert!(
        installed.exists(),
        "{} was not installed",
        installed.display()
    );
    installed
}

/// `pipelines/nightly.toml` pointed at the sandbox: only the two base URLs and the state folder
/// change; credentials stay `${NAME}` references filled from the environment.
fn nightly_for_sandbox(h: &Harness, state_dir: &Path) -> String {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/nightly.toml"),
    )
    .expect("nightly.toml");
    let replace_line = |text: String, prefix: &str, line: String| {
        let mut found = 0;
        let out: Vec<String> = text
            .lines()
            .map(|l| {
                if l.starts_with(prefix) {
                    found += 1;
                    line.clone()
                } else {
                    l.to_string()
                }
            })
            .collect();
        assert_eq!(found, 1, "nightly.toml has one line starting {prefix:?}");
        out.join("\n") + "\n"
    };
    let info = &h.sandbox.info;
    let text = replace_line(
        text,
        "base_url = \"https://services.leadconnectorhq.com\"",
        format!("base_url = \"{}\"", info.ghl_base_url),
    );
    let text = replace_line(
        text,
        "base_url = \"https://api.bulksms.com/v1\"",
        format!("base_url = \"{}\"", info.bulksms_base_url),
    );
    replace_line(
        text,
        "state_dir = ",
        format!("state_dir = \"{}\"", state_dir.display()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_installed_binary_runs_the_nightly_pipeline_from_an_unrelated_folder() {
    let prefix = tempfile::tempdir().expect("prefix");
    let installed = cargo_install(prefix.path());
    let h = Harness::start(options(21, 80)).await;
    // The operator's layout: the pipeline in one folder, state in another, the job's working
    // folder a third, none of them in the checkout.
    let etc = tempfile::tempdir().expect("etc");
    let state = tempfile::tempdir().expect("state");
    let cwd = tempfile::tempdir().expect("cwd");
    let pipeline = etc.path().join("nightly.toml");
    std::fs::write(
        &pipeline,
        nightly_for_sandbox(&h, &state.path().join("nightly")),
    )
    .expect("write pipeline");
    let info = h.sandbox.info.clone();
    let run = |args: Vec<String>| {
        let installed = installed.clone();
        let cwd = cwd.path().to_path_buf();
        let info = info.clone();
        tokio::task::spawn_blocking(move || {
            Command::new(&installed)
                .args(&args)
                .current_dir(&cwd)
                // Nothing of cargo's environment: no CARGO_MANIFEST_DIR to find the checkout by.
                .env_clear()
                .env("PATH", "/usr/bin:/bin")
                .env("HOME", &cwd)
                .env("RUST_LOG", "info")
                .env("GHL_LOCATION_ID", &info.ghl_location_id)
                .env("GHL_CLIENT_ID", &info.ghl_client_id)
                .env("GHL_CLIENT_SECRET", &info.ghl_client_secret)
                .env("BULKSMS_TOKEN_ID", &info.bulksms_token_id)
                .env("BULKSMS_TOKEN_SECRET", &info.bulksms_token_secret)
                .output()
                .expect("installed binary runs")
        })
    };
    let pipeline_arg = pipeline.display().to_string();
    let args = |list: &[&str]| -> Vec<String> { list.iter().map(|s| s.to_string()).collect() };

    let out = run(args(&[
        "auth",
        "ghl",
        "--pipeline",
        &pipeline_arg,
        "--code",
        &info.ghl_auth_code,
    ]))
    .await
    .expect("join");
    assert!(
        out.status.success(),
        "auth ghl: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = run(args(&[
        "run",
        "--pipeline",
        &pipeline_arg,
        "--json",
        "--log-format",
        "json",
    ]))
    .await
    .expect("join");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report = common::json_report(&["run"], &out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the nightly run failed: {report}\n{stderr}"
    );
    let count = |k: &str| report["counts"][k].as_u64().unwrap_or(0);
    assert!(count("ghl/contacts.rows") >= 80, "{report}");
    // Duplicates were found, so the match model was there: the one built into the binary, as
    // the pipeline names none and nothing of the checkout is reachable.
    assert!(count("duplicate_clusters") > 0, "{report}");
    assert!(
        stderr.lines().any(|l| {
            serde_json::from_str::<Value>(l).is_ok_and(|v| {
                v["model"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("built into contactsync"))
            })
        }),
        "no log line says the built-in match model was used:\n{stderr}"
    );
    let run_dir = PathBuf::from(report["run_dir"].as_str().expect("run_dir"));
    assert!(run_dir.starts_with(state.path()), "{}", run_dir.display());
    let plan = std::fs::read_to_string(run_dir.join("load/plan.md")).expect("a plan.md");
    assert!(plan.starts_with("# Plan for run"), "{plan}");
    assert!(run_dir.join("audit/report.html").exists());
    assert!(state.path().join("nightly/metrics.prom").exists());
    // The working folder is left as it was.
    assert_eq!(
        std::fs::read_dir(cwd.path()).expect("cwd").count(),
        0,
        "the run wrote into its working folder"
    );
}
