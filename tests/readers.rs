//! The snapshots open unchanged outside contactsync: polars (in process), and pyarrow and DuckDB
//! (Python) read every file with the row counts of the manifest and the nested types declared.

mod common;

use common::Harness;
use contactsync::sandbox::SandboxOptions;
use std::path::PathBuf;
use std::process::Command;

const CHECK: &str = r#"
import json, sys
run = sys.argv[1]
manifest = json.load(open(f"{run}/extract/manifest.json"))
out = {}
try:
    import pyarrow.parquet as pq
    for name, entity in manifest["entities"].items():
        table = pq.read_table(f"{run}/{entity['file']}")
        out[f"pyarrow:{name}"] = table.num_rows
    contacts = pq.read_table(f"{run}/extract/ghl/contacts.parquet")
    out["pyarrow:tags_type"] = str(contacts.schema.field("tags").type)
    out["pyarrow:dnd_settings_type"] = str(contacts.schema.field("dnd_settings").type)
except ImportError:
    out["pyarrow"] = "missing"
try:
    import duckdb
    for name, entity in manifest["entities"].items():
        n = duckdb.sql(f"SELECT count(*) FROM read_parquet('{run}/{entity['file']}')").fetchall()[0][0]
        out[f"duckdb:{name}"] = n
    out["duckdb:tag_rows"] = duckdb.sql(
        f"SELECT count(*) FROM (SELECT unnest(tags) FROM read_parquet('{run}/extract/ghl/contacts.parquet'))"
    ).fetchall()[0][0]
except ImportError:
    out["duckdb"] = "missing"
print(json.dumps(out))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_open_in_polars_pyarrow_and_duckdb() {
    let h = Harness::start(SandboxOptions {
        seed: 31,
        contacts: 300,
        messages: 500,
        rate_limit: false,
        ..SandboxOptions::default()
    })
    .await;
    // Every contact's tasks, notes and appointments too, so those files hold rows.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&h.pipeline)
        .and_then(|mut f| {
            std::io::Write::write_all(&mut f, b"\n[extract]\nhistory_for_changed = true\n")
        })
        .expect("append to the pipeline");
    h.authorise().await;
    let report = h.run_ok(&["extract", "--json"]).await;
    let run = PathBuf::from(report["run_dir"].as_str().expect("run_dir"));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("extract/manifest.json")).unwrap()).unwrap();
    let entities = manifest["entities"].as_object().expect("entities");
    for name in ["ghl/tasks", "ghl/notes", "ghl/appointments"] {
        assert!(
            entities[name]["rows"].as_u64() > Some(0),
            "{name} has rows for the readers to read: {manifest}"
        );
    }

    // polars, as the transform's readers and users' notebooks would.
    for (name, entity) in entities {
        use polars::prelude::{ParquetReader, SerReader};
        let file = std::fs::File::open(run.join(entity["file"].as_str().unwrap())).unwrap();
        let frame = ParquetReader::new(file).finish().expect("polars reads it");
        assert_eq!(
            frame.height() as u64,
            entity["rows"].as_u64().unwrap(),
            "{name}"
        );
    }

    let python = Command::new("python3")
        .arg("-c")
        .arg(CHECK)
        .arg(&run)
        .output();
    let Ok(python) = python else {
        assert!(
            std::env::var_os("CONTACTSYNC_REQUIRE_PYTHON_READERS").is_none(),
            "python3 is required"
        );
        eprintln!("python3 not found: pyarrow and DuckDB checks not run");
        return;
    };
    assert!(
        python.status.success(),
        "{}",
        String::from_utf8_lossy(&python.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&python.stdout).expect("JSON");
    let required = std::env::var_os("CONTACTSYNC_REQUIRE_PYTHON_READERS").is_some();
    for reader in ["pyarrow", "duckdb"] {
        if seen[reader] == "missing" {
            assert!(!required, "{reader} is not installed");
            eprintln!("{reader} not installed: its check was not run (.ci/run installs it)");
            continue;
        }
        for (name, entity) in entities {
            assert_eq!(
                seen[format!("{reader}:{name}")],
                entity["rows"],
                "{reader} reads {name} with the manifest's row count"
            );
        }
    }
    if seen["pyarrow"] != "missing" {
        assert_eq!(seen["pyarrow:tags_type"], "list<item: string>");
        assert!(
            seen["pyarrow:dnd_settings_type"]
                .as_str()
                .unwrap()
                .starts_with("list<item: struct<channel: string"),
            "{seen}"
        );
    }
    if seen["duckdb"] != "missing" {
        assert!(seen["duckdb:tag_rows"].as_u64() > Some(0), "{seen}");
    }
}
