//! Helpers shared by the integration tests: a sandbox in the test process and the real binary
//! pointed at it through a pipeline file.
#![allow(dead_code)]

pub mod agency;
pub mod effects;
pub mod postgres;

use contactsync::sandbox::ghl::LocationCredentials;
use contactsync::sandbox::{self, SandboxHandle, SandboxOptions};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A running sandbox plus a pipeline file and state folder for it.
pub struct Harness {
    pub sandbox: SandboxHandle,
    pub dir: tempfile::TempDir,
    pub pipeline: PathBuf,
    pub http: reqwest::Client,
    /// The pipeline's PostgreSQL state database (`[state] url`), when it has one.
    pub state_db: Option<postgres::TestDatabase>,
}

impl Harness {
    /// Starts a sandbox with `options` and writes a pipeline file for it, its state on the backend
    /// `CONTACTSYNC_TEST_STATE` names (default: the state directory).
    pub async fn start(options: SandboxOptions) -> Harness {
        Self::start_on(options, postgres::StateBackend::from_env()).await
    }

    /// [`Harness::start`] with the ledger and lock on `backend` (PostgreSQL: a fresh database).
    pub async fn start_on(options: SandboxOptions, backend: postgres::StateBackend) -> Harness {
        let sandbox = sandbox::start(options).await.expect("sandbox starts");
        let dir = tempfile::tempdir().expect("tempdir");
        let pipeline = dir.path().join("pipeline.toml");
        let mut text = contactsync::cli::sandbox_pipeline_toml(&sandbox.info, "state");
        let state_db = match backend {
            postgres::StateBackend::Local => None,
            postgres::StateBackend::Postgres => {
                let db = tokio::task::spawn_blocking(postgres::TestDatabase::create)
                    .await
                    .expect("test database");
                text.push_str(&format!("\n[state]\nurl = \"{}\"\n", db.url));
                Some(db)
            }
        };
        std::fs::write(&pipeline, text).expect("write pipeline");
        Harness {
            sandbox,
            dir,
            pipeline,
            http: reqwest::Client::new(),
            state_db,
        }
    }

    /// Starts a sandbox emulating an agency with `locations` GHL locations (each with its own
    /// contacts, Private Integration Token and rate budget); the pipeline file points at the first.
    pub async fn start_locations(locations: usize, options: SandboxOptions) -> Harness {
        Harness::start(SandboxOptions {
            locations,
            ..options
        })
        .await
    }

    /// Every GHL location of the sandbox, in order: `id`, `name`, `private_token`.
    pub fn locations(&self) -> &[LocationCredentials] {
        &self.sandbox.info.ghl_locations
    }

    /// Calls the GHL API (`path` relative to its base URL) with a bearer token and the `Version`
    /// header: the status and the JSON body (`Null` when there is none).
    pub async fn ghl(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (reqwest::StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.sandbox.info.ghl_base_url))
            .bearer_auth(token)
            .header("Version", "2021-07-28");
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("GHL sandbox answers");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The state folder of the pipeline.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Runs the binary with `args` followed by `--pipeline FILE` (blocking thread).
    pub async fn run(&self, args: &[&str]) -> Output {
        run_binary(&self.pipeline, args).await
    }

    /// Starts the binary with `args` followed by `--pipeline FILE`, output discarded: for tests
    /// that kill it part-way.
    pub fn spawn_quiet(&self, args: &[&str]) -> std::process::Child {
        Command::new(env!("CARGO_BIN_EXE_contactsync"))
            .args(args)
            .arg("--pipeline")
            .arg(&self.pipeline)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("binary starts")
    }

    /// The extract checkpoint of the first run folder, while there is one.
    pub fn extract_checkpoint(&self) -> Option<String> {
        std::fs::read_dir(self.state_dir().join("runs"))
            .ok()
            .and_then(|mut runs| runs.next())
            .and_then(|run| run.ok())
            .map(|run| run.path().join("extract/checkpoint.json"))
            .and_then(|p| std::fs::read_to_string(p).ok())
    }

