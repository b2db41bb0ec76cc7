//! Seed generator: determinism, exact sizes, ground truth, planted duplicates and look-alikes, SMS
//! history invariants and the benchmark CSV export.
//!
//! Generation time is not a test: `contactsync sandbox --export-seed DIR --contacts 1000000`
//! prints it (bench/dedupe_speed.sh uses that export).

use chrono::{DateTime, Duration, TimeZone, Utc};
use contactsync::sandbox::seed::{
    CONTACTS_CSV_HEADER, LookalikeKind, SeedData, SeedMessageType, SeedSpec, SeedSummary, generate,
    generate_with_summary, write_contacts_csv, write_truth_csv,
};
use std::collections::{HashMap, HashSet};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
        .single()
        .expect("valid date")
}

fn spec(seed: u64, contacts: usize, messages: usize) -> SeedSpec {
    SeedSpec {
        seed,
        contacts,
        messages,
        now: now(),
    }
}

/// The last nine digits of a phone as written: enough to compare numbers across formats.
fn phone_tail(phone: &str) -> String {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    digits[digits.len().saturating_sub(9)..].to_string()
}

/// Person id of each contact id.
fn person_of(data: &SeedData) -> HashMap<&str, &str> {
    data.truth
        .iter()
        .map(|t| (t.id.as_str(), t.person.as_str()))
        .collect()
}

#[test]
fn same_seed_gives_identical_data_and_another_seed_does_not() {
    let a = generate(&spec(7, 2_000, 1_000));
    let b = generate(&spec(7, 2_000, 1_000));
    let c = generate(&spec(8, 2_000, 1_000));
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
    assert_ne!(format!("{:?}", a.contacts), format!("{:?}", c.contacts));
    assert_ne!(format!("{:?}", a.messages), format!("{:?}", c.messages));
}

#[test]
fn sizes_are_exact() {
    for (contacts, messages) in [(0, 0), (1, 1), (7, 3), (1_000, 0), (0, 50), (3_001, 4_999)] {
        let data = generate(&spec(1, contacts, messages));
        assert_eq!(
            data.contacts.len(),
            contacts,
            "contacts for {contacts}/{messages}"
        );
        assert_eq!(
            data.messages.len(),
            messages,
            "messages for {contacts}/{messages}"
        );
        assert_eq!(data.truth.len(), contacts);
    }
}

#[test]
fn every_contact_is_in_the_truth_exactly_once() {
    let data = generate(&spec(2, 5_000, 0));
    let ids: HashSet<&str> = data.contacts.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), data.contacts.len(), "contact ids are unique");
    for (contact, row) in data.contacts.iter().zip(&data.truth) {
        assert_eq!(contact.id, row.id);
        assert_eq!(contact.id.len(), 20);
        assert!(contact.id.chars().all(|c| c.is_ascii_alphanumeric()));
        assert!(row.person.starts_with('p') && row.person[1..].chars().all(|c| c.is_ascii_digit()));
    }
}

#[test]
fn duplicate_rate_is_within_bounds() {
    let (data, summary) = generate_with_summary(&spec(3, 20_000, 0));
    let mut records_per_person: HashMap<&str, usize> = HashMap::new();
    for row in &data.truth {
        *records_per_person.entry(row.person.as_str()).or_default() += 1;
    }
    let duplicated = records_per_person.values().filter(|&&n| n > 1).count();
    let share = duplicated as f64 / records_per_person.len() as f64;
    assert!(
        (0.15..=0.25).contains(&share),
        "{share:.3} of persons have duplicates"
    );
    assert!(records_per_person.values().all(|&n| (1..=4).contains(&n)));
    assert_eq!(summary.persons, records_per_person.len());
    assert_eq!(summary.duplicated_persons, duplicated);
}

