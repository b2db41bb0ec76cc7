//! Field comparisons: each pair of prepared values gets a level (0 = identical … last = different),
//! using strsim's Jaro-Winkler and Damerau-Levenshtein and the phone, email and nickname knowledge
//! of `normalize`.

use super::encode::TextColumn;
use super::model::FieldKind;
use crate::normalize::{self, EmailKey, PhoneKey};
use rlibphonenumber::enums::Region;

/// A value prepared once per record, so comparing a pair allocates nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Prepared {
    /// A folded name or text.
    Text(String),
    Email(EmailKey),
    Phone(PhoneKey),
}

impl Prepared {
    /// The value exact matches and term frequencies are counted on.
    pub fn key(&self) -> &str {
        match self {
            Prepared::Text(s) => s,
            Prepared::Email(e) => &e.match_key,
            Prepared::Phone(p) => p.as_str(),
        }
    }
}

/// Prepares a raw cell for a field kind; `None` when empty or unreadable.
pub fn prepare(kind: FieldKind, raw: &str, region: Region) -> Option<Prepared> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    let prepared = match kind {
        FieldKind::GivenName => {
            let folded = normalize::name_core(&normalize::name(raw));
            Prepared::Text(normalize::without_middle_initials(&folded).to_string())
        }
        FieldKind::FamilyName => Prepared::Text(normalize::name_core(&normalize::name(raw))),
        FieldKind::Text => Prepared::Text(normalize::name(raw)),
        FieldKind::Email => return normalize::email(raw).map(Prepared::Email),
        FieldKind::Phone => return normalize::phone(raw, region).map(Prepared::Phone),
        // Codes are written with and without their separators ("SW1A 1AA", "sw1a1aa",
        // "K1A-0B1"); only the letters and digits identify one.
        FieldKind::Code => Prepared::Text(
            raw.to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric())
                .collect(),
        ),
        FieldKind::Exact => Prepared::Text(
            raw.to_lowercase()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        ),
        FieldKind::Date => Prepared::Text(raw.chars().filter(char::is_ascii_digit).collect()),
    };
    match &prepared {
        Prepared::Text(s) if s.is_empty() => None,
        _ => Some(prepared),
    }
}

/// The level of two different values of a field, from their keys ([`Prepared::key`]): what a
/// table keeps of each value. An email's key is its match key, so two different addresses with
/// one match key are level 1, as [`level_of_parts`] gives; a table reads email and phone levels
/// from their [`part_codes`] rather than from here.
pub fn text_level(kind: FieldKind, x: &str, y: &str) -> u8 {
    match kind {
        FieldKind::GivenName => {
            if x == y {
                0
            } else if normalize::same_given_name(x, y) {
                1
            } else {
                let jw = strsim::jaro_winkler(x, y);
                if jw >= 0.92 {
                    2
                } else if jw >= 0.80 || initial_of(x, y) {
                    3
                } else {
                    4
                }
            }
        }
        FieldKind::FamilyName => {
            if x == y || same_squashed(x, y) {
                0
            } else if within_one_edit(x, y) || strsim::jaro_winkler(x, y) >= 0.92 {
                1
            } else if strsim::jaro_winkler(x, y) >= 0.80 {
                2
            } else {
                3
            }
        }
        FieldKind::Text => {
            if x == y {
                0
            } else if strsim::jaro_winkler(x, y) >= 0.90 {
                1
            } else {
                2
            }
        }
        FieldKind::Code => {
            if x == y {
                0
            } else if within_one_edit(x, y) || extends(x, y) {
                1
            } else {
                2
            }
        }
        FieldKind::Date => {
            if x == y {
                0
            } else if x.len() == 8
                && y.len() == 8
                && (swapped_day_month(x, y) || strsim::hamming(x, y) == Ok(1))
            {
                1
            } else if x.len() >= 4 && y.len() >= 4 && x[..4] == y[..4] {
                2
            } else {
                3
            }
        }
        FieldKind::Exact => u8::from(x != y),
        FieldKind::Email => {
            let (a, b) = (
                normalize::local_of_match_key(x),
                normalize::local_of_match_key(y),
            );
            if x == y {
                1
            } else if a == b && a.len() >= 4 {
                2
            } else {
                3
            }
        }
        FieldKind::Phone => {
            if normalize::last7_of(x) == normalize::last7_of(y) {
                1
            } else {
                2
            }
        }
    }
}

