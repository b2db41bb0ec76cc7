//! Name tables: first and last names by origin (embedded lists, Zipf-like by rank), nicknames, and
//! the ASCII folding used to derive email addresses from names.

use super::sampling::{Cumulative, sections};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use std::sync::OnceLock;

/// Share of persons per origin (per mille-ish weights). The two non-Latin-script origins are rare, as
/// they are in a US CRM, but present so that normalisers meet them.
const ORIGIN_WEIGHTS: &[(&str, f64)] = &[
    ("english", 42.0),
    ("hispanic", 17.0),
    ("german", 5.0),
    ("french", 4.0),
    ("polish", 4.0),
    ("italian", 4.0),
    ("vietnamese", 4.0),
    ("chinese", 5.0),
    ("indian", 7.0),
    ("arabic", 4.0),
    ("russian", 2.0),
    ("hanzi", 0.8),
    ("cyrillic", 0.7),
];

/// Formal names and their common short forms or spelling variants; looked up in both directions.
const NICKNAMES: &[(&str, &[&str])] = &[
    ("William", &["Bill", "Will", "Billy", "Liam"]),
    ("Robert", &["Bob", "Rob", "Bobby", "Robbie"]),
    ("Elizabeth", &["Liz", "Beth", "Betty", "Eliza", "Lizzie"]),
    ("Katherine", &["Kate", "Katie", "Kathy", "Kat"]),
    ("Catherine", &["Cathy", "Kate", "Cat"]),
    ("Kathleen", &["Kathy", "Kate"]),
    ("Michael", &["Mike", "Mikey", "Mick"]),
    ("James", &["Jim", "Jimmy", "Jamie"]),
    ("Margaret", &["Peggy", "Maggie", "Meg", "Margie"]),
    ("Alexander", &["Alex", "Xander"]),
    ("Richard", &["Rick", "Dick", "Rich", "Richie"]),
    ("Joseph", &["Joe", "Joey"]),
    ("Thomas", &["Tom", "Tommy"]),
    ("Christopher", &["Chris", "Topher"]),
    ("Charles", &["Charlie", "Chuck"]),
    ("Daniel", &["Dan", "Danny"]),
    ("Matthew", &["Matt"]),
    ("Anthony", &["Tony"]),
    ("Donald", &["Don", "Donnie"]),
    ("Steven", &["Steve"]),
    ("Stephen", &["Steve"]),
    ("Andrew", &["Andy", "Drew"]),
    ("Joshua", &["Josh"]),
    ("Kenneth", &["Ken", "Kenny"]),
    ("Timothy", &["Tim"]),
    ("Ronald", &["Ron"]),
    ("Edward", &["Ed", "Eddie", "Ted"]),
    ("Jeffrey", &["Jeff"]),
    ("Nicholas", &["Nick"]),
    ("Jonathan", &["Jon"]),
    ("Benjamin", &["Ben"]),
    ("Samuel", &["Sam"]),
    ("Patrick", &["Pat"]),
    ("Gregory", &["Greg"]),
    ("Raymond", &["Ray"]),
    ("Zachary", &["Zach"]),
    ("Douglas", &["Doug"]),
    ("Theodore", &["Ted", "Teddy", "Theo"]),
    ("Patricia", &["Pat", "Patty", "Trish"]),
    ("Jennifer", &["Jen", "Jenny"]),
    ("Susan", &["Sue", "Susie"]),
    ("Jessica", &["Jess"]),
    ("Deborah", &["Debbie", "Deb"]),
    ("Rebecca", &["Becky"]),
    ("Cynthia", &["Cindy"]),
    ("Christine", &["Chris", "Chrissy"]),
    ("Samantha", &["Sam"]),
    ("Victoria", &["Vicky", "Tori"]),
    ("Abigail", &["Abby"]),
    ("Kimberly", &["Kim"]),
    ("Barbara", &["Barb"]),
    ("Sandra", &["Sandy"]),
    ("Amanda", &["Mandy"]),
    ("Dolores", &["Lola"]),
    ("José", &["Pepe"]),
    ("Francisco", &["Paco", "Pancho"]),
    ("Guillermo", &["Memo"]),
    ("Alejandro", &["Alex"]),
    ("Jesús", &["Chuy"]),
    ("Eduardo", &["Lalo"]),
    ("Ignacio", &["Nacho"]),
    ("Guadalupe", &["Lupe"]),
    ("Maximilian", &["Max"]),
    ("Aleksandra", &["Ola"]),
    ("Małgorzata", &["Gosia"]),
    ("Katarzyna", &["Kasia"]),
    ("Dmitri", &["Dima", "Dmitry"]),
    ("Ekaterina", &["Katya"]),
    ("Natalia", &["Natasha"]),
    ("Tatiana", &["Tanya"]),
    ("Mohammed", &["Mohamed", "Muhammad", "Mohammad"]),
    ("Giuseppe", &["Beppe"]),
    ("Krishna", &["Kris"]),
];

/// Grammatical gender of a first name (used for Jr./Sr. pairs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gender {
    Male,
    Female,
}

