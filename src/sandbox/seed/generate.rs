//! The generator: people first (with households, namesakes and shared inboxes), then their CRM
//! records (some people entered two to four times, each copy varied the way real data varies),
//! then what hangs off the records and the SMS history of their numbers.

use super::names::*;
use super::{
    SeedAppointment, SeedContact, SeedData, SeedMessage, SeedMessageType, SeedNote, SeedSpec,
    SeedTask, TruthRow,
};
use chrono::{DateTime, Duration, Utc};
use deunicode::deunicode;
use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;

/// A real person behind one or more records.
#[derive(Debug, Clone)]
struct Person {
    id: String,
    first: String,
    last: String,
    /// Email the person gives most often (may be a shared office inbox).
    email: Option<String>,
    /// E.164 of the number they text from (a household may share it).
    phone: Option<String>,
    place: usize,
    street: String,
    postal: String,
    company: Option<&'static str>,
    records: u32,
}

/// Picks an index with Zipf-like weights (index 0 most often).
struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Self {
        let mut total = 0.0;
        let cumulative = (0..n)
            .map(|i| {
                total += 1.0 / ((i + 1) as f64).powf(s);
                total
            })
            .collect();
        Zipf { cumulative }
    }

    fn pick(&self, rng: &mut impl Rng) -> usize {
        let total = *self.cumulative.last().expect("non-empty table");
        let x = rng.random_range(0.0..total);
        self.cumulative.partition_point(|c| *c < x)
    }
}

fn choose<'a, T>(rng: &mut impl Rng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn ghl_id(rng: &mut impl Rng) -> String {
    (0..20)
        .map(|_| ID_ALPHABET[rng.random_range(0..ID_ALPHABET.len())] as char)
        .collect()
}

/// A valid mobile/landline number of `country`, E.164.
fn phone_for(rng: &mut impl Rng, country: &str) -> String {
    match country {
        "GB" => format!(
            "+447{}{:08}",
            rng.random_range(4..=9),
            rng.random_range(0..100_000_000u32)
        ),
        "AU" => format!("+614{:08}", rng.random_range(10_000_000..100_000_000u32)),
        "DE" => format!(
            "+491{}{:08}",
            choose(rng, &["51", "52", "57", "60", "62", "70", "71", "75", "76"]),
            rng.random_range(0..100_000_000u32)
        ),
        _ => {
            let area = choose(rng, NANP_AREA_CODES);
            let exchange = rng.random_range(200..1000u32);
            let exchange = if exchange % 100 == 11 || exchange == 555 {
                exchange + 1
            } else {
                exchange
            };
            format!("+1{area}{exchange:03}{:04}", rng.random_range(0..10_000u32))
        }
    }
}

/// The same number as a person might type it.
fn phone_variant(rng: &mut impl Rng, e164: &str) -> String {
    if let Some(rest) = e164.strip_prefix("+1")
        && rest.len() == 10
    {
        let (a, b, c) = (&rest[..3], &rest[3..6], &rest[6..]);
        return match rng.random_range(0..6) {
            0 => format!("({a}) {b}-{c}"),
            1 => format!("{a}.{b}.{c}"),
            2 => format!("+1 {a} {b} {c}"),
            3 => format!("{a}{b}{c}"),
            4 => format!("1-{a}-{b}-{c}"),
            _ => format!("001 {a} {b} {c}"),
        };
    }
    let (cc, national) = match () {
        _ if e164.starts_with("+44") => ("44", &e164[3..]),
        _ if e164.starts_with("+61") => ("61", &e164[3..]),
        _ if e164.starts_with("+49") => ("49", &e164[3..]),
        _ => ("", e164.trim_start_matches('+')),
    };
    match rng.random_range(0..3) {
        0 => format!("0{national}"),
        1 => format!(
            "+{cc} {} {}",
            &national[..4.min(national.len())],
            &national[4.min(national.len())..]
        ),
        _ => format!("00{cc}{national}"),
    }
}

fn ascii_lower(s: &str) -> String {
    deunicode(s)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_lowercase()
}

