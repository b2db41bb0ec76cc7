//! `contactsync check` against the sandbox: a good setup passes without writing anything remote,
//! and each broken setup fails on the line that names what to fix.

mod common;

use common::{Harness, json_report};
use contactsync::sandbox::SandboxOptions;
use serde_json::Value;

/// Runs `check --json`; returns the exit code and the report.
async fn check(h: &Harness) -> (Option<i32>, Value) {
    let out = h.run(&["check", "--json"]).await;
    (out.status.code(), json_report(&["check"], &out))
}

/// The check line named `name`.
fn line<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {report}"))
}

fn failed(report: &Value) -> Vec<String> {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| c["name"].as_str().expect("name").to_string())
        .collect()
}

fn edit_pipeline(h: &Harness, edit: impl FnOnce(String) -> String) {
    let text = std::fs::read_to_string(&h.pipeline).expect("pipeline");
    let edited = edit(text.clone());
    assert_ne!(edited, text, "the edit changed nothing");
    std::fs::write(&h.pipeline, edited).expect("write pipeline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_setup_passes_and_nothing_is_written() {
    let h = Harness::start(SandboxOptions::default()).await;
    h.authorise().await;
    let before = h.control("stats").await;
    let (code, report) = check(&h).await;
    assert_eq!(code, Some(0), "{report:#}");
    assert!(failed(&report).is_empty(), "{report:#}");
    for name in [
        "state_dir",
        "match_model",
        "ghl.credentials",
        "ghl.scopes",
        "ghl.location",
        "ghl.rate_limit",
        "bulksms.credentials",
        "bulksms.credits",
    ] {
        assert_eq!(line(&report, name)["status"], "ok", "{name}: {report:#}");
    }
    let rate = line(&report, "ghl.rate_limit")["message"]
        .as_str()
        .expect("message");
    assert!(rate.contains("burst 100 per 10000 ms"), "{rate}");
    assert!(
        line(&report, "bulksms.credits")["message"]
            .as_str()
            .expect("message")
            .contains("balance"),
    );
    let after = h.control("stats").await;
    assert_eq!(
        before["writes"], after["writes"],
        "check wrote to a service"
    );
    let names: Vec<String> = std::fs::read_dir(h.state_dir())
        .expect("state dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.starts_with(".contactsync-check")),
        "the probe file stayed: {names:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_bulksms_secret_fails_the_bulksms_line() {
    let h = Harness::start(SandboxOptions::default()).await;
    h.authorise().await;
    edit_pipeline(&h, |t| {
        let start = t.find("token_secret = ").expect("key");
        let end = start + t[start..].find('\n').expect("line end");
        format!(
            "{}token_secret = \"wrong-secret\"{}",
            &t[..start],
            &t[end..]
        )
    });
    let (code, report) = check(&h).await;
    assert_eq!(code, Some(2));
    assert_eq!(failed(&report), vec!["bulksms.credentials"], "{report:#}");
    let fix = line(&report, "bulksms.credentials")["fix"]
        .as_str()
        .expect("fix");
    assert!(fix.contains("Settings > API Tokens"), "{fix}");
    assert!(
        !report.to_string().contains("wrong-secret"),
        "the secret was printed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_grant_fails_a_writing_pipeline() {
    let h = Harness::start(SandboxOptions::default()).await;
    let creds = h.control("ghl/credentials").await;
    let readonly_code = creds["readonly_auth_code"].as_str().expect("code");
    let auth = h.run(&["auth", "ghl", "--code", readonly_code]).await;
    assert_eq!(
        auth.status.code(),
        Some(1),
        "auth reports the missing scope"
    );
    let (code, report) = check(&h).await;
    assert_eq!(code, Some(2));
    assert_eq!(failed(&report), vec!["ghl.scopes"], "{report:#}");
    let message = line(&report, "ghl.scopes")["message"]
        .as_str()
        .expect("message");
    assert!(message.contains("lacks contacts.write"), "{message}");
    // Reading still works with it: the location line is fine.
    assert_eq!(line(&report, "ghl.location")["status"], "ok");

    // The same grant passes a read-only pipeline.
    edit_pipeline(&h, |t| format!("{t}\n[load]\nenabled = false\n"));
    let (code, report) = check(&h).await;
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(line(&report, "ghl.scopes")["status"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_token_of_another_scope_or_location_is_named() {
    let h = Harness::start(SandboxOptions::default()).await;
    let creds = h.control("ghl/credentials").await;
    let readonly_token = creds["readonly_private_token"].as_str().expect("token");
    edit_pipeline(&h, |t| {
        let start = t.find("auth = {").expect("auth line");
        let end = start + t[start..].find('\n').expect("line end");
        format!(
            "{}auth = {{ kind = \"private_token\", token = \"{readonly_token}\" }}{}",
            &t[..start],
            &t[end..]
        )
    });
    let (code, report) = check(&h).await;
    // Its scopes cannot be read: a warning that says where to look, not a pass.
    assert_eq!(code, Some(0), "{report:#}");
    let scopes = line(&report, "ghl.scopes");
    assert_eq!(scopes["status"], "warn");
    assert!(
        scopes["fix"]
            .as_str()
            .expect("fix")
            .contains("Settings > Private Integrations"),
        "{scopes}"
    );
    // A location the token does not belong to.
    let location = h.sandbox.info.ghl_location_id.clone();
    edit_pipeline(&h, |t| t.replace(&location, "AnotherLocation00000"));
    let (code, report) = check(&h).await;
    assert_eq!(code, Some(2));
    let line = line(&report, "ghl.location");
    assert_eq!(line["status"], "fail");
    assert!(
        line["message"]
            .as_str()
            .expect("message")
            .contains("HTTP 403"),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_urls_fail_their_lines() {
    let h = Harness::start(SandboxOptions::default()).await;
    h.authorise().await;
    // Nothing listens on port 1 of loopback: the connection is refused at once.
    let ghl = h.sandbox.info.ghl_base_url.clone();
    let bulksms = h.sandbox.info.bulksms_base_url.clone();
    edit_pipeline(&h, |t| {
        t.replace(&ghl, "http://127.0.0.1:1/ghl")
            .replace(&bulksms, "http://127.0.0.1:1/bulksms/v1")
    });
    let started = std::time::Instant::now();
    let (code, report) = check(&h).await;
    assert_eq!(code, Some(2));
    assert_eq!(
        failed(&report),
        vec!["ghl.location", "bulksms.credentials"],
        "{report:#}"
    );
    let message = line(&report, "ghl.location")["message"]
        .as_str()
        .expect("message");
    assert!(
        message.contains("cannot reach GHL at http://127.0.0.1:1/ghl"),
        "{message}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "check took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_model_file_and_missing_tokens_fail_their_lines() {
    let h = Harness::start(SandboxOptions::default()).await;
    std::fs::write(h.dir.path().join("bad-model.toml"), "id_column = 5\n").expect("model");
    edit_pipeline(&h, |t| {
        format!("{t}\n[transform]\nmodel = \"bad-model.toml\"\n")
    });
    let (code, report) = check(&h).await;
    assert_eq!(code, Some(2));
    // No `auth ghl` yet either.
    assert_eq!(
        failed(&report),
        vec!["match_model", "ghl.credentials"],
        "{report:#}"
    );
    let model = line(&report, "match_model")["message"]
        .as_str()
        .expect("message");
    assert!(model.contains("bad-model.toml"), "{model}");
    let tokens = line(&report, "ghl.credentials")["fix"]
        .as_str()
        .expect("fix");
    assert!(tokens.contains("contactsync auth ghl"), "{tokens}");
    assert_eq!(
        line(&report, "state_dir")["status"],
        "warn",
        "not created yet"
    );
    assert!(!h.state_dir().exists(), "check created the state directory");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_human_output_has_one_line_per_check() {
    let h = Harness::start(SandboxOptions::default()).await;
    h.authorise().await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(h.state_dir(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
    }
    let out = h.run(&["check"]).await;
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("OK   ghl.location  "), "{text}");
    #[cfg(unix)]
    assert!(text.contains("WARN state_dir"), "{text}");
    assert!(text.contains("fix: chmod 700"), "{text}");
    assert!(
        text.lines().last().expect("summary").ends_with("0 failed"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_that_cannot_be_refreshed_fail_the_credentials_line() {
    let h = Harness::start(SandboxOptions {
        token_ttl_secs: 1,
        ..SandboxOptions::default()
    })
    .await;
    h.authorise().await;
    let stored: Value = serde_json::from_str(
        &std::fs::read_to_string(h.state_dir().join("tokens/ghl.json")).expect("tokens"),
    )
    .expect("json");
    // Another copy of the pipeline refreshed with the same refresh token: the stored one is spent.
    let info = &h.sandbox.info;
    let spent = h
        .http
        .post(format!("{}/oauth/token", info.ghl_base_url))
        .form(&[
            ("client_id", info.ghl_client_id.as_str()),
            ("client_secret", info.ghl_client_secret.as_str()),
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                stored["refresh_token"].as_str().expect("rt"),
            ),
        ])
        .send()
        .await
        .expect("refresh");
    assert!(spent.status().is_success());
    // Let the one-second access token expire, so check has to refresh.
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    let (code, report) = check(&h).await;
    assert_eq!(code, Some(2));
    assert_eq!(failed(&report), vec!["ghl.credentials"], "{report:#}");
    let line = line(&report, "ghl.credentials");
    assert!(
        line["message"]
            .as_str()
            .expect("message")
            .contains("cannot be refreshed"),
        "{line}"
    );
    assert!(
        line["message"]
            .as_str()
            .expect("message")
            .contains("invalid_grant"),
        "{line}"
    );
}

/// `[state] url`: the line names the database without its password, says the schema will be
/// created (then its version once a run made it) and whether the run lock is free; a wrong
/// password or an unreachable server fails the line, and the password is never printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_database_line_connects_reads_the_schema_and_tries_the_lock() {
    use common::postgres::StateBackend;
    // Small: the test runs the pipeline once.
    let h = Harness::start_on(common::effects::options(7, 30), StateBackend::Postgres).await;
    h.authorise().await;
    let url = h.state_db.as_ref().expect("a state database").url.clone();
    let password = url::Url::parse(&url)
        .expect("url")
        .password()
        .expect("a password")
        .to_string();
    let message = |report: &Value| {
        line(report, "state.url")["message"]
            .as_str()
            .expect("message")
            .to_string()
    };
    let (code, report) = check(&h).await;
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(line(&report, "state.url")["status"], "ok", "{report:#}");
    let fresh = message(&report);
    assert!(fresh.contains("the first run creates them"), "{fresh}");
    assert!(fresh.contains("the run lock is free"), "{fresh}");
    assert!(
        fresh.contains("connected without TLS (sslmode=disable)"),
        "{fresh}"
    );
    assert!(
        fresh.contains("127.0.0.1") && fresh.contains(":***@"),
        "{fresh}"
    );
    assert!(!fresh.contains(&format!(":{password}@")), "{fresh}");

    h.run_ok(&["run", "--json"]).await;
    let (_, report) = check(&h).await;
    let made = message(&report);
    assert!(
        made.contains(&format!(
            "schema version {}",
            contactsync::state::pg::SCHEMA_VERSION
        )),
        "{made}"
    );
    // Another machine's runner holds the location's lock: a warning naming what to wait for.
    let held = common::postgres::lock_as_another_machine(&h.pipeline).await;
    let (code, report) = check(&h).await;
    assert_eq!(code, Some(0), "a held lock is a warning: {report:#}");
    assert_eq!(line(&report, "state.url")["status"], "warn", "{report:#}");
    assert!(message(&report).contains("advisory lock"), "{report:#}");
    drop(held);

    for (broken, why) in [
        (
            url.replace(&format!(":{password}@"), ":pw-wrong-4471@"),
            "password",
        ),
        (
            url.replace(
                &format!(
                    ":{}/",
                    url::Url::parse(&url).expect("url").port().expect("port")
                ),
                ":1/",
            ),
            "refused",
        ),
    ] {
        let text = std::fs::read_to_string(&h.pipeline).expect("pipeline");
        std::fs::write(&h.pipeline, text.replace(&url, &broken)).expect("write");
        let (code, report) = check(&h).await;
        assert_eq!(code, Some(2), "{why}: {report:#}");
        assert_eq!(failed(&report), vec!["state.url"], "{why}: {report:#}");
        let shown = report.to_string();
        assert!(message(&report).contains(why), "{why}: {report:#}");
        for secret in [format!(":{password}@"), "pw-wrong-4471".to_string()] {
            assert!(
                !shown.contains(&secret),
                "{why}: a password was printed: {shown}"
            );
        }
        let text = std::fs::read_to_string(&h.pipeline).expect("pipeline");
        std::fs::write(&h.pipeline, text.replace(&broken, &url)).expect("write");
    }
    // The machine's cluster serves TLS: with sslmode=require the line says the link is encrypted.
    let text = std::fs::read_to_string(&h.pipeline).expect("pipeline");
    std::fs::write(
        &h.pipeline,
        text.replace(&url, &url.replace("sslmode=disable", "sslmode=require")),
    )
    .expect("write");
    let (code, report) = check(&h).await;
    assert_eq!(code, Some(0), "{report:#}");
    let encrypted = message(&report);
    assert!(
        encrypted.contains("connected over TLS") && encrypted.contains("(sslmode=require)"),
        "{encrypted}"
    );
}