#[test]
fn households_share_a_phone_and_address_but_are_different_persons() {
    let (data, summary) = generate_with_summary(&spec(4, 20_000, 0));
    let persons = person_of(&data);
    // Independent of the summary: the same phone and street address on records of two persons.
    let mut by_phone_and_address: HashMap<(String, &str), HashSet<&str>> = HashMap::new();
    for c in &data.contacts {
        if let (Some(phone), Some(address)) = (&c.phone, &c.address1) {
            let key = (phone_tail(phone), address.as_str());
            by_phone_and_address
                .entry(key)
                .or_default()
                .insert(persons[c.id.as_str()]);
        }
    }
    let shared = by_phone_and_address
        .values()
        .filter(|p| p.len() >= 2)
        .count();
    assert!(
        shared >= 50,
        "only {shared} phone+address pairs are shared by different persons"
    );

    let households: Vec<_> = summary
        .lookalike_groups
        .iter()
        .filter(|g| g.kind == LookalikeKind::Household)
        .collect();
    assert!(households.len() >= 50, "{} households", households.len());
    for group in households {
        let unique: HashSet<&String> = group.persons.iter().collect();
        assert_eq!(
            unique.len(),
            group.persons.len(),
            "household members are distinct persons"
        );
    }
}

#[test]
fn namesakes_and_shared_inboxes_exist_across_persons() {
    let (data, summary) = generate_with_summary(&spec(5, 20_000, 0));
    let persons = person_of(&data);
    let mut by_name: HashMap<(String, String), HashSet<&str>> = HashMap::new();
    let mut by_email: HashMap<&str, HashSet<&str>> = HashMap::new();
    for c in &data.contacts {
        if let (Some(f), Some(l)) = (&c.first_name, &c.last_name) {
            by_name
                .entry((f.to_lowercase(), l.to_lowercase()))
                .or_default()
                .insert(persons[c.id.as_str()]);
        }
        if let Some(email) = &c.email {
            by_email
                .entry(email.as_str())
                .or_default()
                .insert(persons[c.id.as_str()]);
        }
    }
    let namesakes = by_name.values().filter(|p| p.len() >= 2).count();
    assert!(
        namesakes >= 100,
        "only {namesakes} names are shared by different persons"
    );
    let shared_inboxes: Vec<&&str> = by_email
        .iter()
        .filter(|(_, p)| p.len() >= 2)
        .map(|(e, _)| e)
        .collect();
    assert!(
        shared_inboxes.len() >= 20,
        "{} shared inboxes",
        shared_inboxes.len()
    );
    let role_inboxes = shared_inboxes
        .iter()
        .filter(|e| {
            [
                "info@",
                "office@",
                "contact@",
                "admin@",
                "hello@",
                "frontdesk@",
            ]
            .iter()
            .any(|r| e.starts_with(r))
        })
        .count();
    assert!(
        role_inboxes * 2 >= shared_inboxes.len(),
        "most shared emails are role inboxes"
    );
    for kind in [
        LookalikeKind::Namesakes,
        LookalikeKind::SharedInbox,
        LookalikeKind::Twins,
        LookalikeKind::JuniorSenior,
    ] {
        assert!(
            summary.lookalike_groups.iter().any(|g| g.kind == kind),
            "no {kind:?} group"
        );
    }
    let juniors = data
        .contacts
        .iter()
        .filter(|c| c.last_name.as_deref().is_some_and(|l| l.ends_with(" Jr.")))
        .count();
    assert!(juniors > 0, "no Jr. records");
}

/// A test of how a phone is written.
type PhonePattern = fn(&str) -> bool;

