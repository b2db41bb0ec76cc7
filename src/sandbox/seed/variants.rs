//! How one person's records differ: typos, nicknames, case and whitespace noise, email and phone
//! variants. Each function takes the person's true value and returns what one record says.

use super::names::NameTables;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

/// QWERTY neighbours of each lower-case letter, for substitution typos.
const KEYBOARD_NEIGHBOURS: [&str; 26] = [
    "qsz", "vng", "xvd", "sfec", "wrd", "dgrv", "fhtb", "gjyn", "uok", "hkum", "jli", "ko", "nj",
    "bmh", "ipl", "ol", "wa", "etf", "adwx", "ryg", "yij", "cbf", "qes", "zcs", "tuh", "ax",
];

/// Common misspellings of mail domains.
const DOMAIN_TYPOS: &[(&str, &[&str])] = &[
    (
        "gmail.com",
        &[
            "gmial.com",
            "gmail.co",
            "gmai.com",
            "gmail.con",
            "gmaill.com",
        ],
    ),
    ("yahoo.com", &["yaho.com", "yahooo.com", "yahoo.co"]),
    ("hotmail.com", &["hotmial.com", "hotmal.com", "hotmail.co"]),
    ("outlook.com", &["outlok.com", "outloook.com"]),
    ("icloud.com", &["iclod.com", "icloud.co"]),
    ("aol.com", &["aol.co"]),
];

const PLUS_TAGS: &[&str] = &["news", "promo", "crm", "shop", "2024", "fb", "deals"];

/// One random keyboard slip in a word: two letters swapped, one dropped or doubled, or a
/// neighbouring key hit. Works on characters, so accented and non-Latin names stay valid UTF-8.
pub(crate) fn typo(word: &str, rng: &mut ChaCha8Rng) -> String {
    let mut chars: Vec<char> = word.chars().collect();
    if chars.is_empty() {
        return String::new();
    }
    let at = rng.random_range(0..chars.len());
    match rng.random_range(0..4) {
        0 if chars.len() >= 2 => {
            let at = at.min(chars.len() - 2);
            chars.swap(at, at + 1);
        }
        1 if chars.len() >= 3 => {
            chars.remove(at);
        }
        2 => {
            let c = chars[at];
            chars.insert(at, c);
        }
        _ => {
            let c = chars[at];
            let lower = c.to_ascii_lowercase();
            if lower.is_ascii_lowercase() {
                let neighbours = KEYBOARD_NEIGHBOURS[(lower as u8 - b'a') as usize].as_bytes();
                let hit = neighbours[rng.random_range(0..neighbours.len())] as char;
                chars[at] = if c.is_ascii_uppercase() {
                    hit.to_ascii_uppercase()
                } else {
                    hit
                };
            } else {
                chars.insert(at, c);
            }
        }
    }
    chars.into_iter().collect()
}

/// First and last name fields of a record. `full_last` is the last name with any Jr./Sr. suffix;
/// `bare_last` the name without it.
pub(crate) fn name_fields(
    first: &str,
    bare_last: &str,
    full_last: &str,
    names: &NameTables,
    original: bool,
    rng: &mut ChaCha8Rng,
) -> (Option<String>, Option<String>) {
    let last = if !original && full_last != bare_last && rng.random_bool(0.4) {
        bare_last
    } else {
        full_last
    };
    let roll = rng.random_range(0..100);
    if original {
        // The first record is as typed at sign-up: clean, save for legacy all-caps imports.
        return match roll {
            0..2 => (Some(first.to_uppercase()), Some(last.to_uppercase())),
            2..5 => (Some(first.to_string()), None),
            _ => (Some(first.to_string()), Some(last.to_string())),
        };
    }
    let (f, l) = (first.to_string(), last.to_string());
    match roll {
        0..45 => (Some(f), Some(l)),
        45..57 => {
            let alternatives = names.nickname_alternatives(first);
            let f = if alternatives.is_empty() {
                f
            } else {
                alternatives[rng.random_range(0..alternatives.len())].to_string()
            };
            (Some(f), Some(l))
        }
        57..64 => (Some(typo(first, rng)), Some(l)),
        64..69 => (Some(f), Some(typo(last, rng))),
        69..73 => (Some(l), Some(f)),
        73..76 => (Some(f.to_uppercase()), Some(l.to_uppercase())),
        76..79 => (Some(f.to_lowercase()), Some(l.to_lowercase())),
        79..83 => match rng.random_range(0..3) {
            0 => (Some(format!("{f} ")), Some(l)),
            1 => (Some(f), Some(format!(" {l}"))),
            _ => (Some(format!("{f}  ")), Some(format!("{l} "))),
        },
        83..88 => {
            let initial: String = first.chars().take(1).collect();
            let dot = if rng.random_bool(0.5) { "." } else { "" };
            (Some(format!("{initial}{dot}")), Some(l))
        }
        88..93 => (
            Some(deunicode::deunicode(first)),
            Some(deunicode::deunicode(&l)),
        ),
        93..96 => (Some(format!("{f} {l}")), None),
        _ => (Some(f), None),
    }
}