fn email_for(rng: &mut impl Rng, first: &str, last: &str, company: Option<&str>) -> String {
    let (f, l) = (ascii_lower(first), ascii_lower(last));
    let (f, l) = (
        if f.is_empty() { "user".to_string() } else { f },
        if l.is_empty() {
            "contact".to_string()
        } else {
            l
        },
    );
    let domain = match company {
        Some(c) if rng.random_bool(0.35) => format!("{}.com", ascii_lower(c)),
        _ => choose(rng, FREE_MAIL).to_string(),
    };
    let local = match rng.random_range(0..6) {
        0 => format!("{f}.{l}"),
        1 => format!("{}{l}", &f[..1]),
        2 => format!("{f}{l}{}", rng.random_range(1..100)),
        3 => format!("{f}_{l}"),
        4 => format!("{l}.{f}"),
        _ => format!("{f}{}", rng.random_range(70..2005)),
    };
    format!("{local}@{domain}")
}

/// A typo of the kind people make: transposition, deletion, doubling or a neighbouring key.
fn typo(rng: &mut impl Rng, s: &str) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    if chars.len() < 3 {
        return s.to_string();
    }
    let i = rng.random_range(1..chars.len() - 1);
    match rng.random_range(0..4) {
        0 => chars.swap(i, i + 1),
        1 => {
            chars.remove(i);
        }
        2 => chars.insert(i, chars[i]),
        _ => {
            const ROWS: [&str; 3] = ["qwertyuiop", "asdfghjkl", "zxcvbnm"];
            let c = chars[i].to_ascii_lowercase();
            if let Some(row) = ROWS.iter().find(|r| r.contains(c)) {
                let pos = row.find(c).expect("found above");
                let next = row.as_bytes()[if pos + 1 < row.len() {
                    pos + 1
                } else {
                    pos - 1
                }] as char;
                chars[i] = next;
            }
        }
    }
    chars.into_iter().collect()
}