#[test]
fn duplicate_records_vary_like_a_real_crm() {
    let data = generate(&spec(6, 20_000, 0));
    let phones: Vec<&str> = data
        .contacts
        .iter()
        .filter_map(|c| c.phone.as_deref())
        .collect();
    let formats: [(&str, PhonePattern); 7] = [
        ("E.164", |p: &str| p.starts_with("+1") && !p.contains(' ')),
        ("(415) 555-0134", |p: &str| p.starts_with('(')),
        ("415.555.0134", |p: &str| p.matches('.').count() == 2),
        ("+1 415 555 0134", |p: &str| p.starts_with("+1 ")),
        ("001 415 555 0134", |p: &str| p.starts_with("001 ")),
        ("digits only", |p: &str| {
            p.len() == 10 && p.chars().all(|c| c.is_ascii_digit())
        }),
        ("+44 ...", |p: &str| p.starts_with("+44")),
    ];
    for (what, pattern) in formats {
        assert!(
            phones.iter().any(|p| pattern(p)),
            "no phone written as {what}"
        );
    }
    let emails: Vec<&str> = data
        .contacts
        .iter()
        .filter_map(|c| c.email.as_deref())
        .collect();
    assert!(
        emails
            .iter()
            .any(|e| e.split('@').next().is_some_and(|l| l.contains('+'))),
        "no +tag"
    );
    assert!(
        emails
            .iter()
            .any(|e| e.chars().any(|c| c.is_ascii_uppercase())),
        "no case noise"
    );
    assert!(
        emails
            .iter()
            .any(|e| e.ends_with("@gmial.com") || e.ends_with("@gmail.co")),
        "no domain typo"
    );
    let missing_email = data.contacts.iter().filter(|c| c.email.is_none()).count();
    assert!(missing_email > 200, "{missing_email} records lack an email");
    let firsts: HashSet<&str> = data
        .contacts
        .iter()
        .filter_map(|c| c.first_name.as_deref())
        .collect();
    for name in ["William", "Bill", "José", "Jose"] {
        assert!(firsts.contains(name), "no first name {name}");
    }
    assert!(
        firsts
            .iter()
            .any(|f| f.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))),
        "no Chinese script"
    );
    assert!(
        firsts
            .iter()
            .any(|f| f.chars().any(|c| ('\u{0400}'..='\u{04ff}').contains(&c))),
        "no Cyrillic"
    );
    assert!(
        firsts.iter().any(|f| f.ends_with(' ')),
        "no whitespace noise"
    );
    let countries: HashSet<&str> = data
        .contacts
        .iter()
        .filter_map(|c| c.country.as_deref())
        .collect();
    for code in ["US", "CA", "GB", "AU", "DE"] {
        assert!(countries.contains(code), "no contact in {code}");
    }
}

#[test]
fn contact_fields_are_consistent() {
    let data = generate(&spec(7, 10_000, 0));
    let oldest = now() - Duration::days(730);
    for c in &data.contacts {
        assert!(
            oldest <= c.date_added && c.date_added <= c.date_updated && c.date_updated <= now()
        );
        if c.dnd_sms.as_deref() == Some("active") {
            assert!(c.dnd, "active SMS DND implies dnd");
        }
        if c.timezone.is_some() {
            assert!(c.city.is_some() && c.country.is_some());
        }
        if c.timezone
            .as_deref()
            .is_some_and(|tz| tz.starts_with("Europe/Berlin"))
        {
            assert_eq!(c.country.as_deref(), Some("DE"));
        }
    }
    let with_business = data
        .contacts
        .iter()
        .filter_map(|c| c.business_id.as_deref());
    let mut per_business: HashMap<&str, usize> = HashMap::new();
    with_business.for_each(|b| *per_business.entry(b).or_default() += 1);
    assert!(
        per_business.values().any(|&n| n >= 3),
        "no business is shared by several contacts"
    );
    assert!(data.contacts.iter().any(|c| !c.custom_fields.is_empty()));
    let dnd = data.contacts.iter().filter(|c| c.dnd).count();
    assert!(
        (200..=1_500).contains(&dnd),
        "{dnd} of 10000 contacts are DND"
    );
}

#[test]
fn tasks_notes_and_appointments_hang_off_contacts() {
    let data = generate(&spec(8, 10_000, 0));
    let ids: HashSet<&str> = data.contacts.iter().map(|c| c.id.as_str()).collect();
    let share = |contact_ids: Vec<&str>| {
        assert!(
            contact_ids.iter().all(|id| ids.contains(id)),
            "orphan activity"
        );
        contact_ids.into_iter().collect::<HashSet<_>>().len() as f64 / ids.len() as f64
    };
    let tasks = share(data.tasks.iter().map(|t| t.contact_id.as_str()).collect());
    let notes = share(data.notes.iter().map(|n| n.contact_id.as_str()).collect());
    let appointments = share(
        data.appointments
            .iter()
            .map(|a| a.contact_id.as_str())
            .collect(),
    );
    assert!(
        (0.25..=0.35).contains(&tasks),
        "{tasks:.3} of contacts have tasks"
    );
    assert!(
        (0.25..=0.35).contains(&notes),
        "{notes:.3} of contacts have notes"
    );
    assert!(
        (0.07..=0.13).contains(&appointments),
        "{appointments:.3} of contacts have appointments"
    );
    assert!(data.tasks.iter().any(|t| t.completed) && data.tasks.iter().any(|t| !t.completed));
    assert!(
        data.appointments
            .iter()
            .all(|a| a.start_time < a.end_time && a.date_added <= a.start_time)
    );
}

