//! Tests of the migration: row mapping, validation and the merge into existing contacts.

use super::*;

fn config() -> MigrateConfig {
    MigrateConfig {
        mapping: [
            ("Name", "full_name"),
            ("E-mail", "email"),
            ("Mobile", "phone"),
            ("Labels", "tags"),
            ("Tier", "custom.tier_field"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect(),
        tags_separator: ";".into(),
        ..MigrateConfig::default()
    }
}

fn raw(cells: &[(&str, &str)]) -> RawRow {
    RawRow {
        row: 7,
        cells: cells
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

#[test]
fn rows_map_to_ghl_fields_with_normalised_phones() {
    let us = normalize::region("US");
    let row = map_row(
        &raw(&[
            ("Name", "Mary Ann Lee"),
            ("E-mail", " mary@example.com "),
            ("Mobile", "(415) 555-0134"),
            ("Labels", "vip; 2024 ;"),
            ("Tier", "gold"),
        ]),
        &config(),
        us,
        "US",
    )
    .expect("maps");
    assert_eq!(row.fields["first_name"], "Mary Ann");
    assert_eq!(row.fields["last_name"], "Lee");
    assert_eq!(row.fields["email"], "mary@example.com");
    assert_eq!(row.fields["phone"], "+14155550134");
    assert_eq!(row.tags, vec!["vip", "2024"]);
    assert_eq!(row.custom["tier_field"], "gold");
}

#[test]
fn bad_rows_are_rejected_with_the_reason() {
    let us = normalize::region("US");
    let reason = |cells: &[(&str, &str)]| map_row(&raw(cells), &config(), us, "US").unwrap_err();
    assert!(reason(&[("Name", "=HYPERLINK(\"http://x\",\"y\")")]).contains("formula"));
    assert!(reason(&[("Name", "@SUM(A1)")]).contains("formula"));
    assert!(reason(&[("Name", "Bo"), ("E-mail", "not-an-email")]).contains("not an address"));
    assert!(reason(&[("Name", "Bo"), ("Mobile", "12")]).contains("not a valid number"));
    assert!(reason(&[("Labels", "x")]).contains("no email, phone or name"));
    // A phone with a plus is not a formula.
    assert!(map_row(&raw(&[("Mobile", "+1 415 555 0134")]), &config(), us, "US").is_ok());
}

#[test]
fn an_email_or_phone_a_duplicate_holds_is_not_given_to_the_survivor() {
    let duplicate = SnapshotContact {
        id: "dup".into(),
        email: Some("Ann@Example.com".into()),
        phone: Some("+1 (415) 555-0134".into()),
        ..SnapshotContact::default()
    };
    let others = [&duplicate];
    assert!(identity_held_by("email", "ann@example.com ", &others));
    assert!(identity_held_by("phone", "+14155550134", &others));
    assert!(!identity_held_by("email", "ann@other.com", &others));
    assert!(
        !identity_held_by("city", "Boston", &others),
        "only identity fields collide"
    );
    assert!(!identity_held_by("email", "ann@example.com", &[]));
}

#[test]
fn an_email_or_phone_any_contact_of_the_location_holds_is_not_filled_in() {
    let elsewhere = SnapshotContact {
        id: "other".into(),
        email: Some(" Ann@Example.com".into()),
        phone: Some("+1 (415) 555-0134".into()),
        ..SnapshotContact::default()
    };
    let mut index = IdentityIndex::of(&[elsewhere]);
    assert!(index.held("email", "ann@example.com"));
    assert!(index.held("phone", "+1 415-555-0134"));
    assert!(!index.held("email", "bob@example.com"));
    assert!(
        !index.held("city", "Boston"),
        "only identity fields collide"
    );
    // Given to one survivor, an address is held for the next.
    index.claim("email", "bob@example.com");
    assert!(index.held("email", "BOB@example.com "));
}

#[test]
fn unknown_targets_are_refused() {
    let mut c = config();
    c.mapping.insert("Zip".into(), "zip".into());
    let (key, message) = c.validate().unwrap_err();
    assert_eq!(key, "mapping.Zip");
    assert!(message.contains("zip"));
}