fn email_variant(rng: &mut impl Rng, email: &str) -> String {
    let (local, domain) = email.split_once('@').unwrap_or((email, "example.com"));
    match rng.random_range(0..5) {
        0 => email.to_uppercase(),
        1 => format!(
            "{local}+{}@{domain}",
            choose(rng, &["news", "crm", "promo", "2024"])
        ),
        2 if domain == "gmail.com" && local.len() > 3 => {
            let cut = rng.random_range(1..local.len());
            format!("{}.{}@{domain}", &local[..cut], &local[cut..])
        }
        3 => format!("{}@{domain}", typo(rng, local)),
        _ => format!(" {}", email.replace(local, &capitalise(local))),
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

fn nickname_of(rng: &mut impl Rng, first: &str) -> Option<String> {
    let options: Vec<&str> = NICKNAMES
        .iter()
        .filter(|(formal, _)| *formal == first)
        .map(|(_, nick)| *nick)
        .collect();
    (!options.is_empty()).then(|| choose(rng, &options).to_string())
}

fn date_between(rng: &mut impl Rng, from: DateTime<Utc>, to: DateTime<Utc>) -> DateTime<Utc> {
    let span = (to - from).num_seconds().max(1);
    from + Duration::seconds(rng.random_range(0..span))
}

fn make_people(rng: &mut ChaCha8Rng, records_wanted: usize) -> Vec<Person> {
    let first_zipf = Zipf::new(FIRST_NAMES.len(), 0.7);
    let last_zipf = Zipf::new(LAST_NAMES.len(), 0.5);
    let mut people: Vec<Person> = Vec::with_capacity(records_wanted);
    let mut records = 0usize;
    while records < records_wanted {
        let index = people.len();
        let place = rng.random_range(0..PLACES.len());
        let country = PLACES[place].2;
        let company = rng.random_bool(0.45).then(|| *choose(rng, COMPANIES));
        let n_records = match rng.random_range(0..100) {
            0..=79 => 1,
            80..=91 => 2,
            92..=96 => 3,
            _ => 4,
        }
        .min((records_wanted - records) as u32);
        let roll = rng.random_range(0..100);
        let mut person = if roll < 8 && index > 0 {
            // A household member of the previous person: same surname, address and home phone.
            let head = people[index - 1].clone();
            let first = FIRST_NAMES[first_zipf.pick(rng)].to_string();
            Person {
                id: String::new(),
                email: (rng.random_bool(0.85)).then(|| email_for(rng, &first, &head.last, None)),
                first,
                records: n_records,
                company: None,
                ..head
            }
        } else if roll < 10 && index > 0 {
            // A namesake: same name as someone earlier, otherwise a different person.
            let other = &people[rng.random_range(0..index)];
            let (first, last) = (other.first.clone(), other.last.clone());
            Person {
                id: String::new(),
                email: Some(email_for(rng, &first, &last, company)),
                phone: Some(phone_for(rng, country)),
                first,
                last,
                place: if rng.random_bool(0.3) {
                    other.place
                } else {
                    place
                },
                street: format!("{} {}", rng.random_range(1..9999), choose(rng, STREETS)),
                postal: postal_for(rng, place),
                company,
                records: n_records,
            }
        } else {
            let first = FIRST_NAMES[first_zipf.pick(rng)].to_string();
            let last = LAST_NAMES[last_zipf.pick(rng)].to_string();
            let shared_inbox = company.filter(|_| roll < 11);
            Person {
                id: String::new(),
                email: match shared_inbox {
                    // Colleagues who all give the office inbox.
                    Some(c) => Some(format!("info@{}.com", ascii_lower(c))),
                    None => rng
                        .random_bool(0.92)
                        .then(|| email_for(rng, &first, &last, company)),
                },
                phone: rng.random_bool(0.9).then(|| phone_for(rng, country)),
                first,
                last,
                place,
                street: format!("{} {}", rng.random_range(1..9999), choose(rng, STREETS)),
                postal: postal_for(rng, place),
                company,
                records: n_records,
            }
        };
        person.id = format!("p{index:07}");
        records += person.records as usize;
        people.push(person);
    }
    people
}

fn postal_for(rng: &mut impl Rng, place: usize) -> String {
    let (_, _, country, _, prefix) = PLACES[place];
    match country {
        "US" => format!("{prefix}{:02}", rng.random_range(0..100)),
        "DE" | "AU" => format!("{prefix}{}", rng.random_range(0..10)),
        _ => format!(
            "{prefix} {}{}",
            rng.random_range(1..10),
            choose(rng, &["AB", "DE", "HJ", "QX"])
        ),
    }
}

/// One CRM record of a person; `copy` 0 is the cleanest, later copies are varied.
fn record_of(rng: &mut ChaCha8Rng, p: &Person, copy: u32, spec: &SeedSpec) -> SeedContact {
    let (city, state, country, tz, _) = PLACES[p.place];
    let added = date_between(
        rng,
        spec.now - Duration::days(730),
        spec.now - Duration::hours(1),
    );
    let updated = date_between(rng, added, spec.now - Duration::minutes(1));
    let mut first = Some(p.first.clone());
    let mut last = Some(p.last.clone());
    let mut email = p.email.clone();
    let mut phone = p.phone.clone();
    let mut company = p.company.map(str::to_string);
    let mut city_v = Some(city.to_string());
    let mut postal = Some(p.postal.clone());
    if copy > 0 {
        if rng.random_bool(0.25)
            && let Some(nick) = nickname_of(rng, &p.first)
        {
            first = Some(nick);
        } else if rng.random_bool(0.15) {
            first = first.map(|f| typo(rng, &f));
        } else if rng.random_bool(0.05) {
            first = first.map(|f| format!("{}.", f.chars().next().unwrap_or('X')));
        }
        if rng.random_bool(0.12) {
            last = last.map(|l| typo(rng, &l));
        }
        if rng.random_bool(0.04) {
            std::mem::swap(&mut first, &mut last);
        }
        if rng.random_bool(0.15) {
            first = first.map(|f| deunicode(&f));
            last = last.map(|l| deunicode(&l));
        }
        if rng.random_bool(0.1) {
            first = first.map(|f| f.to_uppercase());
            last = last.map(|l| l.to_lowercase());
        }
        email = match rng.random_range(0..10) {
            0 => None,
            1 => Some(email_for(rng, &p.first, &p.last, p.company)),
            2..=5 => email.map(|e| email_variant(rng, &e)),
            _ => email,
        };
        phone = match rng.random_range(0..10) {
            0 => None,
            1..=6 => phone.map(|ph| phone_variant(rng, &ph)),
            _ => phone,
        };
        if rng.random_bool(0.2) {
            company = None;
        }
        if rng.random_bool(0.1) {
            let moved = rng.random_range(0..PLACES.len());
            city_v = Some(PLACES[moved].0.to_string());
            postal = Some(postal_for(rng, moved));
        } else if rng.random_bool(0.15) {
            city_v = None;
            postal = None;
        }
    }
    let tags: Vec<String> = (0..rng.random_range(0..3))
        .map(|_| choose(rng, TAGS).to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    SeedContact {
        id: ghl_id(rng),
        first_name: first,
        last_name: last,
        email,
        phone,
        company_name: company,
        address1: Some(p.street.clone()),
        city: city_v,
        state: Some(state.to_string()),
        postal_code: postal,
        country: Some(country.to_string()),
        timezone: Some(tz.to_string()),
        website: None,
        source: Some(choose(rng, SOURCES).to_string()),
        contact_type: Some(
            if rng.random_bool(0.3) {
                "customer"
            } else {
                "lead"
            }
            .to_string(),
        ),
        tags,
        business_id: None,
        date_of_birth: None,
        custom_fields: Vec::new(),
        dnd: false,
        dnd_sms: None,
        date_added: added,
        date_updated: updated,
    }
}

/// Generates the seed data for a spec.
pub fn generate(spec: &SeedSpec) -> SeedData {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let people = make_people(&mut rng, spec.contacts);
    let mut data = SeedData::default();
    data.contacts.reserve(spec.contacts);
    data.truth.reserve(spec.contacts);
    let businesses: Vec<String> = (0..8).map(|_| ghl_id(&mut rng)).collect();
    for p in &people {
        for copy in 0..p.records {
            let mut c = record_of(&mut rng, p, copy, spec);
            if p.company.is_some() && rng.random_bool(0.05) {
                c.business_id = Some(choose(&mut rng, &businesses).clone());
            }
            if rng.random_bool(0.05) {
                c.custom_fields.push((
                    "sbxFieldBirthday0001".into(),
                    serde_json::json!(format!(
                        "19{}-0{}-1{}",
                        rng.random_range(50..99),
                        rng.random_range(1..9),
                        rng.random_range(0..9)
                    )),
                ));
            }
            data.truth.push(TruthRow {
                id: c.id.clone(),
                person: p.id.clone(),
            });
            data.contacts.push(c);
        }
    }
    add_history(&mut rng, &mut data, spec);
    add_messages(&mut rng, &mut data, &people, spec);
    data
}

fn add_history(rng: &mut ChaCha8Rng, data: &mut SeedData, spec: &SeedSpec) {
    for c in &data.contacts {
        if rng.random_bool(0.3) {
            for _ in 0..rng.random_range(1..=3) {
                data.tasks.push(SeedTask {
                    id: ghl_id(rng),
                    contact_id: c.id.clone(),
                    title: choose(
                        rng,
                        &["Call back", "Send quote", "Follow up", "Book consult"],
                    )
                    .to_string(),
                    body: Some("Created by the sandbox seed".into()),
                    due_date: date_between(rng, c.date_added, spec.now + Duration::days(30)),
                    completed: rng.random_bool(0.5),
                    assigned_to: None,
                });
            }
        }
        if rng.random_bool(0.3) {
            for _ in 0..rng.random_range(1..=3) {
                data.notes.push(SeedNote {
                    id: ghl_id(rng),
                    contact_id: c.id.clone(),
                    body: choose(
                        rng,
                        &[
                            "Prefers texts",
                            "Asked about pricing",
                            "VIP — be nice",
                            "Moved house",
                        ],
                    )
                    .to_string(),
                    user_id: None,
                    date_added: date_between(rng, c.date_added, spec.now),
                });
            }
        }
        if rng.random_bool(0.1) {
            let start = date_between(rng, c.date_added, spec.now + Duration::days(30));
            data.appointments.push(SeedAppointment {
                id: ghl_id(rng),
                contact_id: c.id.clone(),
                calendar_id: "sbxCalendar000000001".into(),
                title: "Consultation".into(),
                appointment_status: choose(
                    rng,
                    &["confirmed", "cancelled", "showed", "noshow", "new"],
                )
                .to_string(),
                start_time: start,
                end_time: start + Duration::minutes(30),
                date_added: c.date_added,
            });
        }
    }
}

fn add_messages(rng: &mut ChaCha8Rng, data: &mut SeedData, people: &[Person], spec: &SeedSpec) {
    let reachable: Vec<&Person> = people.iter().filter(|p| p.phone.is_some()).collect();
    if reachable.is_empty() || spec.messages == 0 {
        return;
    }
    let start = spec.now - Duration::days(365);
    let step = Duration::seconds((365 * 86_400 / spec.messages.max(1) as i64).max(1));
    let mut when = start;
    let mut id: u64 = 1_415_000_000_000_000_000;
    let mut last_sent: HashMap<String, u64> = HashMap::new();
    let mut recent: Vec<String> = Vec::new();
    let mut stopped: HashMap<String, bool> = HashMap::new();
    for _ in 0..spec.messages {
        when += step;
        id += rng.random_range(1..5_000);
        let roll = rng.random_range(0..100);
        if roll < 18 && !recent.is_empty() {
            let to_digits = recent[rng.random_range(0..recent.len())].clone();
            let stop = rng.random_bool(0.12);
            let body = if stop {
                "STOP".to_string()
            } else {
                choose(rng, REPLIES).to_string()
            };
            if stop {
                stopped.insert(to_digits.clone(), true);
            }
            data.messages.push(SeedMessage {
                id,
                message_type: SeedMessageType::Received,
                from: to_digits.clone(),
                to: "ACME".into(),
                body,
                status_type: "DELIVERED".into(),
                status_subtype: None,
                submission_date: when,
                user_supplied_id: None,
                related_sent_message_id: last_sent.get(&to_digits).copied(),
            });
        } else if roll < 19 {
            // A stranger texts in: a lead candidate that matches no contact.
            data.messages.push(SeedMessage {
                id,
                message_type: SeedMessageType::Received,
                from: phone_for(rng, "US").trim_start_matches('+').to_string(),
                to: "ACME".into(),
                body: "Hi, do you have availability this week?".into(),
                status_type: "DELIVERED".into(),
                status_subtype: None,
                submission_date: when,
                user_supplied_id: None,
                related_sent_message_id: None,
            });
        } else {
            let p = reachable[rng.random_range(0..reachable.len())];
            let digits = p
                .phone
                .as_deref()
                .expect("reachable")
                .trim_start_matches('+')
                .to_string();
            let body = choose(rng, TEMPLATES)
                .replace("{name}", &p.first)
                .replace("{company}", p.company.unwrap_or("our clinic"));
            let blocked = stopped.contains_key(&digits);
            let (status, subtype) = if blocked {
                ("FAILED", Some("BLOCKED"))
            } else {
                match rng.random_range(0..100) {
                    0..=1 => ("FAILED", Some("HANDSET_ERROR")),
                    2 => ("FAILED", Some("EXPIRED")),
                    3 => ("UNKNOWN", None),
                    _ => ("DELIVERED", None),
                }
            };
            data.messages.push(SeedMessage {
                id,
                message_type: SeedMessageType::Sent,
                from: "ACME".into(),
                to: digits.clone(),
                body,
                status_type: status.into(),
                status_subtype: subtype.map(str::to_string),
                submission_date: when,
                user_supplied_id: rng
                    .random_bool(0.2)
                    .then(|| format!("camp{}", rng.random_range(1..40))),
                related_sent_message_id: None,
            });
            last_sent.insert(digits.clone(), id);
            if recent.len() < 512 {
                recent.push(digits);
            } else {
                let slot = rng.random_range(0..recent.len());
                recent[slot] = digits;
            }
        }
    }
    let mut blocked: Vec<String> = stopped.into_keys().collect();
    blocked.sort();
    // GHL knows about some opt-outs (DND set) but not all: the audit's compliance finding.
    let phone_to_contacts: HashMap<String, Vec<usize>> = {
        let mut map: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, c) in data.contacts.iter().enumerate() {
            if let Some(ph) = &c.phone {
                let digits: String = ph.chars().filter(char::is_ascii_digit).collect();
                map.entry(digits).or_default().push(i);
            }
        }
        map
    };
    for number in &blocked {
        if rng.random_bool(0.6)
            && let Some(indexes) = phone_to_contacts.get(number)
        {
            for &i in indexes {
                data.contacts[i].dnd_sms = Some("active".into());
            }
        }
    }
    data.blocked_numbers = blocked;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    fn spec(seed: u64, contacts: usize, messages: usize) -> SeedSpec {
        SeedSpec {
            seed,
            contacts,
            messages,
            now: DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")
                .expect("date")
                .with_timezone(&Utc),
        }
    }

    #[test]
    fn same_seed_same_data_and_exact_sizes() {
        let a = generate(&spec(3, 2_000, 3_000));
        let b = generate(&spec(3, 2_000, 3_000));
        let c = generate(&spec(4, 2_000, 3_000));
        assert_eq!(a.contacts.len(), 2_000);
        assert_eq!(a.messages.len(), 3_000);
        assert_eq!(a.truth, b.truth);
        assert_eq!(a.contacts[17].email, b.contacts[17].email);
        assert_ne!(a.truth, c.truth);
    }

    #[test]
    fn duplicates_and_look_alikes_are_planted() {
        let data = generate(&spec(9, 20_000, 100));
        let ids: HashSet<&str> = data.contacts.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids.len(), 20_000, "contact ids are unique");
        assert_eq!(data.truth.len(), 20_000);
        let mut per_person: HashMap<&str, usize> = HashMap::new();
        for t in &data.truth {
            *per_person.entry(t.person.as_str()).or_default() += 1;
        }
        let dup_people = per_person.values().filter(|n| **n > 1).count();
        let share = dup_people as f64 / per_person.len() as f64;
        assert!(
            (0.12..0.30).contains(&share),
            "share of people entered twice or more: {share}"
        );
        // Households: one phone, several people.
        let person_of: HashMap<&str, &str> = data
            .truth
            .iter()
            .map(|t| (t.id.as_str(), t.person.as_str()))
            .collect();
        let mut people_by_phone: HashMap<String, HashSet<&str>> = HashMap::new();
        let mut people_by_name: HashMap<(String, String), HashSet<&str>> = HashMap::new();
        for c in &data.contacts {
            let person = person_of[c.id.as_str()];
            if let Some(p) = &c.phone {
                let digits: String = p.chars().filter(char::is_ascii_digit).collect();
                let key = digits[digits.len().saturating_sub(10)..].to_string();
                people_by_phone.entry(key).or_default().insert(person);
            }
            if let (Some(f), Some(l)) = (&c.first_name, &c.last_name) {
                people_by_name
                    .entry((f.clone(), l.clone()))
                    .or_default()
                    .insert(person);
            }
        }
        assert!(
            people_by_phone.values().any(|s| s.len() > 1),
            "households share a phone"
        );
        assert!(
            people_by_name.values().any(|s| s.len() > 1),
            "namesakes exist"
        );
    }

    #[test]
    fn message_ids_ascend_and_blocked_numbers_replied_stop() {
        let data = generate(&spec(5, 3_000, 6_000));
        assert!(data.messages.windows(2).all(|w| w[0].id < w[1].id));
        assert!(!data.blocked_numbers.is_empty());
        for number in &data.blocked_numbers {
            assert!(
                data.messages
                    .iter()
                    .any(|m| m.message_type == SeedMessageType::Received
                        && &m.from == number
                        && m.body == "STOP")
            );
        }
    }
}
