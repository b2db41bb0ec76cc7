//! Places: countries, cities (with state, postal code stem, timezone and phone area codes), street
//! addresses and phone numbers with the many ways people write them.

use super::sampling::{Cumulative, pick_weighted, sections};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use std::sync::OnceLock;

/// Countries of the seeded contacts (a US business with some foreign customers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Country {
    Us,
    Ca,
    Gb,
    Au,
    De,
}

/// Share of persons per country.
const COUNTRY_WEIGHTS: &[(Country, u32)] = &[
    (Country::Us, 80),
    (Country::Ca, 6),
    (Country::Gb, 7),
    (Country::Au, 4),
    (Country::De, 3),
];

impl Country {
    /// ISO 3166 alpha-2 code.
    pub(crate) fn iso2(self) -> &'static str {
        match self {
            Country::Us => "US",
            Country::Ca => "CA",
            Country::Gb => "GB",
            Country::Au => "AU",
            Country::De => "DE",
        }
    }

    /// International calling code.
    fn calling_code(self) -> &'static str {
        match self {
            Country::Us | Country::Ca => "1",
            Country::Gb => "44",
            Country::Au => "61",
            Country::De => "49",
        }
    }

    fn from_iso2(code: &str) -> Country {
        match code {
            "US" => Country::Us,
            "CA" => Country::Ca,
            "GB" => Country::Gb,
            "AU" => Country::Au,
            "DE" => Country::De,
            other => panic!("cities.txt names unknown country {other}"),
        }
    }
}

/// A city row of `data/cities.txt`.
#[derive(Debug)]
pub(crate) struct City {
    pub(crate) country: Country,
    pub(crate) name: &'static str,
    pub(crate) state: Option<&'static str>,
    postal_stem: &'static str,
    pub(crate) timezone: &'static str,
    area_codes: Vec<&'static str>,
}

/// Cities and streets, parsed once.
#[derive(Debug)]
pub(crate) struct PlaceTables {
    pub(crate) cities: Vec<City>,
    /// Per country (in `COUNTRY_WEIGHTS` order): city indices and their sampler.
    by_country: Vec<(Country, Vec<usize>, Cumulative)>,
    english_streets: Vec<&'static str>,
    german_streets: Vec<&'static str>,
}

impl PlaceTables {
    /// The process-wide tables.
    pub(crate) fn get() -> &'static PlaceTables {
        static TABLES: OnceLock<PlaceTables> = OnceLock::new();
        TABLES.get_or_init(PlaceTables::parse)
    }

    fn parse() -> PlaceTables {
        let cities: Vec<City> = include_str!("data/cities.txt")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|line| {
                let cols: Vec<&'static str> = line.split('|').collect();
                assert_eq!(cols.len(), 6, "cities.txt line {line:?} needs 6 columns");
                City {
                    country: Country::from_iso2(cols[0]),
                    name: cols[1],
                    state: (!cols[2].is_empty()).then_some(cols[2]),
                    postal_stem: cols[3],
                    timezone: cols[4],
                    area_codes: cols[5].split(',').collect(),
                }
            })
            .collect();
        let by_country = COUNTRY_WEIGHTS
            .iter()
            .map(|&(country, _)| {
                let idx: Vec<usize> = (0..cities.len())
                    .filter(|&i| cities[i].country == country)
                    .collect();
                assert!(
                    !idx.is_empty(),
                    "cities.txt has no city in {}",
                    country.iso2()
                );
                let pick = Cumulative::zipf(idx.len());
                (country, idx, pick)
            })
            .collect();
        let streets = sections(include_str!("data/streets.txt"));
        let street_list = |key: &str| {
            streets
                .iter()
                .find(|(k, _)| *k == key)
                .unwrap_or_else(|| panic!("streets.txt lacks [{key}]"))
                .1
                .clone()
        };
        PlaceTables {
            english_streets: street_list("english"),
            german_streets: street_list("german"),
            cities,
            by_country,
        }
    }

    /// A random country.
    pub(crate) fn pick_country(&self, rng: &mut ChaCha8Rng) -> Country {
        pick_weighted(rng, COUNTRY_WEIGHTS)
    }

    /// A random city of a country (big cities more often).
    pub(crate) fn pick_city(&self, country: Country, rng: &mut ChaCha8Rng) -> usize {
        let (_, idx, pick) = self
            .by_country
            .iter()
            .find(|(c, _, _)| *c == country)
            .expect("every country has cities");
        idx[pick.pick(rng)]
    }

    /// A random street address in a city.
    pub(crate) fn pick_address(&self, city: usize, rng: &mut ChaCha8Rng) -> Address {
        let german = self.cities[city].country == Country::De;
        let streets = if german {
            &self.german_streets
        } else {
            &self.english_streets
        };
        Address {
            city,
            number: rng.random_range(1..(if german { 120 } else { 9_900 })),
            street: streets[rng.random_range(0..streets.len())],
            suffix: rng.random_range(0..STREET_SUFFIXES.len()) as u8,
            unit: rng
                .random_bool(0.12)
                .then(|| rng.random_range(1..60) as u16),
            postal_tail: rng.random_range(0..1_000) as u16,
            postal_letters: [rng.random_range(0..20u8), rng.random_range(0..20u8)],
        }
    }
}