    /// Runs and asserts success, returning the `--json` report (which must be there, and be an
    /// object, when `--json` is among the arguments; `Null` otherwise).
    pub async fn run_ok(&self, args: &[&str]) -> Value {
        let out = self.run(args).await;
        assert!(
            out.status.success(),
            "contactsync {args:?} failed with {:?}\nstderr:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        if !args.contains(&"--json") {
            return Value::Null;
        }
        json_report(args, &out)
    }
}

/// Runs the binary with `args` followed by `--pipeline PIPELINE` (blocking thread).
pub async fn run_binary(pipeline: &Path, args: &[&str]) -> Output {
    let mut full: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    full.push("--pipeline".into());
    full.push(pipeline.display().to_string());
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_contactsync"))
            .args(&full)
            // CONTACTSYNC_TEST_LOG shows more of a failing run (e.g. `contactsync::api=debug`).
            .env(
                "RUST_LOG",
                std::env::var("CONTACTSYNC_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .output()
            .expect("binary runs")
    })
    .await
    .expect("join")
}

/// The `--json` object a command printed as its last stdout line; panics when there is none, so a
/// check on its counts cannot pass on a missing report.
pub fn json_report(args: &[&str], out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().rfind(|l| !l.trim().is_empty());
    match last.map(serde_json::from_str::<Value>) {
        Some(Ok(report @ Value::Object(_))) => report,
        other => panic!(
            "contactsync {args:?} printed no JSON report (last line: {other:?})\nstdout:\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

impl Harness {
    /// Exchanges the sandbox's authorization code (what a user does once).
    pub async fn authorise(&self) {
        self.run_ok(&["auth", "ghl", "--json"]).await;
    }

    /// `GET {control}/_sandbox/<path>` as JSON.
    pub async fn control(&self, path: &str) -> Value {
        self.http
            .get(format!("{}/_sandbox/{path}", self.sandbox.info.control_url))
            .send()
            .await
            .expect("control route answers")
            .json()
            .await
            .expect("control route JSON")
    }

    /// `POST {control}/_sandbox/<path>` with a JSON body.
    pub async fn control_post(&self, path: &str, body: Value) -> Value {
        self.http
            .post(format!("{}/_sandbox/{path}", self.sandbox.info.control_url))
            .json(&body)
            .send()
            .await
            .expect("control route answers")
            .json()
            .await
            .unwrap_or(Value::Null)
    }
}

/// Values of column `column` (cast to strings) of a Parquet file, in order.
pub fn column_strings(path: &Path, column: &str) -> Vec<Option<String>> {
    use arrow::array::{Array, AsArray};
    let mut out = Vec::new();
    for batch in contactsync::snapshot::parts::read_batches(path).expect("open parquet") {
        let batch = batch.expect("batch");
        let col = batch
            .column_by_name(column)
            .unwrap_or_else(|| panic!("{} has no column {column}", path.display()));
        let text = arrow::compute::cast(col, &arrow::datatypes::DataType::Utf8).expect("cast");
        let text = text.as_string::<i32>();
        for i in 0..text.len() {
            out.push(text.is_valid(i).then(|| text.value(i).to_string()));
        }
    }
    out
}

/// The set of a column's values, asserting none repeats.
pub fn unique_ids(path: &Path, column: &str) -> BTreeSet<String> {
    let values: Vec<String> = column_strings(path, column)
        .into_iter()
        .map(|v| v.expect("id is never null"))
        .collect();
    let set: BTreeSet<String> = values.iter().cloned().collect();
    assert_eq!(
        set.len(),
        values.len(),
        "{} has duplicate {column}s",
        path.display()
    );
    set
}

/// Ids of the objects of `state[system][entity]`.
pub fn state_ids(state: &Value, system: &str, entity: &str, key: &str) -> BTreeSet<String> {
    state[system][entity]
        .as_array()
        .unwrap_or_else(|| panic!("state has no {system}.{entity}"))
        .iter()
        .map(|o| match &o[key] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}