/// One origin's name lists with their samplers.
#[derive(Debug)]
pub(crate) struct Origin {
    pub(crate) first: Vec<(&'static str, Gender)>,
    first_pick: Cumulative,
    male_first: Vec<&'static str>,
    male_pick: Cumulative,
    pub(crate) last: Vec<&'static str>,
    last_pick: Cumulative,
}

/// All name tables, parsed once from the embedded files.
#[derive(Debug)]
pub(crate) struct NameTables {
    pub(crate) origins: Vec<Origin>,
    origin_pick: Cumulative,
    nicknames: HashMap<&'static str, Vec<&'static str>>,
}

impl NameTables {
    /// The process-wide tables.
    pub(crate) fn get() -> &'static NameTables {
        static TABLES: OnceLock<NameTables> = OnceLock::new();
        TABLES.get_or_init(NameTables::parse)
    }

    fn parse() -> NameTables {
        let firsts = sections(include_str!("data/first_names.txt"));
        let lasts = sections(include_str!("data/last_names.txt"));
        let origins = ORIGIN_WEIGHTS
            .iter()
            .map(|(key, _)| {
                let first: Vec<(&str, Gender)> = firsts
                    .iter()
                    .find(|(k, _)| k == key)
                    .unwrap_or_else(|| panic!("first_names.txt lacks [{key}]"))
                    .1
                    .iter()
                    .map(|line| match line.split_once(':') {
                        Some(("f", name)) => (name, Gender::Female),
                        Some(("m", name)) => (name, Gender::Male),
                        _ => panic!("first_names.txt line {line:?} is not g:name"),
                    })
                    .collect();
                let male_first: Vec<&str> = first
                    .iter()
                    .filter(|(_, g)| *g == Gender::Male)
                    .map(|(n, _)| *n)
                    .collect();
                let last = lasts
                    .iter()
                    .find(|(k, _)| k == key)
                    .unwrap_or_else(|| panic!("last_names.txt lacks [{key}]"))
                    .1
                    .clone();
                Origin {
                    first_pick: Cumulative::zipf(first.len()),
                    male_pick: Cumulative::zipf(male_first.len()),
                    last_pick: Cumulative::zipf(last.len()),
                    first,
                    male_first,
                    last,
                }
            })
            .collect();
        let mut nicknames: HashMap<&'static str, Vec<&'static str>> = HashMap::new();
        for (formal, shorts) in NICKNAMES {
            for short in *shorts {
                nicknames.entry(formal).or_default().push(short);
                nicknames.entry(short).or_default().push(formal);
            }
        }
        NameTables {
            origins,
            origin_pick: Cumulative::weighted(ORIGIN_WEIGHTS.iter().map(|(_, w)| *w)),
            nicknames,
        }
    }

    /// A random origin index.
    pub(crate) fn pick_origin(&self, rng: &mut ChaCha8Rng) -> usize {
        self.origin_pick.pick(rng)
    }

    /// A random first name of an origin.
    pub(crate) fn pick_first(&self, origin: usize, rng: &mut ChaCha8Rng) -> (&'static str, Gender) {
        let o = &self.origins[origin];
        o.first[o.first_pick.pick(rng)]
    }

    /// A random male first name of an origin.
    pub(crate) fn pick_male_first(&self, origin: usize, rng: &mut ChaCha8Rng) -> &'static str {
        let o = &self.origins[origin];
        o.male_first[o.male_pick.pick(rng)]
    }

    /// A random last name: mostly of the person's origin, sometimes of another (mixed families).
    pub(crate) fn pick_last(&self, origin: usize, rng: &mut ChaCha8Rng) -> &'static str {
        let from = if rng.random_bool(0.1) {
            self.pick_origin(rng)
        } else {
            origin
        };
        let o = &self.origins[from];
        o.last[o.last_pick.pick(rng)]
    }

    /// Nicknames or formal forms of a first name (empty when it has none).
    pub(crate) fn nickname_alternatives(&self, first: &str) -> &[&'static str] {
        self.nicknames.get(first).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// Lower-case ASCII letters and digits of a name (`José` → `jose`, `王` → `wang`, `O'Brien` →
/// `obrien`): what people type into an email address.
pub(crate) fn email_token(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let folded;
    let ascii = if name.is_ascii() {
        name
    } else {
        folded = deunicode::deunicode(name);
        folded.as_str()
    };
    out.extend(
        ascii
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase()),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_origin_has_sizeable_lists() {
        let tables = NameTables::get();
        let firsts: usize = tables.origins.iter().map(|o| o.first.len()).sum();
        let lasts: usize = tables.origins.iter().map(|o| o.last.len()).sum();
        assert!(firsts >= 300, "{firsts} first names");
        assert!(lasts >= 300, "{lasts} last names");
        for origin in &tables.origins {
            assert!(!origin.male_first.is_empty() && !origin.last.is_empty());
        }
    }

    #[test]
    fn nicknames_work_both_ways() {
        let tables = NameTables::get();
        assert!(tables.nickname_alternatives("William").contains(&"Bill"));
        assert!(tables.nickname_alternatives("Peggy").contains(&"Margaret"));
        assert!(tables.nickname_alternatives("Xyz").is_empty());
    }

    #[test]
    fn email_tokens_fold_accents_and_scripts() {
        assert_eq!(email_token("José"), "jose");
        assert_eq!(email_token("Łukasz"), "lukasz");
        assert_eq!(email_token("O'Brien"), "obrien");
        assert_eq!(email_token("De la Cruz"), "delacruz");
        assert_eq!(email_token("王"), "wang");
        assert_eq!(email_token("Мария"), "mariia");
    }
}