/// A part of an email or phone that no other value shares (a local part too short to be evidence).
/// It is the code the numbering gives a value without the part.
const NO_PART: u32 = super::encode::NULL_CODE;

/// The parts of each distinct email or phone its levels read, numbered, so a table compares
/// two integers per part instead of reading each value's strings: emails by their match key and
/// local part, phones by their last seven digits. `keys` holds each value's [`Prepared::key`];
/// `None` for the other kinds. The values must be distinct (as a table's are): the value's own
/// position stands for its whole text.
pub fn part_codes(kind: FieldKind, keys: &TextColumn) -> Option<Vec<[u32; 2]>> {
    type Part = fn(&str) -> Option<&str>;
    let (first, second): (Part, Option<Part>) = match kind {
        FieldKind::Email => (
            |key| Some(key),
            Some(|key| Some(normalize::local_of_match_key(key)).filter(|l| l.len() >= 4)),
        ),
        // A phone has one part; its second is left unnumbered, with no table built for it.
        FieldKind::Phone => (|key| Some(normalize::last7_of(key)), None),
        _ => return None,
    };
    let number = |part: Part| {
        super::encode::number_by_first_occurrence(keys.len(), |v| keys.get(v).and_then(part)).0
    };
    let (first, second) = rayon::join(
        || number(first),
        || second.map_or_else(|| vec![NO_PART; keys.len()], number),
    );
    Some(first.into_iter().zip(second).map(|(a, b)| [a, b]).collect())
}

/// The level of two different values of an email or phone field, from their [`part_codes`].
#[inline]
pub fn level_of_parts(kind: FieldKind, a: [u32; 2], b: [u32; 2]) -> u8 {
    let same = |k: usize| a[k] != NO_PART && a[k] == b[k];
    match kind {
        FieldKind::Email if same(0) => 1,
        FieldKind::Email if same(1) => 2,
        FieldKind::Email => 3,
        FieldKind::Phone if same(0) => 1,
        _ => 2,
    }
}

/// Whether two values of a field at `level` name different things, for the cluster guard: the
/// last level does, and so do close spellings of a given name that are no typo (twins, the male
/// and female forms of a name), while a typo of a nickname does not, however far its spelling is.
/// Depends only on the two values, so callers may remember it per pair of distinct values.
pub fn conflict(kind: FieldKind, level: u8, a: &str, b: &str) -> bool {
    let different = usize::from(level) + 1 == kind.levels().len();
    if kind != FieldKind::GivenName || level < 2 {
        return different;
    }
    if different {
        !normalize::typo_of_nickname(a, b)
    } else {
        !normalize::plausibly_same_given_name(a, b)
    }
}

/// Damerau-Levenshtein distance ≤ 1. For distances this small the restricted (optimal string
/// alignment) distance is the same, and it needs no alphabet map; strings whose lengths differ by
/// more than one are never within one edit, so most pairs are settled without running it.
fn within_one_edit(x: &str, y: &str) -> bool {
    if x.is_ascii() && y.is_ascii() {
        return one_edit_apart(x.as_bytes(), y.as_bytes());
    }
    let (a, b): (Vec<char>, Vec<char>) = (x.chars().collect(), y.chars().collect());
    one_edit_apart(&a, &b)
}

/// Optimal string alignment distance ≤ 1 in one pass and no allocation (this runs for millions
/// of pairs): past the common prefix, what is left must be equal after one substitution, one
/// insertion or one swap of neighbours.
fn one_edit_apart<T: PartialEq>(a: &[T], b: &[T]) -> bool {
    let (a, b) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if b.len() - a.len() > 1 {
        return false;
    }
    let p = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    if p == a.len() {
        return true;
    }
    if a.len() < b.len() {
        return a[p..] == b[p + 1..];
    }
    a[p + 1..] == b[p + 1..]
        || (p + 1 < a.len() && a[p] == b[p + 1] && a[p + 1] == b[p] && a[p + 2..] == b[p + 2..])
}