/// Street suffixes as (long, short) forms; a record of the same address may use either.
const STREET_SUFFIXES: &[(&str, &str)] = &[
    ("Street", "St"),
    ("Avenue", "Ave"),
    ("Road", "Rd"),
    ("Boulevard", "Blvd"),
    ("Drive", "Dr"),
    ("Lane", "Ln"),
    ("Court", "Ct"),
    ("Place", "Pl"),
    ("Way", "Way"),
];

/// Letters used in UK inward codes and Canadian postal codes (no easily confused ones).
const POSTAL_LETTERS: &[u8; 20] = b"ABDEFGHJLNPQRSTUWXYZ";

/// A street address, kept as parts so each record can write it its own way.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Address {
    pub(crate) city: usize,
    number: u16,
    street: &'static str,
    suffix: u8,
    unit: Option<u16>,
    postal_tail: u16,
    postal_letters: [u8; 2],
}

impl Address {
    /// The street line; `short_suffix` writes "St" instead of "Street".
    pub(crate) fn line(&self, tables: &PlaceTables, short_suffix: bool) -> String {
        if tables.cities[self.city].country == Country::De {
            return format!("{} {}", self.street, self.number);
        }
        let (long, short) = STREET_SUFFIXES[self.suffix as usize];
        let suffix = if short_suffix { short } else { long };
        match self.unit {
            Some(unit) => format!("{} {} {suffix} Apt {unit}", self.number, self.street),
            None => format!("{} {} {suffix}", self.number, self.street),
        }
    }

    /// The postal code; `zip4` adds a ZIP+4 extension to US codes.
    pub(crate) fn postal_code(&self, tables: &PlaceTables, zip4: bool) -> String {
        let city = &tables.cities[self.city];
        let [a, b] = self
            .postal_letters
            .map(|i| POSTAL_LETTERS[i as usize] as char);
        let digit = self.postal_tail % 10;
        match city.country {
            Country::Us if zip4 => {
                format!(
                    "{}{:02}-{:04}",
                    city.postal_stem,
                    self.postal_tail % 100,
                    self.postal_tail * 7 % 10_000
                )
            }
            Country::Us => format!("{}{:02}", city.postal_stem, self.postal_tail % 100),
            Country::Ca => format!(
                "{} {}{}{}",
                city.postal_stem,
                digit,
                a,
                (self.postal_tail / 10) % 10
            ),
            Country::Gb => format!("{} {}{}{}", city.postal_stem, digit, a, b),
            Country::Au => format!("{}{:02}", city.postal_stem, self.postal_tail % 100),
            Country::De => format!("{}{:03}", city.postal_stem, self.postal_tail),
        }
    }
}

