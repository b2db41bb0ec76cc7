//! Persons (the real people behind contact records) and the look-alike groups of distinct persons
//! that a good dedupe must keep apart: households, namesakes, shared office inboxes, twins and
//! Jr./Sr. pairs.

use super::LookalikeKind;
use super::companies::Company;
use super::names::{Gender, NameTables, email_token};
use super::places::{Address, Country, Phone, PlaceTables};
use super::sampling::pick_weighted;
use chrono::{Datelike, NaiveDate};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use std::collections::HashSet;

/// One real person; each of their contact records is a (possibly varied) copy of this.
#[derive(Debug, Clone)]
pub(crate) struct Person {
    pub(crate) id: String,
    pub(crate) first: &'static str,
    pub(crate) gender: Gender,
    pub(crate) last: &'static str,
    /// "Jr." or "Sr.", written after the last name.
    pub(crate) suffix: Option<&'static str>,
    pub(crate) email: Option<String>,
    pub(crate) phone: Option<Phone>,
    pub(crate) company: Option<usize>,
    pub(crate) address: Address,
    pub(crate) date_of_birth: Option<NaiveDate>,
    origin: usize,
}

impl Person {
    /// The country the person lives in.
    pub(crate) fn country(&self) -> Country {
        PlaceTables::get().cities[self.address.city].country
    }
}

/// Which kind of group a draw produces; weights are per draw, and groups hold 2-4 persons.
const GROUP_WEIGHTS: &[(Option<LookalikeKind>, u32)] = &[
    (None, 905),
    (Some(LookalikeKind::Household), 40),
    (Some(LookalikeKind::Namesakes), 20),
    (Some(LookalikeKind::SharedInbox), 15),
    (Some(LookalikeKind::Twins), 10),
    (Some(LookalikeKind::JuniorSenior), 10),
];

const SHARED_INBOXES: &[&str] = &["info", "office", "contact", "admin", "hello", "frontdesk"];

/// The mailbox an address delivers to, as the mail provider reads it: case and `+tag` ignored,
/// and at Gmail the dots of the local part too.
fn mailbox(email: &str) -> String {
    let email = email.to_lowercase();
    let (local, domain) = email.rsplit_once('@').unwrap_or((&email, ""));
    let local = local.split('+').next().unwrap_or(local);
    if domain == "gmail.com" || domain == "googlemail.com" {
        format!("{}@gmail.com", local.replace('.', ""))
    } else {
        format!("{local}@{domain}")
    }
}

/// Creates persons one group at a time, keeping personal emails and phone numbers unique.
pub(crate) struct PersonFactory {
    names: &'static NameTables,
    places: &'static PlaceTables,
    pub(crate) companies: Vec<Company>,
    /// Mailboxes taken ([`mailbox`]), not addresses: Gmail reads `jo.smith` and `josmith` as
    /// one inbox, so two people given those would share one, and the truth would call a single
    /// mailbox two people's.
    used_emails: HashSet<String>,
    used_phones: HashSet<u64>,
    next_person: usize,
    this_year: i32,
}

impl PersonFactory {
    /// A factory drawing on a company pool; `this_year` anchors birth dates.
    pub(crate) fn new(companies: Vec<Company>, expected_persons: usize, this_year: i32) -> Self {
        PersonFactory {
            names: NameTables::get(),
            places: PlaceTables::get(),
            companies,
            used_emails: HashSet::with_capacity(expected_persons * 5 / 4),
            used_phones: HashSet::with_capacity(expected_persons * 5 / 4),
            next_person: 0,
            this_year,
        }
    }

    /// Whether a number belongs to some person.
    pub(crate) fn is_known_phone(&self, phone: &Phone) -> bool {
        self.used_phones.contains(&phone.key())
    }

    /// The next group: one person, or several distinct persons that look alike.
    pub(crate) fn next_group(
        &mut self,
        rng: &mut ChaCha8Rng,
    ) -> (Option<LookalikeKind>, Vec<Person>) {
        let kind = pick_weighted(rng, GROUP_WEIGHTS);
        let persons = match kind {
            None => Some(vec![self.single(rng)]),
            Some(LookalikeKind::Household) => Some(self.household(rng)),
            Some(LookalikeKind::Namesakes) => Some(self.namesakes(rng)),
            Some(LookalikeKind::SharedInbox) => self.shared_inbox(rng),
            Some(LookalikeKind::Twins) => Some(self.twins(rng)),
            Some(LookalikeKind::JuniorSenior) => Some(self.junior_senior(rng)),
        };
        match persons {
            Some(persons) => (kind, persons),
            None => (None, vec![self.single(rng)]),
        }
    }