/// Two names equal once their spaces are dropped. Most names have none, and then only equal
/// names are (already ruled out), so the character walk runs only when one has a space.
fn same_squashed(x: &str, y: &str) -> bool {
    (x.contains(' ') || y.contains(' ')) && normalize::equal_without(x, y, char::is_whitespace)
}

/// A code that lengthens the other (a ZIP+4 against its ZIP: "941071234" and "94107").
fn extends(x: &str, y: &str) -> bool {
    let (short, long) = if x.len() <= y.len() { (x, y) } else { (y, x) };
    short.len() >= 5 && long.starts_with(short)
}

/// "J" against "John": an initial agrees with a full name.
fn initial_of(x: &str, y: &str) -> bool {
    let one = |s: &str| s.len() == 1;
    (one(x) || one(y)) && x.chars().next() == y.chars().next()
}

/// `YYYYMMDD` pairs whose day and month are swapped.
fn swapped_day_month(x: &str, y: &str) -> bool {
    x[..4] == y[..4] && x[4..6] == y[6..8] && x[6..8] == y[4..6]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The level of a pair of values, read from the whole prepared values: the reference the
    /// levels a table reads from keys and part codes are checked against.
    fn level(kind: FieldKind, a: &Prepared, b: &Prepared) -> u8 {
        match kind {
            FieldKind::Email => match (a, b) {
                (Prepared::Email(x), Prepared::Email(y)) => {
                    if x.address == y.address {
                        0
                    } else if x.match_key == y.match_key {
                        1
                    } else if x.local() == y.local() && x.local().len() >= 4 {
                        2
                    } else {
                        3
                    }
                }
                _ => 3,
            },
            FieldKind::Phone => match (a, b) {
                (Prepared::Phone(x), Prepared::Phone(y)) => {
                    if x.as_str() == y.as_str() {
                        0
                    } else if x.last7() == y.last7() {
                        1
                    } else {
                        2
                    }
                }
                _ => 2,
            },
            _ => text_level(kind, a.key(), b.key()),
        }
    }

    fn p(kind: FieldKind, raw: &str) -> Prepared {
        prepare(kind, raw, Region::US).expect("prepared")
    }

    #[test]
    fn part_codes_give_the_levels_of_the_values() {
        let cases = [
            (
                FieldKind::Email,
                vec![
                    "ann.lee@gmail.com",
                    "annlee@gmail.com",
                    "ann.lee+news@googlemail.com",
                    "annlee@yahoo.com",
                    "bob@x.org",
                    "bob@y.org",
                    "robert@x.org",
                    "Zoë@exämple.com",
                ],
            ),
            (
                FieldKind::Phone,
                vec![
                    "+1 415 555 0134",
                    "415-555-0134",
                    "+44 20 7946 0958",
                    "+1 212 555 0134",
                    "12345",
                    "999 12345",
                    "+61 2 5550 0134",
                ],
            ),
        ];
        for (kind, raw) in cases {
            let mut distinct: Vec<Prepared> = Vec::new();
            for v in raw.iter().map(|r| p(kind, r)) {
                if !distinct.contains(&v) {
                    distinct.push(v);
                }
            }
            let keys: TextColumn = distinct.iter().map(|v| Some(v.key())).collect();
            let parts = part_codes(kind, &keys).expect("parts for emails and phones");
            for (x, a) in distinct.iter().enumerate() {
                for (y, b) in distinct.iter().enumerate().filter(|(y, _)| *y != x) {
                    assert_eq!(
                        level_of_parts(kind, parts[x], parts[y]),
                        level(kind, a, b),
                        "{kind:?} {a:?} vs {b:?}"
                    );
                    assert_eq!(
                        text_level(kind, a.key(), b.key()),
                        level(kind, a, b),
                        "{kind:?} {a:?} vs {b:?} from their keys"
                    );
                }
            }
        }
        assert!(part_codes(FieldKind::GivenName, &TextColumn::default()).is_none());
    }

    #[test]
    fn given_names_know_nicknames_typos_initials_and_scripts() {
        let g = FieldKind::GivenName;
        assert_eq!(level(g, &p(g, "William"), &p(g, "WILLIAM ")), 0);
        assert_eq!(level(g, &p(g, "Bill"), &p(g, "William")), 1);
        assert_eq!(level(g, &p(g, "Jonathon"), &p(g, "Jonathan")), 2);
        assert_eq!(level(g, &p(g, "J."), &p(g, "John")), 3);
        assert_eq!(
            level(g, &p(g, "Zoë"), &p(g, "Zoe")),
            0,
            "accents folded for matching"
        );
        assert_eq!(level(g, &p(g, "Мария"), &p(g, "Мария")), 0, "Cyrillic");
        assert_eq!(level(g, &p(g, "Maria"), &p(g, "Robert")), 4);
        assert!(
            prepare(g, "😀", Region::US).is_none(),
            "an emoji is no name"
        );
    }

    #[test]
    fn family_names_tolerate_one_edit_and_spacing() {
        let f = FieldKind::FamilyName;
        assert_eq!(level(f, &p(f, "Van der Berg"), &p(f, "Vanderberg")), 0);
        assert_eq!(level(f, &p(f, "Smith"), &p(f, "Smtih")), 1);
        assert_eq!(level(f, &p(f, "O'Brien"), &p(f, "OBrien")), 0);
        assert_eq!(level(f, &p(f, "Smith"), &p(f, "Jones")), 3);
    }

    #[test]
    fn emails_and_phones_have_aware_levels() {
        let e = FieldKind::Email;
        assert_eq!(level(e, &p(e, "a.b@gmail.com"), &p(e, "A.B@gmail.com")), 0);
        assert_eq!(level(e, &p(e, "a.b+x@gmail.com"), &p(e, "ab@gmail.com")), 1);
        assert_eq!(
            level(e, &p(e, "jdoe99@gmail.com"), &p(e, "jdoe99@yahoo.com")),
            2
        );
        assert_eq!(level(e, &p(e, "x@a.com"), &p(e, "y@a.com")), 3);
        let ph = FieldKind::Phone;
        assert_eq!(
            level(ph, &p(ph, "(415) 555-0134"), &p(ph, "+1 415 555 0134")),
            0
        );
        assert_eq!(
            level(ph, &p(ph, "+44 20 7946 0134"), &p(ph, "+1 212 794 6013")),
            2
        );
    }

    proptest::proptest! {
        /// The one-pass check agrees with strsim's optimal string alignment distance.
        #[test]
        fn one_edit_check_matches_osa_distance(x in "[abc]{0,6}", y in "[abc]{0,6}") {
            proptest::prop_assert_eq!(within_one_edit(&x, &y), strsim::osa_distance(&x, &y) <= 1);
        }

        #[test]
        fn one_edit_check_matches_osa_distance_beyond_ascii(x in "[aé王]{0,5}", y in "[aé王]{0,5}") {
            proptest::prop_assert_eq!(within_one_edit(&x, &y), strsim::osa_distance(&x, &y) <= 1);
        }
    }

    #[test]
    fn codes_ignore_separators_and_zip_plus_four_is_near() {
        let c = FieldKind::Code;
        assert_eq!(level(c, &p(c, "SW1A 1AA"), &p(c, "sw1a1aa")), 0);
        assert_eq!(level(c, &p(c, "K1A-0B1"), &p(c, "K1A 0B1")), 0);
        assert_eq!(level(c, &p(c, "94107-1234"), &p(c, "94107")), 1);
        assert_eq!(level(c, &p(c, "94107"), &p(c, "94108")), 1);
        assert_eq!(level(c, &p(c, "94107"), &p(c, "10001")), 2);
    }

    #[test]
    fn dates_catch_swapped_day_and_month() {
        let d = FieldKind::Date;
        assert_eq!(level(d, &p(d, "19560415"), &p(d, "19560415")), 0);
        assert_eq!(level(d, &p(d, "19560504"), &p(d, "19560405")), 1);
        assert_eq!(level(d, &p(d, "19560415"), &p(d, "19561231")), 2);
        assert_eq!(level(d, &p(d, "19560415"), &p(d, "19770415")), 3);
    }
}