fn sms_fixture() -> (SeedData, SeedSummary) {
    generate_with_summary(&spec(9, 5_000, 20_000))
}

#[test]
fn message_ids_strictly_ascend_with_submission_date() {
    let (data, _) = sms_fixture();
    assert!(data.messages[0].id >= 1_415_000_000_000_000_000);
    for pair in data.messages.windows(2) {
        assert!(
            pair[0].id < pair[1].id,
            "ids {} then {}",
            pair[0].id,
            pair[1].id
        );
        assert!(pair[0].submission_date <= pair[1].submission_date);
    }
    let earliest = now() - Duration::days(180);
    assert!(
        data.messages
            .iter()
            .all(|m| earliest <= m.submission_date && m.submission_date <= now())
    );
}

#[test]
fn statuses_replies_and_numbers_look_like_bulksms() {
    let (data, summary) = sms_fixture();
    let by_id: HashMap<u64, _> = data.messages.iter().map(|m| (m.id, m)).collect();
    let mut statuses: HashMap<(&str, Option<&str>), usize> = HashMap::new();
    for m in &data.messages {
        assert!(m.to.chars().all(|c| c.is_ascii_digit()), "to {}", m.to);
        assert!(
            m.from.chars().all(|c| c.is_ascii_digit()) || m.from == "ACME",
            "from {}",
            m.from
        );
        assert!(m.user_supplied_id.as_ref().is_none_or(|u| u.len() <= 20));
        match m.message_type {
            SeedMessageType::Sent => {
                *statuses
                    .entry((m.status_type.as_str(), m.status_subtype.as_deref()))
                    .or_default() += 1;
            }
            SeedMessageType::Received => {
                assert_eq!(m.status_type, "RECEIVED");
                if let Some(related) = m.related_sent_message_id {
                    let sent = by_id[&related];
                    assert_eq!(sent.message_type, SeedMessageType::Sent);
                    assert_eq!(
                        (sent.to.as_str(), sent.from.as_str()),
                        (m.from.as_str(), m.to.as_str())
                    );
                    assert!(sent.id < m.id);
                }
            }
        }
    }
    let sent: usize = statuses.values().sum();
    let delivered = statuses.get(&("DELIVERED", None)).copied().unwrap_or(0);
    assert!(
        delivered as f64 > 0.8 * sent as f64,
        "{delivered} of {sent} delivered"
    );
    for subtype in ["EXPIRED", "HANDSET_ERROR", "BLOCKED"] {
        assert!(
            statuses.contains_key(&("FAILED", Some(subtype))),
            "no FAILED.{subtype}"
        );
    }
    assert!(data.messages.iter().any(|m| m.user_supplied_id.is_some()));
    assert!(summary.unknown_inbound > 0);
}

#[test]
fn blocked_numbers_are_numbers_that_replied_stop() {
    let (data, summary) = sms_fixture();
    assert_eq!(summary.stop_repliers, data.blocked_numbers.len());
    let mut stopped_at = HashMap::new();
    for m in &data.messages {
        if m.message_type == SeedMessageType::Received && m.body.eq_ignore_ascii_case("stop") {
            stopped_at.entry(m.from.as_str()).or_insert(m.id);
        }
    }
    for number in &data.blocked_numbers {
        assert!(
            stopped_at.contains_key(number.as_str()),
            "{number} is blocked without a STOP"
        );
    }
    assert_eq!(
        stopped_at.len(),
        data.blocked_numbers.len(),
        "every STOP number is blocked"
    );
    let mut blocked_after_stop = 0;
    for m in data
        .messages
        .iter()
        .filter(|m| m.message_type == SeedMessageType::Sent)
    {
        if let Some(&stop_id) = stopped_at.get(m.to.as_str()) {
            let blocked = m.status_subtype.as_deref() == Some("BLOCKED");
            assert_eq!(
                m.id > stop_id,
                blocked,
                "send {} to {} vs STOP {stop_id}",
                m.id,
                m.to
            );
            blocked_after_stop += usize::from(blocked);
        }
    }
    assert!(blocked_after_stop > 0, "no send hit a blocked number");
    // 2-5 % of the numbers that were texted replied STOP.
    let texted: HashSet<&str> = data
        .messages
        .iter()
        .filter(|m| m.message_type == SeedMessageType::Sent)
        .map(|m| m.to.as_str())
        .collect();
    let share = data.blocked_numbers.len() as f64 / texted.len() as f64;
    assert!(
        (0.02..=0.05).contains(&share),
        "{share:.3} of texted numbers replied STOP"
    );
}