    /// A new personal email for a person (for records that give another address entirely).
    pub(crate) fn fresh_email(&mut self, person: &Person, rng: &mut ChaCha8Rng) -> String {
        // A second address is more often at another provider than at work.
        let domain = personal_domain(person.country(), rng).to_string();
        let local = email_local(person.first, person.last, person.date_of_birth, rng);
        self.claim_email(local, &domain, rng)
    }

    /// A new unused mobile number in a city.
    pub(crate) fn fresh_phone(&mut self, city: usize, home: bool, rng: &mut ChaCha8Rng) -> Phone {
        loop {
            let phone = Phone::random(self.places, city, home, rng);
            if self.used_phones.insert(phone.key()) {
                return phone;
            }
        }
    }

    fn new_id(&mut self) -> String {
        self.next_person += 1;
        format!("p{:06}", self.next_person)
    }

    fn single(&mut self, rng: &mut ChaCha8Rng) -> Person {
        let origin = self.names.pick_origin(rng);
        let (first, gender) = self.names.pick_first(origin, rng);
        let last = self.names.pick_last(origin, rng);
        let country = self.places.pick_country(rng);
        let city = self.places.pick_city(country, rng);
        self.person(origin, first, gender, last, city, rng)
    }

    /// A person with the given name living in a city; phone, company, email and birth date drawn.
    fn person(
        &mut self,
        origin: usize,
        first: &'static str,
        gender: Gender,
        last: &'static str,
        city: usize,
        rng: &mut ChaCha8Rng,
    ) -> Person {
        let address = self.places.pick_address(city, rng);
        let phone = rng
            .random_bool(0.93)
            .then(|| self.fresh_phone(city, false, rng));
        let company = (rng.random_bool(0.55) && !self.companies.is_empty())
            .then(|| rng.random_range(0..self.companies.len()));
        let date_of_birth = rng.random_bool(0.35).then(|| self.birth_date(18, 80, rng));
        let mut person = Person {
            id: self.new_id(),
            first,
            gender,
            last,
            suffix: None,
            email: None,
            phone,
            company,
            address,
            date_of_birth,
            origin,
        };
        if rng.random_bool(0.93) {
            person.email = Some(self.first_email(&person, rng));
        }
        person
    }

    fn birth_date(&self, min_age: i32, max_age: i32, rng: &mut ChaCha8Rng) -> NaiveDate {
        let year = self.this_year - rng.random_range(min_age..=max_age);
        NaiveDate::from_yo_opt(year, rng.random_range(1..=365))
            .expect("day 1-365 exists every year")
    }

    /// The person's main email: at work for some, at a mail provider for most.
    fn first_email(&mut self, person: &Person, rng: &mut ChaCha8Rng) -> String {
        let domain = match person.company {
            Some(c) if rng.random_bool(0.35) => self.companies[c].domain.clone(),
            _ => personal_domain(person.country(), rng).to_string(),
        };
        let local = email_local(person.first, person.last, person.date_of_birth, rng);
        self.claim_email(local, &domain, rng)
    }

    /// `local@domain`, with digits added until no other person has it.
    fn claim_email(&mut self, local: String, domain: &str, rng: &mut ChaCha8Rng) -> String {
        let mut email = format!("{local}@{domain}");
        let mut attempts = 0;
        while self.used_emails.contains(&mailbox(&email)) {
            // Very common names can exhaust short suffixes in multi-million runs; widen then.
            let upper = if attempts < 20 { 1_000 } else { 1_000_000 };
            email = format!("{local}{}@{domain}", rng.random_range(1..upper));
            attempts += 1;
        }
        self.used_emails.insert(mailbox(&email));
        email
    }

