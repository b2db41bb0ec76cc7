//! The generator: persons in groups, their contact records with variations, then the activity and
//! SMS history built on them.

use super::companies::{Company, company_pool};
use super::ids::{ghl_id, instant_between};
use super::names::NameTables;
use super::people::{Person, PersonFactory};
use super::places::{PhoneStyle, PlaceTables};
use super::sampling::pick_weighted;
use super::variants::{EmailVariant, name_fields, pick_email_variant, vary_email};
use super::{
    CUSTOM_FIELDS, LookalikeGroup, SeedContact, SeedData, SeedSpec, SeedSummary, TruthRow,
};
use super::{activity, messages};
use chrono::{DateTime, Datelike, Duration, Utc};
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Share of persons that get more than one record.
const DUPLICATED_PERSON_SHARE: f64 = 0.20;

/// How far back contacts were added.
const CONTACT_HISTORY_DAYS: i64 = 730;

const SOURCES: &[(&str, u32)] = &[
    ("facebook", 22),
    ("website form", 25),
    ("import", 15),
    ("referral", 10),
    ("google ads", 10),
    ("manual", 8),
    ("instagram", 5),
    ("zapier", 3),
    ("landing page", 2),
];

const TAGS: &[&str] = &[
    "lead",
    "customer",
    "newsletter",
    "vip",
    "facebook-ad",
    "webinar",
    "follow-up",
    "cold",
    "hot lead",
    "2024-promo",
    "no-show",
    "referral",
    "spanish-speaking",
    "estimate sent",
    "past client",
];

/// Generates the seed data for a spec.
pub fn generate(spec: &SeedSpec) -> SeedData {
    generate_with_summary(spec).0
}

/// Generates the seed data and says what was planted (persons, duplicates, look-alike groups).
pub fn generate_with_summary(spec: &SeedSpec) -> (SeedData, SeedSummary) {
    // Separate streams per concern, so a change in one part does not reshuffle the others.
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let mut activity_rng = ChaCha8Rng::seed_from_u64(spec.seed ^ 0xAC71_7177);
    let mut message_rng = ChaCha8Rng::seed_from_u64(spec.seed ^ 0x5E5_5A6E);

    let expected_persons = spec.contacts * 4 / 5 + 1;
    let companies = company_pool(
        (expected_persons / 6).max(20),
        NameTables::get(),
        &mut rng,
        &mut ghl_id,
    );
    let mut factory = PersonFactory::new(companies, expected_persons, spec.now.year());
    let mut summary = SeedSummary::default();
    let mut records: Vec<(SeedContact, TruthRow)> = Vec::with_capacity(spec.contacts);
    let mut reachable: Vec<messages::Reachable> = Vec::with_capacity(expected_persons);
    let mut reachable_seen = std::collections::HashSet::with_capacity(expected_persons);

    while records.len() < spec.contacts {
        let (kind, persons) = factory.next_group(&mut rng);
        let mut seeded = Vec::with_capacity(persons.len());
        for person in &persons {
            let remaining = spec.contacts - records.len();
            if remaining == 0 {
                break;
            }
            let count = record_count(&mut rng).min(remaining);
            for k in 0..count {
                let contact = contact_record(person, k == 0, &mut factory, spec.now, &mut rng);
                records.push((
                    contact,
                    TruthRow {
                        id: String::new(),
                        person: person.id.clone(),
                    },
                ));
            }
            summary.persons += 1;
            summary.duplicated_persons += usize::from(count > 1);
            seeded.push(person.id.clone());
            if let Some(phone) = &person.phone
                && reachable_seen.insert(phone.key())
            {
                reachable.push(messages::Reachable {
                    number: phone.e164_digits(),
                    first_name: person.first,
                });
            }
        }
        if let Some(kind) = kind
            && seeded.len() >= 2
        {
            summary.lookalike_groups.push(LookalikeGroup {
                kind,
                persons: seeded,
            });
        }
    }

    records.shuffle(&mut rng);
    let (contacts, truth): (Vec<SeedContact>, Vec<TruthRow>) = records
        .into_iter()
        .map(|(contact, mut row)| {
            row.id.clone_from(&contact.id);
            (contact, row)
        })
        .unzip();

    let activity = activity::generate(&contacts, spec.now, &mut activity_rng);
    let history = messages::generate(&reachable, &factory, spec, &mut message_rng);
    summary.stop_repliers = history.blocked_numbers.len();
    summary.unknown_inbound = history.unknown_inbound;
    let data = SeedData {
        contacts,
        tasks: activity.tasks,
        notes: activity.notes,
        appointments: activity.appointments,
        messages: history.messages,
        blocked_numbers: history.blocked_numbers,
        truth,
    };
    (data, summary)
}

