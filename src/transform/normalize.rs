//! Normalisers: phones to E.164, emails to a match key, names folded for comparison. Each keeps the
//! raw value; what is stored is never rewritten, only what is compared.

pub use rlibphonenumber::enums::Region;
use rlibphonenumber::{PHONE_NUMBER_UTIL, PhoneNumberFormat};
use rustc_hash::FxHashMap;
use std::sync::OnceLock;
use unicode_normalization::UnicodeNormalization;

/// A phone number as compared.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PhoneKey {
    /// Parsed and valid: E.164.
    E164(String),
    /// Could not be parsed: kept, flagged, compared by its digits.
    Digits(String),
}

impl PhoneKey {
    /// The E.164 form, or the digits of an unparseable number.
    pub fn as_str(&self) -> &str {
        match self {
            PhoneKey::E164(s) | PhoneKey::Digits(s) => s,
        }
    }

    /// The last seven digits (the subscriber part in most plans): catches a country code or
    /// trunk prefix the two records disagree on.
    pub fn last7(&self) -> &str {
        let s = self.as_str();
        let digits_start = s.len().saturating_sub(7);
        &s[digits_start..]
    }
}

/// A region for reading national numbers, from an ISO 3166 code (`US` when unknown).
pub fn region(code: &str) -> Region {
    Region::from_code(code.trim()).unwrap_or(Region::US)
}

/// Parses a phone with libphonenumber metadata (rlibphonenumber); national forms are read in
/// `region`.
pub fn phone(raw: &str, region: Region) -> Option<PhoneKey> {
    let trimmed = raw.trim();
    let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 5 {
        return None;
    }
    // "00" international prefix: libphonenumber reads it only for regions that use it.
    let candidate = match trimmed.strip_prefix("00") {
        Some(rest) => format!("+{rest}"),
        None => trimmed.to_string(),
    };
    match PHONE_NUMBER_UTIL.parse(&candidate, Some(region)) {
        Ok(n) if n.is_valid() => Some(PhoneKey::E164(
            n.format_as(PhoneNumberFormat::E164).to_string(),
        )),
        _ => Some(PhoneKey::Digits(digits)),
    }
}

/// A phone cell written only with digits, spaces and the usual separators, reduced to its digits
/// (and a leading `+`): "(415) 555-0134" and "415.555.0134" are one string, so a table's numbers
/// are parsed once per number rather than once per way of writing it. Anything else (letters,
/// extensions) is returned trimmed, for libphonenumber to read as written.
pub fn phone_canonical(raw: &str) -> String {
    let trimmed = raw.trim();
    let plain = trimmed.char_indices().all(|(i, c)| {
        c.is_ascii_digit() || matches!(c, ' ' | '(' | ')' | '-' | '.') || (c == '+' && i == 0)
    });
    if !plain {
        return trimmed.to_string();
    }
    let mut out = String::with_capacity(trimmed.len());
    if trimmed.starts_with('+') {
        out.push('+');
    }
    out.extend(trimmed.chars().filter(char::is_ascii_digit));
    out
}

/// An email as compared.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailKey {
    /// Trimmed and lower-cased.
    pub address: String,
    /// `+tag` dropped and, for Gmail, dots dropped and googlemail folded to gmail.
    pub match_key: String,
    /// The local part of `match_key`.
    pub local: String,
    /// The domain.
    pub domain: String,
}

/// Domains that are shared by unrelated people: an equal domain there says nothing.
pub fn is_free_mail(domain: &str) -> bool {
    matches!(
        domain,
        "gmail.com"
            | "googlemail.com"
            | "yahoo.com"
            | "outlook.com"
            | "hotmail.com"
            | "icloud.com"
            | "aol.com"
            | "protonmail.com"
            | "gmx.de"
            | "web.de"
            | "orange.fr"
            | "btinternet.com"
            | "live.com"
            | "msn.com"
            | "me.com"
            | "mail.com"
            | "yandex.ru"
            | "qq.com"
            | "163.com"
    )
}

/// Parses an email; `None` when it has no `@`.
pub fn email(raw: &str) -> Option<EmailKey> {
    let address = raw.trim().to_lowercase();
    let (local, domain) = address.rsplit_once('@')?;
    if local.is_empty() || domain.is_empty() {
        return None;
    }
    let domain = if domain == "googlemail.com" {
        "gmail.com"
    } else {
        domain
    };
    let mut local = local.split('+').next().unwrap_or(local).to_string();
    if domain == "gmail.com" {
        local.retain(|c| c != '.');
    }
    Some(EmailKey {
        match_key: format!("{local}@{domain}"),
        local,
        domain: domain.to_string(),
        address,
    })
}