    /// 2-4 persons sharing last name, address and home phone.
    fn household(&mut self, rng: &mut ChaCha8Rng) -> Vec<Person> {
        let head = self.single(rng);
        let home = self.fresh_phone(head.address.city, true, rng);
        let size = rng.random_range(2..=4);
        let mut members = vec![head];
        while members.len() < size {
            let (first, gender) = self.names.pick_first(members[0].origin, rng);
            if members.iter().any(|m| m.first == first) {
                continue;
            }
            let (origin, last, city) =
                (members[0].origin, members[0].last, members[0].address.city);
            let mut member = self.person(origin, first, gender, last, city, rng);
            member.address = members[0].address;
            members.push(member);
        }
        for member in &mut members {
            member.phone = Some(home.clone());
        }
        members
    }

    /// 2-3 persons with the same first and last name and nothing else in common (a third of the
    /// groups even live in the same city).
    fn namesakes(&mut self, rng: &mut ChaCha8Rng) -> Vec<Person> {
        let first = self.single(rng);
        let same_city = rng.random_bool(0.3);
        let size = rng.random_range(2..=3);
        let mut group = vec![first];
        while group.len() < size {
            let city = if same_city {
                group[0].address.city
            } else {
                let country = self.places.pick_country(rng);
                self.places.pick_city(country, rng)
            };
            let g = &group[0];
            let (origin, first, gender, last) = (g.origin, g.first, g.gender, g.last);
            group.push(self.person(origin, first, gender, last, city, rng));
        }
        group
    }

    /// 2-4 colleagues whose records all give the company's shared inbox (info@, office@ ...).
    /// None when no company or inbox is left.
    fn shared_inbox(&mut self, rng: &mut ChaCha8Rng) -> Option<Vec<Person>> {
        if self.companies.is_empty() {
            return None;
        }
        let company = rng.random_range(0..self.companies.len());
        let domain = self.companies[company].domain.clone();
        let inbox = SHARED_INBOXES
            .iter()
            .map(|role| format!("{role}@{domain}"))
            .find(|email| !self.used_emails.contains(&mailbox(email)))?;
        self.used_emails.insert(mailbox(&inbox));
        let size = rng.random_range(2..=4);
        let mut group: Vec<Person> = Vec::with_capacity(size);
        while group.len() < size {
            let mut colleague = self.single(rng);
            if let Some(first) = group.first() {
                colleague.address = self.places.pick_address(first.address.city, rng);
                if let Some(phone) = colleague.phone.as_mut() {
                    *phone = self.fresh_phone(first.address.city, false, rng);
                }
            }
            colleague.company = Some(company);
            colleague.email = Some(inbox.clone());
            group.push(colleague);
        }
        Some(group)
    }

    /// Two siblings born the same day, same last name and city, emails at the same domain.
    fn twins(&mut self, rng: &mut ChaCha8Rng) -> Vec<Person> {
        let mut first = self.single(rng);
        let born = self.birth_date(18, 60, rng);
        first.date_of_birth = Some(born);
        let (name, gender) = loop {
            let pick = self.names.pick_first(first.origin, rng);
            if pick.0 != first.first {
                break pick;
            }
        };
        let (origin, last, city) = (first.origin, first.last, first.address.city);
        let mut second = self.person(origin, name, gender, last, city, rng);
        second.date_of_birth = Some(born);
        let family_domain = rng
            .random_bool(0.5)
            .then(|| format!("{}family.com", email_token(last)));
        let shared_domain = family_domain
            .or_else(|| {
                first
                    .email
                    .as_ref()
                    .and_then(|e| e.split_once('@'))
                    .map(|(_, d)| d.to_string())
            })
            .unwrap_or_else(|| "gmail.com".to_string());
        for twin in [&mut first, &mut second] {
            let local = format!("{}.{}", email_token(twin.first), email_token(twin.last));
            twin.email = Some(self.claim_email(local, &shared_domain, rng));
        }
        vec![first, second]
    }