/// How many records a person gets: mostly one, 2-4 for a fifth of persons.
fn record_count(rng: &mut ChaCha8Rng) -> usize {
    if !rng.random_bool(DUPLICATED_PERSON_SHARE) {
        return 1;
    }
    pick_weighted(rng, &[(2, 60), (3, 28), (4, 12)])
}

/// One contact record of a person. The `original` record is the clean sign-up; the others vary.
fn contact_record(
    person: &Person,
    original: bool,
    factory: &mut PersonFactory,
    now: DateTime<Utc>,
    rng: &mut ChaCha8Rng,
) -> SeedContact {
    let places = PlaceTables::get();
    let full_last = match person.suffix {
        Some(suffix) => format!("{} {suffix}", person.last),
        None => person.last.to_string(),
    };
    let (first_name, last_name) = name_fields(
        person.first,
        person.last,
        &full_last,
        NameTables::get(),
        original,
        rng,
    );

    let email = match (&person.email, original) {
        (Some(email), true) => (!rng.random_bool(0.03)).then(|| email.clone()),
        (Some(email), false) => match pick_email_variant(rng) {
            EmailVariant::Missing => None,
            EmailVariant::Different => Some(factory.fresh_email(person, rng)),
            variant => Some(vary_email(email, variant, rng)),
        },
        (None, true) => None,
        (None, false) => rng
            .random_bool(0.3)
            .then(|| factory.fresh_email(person, rng)),
    };

    let phone = match (&person.phone, original) {
        (Some(phone), true) => {
            let style = if rng.random_bool(0.55) {
                PhoneStyle::E164
            } else {
                PhoneStyle::pick(rng)
            };
            (!rng.random_bool(0.03)).then(|| phone.format(style))
        }
        (Some(phone), false) => match rng.random_range(0..100) {
            0..75 => Some(phone.format(PhoneStyle::pick(rng))),
            75..88 => None,
            _ => Some(
                factory
                    .fresh_phone(person.address.city, false, rng)
                    .format(PhoneStyle::pick(rng)),
            ),
        },
        (None, _) => (!original && rng.random_bool(0.25)).then(|| {
            factory
                .fresh_phone(person.address.city, false, rng)
                .format(PhoneStyle::pick(rng))
        }),
    };

    let company = match (person.company, original) {
        (Some(c), true) => Some(c),
        (Some(c), false) => match rng.random_range(0..100) {
            0..70 => Some(c),
            70..88 => None,
            _ => Some(rng.random_range(0..factory.companies.len())),
        },
        (None, _) => None,
    };
    let company: Option<&Company> = company.map(|c| &factory.companies[c]);

    let mut contact = SeedContact {
        id: ghl_id(rng),
        first_name,
        last_name,
        email,
        phone,
        company_name: company.map(|c| c.name.clone()),
        website: company
            .filter(|_| rng.random_bool(0.15))
            .map(|c| format!("https://www.{}", c.domain)),
        business_id: company
            .and_then(|c| c.business_id.clone())
            .filter(|_| rng.random_bool(0.6)),
        source: Some(pick_weighted(rng, SOURCES).to_string()),
        contact_type: Some(
            if rng.random_bool(0.75) {
                "lead"
            } else {
                "customer"
            }
            .to_string(),
        ),
        date_of_birth: person
            .date_of_birth
            .filter(|_| rng.random_bool(0.5))
            .map(|d| d.format("%Y-%m-%d").to_string()),
        ..SeedContact::default()
    };

    // The address block: full, city only, none, or somewhere new (the person moved).
    let address_roll = rng.random_range(0..100);
    let (full, city_only, moved) = if original {
        (address_roll < 80, (80..88).contains(&address_roll), false)
    } else {
        (
            address_roll < 62,
            (62..75).contains(&address_roll),
            address_roll >= 87,
        )
    };
    let address = if moved {
        let country = if rng.random_bool(0.8) {
            person.country()
        } else {
            places.pick_country(rng)
        };
        Some(places.pick_address(places.pick_city(country, rng), rng))
    } else {
        (full || city_only).then_some(person.address)
    };
    if let Some(address) = address {
        let city = &places.cities[address.city];
        if !city_only {
            contact.address1 = Some(address.line(places, rng.random_bool(0.5)));
            contact.postal_code = Some(address.postal_code(places, rng.random_bool(0.05)));
        }
        contact.city = Some(city.name.to_string());
        contact.state = city.state.map(str::to_string);
        contact.country = Some(city.country.iso2().to_string());
        contact.timezone = rng.random_bool(0.9).then(|| city.timezone.to_string());
    } else if rng.random_bool(0.3) {
        contact.country = Some(person.country().iso2().to_string());
    }

    let tag_count = pick_weighted(rng, &[(0usize, 35), (1, 35), (2, 20), (3, 10)]);
    while contact.tags.len() < tag_count {
        let tag = TAGS[rng.random_range(0..TAGS.len())];
        if !contact.tags.iter().any(|t| t == tag) {
            contact.tags.push(tag.to_string());
        }
    }
    if rng.random_bool(0.2) {
        contact.custom_fields = custom_field_values(now, rng);
    }
    match rng.random_range(0..100) {
        0..6 => (contact.dnd, contact.dnd_sms) = (true, Some("active".to_string())),
        6..7 => (contact.dnd, contact.dnd_sms) = (true, Some("permanent".to_string())),
        7..11 => contact.dnd_sms = Some("inactive".to_string()),
        _ => {}
    }
    contact.date_added = instant_between(now - Duration::days(CONTACT_HISTORY_DAYS), now, rng);
    contact.date_updated = if rng.random_bool(0.4) {
        contact.date_added
    } else {
        instant_between(contact.date_added, now, rng)
    };
    contact
}

