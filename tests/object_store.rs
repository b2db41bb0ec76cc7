//! Snapshots in object storage (`[snapshots] url`): runs published to a real S3 API on loopback,
//! a fresh runner starting from them, a failed publish and its repair, and the documented DuckDB
//! query over the layout.
//!
//! The S3 server is s3s with s3s-fs (objects in a temp folder, SigV4 checked), served by hyper
//! inside the test process: nothing to download or start outside it. The pipeline binary reaches it
//! the way it reaches AWS, through `AWS_ENDPOINT`, `AWS_ACCESS_KEY_ID`, ... in its environment.

mod common;

use common::Harness;
use common::effects::options;
use contactsync::clock::SystemClock;
use contactsync::config::HttpConfig;
use contactsync::snapshot::run::RunDir;
use contactsync::snapshot::store::{RUN_MANIFEST, RunManifest, SnapshotStore};
use futures_util::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

const ACCESS_KEY: &str = "contactsync-test";
const SECRET_KEY: &str = "contactsync-test-secret";
const BUCKET: &str = "snapshots";

/// An S3 API on loopback: s3s over a temp folder, one folder per bucket.
struct S3Server {
    addr: SocketAddr,
    root: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl S3Server {
    async fn start(buckets: &[&str]) -> S3Server {
        let root = tempfile::tempdir().expect("tempdir");
        for bucket in buckets {
            std::fs::create_dir(root.path().join(bucket)).expect("bucket folder");
        }
        let fs = s3s_fs::FileSystem::new(root.path()).expect("s3s-fs");
        let mut builder = s3s::service::S3ServiceBuilder::new(fs);
        builder.set_auth(s3s::auth::SimpleAuth::from_single(
            ACCESS_KEY,
            SECRET_KEY.to_string(),
        ));
        let service = builder.build();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let service = service.clone();
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        S3Server { addr, root, task }
    }

    /// What the pipeline's environment says to reach this server, as for any S3-compatible one.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT", format!("http://{}", self.addr)),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }

    /// A client of the bucket, for the test's own looks.
    fn client(&self) -> AmazonS3 {
        AmazonS3Builder::new()
            .with_endpoint(format!("http://{}", self.addr))
            .with_allow_http(true)
            .with_access_key_id(ACCESS_KEY)
            .with_secret_access_key(SECRET_KEY)
            .with_region("us-east-1")
            .with_bucket_name(BUCKET)
            .build()
            .expect("client")
    }

    /// The file s3s-fs keeps an object in (its modification time says when it was last put).
    fn object_file(&self, key: &str) -> PathBuf {
        self.root.path().join(BUCKET).join(key)
    }
}

/// Runs the binary on `pipeline` with `env` added; returns its output.
async fn run(pipeline: &Path, args: &[&str], env: &[(&'static str, String)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_contactsync"));
    command.args(args).arg("--pipeline").arg(pipeline);
    command.env(
        "RUST_LOG",
        std::env::var("CONTACTSYNC_TEST_LOG").unwrap_or_else(|_| "warn".into()),
    );
    for (k, v) in env {
        command.env(k, v);
    }
    tokio::task::spawn_blocking(move || command.output().expect("binary runs"))
        .await
        .expect("join")
}

async fn run_ok(pipeline: &Path, env: &[(&'static str, String)]) -> Value {
    let args = ["run", "--json"];
    let out = run(pipeline, &args, env).await;
    assert!(
        out.status.success(),
        "run failed with {:?}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    common::json_report(&args, &out)
}

fn append(pipeline: &Path, text: &str) {
    std::fs::OpenOptions::new()
        .append(true)
        .open(pipeline)
        .expect("pipeline file")
        .write_all(text.as_bytes())
        .expect("append");
}

fn run_id(report: &Value) -> String {
    report["run_id"].as_str().expect("run_id").to_string()
}

/// A contact with a phone number, created the way a user of the location would.
async fn create_contact(h: &Harness, first_name: &str, phone: &str) -> String {
    let answer: Value = h
        .http
        .post(format!("{}/contacts/", h.sandbox.info.ghl_base_url))
        .bearer_auth(&h.sandbox.info.ghl_token)
        .header("Version", "2021-07-28")
        .json(&json!({"locationId": h.sandbox.info.ghl_location_id,
                      "firstName": first_name, "phone": phone}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    answer["contact"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no contact in {answer}"))
        .to_string()
}

/// The objects under `prefix` with their sizes.
async fn objects(client: &AmazonS3, prefix: &str) -> BTreeMap<String, u64> {
    let metas: Vec<object_store::ObjectMeta> = client
        .list(Some(&ObjectPath::from(prefix)))
        .try_collect()
        .await
        .expect("list");
    metas
        .into_iter()
        .map(|m| (m.location.to_string(), m.size))
        .collect()
}

async fn manifest(client: &AmazonS3, run_prefix: &str) -> RunManifest {
    let bytes = client
        .get(&ObjectPath::from(format!("{run_prefix}/{RUN_MANIFEST}")))
        .await
        .expect("manifest is there")
        .bytes()
        .await
        .expect("bytes");
    serde_json::from_slice(&bytes).expect("manifest JSON")
}

fn sha256_file(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).expect("read")))
}

/// New contacts get a welcome text; the first run of a location is a baseline and fires nothing.
const WELCOME: &str = r#"
[transform.triggers.welcome]
template = "Hi {first_name|there}, welcome!"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_with_an_empty_state_directory_starts_from_the_run_published_to_s3() {
    let s3 = S3Server::start(&[BUCKET]).await;
    let h = Harness::start(options(41, 40)).await;
    append(
        &h.pipeline,
        &format!("{WELCOME}\n[snapshots]\nurl = \"s3://{BUCKET}/agency\"\n"),
    );
    h.authorise().await;
    let location = h.sandbox.info.ghl_location_id.clone();
    let client = s3.client();

    // Night 1 on the first machine: a baseline, published whole.
    let night1 = run_ok(&h.pipeline, &s3.env()).await;
    assert_eq!(night1["counts"]["messages_fired"], 0, "{night1}");
    let night1_id = run_id(&night1);
    let night1_dir = PathBuf::from(night1["run_dir"].as_str().expect("run_dir"));
    let prefix = format!("agency/location={location}/run={night1_id}");
    let published = manifest(&client, &prefix).await;
    let stored = objects(&client, &prefix).await;
    assert_eq!(
        stored.len(),
        published.files.len() + 1,
        "every object is in the manifest: {stored:?}"
    );
    for file in &published.files {
        assert_eq!(
            file.sha256,
            sha256_file(&night1_dir.join(&file.path)),
            "{}",
            file.path
        );
        assert_eq!(stored[&format!("{prefix}/{}", file.path)], file.bytes);
    }
    for must in [
        "extract/manifest.json",
        "extract/ghl/contacts.parquet",
        "transform/clusters.parquet",
        "load/plan.parquet",
        "audit/report.json",
    ] {
        assert!(
            published.files.iter().any(|f| f.path == must),
            "{must} not published"
        );
    }

    // During the day a contact joins the location.
    let new_id = create_contact(&h, "Newly", "+14155550177").await;

    // Night 2 on a fresh pod: its state directory holds only what the shared state backend
    // holds for the location (the ledger; the OAuth tokens come from the same place), no runs.
    let fresh = tempfile::tempdir().expect("tempdir");
    let fresh_state = fresh.path().join("state");
    std::fs::create_dir_all(fresh_state.join("tokens")).expect("tokens dir");
    for entry in std::fs::read_dir(h.state_dir()).expect("state") {
        let entry = entry.expect("entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("ledger.sqlite") {
            std::fs::copy(entry.path(), fresh_state.join(&name)).expect("copy ledger");
        }
    }
    std::fs::copy(
        h.state_dir().join("tokens/ghl.json"),
        fresh_state.join("tokens/ghl.json"),
    )
    .expect("copy tokens");
    let text = std::fs::read_to_string(&h.pipeline).expect("pipeline");
    let fresh_pipeline = fresh.path().join("pipeline.toml");
    std::fs::write(
        &fresh_pipeline,
        text.replace(
            "state_dir = \"state\"",
            &format!("state_dir = {:?}", fresh_state.display().to_string()),
        ),
    )
    .expect("write pipeline");

    let night2 = run_ok(&fresh_pipeline, &s3.env()).await;
    let night2_id = run_id(&night2);
    assert!(night2_id > night1_id);
    // Night 1 was fetched, identical, before the extract.
    let fetched = fresh_state.join("runs").join(&night1_id);
    assert_eq!(
        sha256_file(&fetched.join("extract/ghl/contacts.parquet")),
        sha256_file(&night1_dir.join("extract/ghl/contacts.parquet"))
    );
    // Its cursors were used: the extract read only what changed since night 1.
    let night2_run = RunDir::open(&fresh_state, &night2_id).expect("night 2");
    let extract = night2_run.extract_manifest().expect("extract manifest");
    assert_eq!(extract.mode, "incremental");
    assert_eq!(extract.based_on_run.as_deref(), Some(night1_id.as_str()));
    let contacts = &extract.entities["ghl/contacts"];
    assert!(
        contacts.delta_rows < contacts.rows,
        "re-read everything: {contacts:?}"
    );
    // Its snapshot was the comparison: only the new contact is welcomed, once.
    assert_eq!(night2["counts"]["messages_fired"], 1, "{night2}");
    let plan =
        contactsync::load::plan_io::read_plan(&night2_run.load_dir(), &night2_id).expect("plan");
    let welcomed: Vec<Option<String>> = plan
        .operations
        .iter()
        .filter_map(|o| match &o.op {
            contactsync::load::plan::PlanOp::SendSms {
                trigger,
                contact_id,
                ..
            } if trigger == "welcome" => Some(contact_id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(welcomed, [Some(new_id)]);
    // And night 2 is published beside night 1.
    let night2_manifest = manifest(
        &client,
        &format!("agency/location={location}/run={night2_id}"),
    )
    .await;
    assert_eq!(night2_manifest.run_id, night2_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_publish_names_the_object_and_the_next_run_publishes_what_is_missing() {
    let s3 = S3Server::start(&[BUCKET]).await;
    let h = Harness::start(options(43, 30)).await;
    // Few attempts, so the failure below comes quickly.
    append(
        &h.pipeline,
        &format!("\n[http]\nmax_attempts = 2\n\n[snapshots]\nurl = \"s3://{BUCKET}/agency\"\n"),
    );
    h.authorise().await;
    let location = h.sandbox.info.ghl_location_id.clone();
    let client = s3.client();

    // The store refuses the run's writes: an object where the location's folder would be makes
    // s3s-fs fail every put under it (500, retried, then given up), while listings still answer.
    let in_the_way = ObjectPath::from(format!("agency/location={location}").as_str());
    client
        .put(&in_the_way, "in the way".into())
        .await
        .expect("put");
    let out = run(&h.pipeline, &["run", "--json"], &s3.env()).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a failed publish fails the run");
    assert!(
        stderr.contains(&format!(
            "publishing s3://{BUCKET}/agency/location={location}/run="
        )) && stderr.contains("/extract/"),
        "the object is named: {stderr}"
    );
    let runs = contactsync::snapshot::run::list_runs(&h.state_dir()).expect("runs");
    assert_eq!(runs.len(), 1);
    assert!(runs[0].extract_manifest().is_some(), "the local copy stays");
    client.delete(&in_the_way).await.expect("delete");

    // Night 2 publishes. Then the store loses night 2's manifest and one file, as when a publish
    // is cut off part-way.
    let night2 = run_ok(&h.pipeline, &s3.env()).await;
    let night2_id = run_id(&night2);
    let prefix = format!("agency/location={location}/run={night2_id}");
    let complete = objects(&client, &prefix).await;
    let cut = format!("{prefix}/transform/clusters.parquet");
    for key in [format!("{prefix}/{RUN_MANIFEST}"), cut.clone()] {
        client
            .delete(&ObjectPath::from(key.as_str()))
            .await
            .expect("delete");
    }
    let put_at = |key: &str| {
        std::fs::metadata(s3.object_file(key))
            .and_then(|m| m.modified())
            .ok()
    };
    let before: BTreeMap<String, _> = complete.keys().map(|k| (k.clone(), put_at(k))).collect();

    let night3 = run_ok(&h.pipeline, &s3.env()).await;
    assert_eq!(
        objects(&client, &prefix).await,
        complete,
        "night 2 is whole again"
    );
    assert_eq!(manifest(&client, &prefix).await.run_id, night2_id);
    for (key, at) in &before {
        if key != &cut && !key.ends_with(RUN_MANIFEST) {
            assert!(at.is_some(), "{key}");
            assert_eq!(&put_at(key), at, "{key} was put again");
        }
    }
    let night3_prefix = format!("agency/location={location}/run={}", run_id(&night3));
    assert_eq!(
        manifest(&client, &night3_prefix).await.run_id,
        run_id(&night3)
    );
    // The run whose publish failed stopped after its extract: never complete, never published.
    let failed = format!("agency/location={location}/run={}", runs[0].id);
    assert!(objects(&client, &failed).await.is_empty());
}

/// `python3` with the `duckdb` module: installed with pip when missing, else a clear failure.
fn duckdb_python() -> &'static str {
    let has = || {
        Command::new("python3")
            .args(["-c", "import duckdb"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !has() {
        let out = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "duckdb"])
            .output();
        assert!(
            has(),
            "this test needs DuckDB's Python module: `python3 -m pip install duckdb` ({out:?})"
        );
    }
    "python3"
}

/// The SQL block of docs/snapshots.md, the documented way to read the layout.
fn documented_query() -> String {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/snapshots.md"))
            .expect("docs/snapshots.md");
    let start = doc.find("```sql\n").expect("a ```sql block") + "```sql\n".len();
    let len = doc[start..].find("```").expect("end of the block");
    doc[start..start + len].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duckdb_reads_every_locations_latest_contacts_from_the_layout() {
    let python = duckdb_python();
    let store_dir = tempfile::tempdir().expect("tempdir");
    let root = store_dir.path().join("agency");
    let url = format!("file://{}", root.display());
    let h = Harness::start(options(47, 30)).await;
    append(&h.pipeline, &format!("\n[snapshots]\nurl = {url:?}\n"));
    h.authorise().await;
    let main = h.sandbox.info.ghl_location_id.clone();
    let night1 = h.run_ok(&["run", "--json"]).await;
    let later = create_contact(&h, "Later", "+14155550188").await;
    let night2 = h.run_ok(&["run", "--json"]).await;
    let night1 = RunDir::open(&h.state_dir(), &run_id(&night1)).expect("night 1");
    let night2 = RunDir::open(&h.state_dir(), &run_id(&night2)).expect("night 2");

    // Two more locations. The sandbox serves one location, so their runs are the same two runs
    // published under other location ids: loc-b's latest complete run is night 1 (night 2's
    // extract is there too, without a manifest, as while it publishes); loc-c has night 2 only.
    let http = HttpConfig::default();
    let b =
        SnapshotStore::new(&url, "sandbox", "loc-b", &http, Arc::new(SystemClock)).expect("store");
    b.publish_run(&night1).await.expect("publish");
    b.publish_stage(&night2, "extract").await.expect("publish");
    let c =
        SnapshotStore::new(&url, "sandbox", "loc-c", &http, Arc::new(SystemClock)).expect("store");
    c.publish_run(&night2).await.expect("publish");

    let query = documented_query().replace("s3://bucket/prefix", &root.display().to_string());
    let script = format!(
        "import duckdb, json\n\
         rows = duckdb.sql('''SELECT location, run, id FROM ({query})''').fetchall()\n\
         print(json.dumps(rows))\n"
    );
    let out = Command::new(python)
        .args(["-c", &script])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<(String, String, String)> =
        serde_json::from_slice(&out.stdout).expect("rows as JSON");
    let mut got: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    for (location, run, id) in rows {
        let entry = got.entry(location).or_default();
        entry.0.insert(run);
        assert!(entry.1.insert(id), "a contact appears twice");
    }
    let ids =
        |run: &RunDir| common::unique_ids(&run.extract_dir().join("ghl/contacts.parquet"), "id");
    let expected: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> = [
        (main, &night2),
        ("loc-b".to_string(), &night1),
        ("loc-c".to_string(), &night2),
    ]
    .into_iter()
    .map(|(location, run)| (location, (BTreeSet::from([run.id.clone()]), ids(run))))
    .collect();
    assert!(
        ids(&night2).contains(&later) && !ids(&night1).contains(&later),
        "the two runs differ by the new contact"
    );
    assert_eq!(got, expected);
}