    /// A father and son of the same name and address, told apart by Jr./Sr., age and contacts.
    fn junior_senior(&mut self, rng: &mut ChaCha8Rng) -> Vec<Person> {
        let origin = self.names.pick_origin(rng);
        let first = self.names.pick_male_first(origin, rng);
        let last = self.names.pick_last(origin, rng);
        let country = self.places.pick_country(rng);
        let city = self.places.pick_city(country, rng);
        let mut senior = self.person(origin, first, Gender::Male, last, city, rng);
        let mut junior = self.person(origin, first, Gender::Male, last, city, rng);
        junior.address = senior.address;
        let senior_born = self.birth_date(50, 80, rng);
        senior.date_of_birth = Some(senior_born);
        let gap = rng.random_range(22..=38);
        junior.date_of_birth = senior_born
            .with_year(senior_born.year() + gap)
            .or(junior.date_of_birth);
        junior.suffix = Some("Jr.");
        if rng.random_bool(0.5) {
            senior.suffix = Some("Sr.");
        }
        if rng.random_bool(0.5) {
            let home = self.fresh_phone(city, true, rng);
            senior.phone = Some(home.clone());
            junior.phone = Some(home);
        }
        vec![senior, junior]
    }
}

/// A mail provider as people of a country use them.
fn personal_domain(country: Country, rng: &mut ChaCha8Rng) -> &'static str {
    let table: &[(&str, u32)] = match country {
        Country::Us => &[
            ("gmail.com", 45),
            ("yahoo.com", 15),
            ("hotmail.com", 8),
            ("outlook.com", 8),
            ("icloud.com", 8),
            ("aol.com", 4),
            ("comcast.net", 3),
            ("att.net", 2),
            ("msn.com", 2),
        ],
        Country::Ca => &[
            ("gmail.com", 45),
            ("hotmail.com", 15),
            ("yahoo.ca", 10),
            ("outlook.com", 10),
            ("shaw.ca", 5),
        ],
        Country::Gb => &[
            ("gmail.com", 40),
            ("hotmail.co.uk", 15),
            ("yahoo.co.uk", 10),
            ("btinternet.com", 8),
            ("outlook.com", 10),
        ],
        Country::Au => &[
            ("gmail.com", 45),
            ("bigpond.com", 15),
            ("outlook.com", 12),
            ("yahoo.com.au", 8),
        ],
        Country::De => &[
            ("gmail.com", 30),
            ("gmx.de", 25),
            ("web.de", 25),
            ("t-online.de", 12),
        ],
    };
    pick_weighted(rng, table)
}

/// The local part people build from their name: first.last, flast, firstlast87 ...
fn email_local(first: &str, last: &str, born: Option<NaiveDate>, rng: &mut ChaCha8Rng) -> String {
    let f = email_token(first);
    let l = email_token(last);
    let (f, l) = match (f.is_empty(), l.is_empty()) {
        (true, true) => ("contact".to_string(), String::new()),
        (true, false) => (l.clone(), String::new()),
        _ => (f, l),
    };
    let initial = &f[..1];
    let year = born.map_or_else(
        || rng.random_range(60..100).to_string(),
        |d| format!("{:02}", d.year() % 100),
    );
    let digits = rng.random_range(1..100);
    match rng.random_range(0..100) {
        0..30 => format!("{f}.{l}"),
        30..40 => format!("{f}{l}"),
        40..52 => format!("{initial}{l}"),
        52..57 => format!("{f}_{l}"),
        57..67 => format!("{f}{l}{year}"),
        67..73 => format!("{f}.{l}{digits}"),
        73..78 => format!("{f}{}", &l[..l.len().min(1)]),
        78..81 => format!("{l}{f}"),
        81..90 => format!("{f}{year}"),
        _ => format!("{f}{digits}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Two people never share a Gmail mailbox through dots or case: the seeded truth calls them
    /// different people, so the matcher merging them was counted as an error that is not one.
    #[test]
    fn an_address_of_a_mailbox_already_given_is_not_given_again() {
        let mut factory = PersonFactory::new(Vec::new(), 10, 2026);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let first = factory.claim_email("jo.smith".into(), "gmail.com", &mut rng);
        assert_eq!(first, "jo.smith@gmail.com");
        let second = factory.claim_email("josmith".into(), "gmail.com", &mut rng);
        assert_ne!(mailbox(&second), mailbox(&first), "{second}");
        // Elsewhere dots are part of the mailbox.
        let other = factory.claim_email("jo.smith".into(), "acme.com", &mut rng);
        let plain = factory.claim_email("josmith".into(), "acme.com", &mut rng);
        assert_eq!(
            (other.as_str(), plain.as_str()),
            ("jo.smith@acme.com", "josmith@acme.com")
        );
    }
}