/// A phone number: country and national significant number (digits, no trunk prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Phone {
    pub(crate) country: Country,
    national: String,
    /// Length of the leading group (area code or mobile prefix) when written in groups.
    lead: u8,
}

/// How a phone number is written on a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PhoneStyle {
    /// `+14155550134`
    E164,
    /// `+1 415 555 0134`, `+44 7700 900123`
    SpacedInternational,
    /// `(415) 555-0134`, `07700 900123`
    National,
    /// `415.555.0134`, `07700-900123`
    Dotted,
    /// `4155550134`, `07700900123`
    Digits,
    /// `001 415 555 0134`, `0044 7700 900123`
    InternationalPrefix,
    /// `1-415-555-0134`, `+44 (0)7700 900123`
    Legacy,
}

const PHONE_STYLES: &[(PhoneStyle, u32)] = &[
    (PhoneStyle::E164, 20),
    (PhoneStyle::SpacedInternational, 12),
    (PhoneStyle::National, 30),
    (PhoneStyle::Dotted, 10),
    (PhoneStyle::Digits, 18),
    (PhoneStyle::InternationalPrefix, 4),
    (PhoneStyle::Legacy, 6),
];

impl PhoneStyle {
    /// A random way of writing a number.
    pub(crate) fn pick(rng: &mut ChaCha8Rng) -> PhoneStyle {
        pick_weighted(rng, PHONE_STYLES)
    }
}

impl Phone {
    /// A random mobile number (`home` gives a landline in the city's area instead).
    pub(crate) fn random(
        tables: &PlaceTables,
        city: usize,
        home: bool,
        rng: &mut ChaCha8Rng,
    ) -> Phone {
        let city = &tables.cities[city];
        let area = city.area_codes[rng.random_range(0..city.area_codes.len())];
        let (national, lead) = match city.country {
            Country::Us | Country::Ca => {
                // Subscriber numbers: exchange 200-999 (never N11), line 0000-9999.
                let mut exchange = rng.random_range(200..1_000u16);
                if exchange % 100 == 11 {
                    exchange += 1;
                }
                let line = rng.random_range(0..10_000u16);
                (format!("{area}{exchange}{line:04}"), 3)
            }
            Country::Gb if !home => {
                let second = rng.random_range(4..10u8);
                (
                    format!("7{second}{:08}", rng.random_range(0..100_000_000u32)),
                    4,
                )
            }
            Country::Au if !home => (format!("4{:08}", rng.random_range(0..100_000_000u32)), 3),
            Country::De if !home => {
                let prefix = ["151", "152", "160", "170", "171", "176"][rng.random_range(0..6)];
                (
                    format!("{prefix}{:08}", rng.random_range(0..100_000_000u32)),
                    3,
                )
            }
            Country::Gb | Country::Au | Country::De => {
                // Landline: area code, then enough digits for a 10-digit national number (9 for AU).
                let total = if city.country == Country::Au { 9 } else { 10 };
                let rest = total - area.len();
                let subscriber = rng.random_range(0..10u64.pow(rest as u32));
                (format!("{area}{subscriber:0rest$}"), area.len() as u8)
            }
        };
        Phone {
            country: city.country,
            national,
            lead,
        }
    }

    /// E.164 digits without `+` (what BulkSMS echoes).
    pub(crate) fn e164_digits(&self) -> String {
        let mut out = String::with_capacity(14);
        out.push_str(self.country.calling_code());
        out.push_str(&self.national);
        out
    }

    /// The number as an integer, for uniqueness checks.
    pub(crate) fn key(&self) -> u64 {
        self.e164_digits()
            .parse()
            .expect("phone numbers are digits")
    }

