//! `contactsync auth ghl` against the sandbox's authorization page and token endpoint: the printed
//! URL asks for the least scopes, the code comes back on a loopback redirect (or is pasted), `state`
//! is checked, and the tokens land in the state directory.

mod common;

use common::{Harness, json_report};
use contactsync::sandbox::SandboxOptions;
use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A free loopback port (bound, read, released: the binary binds it next).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Rewrites the harness's pipeline: OAuth without a stored code, the given redirect URI, the
/// sandbox's authorization page, and `extra` appended.
fn oauth_pipeline(h: &Harness, redirect_uri: &str, extra: &str) {
    let info = &h.sandbox.info;
    let text = std::fs::read_to_string(&h.pipeline).expect("pipeline");
    let old = format!(", auth_code = \"{}\" }}", info.ghl_auth_code);
    assert!(text.contains(&old), "the harness pipeline changed shape");
    let new = format!(
        ", redirect_uri = \"{redirect_uri}\", authorize_url = \"{}/v2/oauth/chooselocation\" }}",
        info.ghl_base_url
    );
    std::fs::write(
        &h.pipeline,
        format!("{}\n{extra}\n", text.replace(&old, &new)),
    )
    .expect("write pipeline");
}

/// `auth ghl` running in the background; its stderr is read line by line on a thread.
struct AuthProcess {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl AuthProcess {
    fn start(h: &Harness, extra_args: &[&str]) -> AuthProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_contactsync"))
            .args(["auth", "ghl", "--json", "--timeout", "30", "--pipeline"])
            .arg(&h.pipeline)
            .args(extra_args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("binary starts");
        let stderr = child.stderr.take().expect("stderr");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        AuthProcess { child, lines }
    }

    /// The authorization URL the command printed. (Blocking calls here and in `finish` run under
    /// `block_in_place`: the sandbox shares the test's runtime and must keep serving meanwhile.)
    fn printed_url(&self) -> url::Url {
        tokio::task::block_in_place(|| self.read_url())
    }

    fn read_url(&self) -> url::Url {
        let mut seen = Vec::new();
        loop {
            match self.lines.recv_timeout(Duration::from_secs(20)) {
                Ok(line) if line.starts_with("http") => {
                    return url::Url::parse(line.trim()).expect("a URL");
                }
                Ok(line) => seen.push(line),
                Err(e) => panic!("no URL printed ({e}); stderr so far:\n{}", seen.join("\n")),
            }
        }
    }

    /// Waits for the exit; returns its code, the `--json` report (if any) and the rest of stderr.
    fn finish(self) -> (Option<i32>, Option<Value>, String) {
        tokio::task::block_in_place(|| self.wait())
    }