/// A name folded for comparison: NFKC, case-folded, whitespace collapsed, accents and scripts
/// transliterated to ASCII (`Zoë` → `zoe`, `Łukasz` → `lukasz`, `王伟` → `wang wei`), punctuation
/// other than inner hyphens and apostrophes dropped. Empty when nothing is left.
pub fn name(raw: &str) -> String {
    // Symbols and emoji go before transliteration (deunicode would spell 😀 "grinning").
    let nfkc: String = raw
        .nfkc()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '\'' {
                c
            } else {
                ' '
            }
        })
        .collect();
    let ascii = deunicode::deunicode(&nfkc).to_lowercase();
    let mut out = String::with_capacity(ascii.len());
    let mut space = false;
    for c in ascii.chars() {
        if c.is_ascii_alphanumeric() {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.push(c);
        } else if c == '-' || c == '\'' {
            // O'Brien = OBrien = O Brien for matching; Smith-Jones keeps its parts.
            if c == '-' {
                space = true;
            }
        } else {
            space = true;
        }
    }
    out
}

/// Honorifics and generational suffixes that say nothing about identity... except Jr./Sr., which
/// tell a parent from a child: those are kept by [`generation`].
const NOISE_TOKENS: &[&str] = &["mr", "mrs", "ms", "miss", "dr", "prof"];