    /// The number written in a style.
    pub(crate) fn format(&self, style: PhoneStyle) -> String {
        let cc = self.country.calling_code();
        let n = self.national.as_str();
        let (lead, rest) = n.split_at(self.lead as usize);
        if cc == "1" {
            let (exchange, line) = rest.split_at(3);
            return match style {
                PhoneStyle::E164 => format!("+1{n}"),
                PhoneStyle::SpacedInternational => format!("+1 {lead} {exchange} {line}"),
                PhoneStyle::National => format!("({lead}) {exchange}-{line}"),
                PhoneStyle::Dotted => format!("{lead}.{exchange}.{line}"),
                PhoneStyle::Digits => n.to_string(),
                PhoneStyle::InternationalPrefix => format!("001 {lead} {exchange} {line}"),
                PhoneStyle::Legacy => format!("1-{lead}-{exchange}-{line}"),
            };
        }
        match style {
            PhoneStyle::E164 => format!("+{cc}{n}"),
            PhoneStyle::SpacedInternational => format!("+{cc} {lead} {rest}"),
            PhoneStyle::National => format!("0{lead} {rest}"),
            PhoneStyle::Dotted => format!("0{lead}-{rest}"),
            PhoneStyle::Digits => format!("0{n}"),
            PhoneStyle::InternationalPrefix => format!("00{cc} {lead} {rest}"),
            PhoneStyle::Legacy => format!("+{cc} (0){lead} {rest}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn digits(s: &str) -> String {
        s.chars().filter(char::is_ascii_digit).collect()
    }

    #[test]
    fn us_formats_all_carry_the_same_number() {
        let phone = Phone {
            country: Country::Us,
            national: "4155550134".into(),
            lead: 3,
        };
        assert_eq!(phone.format(PhoneStyle::National), "(415) 555-0134");
        assert_eq!(phone.format(PhoneStyle::Dotted), "415.555.0134");
        assert_eq!(
            phone.format(PhoneStyle::SpacedInternational),
            "+1 415 555 0134"
        );
        assert_eq!(
            phone.format(PhoneStyle::InternationalPrefix),
            "001 415 555 0134"
        );
        for (style, _) in PHONE_STYLES {
            assert!(
                digits(&phone.format(*style)).ends_with("4155550134"),
                "{style:?}"
            );
        }
        assert_eq!(phone.e164_digits(), "14155550134");
    }

    #[test]
    fn foreign_numbers_have_a_trunk_zero_nationally() {
        let phone = Phone {
            country: Country::Gb,
            national: "7700900123".into(),
            lead: 4,
        };
        assert_eq!(phone.format(PhoneStyle::National), "07700 900123");
        assert_eq!(
            phone.format(PhoneStyle::SpacedInternational),
            "+44 7700 900123"
        );
        assert_eq!(phone.format(PhoneStyle::Legacy), "+44 (0)7700 900123");
        assert_eq!(phone.e164_digits(), "447700900123");
    }

    #[test]
    fn generated_numbers_have_plausible_lengths() {
        let tables = PlaceTables::get();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for city in 0..tables.cities.len() {
            for home in [false, true] {
                let phone = Phone::random(tables, city, home, &mut rng);
                let len = phone.e164_digits().len();
                assert!(
                    (11..=13).contains(&len),
                    "{} has {len} digits",
                    phone.e164_digits()
                );
            }
        }
    }

    #[test]
    fn addresses_follow_country_conventions() {
        let tables = PlaceTables::get();
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let us = tables.pick_city(Country::Us, &mut rng);
        let address = tables.pick_address(us, &mut rng);
        assert_eq!(address.postal_code(tables, false).len(), 5);
        assert_eq!(address.postal_code(tables, true).len(), 10);
        let de = tables.pick_city(Country::De, &mut rng);
        let address = tables.pick_address(de, &mut rng);
        assert!(
            address.line(tables, false).contains("stra")
                || address.line(tables, false).contains(' ')
        );
        assert_eq!(address.postal_code(tables, false).len(), 5);
    }
}