/// Values for 1-3 of the location's custom fields.
fn custom_field_values(
    now: DateTime<Utc>,
    rng: &mut ChaCha8Rng,
) -> Vec<(String, serde_json::Value)> {
    let count = rng.random_range(1..=3);
    let start = rng.random_range(0..CUSTOM_FIELDS.len());
    (0..count)
        .map(|i| {
            let field = &CUSTOM_FIELDS[(start + i) % CUSTOM_FIELDS.len()];
            let value = match field.data_type {
                "MONETORY" => serde_json::json!(rng.random_range(5..500) * 100),
                "NUMERICAL" => serde_json::json!(rng.random_range(0..=100)),
                "SINGLE_OPTIONS" => {
                    serde_json::json!(
                        ["English", "Spanish", "French", "Vietnamese", "Mandarin"]
                            [rng.random_range(0..5)]
                    )
                }
                "DATE" => {
                    let day = now - Duration::days(rng.random_range(1..400));
                    serde_json::json!(day.format("%Y-%m-%d").to_string())
                }
                _ => serde_json::json!(
                    [
                        "Roof replacement",
                        "Teeth whitening",
                        "Free consultation",
                        "Spring special",
                        "Financing"
                    ][rng.random_range(0..5)]
                ),
            };
            (field.id.to_string(), value)
        })
        .collect()
}