/// How a record's email relates to the person's email.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EmailVariant {
    Same,
    CaseChanged,
    PlusTag,
    GmailDots,
    DomainTypo,
    LocalTypo,
    /// The person gave another address entirely.
    Different,
    Missing,
}

/// Which variant a duplicate record's email takes.
pub(crate) fn pick_email_variant(rng: &mut ChaCha8Rng) -> EmailVariant {
    match rng.random_range(0..100) {
        0..40 => EmailVariant::Same,
        40..48 => EmailVariant::CaseChanged,
        48..55 => EmailVariant::PlusTag,
        55..61 => EmailVariant::GmailDots,
        61..66 => EmailVariant::DomainTypo,
        66..70 => EmailVariant::LocalTypo,
        70..82 => EmailVariant::Different,
        _ => EmailVariant::Missing,
    }
}

/// The email written with a variant (Different and Missing are decided by the caller).
pub(crate) fn vary_email(email: &str, variant: EmailVariant, rng: &mut ChaCha8Rng) -> String {
    let Some((local, domain)) = email.split_once('@') else {
        return email.to_string();
    };
    match variant {
        EmailVariant::CaseChanged => {
            if rng.random_bool(0.3) {
                email.to_uppercase()
            } else {
                format!(
                    "{}@{}",
                    capitalize_segments(local),
                    capitalize_segments(domain)
                )
            }
        }
        EmailVariant::PlusTag if !local.contains('+') => {
            format!(
                "{local}+{}@{domain}",
                PLUS_TAGS[rng.random_range(0..PLUS_TAGS.len())]
            )
        }
        EmailVariant::GmailDots if domain == "gmail.com" => {
            if local.contains('.') {
                format!("{}@{domain}", local.replace('.', ""))
            } else if local.len() >= 2 {
                let at = rng.random_range(1..local.len());
                format!("{}.{}@{domain}", &local[..at], &local[at..])
            } else {
                email.to_string()
            }
        }
        EmailVariant::DomainTypo => {
            let typo_domain = DOMAIN_TYPOS
                .iter()
                .find(|(d, _)| *d == domain)
                .map(|(_, typos)| typos[rng.random_range(0..typos.len())].to_string())
                .unwrap_or_else(|| typo(domain, rng));
            format!("{local}@{typo_domain}")
        }
        EmailVariant::LocalTypo => format!("{}@{domain}", typo(local, rng)),
        _ => email.to_string(),
    }
}

/// `john.smith` → `John.Smith`.
fn capitalize_segments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        out.push(if start { c.to_ascii_uppercase() } else { c });
        start = matches!(c, '.' | '_' | '-');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn typos_change_a_word_by_one_edit() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for word in ["Katherine", "Łukasz", "王", "Zoë"] {
            for _ in 0..50 {
                let t = typo(word, &mut rng);
                let distance = strsim::levenshtein(word, &t);
                assert!((1..=2).contains(&distance), "{word} -> {t}");
            }
        }
    }

    #[test]
    fn email_variants_look_like_the_original() {
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let email = "john.smith@gmail.com";
        assert_eq!(
            vary_email(email, EmailVariant::GmailDots, &mut rng),
            "johnsmith@gmail.com"
        );
        let tagged = vary_email(email, EmailVariant::PlusTag, &mut rng);
        assert!(
            tagged.starts_with("john.smith+") && tagged.ends_with("@gmail.com"),
            "{tagged}"
        );
        let cased = vary_email(email, EmailVariant::CaseChanged, &mut rng);
        assert_eq!(cased.to_lowercase(), email);
        let typo_domain = vary_email(email, EmailVariant::DomainTypo, &mut rng);
        assert!(
            typo_domain.starts_with("john.smith@") && typo_domain != email,
            "{typo_domain}"
        );
        assert_eq!(
            vary_email("ann@work.com", EmailVariant::GmailDots, &mut rng),
            "ann@work.com"
        );
    }

    #[test]
    fn name_variants_include_nicknames_and_keep_the_original_record_clean() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let names = NameTables::get();
        let mut saw_nickname = false;
        for _ in 0..500 {
            let (f, _) = name_fields("William", "Smith", "Smith Jr.", names, false, &mut rng);
            saw_nickname |= matches!(f.as_deref(), Some("Bill" | "Will" | "Billy" | "Liam"));
            let (f, l) = name_fields("William", "Smith", "Smith Jr.", names, true, &mut rng);
            assert!(f.is_some_and(|f| f.eq_ignore_ascii_case("William")));
            assert!(l.is_none_or(|l| l.eq_ignore_ascii_case("Smith Jr.")));
        }
        assert!(saw_nickname);
    }
}
