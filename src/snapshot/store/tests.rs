//! Publishing, fetching and repairing runs on a `file://` store; tests/object_store.rs does the same
//! through the pipeline against an S3 API.

use super::*;

/// A clock years from wall time, so a date read from the system shows.
const PUBLISHED_AT: &str = "2019-05-06T07:08:09Z";

fn clock() -> Arc<dyn Clock> {
    let at = DateTime::parse_from_rfc3339(PUBLISHED_AT).expect("time");
    Arc::new(crate::clock::FixedClock::at(at.with_timezone(&Utc)))
}

fn http() -> HttpConfig {
    HttpConfig {
        max_attempts: 1,
        ..HttpConfig::default()
    }
}

#[test]
fn urls_are_checked_before_any_request() {
    for good in [
        "s3://bucket/prefix",
        "s3://bucket",
        "gs://bucket/a/b",
        "az://container/p",
        "file:///tmp/snapshots",
    ] {
        SnapshotsConfig {
            url: Some(good.into()),
        }
        .validate()
        .unwrap_or_else(|e| panic!("{good}: {e}"));
    }
    for (bad, says) in [
        ("https://example.com/x", "unsupported scheme"),
        ("file://relative/x", "absolute path"),
        ("s3:///prefix", "no bucket"),
        ("s3://bucket/p?region=x", "no query"),
        ("not a url", "not a URL"),
    ] {
        let err = SnapshotsConfig {
            url: Some(bad.into()),
        }
        .validate()
        .expect_err(bad);
        assert!(err.contains(says), "{bad}: {err}");
    }
}

fn run_with_files(dir: &Path, id: &str, files: &[(&str, &str)]) -> RunDir {
    let path = runs_dir(dir).join(id);
    for (rel, text) in files {
        let file = path.join(rel);
        std::fs::create_dir_all(file.parent().expect("parent")).expect("dir");
        std::fs::write(file, text).expect("write");
    }
    RunDir {
        id: id.into(),
        path,
    }
}

#[tokio::test]
async fn a_run_is_published_manifest_last_and_fetched_back_whole() {
    let state = tempfile::tempdir().expect("tempdir");
    let bucket = tempfile::tempdir().expect("tempdir");
    let url = format!("file://{}/snap", bucket.path().display());
    let store = SnapshotStore::new(&url, "p", "loc1", &http(), clock()).expect("store");
    let run = run_with_files(
        state.path(),
        "20260101T000000Z-0001",
        &[
            ("extract/manifest.json", "{}"),
            ("extract/ghl/contacts.parquet", "contacts"),
            ("extract/.contacts.parquet.tmp-1", "half a file"),
            ("load/plan.parquet", "plan"),
            ("audit/report.json", "{}"),
            ("metrics.prom", "not a snapshot"),
        ],
    );
    store.publish_stage(&run, "extract").await.expect("extract");
    let root = bucket
        .path()
        .join("snap/location=loc1/run=20260101T000000Z-0001");
    assert!(root.join("extract/ghl/contacts.parquet").exists());
    assert!(
        !root.join(RUN_MANIFEST).exists(),
        "no manifest before the end"
    );
    assert_eq!(
        store.read_manifest(&run.id).await.expect("read"),
        None,
        "an unfinished run is not complete"
    );
    let manifest = store.publish_run(&run).await.expect("publish");
    assert_eq!(
        manifest.published_at.to_rfc3339(),
        "2019-05-06T07:08:09+00:00",
        "the store's clock"
    );
    let paths: Vec<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "audit/report.json",
            "extract/ghl/contacts.parquet",
            "extract/manifest.json",
            "load/plan.parquet"
        ],
        "stage files only, no temporary files"
    );
    assert!(root.join(RUN_MANIFEST).exists());

    // A fresh state directory fetches the run; a second prepare has nothing to do.
    let fresh = tempfile::tempdir().expect("tempdir");
    let prepared = store.prepare(fresh.path()).await.expect("prepare");
    assert_eq!(prepared.hydrated, std::slice::from_ref(&run.id));
    let fetched = runs_dir(fresh.path()).join(&run.id);
    assert_eq!(
        std::fs::read_to_string(fetched.join("extract/ghl/contacts.parquet")).expect("read"),
        "contacts"
    );
    assert_eq!(
        store.prepare(fresh.path()).await.expect("again"),
        Prepared::default()
    );
}

#[tokio::test]
async fn a_corrupt_object_is_refused_by_name_and_nothing_is_fetched() {
    let state = tempfile::tempdir().expect("tempdir");
    let bucket = tempfile::tempdir().expect("tempdir");
    let url = format!("file://{}", bucket.path().display());
    let store = SnapshotStore::new(&url, "p", "loc1", &http(), clock()).expect("store");
    let run = run_with_files(
        state.path(),
        "20260101T000000Z-0001",
        &[
            ("extract/ghl/contacts.parquet", "contacts"),
            ("audit/report.json", "{}"),
        ],
    );
    store.publish_run(&run).await.expect("publish");
    let object = bucket
        .path()
        .join("location=loc1/run=20260101T000000Z-0001/extract/ghl/contacts.parquet");
    std::fs::write(&object, "CONTACTS").expect("tamper");
    let fresh = tempfile::tempdir().expect("tempdir");
    let err = store.prepare(fresh.path()).await.expect_err("corrupt");
    assert!(
        err.to_string().contains("extract/ghl/contacts.parquet")
            && err.to_string().contains("SHA-256"),
        "{err}"
    );
    assert!(list_runs(fresh.path()).expect("list").is_empty());
}

#[tokio::test]
async fn a_local_run_the_store_lacks_is_published_by_the_next_prepare() {
    let state = tempfile::tempdir().expect("tempdir");
    let bucket = tempfile::tempdir().expect("tempdir");
    let url = format!("file://{}", bucket.path().display());
    let store = SnapshotStore::new(&url, "p", "loc1", &http(), clock()).expect("store");
    let done = run_with_files(
        state.path(),
        "20260101T000000Z-0001",
        &[("extract/a.parquet", "a"), ("audit/report.json", "{}")],
    );
    // Killed before its audit: never complete, never published.
    run_with_files(
        state.path(),
        "20260102T000000Z-0002",
        &[("extract/a.parquet", "a")],
    );
    // The first attempt got the extract out and failed before the rest.
    store
        .publish_stage(&done, "extract")
        .await
        .expect("extract");
    let again = SnapshotStore::new(&url, "p", "loc1", &http(), clock()).expect("store");
    let prepared = again.prepare(state.path()).await.expect("prepare");
    assert_eq!(prepared.published, std::slice::from_ref(&done.id));
    assert!(prepared.hydrated.is_empty());
    let manifest = again
        .read_manifest(&done.id)
        .await
        .expect("read")
        .expect("complete now");
    assert_eq!(manifest.files.len(), 2);
    assert_eq!(
        again
            .read_manifest("20260102T000000Z-0002")
            .await
            .expect("read"),
        None
    );
}