#[test]
fn unknown_inbound_numbers_belong_to_no_contact() {
    let (data, _) = sms_fixture();
    let contact_phones: HashSet<String> = data
        .contacts
        .iter()
        .filter_map(|c| c.phone.as_deref())
        .map(phone_tail)
        .collect();
    let unknown: Vec<_> = data
        .messages
        .iter()
        .filter(|m| {
            m.message_type == SeedMessageType::Received && m.related_sent_message_id.is_none()
        })
        .collect();
    assert!(!unknown.is_empty());
    for m in unknown {
        assert!(
            !contact_phones.contains(&phone_tail(&m.from)),
            "{} is a contact's number",
            m.from
        );
    }
}

/// Reads a CSV with polars, every column as text.
fn read_csv(path: &std::path::Path) -> polars::prelude::DataFrame {
    use polars::prelude::*;
    CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .expect("open csv")
        .finish()
        .expect("parse csv")
}

fn column(frame: &polars::prelude::DataFrame, name: &str) -> Vec<Option<String>> {
    frame
        .column(name)
        .expect("column exists")
        .str()
        .expect("text column")
        .iter()
        .map(|v| v.map(str::to_string))
        .collect()
}

#[test]
fn contacts_csv_round_trips_through_polars() {
    let mut data = generate(&spec(10, 3_000, 0));
    // Make sure the hard cases are present whatever the seed drew.
    data.contacts[0].company_name = Some("Smith, Jones & Co.".into());
    data.contacts[1].company_name = Some("Bob's \"Best\" Burgers".into());
    data.contacts[2].last_name = Some("two\nlines".into());
    data.contacts[3].first_name = Some("  Zoë ".into());
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("contacts.csv");
    write_contacts_csv(&data, &path).expect("write csv");
    let text = std::fs::read_to_string(&path).expect("read back");
    assert!(text.starts_with(&format!("{CONTACTS_CSV_HEADER}\n")));

    let frame = read_csv(&path);
    assert_eq!(frame.height(), data.contacts.len());
    let text_of = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let expect = |name: &str, values: Vec<Option<String>>| {
        let read = column(&frame, name);
        for (i, (got, want)) in read.iter().zip(&values).enumerate() {
            assert_eq!(text_of(got), text_of(want), "row {i} column {name}");
        }
    };
    let c = &data.contacts;
    expect("id", c.iter().map(|c| Some(c.id.clone())).collect());
    expect(
        "first_name",
        c.iter().map(|c| c.first_name.clone()).collect(),
    );
    expect("last_name", c.iter().map(|c| c.last_name.clone()).collect());
    expect("email", c.iter().map(|c| c.email.clone()).collect());
    expect("phone", c.iter().map(|c| c.phone.clone()).collect());
    expect(
        "company",
        c.iter().map(|c| c.company_name.clone()).collect(),
    );
    expect("city", c.iter().map(|c| c.city.clone()).collect());
    expect(
        "postal_code",
        c.iter().map(|c| c.postal_code.clone()).collect(),
    );
    expect("country", c.iter().map(|c| c.country.clone()).collect());
    expect("source", c.iter().map(|c| c.source.clone()).collect());
    expect("tags", c.iter().map(|c| Some(c.tags.join(";"))).collect());
    let dates = column(&frame, "date_updated");
    for (got, contact) in dates.iter().zip(c) {
        let parsed =
            DateTime::parse_from_rfc3339(got.as_deref().expect("date present")).expect("rfc3339");
        assert_eq!(parsed, contact.date_updated);
    }
}

#[test]
fn truth_csv_lists_every_contact_once() {
    let data = generate(&spec(11, 2_000, 0));
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("truth.csv");
    write_truth_csv(&data, &path).expect("write truth");
    let frame = read_csv(&path);
    let ids = column(&frame, "id");
    let persons = column(&frame, "person");
    assert_eq!(ids.len(), data.truth.len());
    for ((id, person), row) in ids.iter().zip(&persons).zip(&data.truth) {
        assert_eq!(id.as_deref(), Some(row.id.as_str()));
        assert_eq!(person.as_deref(), Some(row.person.as_str()));
    }
}