/// A folded name without honorifics.
pub fn name_core(folded: &str) -> String {
    folded
        .split(' ')
        .filter(|t| !NOISE_TOKENS.contains(t) && !matches!(*t, "jr" | "sr" | "ii" | "iii" | "iv"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The generational suffix of a name, if any (`jr`, `sr`, `ii`, `iii`).
pub fn generation(folded: &str) -> Option<&'static str> {
    folded.split(' ').find_map(|t| match t {
        "jr" => Some("jr"),
        "sr" => Some("sr"),
        "ii" => Some("ii"),
        "iii" => Some("iii"),
        "iv" => Some("iv"),
        _ => None,
    })
}

fn nickname_groups() -> &'static FxHashMap<String, Vec<u32>> {
    static GROUPS: OnceLock<FxHashMap<String, Vec<u32>>> = OnceLock::new();
    GROUPS.get_or_init(|| {
        let mut map: FxHashMap<String, Vec<u32>> = FxHashMap::default();
        let data = include_str!("nicknames.csv");
        for (group, line) in data
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .enumerate()
        {
            for n in line.split(',') {
                let key = name(n);
                if !key.is_empty() {
                    map.entry(key).or_default().push(group as u32);
                }
            }
        }
        map
    })
}

/// True when two folded given names are the same name by the nickname table (Bill ~ William).
pub fn same_given_name(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let groups = nickname_groups();
    match (groups.get(a), groups.get(b)) {
        (Some(x), Some(y)) => x.iter().any(|g| y.contains(g)),
        _ => false,
    }
}

/// A phonetic key (a compact Soundex-like code over the folded name) for blocking: names that
/// sound alike share it even when spelled differently.
pub fn phonetic(folded: &str) -> String {
    let mut chars = folded.chars().filter(char::is_ascii_alphabetic);
    let Some(first) = chars.next() else {
        return String::new();
    };
    let code = |c: char| match c {
        'b' | 'f' | 'p' | 'v' => '1',
        'c' | 'g' | 'j' | 'k' | 'q' | 's' | 'x' | 'z' => '2',
        'd' | 't' => '3',
        'l' => '4',
        'm' | 'n' => '5',
        'r' => '6',
        _ => '0',
    };
    let mut out = String::from(first.to_ascii_uppercase());
    let mut last = code(first);
    for c in chars {
        let k = code(c);
        if k != '0' && k != last {
            out.push(k);
            if out.len() == 4 {
                break;
            }
        }
        if c != 'h' && c != 'w' {
            last = k;
        }
    }
    while out.len() < 4 {
        out.push('0');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rlibphonenumber::enums::Region as Id;

    #[test]
    fn phones_in_every_form_become_one_e164() {
        let want = PhoneKey::E164("+14155550134".into());
        for raw in [
            "(415) 555-0134",
            "415.555.0134",
            "+1 415 555 0134",
            "4155550134",
            "1-415-555-0134",
            "001 415 555 0134",
        ] {
            assert_eq!(phone(raw, Id::US), Some(want.clone()), "{raw}");
        }
        assert_eq!(
            phone("07911 123456", Id::GB),
            Some(PhoneKey::E164("+447911123456".into()))
        );
        assert_eq!(
            phone("+49 151 23456789", Id::US),
            Some(PhoneKey::E164("+4915123456789".into())),
            "an international form ignores the default region"
        );
    }

    #[test]
    fn canonical_phones_parse_like_the_raw_cell() {
        for raw in [
            "(415) 555-0134",
            "+1 415 555 0134",
            "001 415 555 0134",
            "+44 (0) 20 7946 0134",
            "1-800-FLOWERS",
            "415 555 0134 ext. 12",
        ] {
            assert_eq!(
                phone(&phone_canonical(raw), Id::US),
                phone(raw, Id::US),
                "{raw}"
            );
        }
        assert_eq!(phone_canonical(" (415) 555-0134 "), "4155550134");
        assert_eq!(phone_canonical("+1 415.555.0134"), "+14155550134");
        assert_eq!(phone_canonical("1-800-FLOWERS"), "1-800-FLOWERS");
    }

    #[test]
    fn unparseable_phones_are_kept_as_digits() {
        assert_eq!(
            phone("12-34-56", Id::US),
            Some(PhoneKey::Digits("123456".into()))
        );
        assert_eq!(phone("call me", Id::US), None);
        assert_eq!(PhoneKey::E164("+14155550134".into()).last7(), "5550134");
    }

    #[test]
    fn email_match_keys_drop_tags_and_gmail_dots_only() {
        let a = email(" Jane.Doe+news@GMail.com ").expect("email");
        assert_eq!(a.address, "jane.doe+news@gmail.com");
        assert_eq!(a.match_key, "janedoe@gmail.com");
        let b = email("jane.doe@googlemail.com").expect("email");
        assert_eq!(a.match_key, b.match_key);
        let c = email("jane.doe@acme.com").expect("email");
        assert_eq!(
            c.match_key, "jane.doe@acme.com",
            "dots matter outside Gmail"
        );
        assert!(email("not-an-email").is_none());
    }

    #[test]
    fn names_fold_case_accents_width_and_scripts() {
        assert_eq!(name("  ZOË   O'Brien "), "zoe obrien");
        assert_eq!(name("Łukasz"), "lukasz");
        assert_eq!(name("Ｊｏｈｎ"), "john", "full-width letters (NFKC)");
        assert_eq!(name("Smith-Jones"), "smith jones");
        assert!(!name("王伟").is_empty(), "Han names transliterate");
        assert_eq!(name("Мария"), "mariia");
        assert_eq!(name("😀"), "", "emoji carry no name");
        assert_eq!(name("Ana 😀"), "ana");
    }

    #[test]
    fn nicknames_and_generations() {
        assert!(same_given_name("bill", "william"));
        assert!(same_given_name("peggy", "margaret"));
        assert!(same_given_name("jose", "pepe"));
        assert!(!same_given_name("bill", "robert"));
        assert_eq!(generation(&name("John Smith Jr.")), Some("jr"));
        assert_eq!(name_core(&name("Dr. Ann Lee Jr")), "ann lee");
    }

    #[test]
    fn phonetic_keys_group_spellings() {
        assert_eq!(phonetic("robert"), phonetic("rupert"));
        assert_eq!(phonetic("smith"), phonetic("smyth"));
        assert_ne!(phonetic("smith"), phonetic("jones"));
        assert_eq!(phonetic(""), "");
    }
}

/// The generational suffix of a name (`Jr.`, `Sr`, `II`, `III`, `IV`), as a canonical token.
pub fn generational_suffix(raw: &str) -> Option<&'static str> {
    raw.split(|c: char| c.is_whitespace() || c == ',')
        .map(|t| t.trim_end_matches('.').to_ascii_lowercase())
        .find_map(|t| match t.as_str() {
            "jr" | "junior" => Some("jr"),
            "sr" | "senior" => Some("sr"),
            "ii" | "2nd" => Some("ii"),
            "iii" | "3rd" => Some("iii"),
            "iv" | "4th" => Some("iv"),
            _ => None,
        })
}

#[cfg(test)]
mod suffix_tests {
    use super::generational_suffix;

    #[test]
    fn generational_suffixes_are_read_from_names() {
        assert_eq!(generational_suffix("Moreno Jr."), Some("jr"));
        assert_eq!(generational_suffix("Moreno, SR"), Some("sr"));
        assert_eq!(generational_suffix("Henry III"), Some("iii"));
        assert_eq!(generational_suffix("Junior"), Some("jr"));
        assert_eq!(generational_suffix("Ivy Srinivasan"), None);
    }
}
