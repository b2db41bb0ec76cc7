//! `contactsync migrate` on a messy export against the sandbox: bad rows quarantined with their
//! reason, duplicates inside the file merged, rows that match existing contacts update them, and
//! nothing is written to GHL without `--apply`.

mod common;

use common::Harness;
use contactsync::sandbox::SandboxOptions;
use serde_json::Value;
use std::io::Write;

const MIGRATE: &str = r#"
[load]
max_creates = 1000
max_sends = 0

[migrate]
tags_separator = ";"
source = "migration"

[migrate.mapping]
"First Name" = "first_name"
"Last Name" = "last_name"
"Email Address" = "email"
"Mobile" = "phone"
"Company" = "company_name"
"City" = "city"
"Zip" = "postal_code"
"Country" = "country"
"Labels" = "tags"
"Customer Tier" = "custom.customer_tier"
"#;

fn csv_cell(v: &str) -> String {
    if v.contains([',', '"']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
}

fn outcomes(run_dir: &str) -> Vec<(usize, String, String)> {
    let text = std::fs::read_to_string(std::path::Path::new(run_dir).join("migrate/rows.csv"))
        .expect("rows.csv");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    reader
        .records()
        .map(|r| {
            let r = r.expect("record");
            (
                r[0].parse().expect("row"),
                r[1].to_string(),
                r[3].to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_messy_export_is_mapped_deduplicated_and_applied_once() {
    let h = Harness::start(SandboxOptions {
        seed: 21,
        contacts: 150,
        messages: 100,
        rate_limit: false,
        ..SandboxOptions::default()
    })
    .await;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&h.pipeline)
        .unwrap()
        .write_all(MIGRATE.as_bytes())
        .unwrap();
    h.authorise().await;

    // The shipped messy rows, plus two rows for contacts the location already has.
    let mut text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/migrate/messy_export.csv"),
    )
    .unwrap();
    let state = h.control("state").await;
    let existing: Vec<&Value> = state["ghl"]["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["email"].is_string()
                && c["firstName"].is_string()
                && c["lastName"].is_string()
                && c["customFields"].as_array().is_none_or(|f| f.is_empty())
        })
        .take(2)
        .collect();
    assert_eq!(existing.len(), 2);
    let line = |c: &Value, tier: &str| {
        format!(
            "{},{},{},,,,,,,{tier}\n",
            csv_cell(c["firstName"].as_str().unwrap()),
            csv_cell(c["lastName"].as_str().unwrap()),
            csv_cell(&c["email"].as_str().unwrap().to_uppercase()),
        )
    };
    text.push_str(&line(existing[0], "platinum"));
    text.push_str(&line(existing[1], ""));
    let input = h.dir.path().join("export.csv");
    std::fs::write(&input, text).unwrap();
    let input = input.display().to_string();

    // Plan only: GHL is read, never written.
    h.control_post("stats/reset", Value::Null).await;
    let planned = h.run_ok(&["migrate", "--input", &input, "--json"]).await;
    assert_eq!(h.control("stats").await["writes"], 0);
    let counts = &planned["counts"];
    assert_eq!(counts["rows"], 12, "{planned}");
    assert_eq!(counts["rejects"], 6, "{planned}");
    assert_eq!(counts["creates"], 3, "{planned}");
    assert_eq!(counts["merges"], 1, "{planned}");
    assert_eq!(counts["updates"], 1, "{planned}");
    assert_eq!(counts["unchanged"], 1, "{planned}");
    let rows = outcomes(planned["run_dir"].as_str().unwrap());
    let reason_of = |row: usize| {
        rows.iter()
            .find(|(r, _, _)| *r == row)
            .map(|(_, o, why)| format!("{o}: {why}"))
            .unwrap_or_else(|| panic!("row {row} has no outcome"))
    };
    assert!(reason_of(1).starts_with("create"));
    assert!(reason_of(2).starts_with("merge"), "{}", reason_of(2));
    assert!(reason_of(4).contains("not an address"), "{}", reason_of(4));
    assert!(reason_of(5).contains("formula"), "{}", reason_of(5));
    assert!(
        reason_of(6).contains("not a valid number"),
        "{}",
        reason_of(6)
    );
    assert!(
        reason_of(7).contains("no email, phone or name"),
        "{}",
        reason_of(7)
    );
    assert!(reason_of(8).contains("11 fields"), "{}", reason_of(8));
    assert!(reason_of(9).contains("formula"), "{}", reason_of(9));
    // The quarantine keeps the rejected rows, with formula cells neutralised for spreadsheets.
    let quarantine = std::fs::read_to_string(
        std::path::Path::new(planned["run_dir"].as_str().unwrap()).join("migrate/quarantine.csv"),
    )
    .unwrap();
    assert_eq!(quarantine.lines().count(), 7);
    assert!(
        !quarantine
            .lines()
            .any(|l| l.starts_with('=') || l.contains(",="))
    );

    // Apply, then apply again: the second changes nothing.
    let applied = h
        .run_ok(&["migrate", "--input", &input, "--apply", "--json"])
        .await;
    assert_eq!(applied["counts"]["failed"], 0, "{applied}");
    let state = h.control("state").await;
    let with_email = |email: &str| {
        state["ghl"]["contacts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| {
                c["email"]
                    .as_str()
                    .is_some_and(|e| e.eq_ignore_ascii_case(email))
            })
            .cloned()
            .collect::<Vec<_>>()
    };
    let hannah = with_email("hannah.okafor@example.org");
    assert_eq!(hannah.len(), 1, "one Hannah from two rows");
    assert_eq!(hannah[0]["phone"], "+14155550101");
    let tags: Vec<&str> = hannah[0]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for t in ["vip", "2024", "newsletter"] {
        assert!(tags.contains(&t), "{tags:?}");
    }
    assert_eq!(
        with_email("olu.adeyemi@example.com")[0]["phone"],
        "+442079460958"
    );
    assert!(with_email("smith.formula@example.com").is_empty());
    let updated = with_email(existing[0]["email"].as_str().unwrap());
    assert!(
        updated.iter().any(|c| c["customFields"]
            .as_array()
            .is_some_and(|f| f.iter().any(|v| v["value"] == "platinum"))),
        "{updated:?}"
    );

    h.control_post("stats/reset", Value::Null).await;
    let again = h
        .run_ok(&["migrate", "--input", &input, "--apply", "--json"])
        .await;
    assert_eq!(again["counts"]["creates"], 0, "{again}");
    assert_eq!(again["counts"]["planned_operations"], 0, "{again}");
    assert_eq!(h.control("stats").await["writes"], 0);
}

/// Rows with a name but no email or phone give GHL nothing to find a created contact by, so a lost
/// answer would create them twice (5 such rows became 11 contacts): they are quarantined with the
/// reason and nothing is created for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn name_only_rows_are_quarantined_not_created() {
    let h = Harness::start(SandboxOptions {
        seed: 22,
        contacts: 40,
        messages: 10,
        rate_limit: false,
        ..SandboxOptions::default()
    })
    .await;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&h.pipeline)
        .unwrap()
        .write_all(MIGRATE.as_bytes())
        .unwrap();
    h.authorise().await;
    let header =
        "First Name,Last Name,Email Address,Mobile,Company,City,Zip,Country,Labels,Customer Tier\n";
    let names = [
        ("Zebedee", "Quarshie"),
        ("Philippa", "Voskuijlen"),
        ("Anselm", "Thorvaldsen"),
        ("Ottoline", "Mbatha"),
        ("Casimir", "Ferreira-Lund"),
    ];
    let mut text = header.to_string();
    for (first, last) in names {
        text.push_str(&format!("{first},{last},,,,Springfield,,US,,\n"));
    }
    let input = h.dir.path().join("names.csv");
    std::fs::write(&input, text).unwrap();
    let before = h.control("state").await["ghl"]["contacts"]
        .as_array()
        .unwrap()
        .len();
    let applied = h
        .run_ok(&[
            "migrate",
            "--input",
            &input.display().to_string(),
            "--apply",
            "--json",
        ])
        .await;
    assert_eq!(applied["counts"]["creates"], 0, "{applied}");
    assert_eq!(applied["counts"]["rejects"], 5, "{applied}");
    let after = h.control("state").await["ghl"]["contacts"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(after, before, "name-only rows were created");
    let rows = outcomes(applied["run_dir"].as_str().unwrap());
    assert_eq!(rows.len(), 5);
    for (row, outcome, reason) in rows {
        assert_eq!(outcome, "reject", "row {row}");
        assert!(reason.contains("no email or phone"), "row {row}: {reason}");
    }
    let quarantine = std::fs::read_to_string(
        std::path::Path::new(applied["run_dir"].as_str().unwrap()).join("migrate/quarantine.csv"),
    )
    .unwrap();
    assert!(quarantine.contains("Zebedee,Quarshie"), "{quarantine}");
}