    fn wait(self) -> (Option<i32>, Option<Value>, String) {
        let output = self.child.wait_with_output().expect("the command finishes");
        let stderr: Vec<String> = self.lines.try_iter().collect();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let report = stdout
            .lines()
            .rfind(|l| !l.trim().is_empty())
            .and_then(|l| serde_json::from_str(l).ok());
        (output.status.code(), report, stderr.join("\n"))
    }
}

fn query(url: &url::Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

fn stored_tokens(h: &Harness) -> Option<Value> {
    let text = std::fs::read_to_string(h.state_dir().join("tokens/ghl.json")).ok()?;
    Some(serde_json::from_str(&text).expect("token store is JSON"))
}

/// Whether the sandbox accepts `token` for a read of this location.
async fn token_reads(h: &Harness, token: &str) -> bool {
    let info = &h.sandbox.info;
    h.http
        .post(format!("{}/contacts/search", info.ghl_base_url))
        .bearer_auth(token)
        .header("Version", "2021-07-28")
        .json(&serde_json::json!({"locationId": info.ghl_location_id, "pageLimit": 1}))
        .send()
        .await
        .expect("search answers")
        .status()
        .is_success()
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_code_is_caught_on_the_loopback_redirect_and_the_tokens_stored() {
    let h = Harness::start(SandboxOptions::default()).await;
    let redirect = format!("http://127.0.0.1:{}/oauth/callback", free_port());
    oauth_pipeline(&h, &redirect, "");
    let auth = AuthProcess::start(&h, &[]);
    let url = auth.printed_url();
    let params = query(&url);
    assert_eq!(url.path(), "/ghl/v2/oauth/chooselocation");
    assert_eq!(params["response_type"], "code");
    assert_eq!(params["client_id"], h.sandbox.info.ghl_client_id);
    assert_eq!(params["redirect_uri"], redirect);
    assert_eq!(params["scope"], "contacts.readonly contacts.write");
    assert_eq!(params["state"].len(), 32, "a random state");
    // The browser: the authorization page redirects to the loopback listener.
    let page = h.http.get(url.clone()).send().await.expect("browser GET");
    assert_eq!(page.status(), 200);
    assert!(page.text().await.expect("page").contains("authorised"));
    let (code, report, stderr) = auth.finish();
    assert_eq!(code, Some(0), "{stderr}");
    let report = report.expect("--json report");
    assert_eq!(report["code_from"], "loopback");
    assert_eq!(
        report["scopes_granted"],
        serde_json::json!(["contacts.readonly", "contacts.write"])
    );
    let tokens = stored_tokens(&h).expect("tokens stored");
    assert_eq!(tokens["scope"], "contacts.readonly contacts.write");
    let access = tokens["access_token"].as_str().expect("access token");
    assert!(token_reads(&h, access).await, "the stored token works");
    let out = format!("{report}{stderr}");
    assert!(!out.contains(access), "the access token was printed");
    assert!(
        !out.contains(&h.sandbox.info.ghl_client_secret),
        "the client secret was printed"
    );
    assert!(
        !h.state_dir()
            .join("tokens/ghl-authorize-state.json")
            .exists(),
        "the spent state is removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_with_another_state_is_refused() {
    let h = Harness::start(SandboxOptions::default()).await;
    let redirect = format!("http://127.0.0.1:{}/oauth/callback", free_port());
    oauth_pipeline(&h, &redirect, "");
    let auth = AuthProcess::start(&h, &[]);
    let mut url = auth.printed_url();
    let forged: Vec<(String, String)> = query(&url)
        .into_iter()
        .map(|(k, v)| {
            if k == "state" {
                (k, "forged".into())
            } else {
                (k, v)
            }
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(forged);
    let page = h.http.get(url).send().await.expect("browser GET");
    assert_eq!(page.status(), 400);
    let (code, report, stderr) = auth.finish();
    assert_eq!(code, Some(1), "{stderr}");
    let report = report.expect("--json report on failure too");
    let error = report["errors"][0].as_str().expect("an error");
    assert!(error.contains("`state` does not match"), "{error}");
    assert!(
        stored_tokens(&h).is_none(),
        "no tokens from a forged redirect"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pasted_redirect_address_works_on_stdin_and_later_with_code() {
    let h = Harness::start(SandboxOptions::default()).await;
    // A redirect URI that is not this machine: the browser lands there and the user pastes.
    oauth_pipeline(&h, "https://app.example.com/oauth/callback", "");
    let mut auth = AuthProcess::start(&h, &[]);
    let url = auth.printed_url();
    let answer = no_redirects().get(url).send().await.expect("browser GET");
    assert_eq!(answer.status(), 302);
    let landed = answer.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    assert!(
        landed.starts_with("https://app.example.com/oauth/callback?code="),
        "{landed}"
    );
    let mut stdin = auth.child.stdin.take().expect("stdin");
    writeln!(stdin, "{landed}").expect("paste");
    drop(stdin);
    let (code, report, stderr) = auth.finish();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(report.expect("report")["code_from"], "stdin");
    let first = stored_tokens(&h).expect("tokens stored");

    // Started, abandoned (Ctrl-C), and finished later by pasting the address on the command line:
    // the state is still checked, against the one kept in the state directory.
    let mut auth = AuthProcess::start(&h, &[]);
    let url = auth.printed_url();
    auth.child.kill().expect("stop the waiting command");
    let _ = auth.finish();
    let answer = no_redirects().get(url).send().await.expect("browser GET");
    let landed = answer.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    let tampered = landed.replace("state=", "state=x");
    let refused = h.run(&["auth", "ghl", "--json", "--code", &tampered]).await;
    assert_eq!(refused.status.code(), Some(1));
    let error = json_report(&["auth"], &refused)["errors"][0].to_string();
    assert!(error.contains("`state` does not match"), "{error}");
    let report = h
        .run_ok(&["auth", "ghl", "--json", "--code", &landed])
        .await;
    assert_eq!(report["code_from"], "command line");
    let second = stored_tokens(&h).expect("tokens stored");
    assert_ne!(first["access_token"], second["access_token"], "new tokens");

    // `--code -` reads the address from stdin (a secret kept off the command line).
    let mut auth = AuthProcess::start(&h, &[]);
    let url = auth.printed_url();
    auth.child.kill().expect("stop the waiting command");
    let _ = auth.finish();
    let answer = no_redirects().get(url).send().await.expect("browser GET");
    let landed = answer.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    let mut auth = AuthProcess::start(&h, &["--code", "-"]);
    let mut stdin = auth.child.stdin.take().expect("stdin");
    writeln!(stdin, "{landed}").expect("paste");
    drop(stdin);
    let (code, report, stderr) = auth.finish();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(report.expect("report")["code_from"], "stdin");
    let third = stored_tokens(&h).expect("tokens stored");
    assert_ne!(second["access_token"], third["access_token"], "new tokens");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_pipeline_asks_for_contacts_readonly_only() {
    let h = Harness::start(SandboxOptions {
        contacts: 80,
        messages: 100,
        rate_limit: false,
        ..SandboxOptions::default()
    })
    .await;
    let redirect = format!("http://127.0.0.1:{}/cb", free_port());
    oauth_pipeline(&h, &redirect, "[load]\nenabled = false");
    let auth = AuthProcess::start(&h, &[]);
    let url = auth.printed_url();
    assert_eq!(query(&url)["scope"], "contacts.readonly");
    h.http.get(url).send().await.expect("browser GET");
    let (code, report, stderr) = auth.finish();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        report.expect("report")["scopes_granted"],
        serde_json::json!(["contacts.readonly"])
    );
    // And the read-only pipeline refuses to write.
    let load = h.run(&["load"]).await;
    assert_eq!(load.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&load.stderr).contains("read-only"));
    // Its nightly run extracts, plans and audits with the read-only grant, and writes nothing.
    let before = h.control("stats").await;
    let report = h.run_ok(&["run", "--json"]).await;
    assert!(
        report["counts"]["planned_operations"]
            .as_u64()
            .expect("planned")
            > 0
    );
    assert_eq!(report["counts"]["applied"].as_u64().unwrap_or(0), 0);
    assert_eq!(h.control("stats").await["writes"], before["writes"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_without_the_write_scope_fails_a_writing_pipeline() {
    let h = Harness::start(SandboxOptions::default()).await;
    let creds = h.control("ghl/credentials").await;
    let readonly_code = creds["readonly_auth_code"].as_str().expect("code");
    let out = h
        .run(&["auth", "ghl", "--json", "--code", readonly_code])
        .await;
    assert_eq!(out.status.code(), Some(1));
    let error = json_report(&["auth"], &out)["errors"][0].to_string();
    assert!(error.contains("lacks contacts.write"), "{error}");
    assert!(
        stored_tokens(&h).is_some(),
        "the read-only tokens are still kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_browser_within_the_timeout_is_a_clear_error() {
    let h = Harness::start(SandboxOptions::default()).await;
    let redirect = format!("http://127.0.0.1:{}/oauth/callback", free_port());
    oauth_pipeline(&h, &redirect, "");
    let out = h.run(&["auth", "ghl", "--json", "--timeout", "1"]).await;
    assert_eq!(out.status.code(), Some(1));
    let error = json_report(&["auth"], &out)["errors"][0].to_string();
    assert!(
        error.contains(&format!("no redirect reached {redirect} within 1 s")),
        "{error}"
    );
    assert!(stored_tokens(&h).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_authorization_page_refuses_what_ghl_would() {
    let h = Harness::start(SandboxOptions::default()).await;
    let info = &h.sandbox.info;
    let page = format!("{}/v2/oauth/chooselocation", info.ghl_base_url);
    let ask = |client_id: &str, scope: &str| {
        no_redirects().get(&page).query(&[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", "https://app.example.com/cb"),
            ("scope", scope),
            ("state", "s1"),
        ])
    };
    // An unknown app: an error page, and no redirect carrying anything.
    let unknown = ask("someone-else", "contacts.readonly")
        .send()
        .await
        .expect("answer");
    assert_eq!(unknown.status(), 400);
    // A scope the app does not have: redirected with the OAuth error and the state.
    let answer = ask(&info.ghl_client_id, "contacts.readonly calendars.write")
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), 302);
    let landed =
        url::Url::parse(answer.headers()["location"].to_str().expect("location")).expect("URL");
    let params = query(&landed);
    assert_eq!(params["error"], "invalid_scope");
    assert_eq!(params["state"], "s1");
    assert!(!params.contains_key("code"));
    // A code issued here works only with its redirect_uri.
    let answer = ask(&info.ghl_client_id, "contacts.readonly")
        .send()
        .await
        .expect("answer");
    let landed =
        url::Url::parse(answer.headers()["location"].to_str().expect("location")).expect("URL");
    let code = query(&landed)["code"].clone();
    let exchange = |redirect: &'static str| {
        h.http
            .post(format!("{}/oauth/token", info.ghl_base_url))
            .form(&[
                ("client_id", info.ghl_client_id.as_str()),
                ("client_secret", info.ghl_client_secret.as_str()),
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", redirect),
            ])
            .send()
    };
    let wrong = exchange("https://elsewhere.example.com/cb")
        .await
        .expect("answer");
    assert_eq!(wrong.status(), 400);
}

/// A lost grant (its refresh token spent by a process killed before it stored the new one) is
/// restored as in GHL: install the app again for a new code, and `auth ghl --code` it. The sandbox
/// gives the new code at `POST /_sandbox/ghl/reinstall`; like every code it works once.
#[tokio::test]
async fn a_code_from_installing_again_restores_a_lost_grant_once() {
    let h = Harness::start(common::effects::options(42, 5)).await;
    let reinstalled = h.control_post("ghl/reinstall", Value::Null).await;
    let code = reinstalled["auth_code"].as_str().expect("a code");
    h.run_ok(&["auth", "ghl", "--code", code, "--json"]).await;
    h.run_ok(&["extract", "--json"]).await;
    let again = h.run(&["auth", "ghl", "--code", code, "--json"]).await;
    assert_ne!(again.status.code(), Some(0), "a code works once");
}
