//! Phones: E.164 through libphonenumber metadata (rlibphonenumber), national forms read in the
//! contact's country; a number that does not parse is kept and compared by its digits.

use super::name::name;
use crate::snapshot::phone::digits;
pub use rlibphonenumber::enums::Region;
use rlibphonenumber::{PHONE_NUMBER_UTIL, PhoneNumberFormat};

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
        last7_of(self.as_str())
    }
}

/// [`PhoneKey::last7`] of a key's text (its E.164 form or digits).
pub fn last7_of(key: &str) -> &str {
    let digits_start = key.len().saturating_sub(7);
    key.get(digits_start..).unwrap_or(key)
}

/// A region for reading national numbers, from an ISO 3166 code (`US` when unknown).
pub fn region(code: &str) -> Region {
    Region::from_code(code.trim()).unwrap_or(Region::US)
}

/// The region of a country cell: an ISO 3166 alpha-2 or alpha-3 code or a common English name
/// ("GB", "UK", "GBR", "United Kingdom", "England"), case and accents ignored. `None` when the cell
/// names no country this knows, so the caller falls back to its default region.
pub fn country_region(raw: &str) -> Option<Region> {
    let folded = name(raw).replace(['.', ','], "");
    let key = folded.trim();
    if key.is_empty() {
        return None;
    }
    // Names and codes seen in CRM exports that are not plain alpha-2 codes. "UK" is not an
    // ISO code (Great Britain is GB) but every export uses it.
    const ALIASES: &[(&str, &str)] = &[
        ("uk", "GB"),
        ("gbr", "GB"),
        ("united kingdom", "GB"),
        ("great britain", "GB"),
        ("britain", "GB"),
        ("england", "GB"),
        ("scotland", "GB"),
        ("wales", "GB"),
        ("northern ireland", "GB"),
        ("usa", "US"),
        ("us", "US"),
        ("u s a", "US"),
        ("united states", "US"),
        ("united states of america", "US"),
        ("america", "US"),
        ("can", "CA"),
        ("canada", "CA"),
        ("aus", "AU"),
        ("australia", "AU"),
        ("nzl", "NZ"),
        ("new zealand", "NZ"),
        ("irl", "IE"),
        ("ireland", "IE"),
        ("ind", "IN"),
        ("india", "IN"),
        ("deu", "DE"),
        ("germany", "DE"),
        ("deutschland", "DE"),
        ("fra", "FR"),
        ("france", "FR"),
        ("esp", "ES"),
        ("spain", "ES"),
        ("espana", "ES"),
        ("ita", "IT"),
        ("italy", "IT"),
        ("italia", "IT"),
        ("nld", "NL"),
        ("netherlands", "NL"),
        ("the netherlands", "NL"),
        ("holland", "NL"),
        ("bel", "BE"),
        ("belgium", "BE"),
        ("che", "CH"),
        ("switzerland", "CH"),
        ("aut", "AT"),
        ("austria", "AT"),
        ("prt", "PT"),
        ("portugal", "PT"),
        ("swe", "SE"),
        ("sweden", "SE"),
        ("nor", "NO"),
        ("norway", "NO"),
        ("dnk", "DK"),
        ("denmark", "DK"),
        ("fin", "FI"),
        ("finland", "FI"),
        ("pol", "PL"),
        ("poland", "PL"),
        ("mex", "MX"),
        ("mexico", "MX"),
        ("bra", "BR"),
        ("brazil", "BR"),
        ("brasil", "BR"),
        ("arg", "AR"),
        ("argentina", "AR"),
        ("col", "CO"),
        ("colombia", "CO"),
        ("chl", "CL"),
        ("chile", "CL"),
        ("per", "PE"),
        ("peru", "PE"),
        ("zaf", "ZA"),
        ("south africa", "ZA"),
        ("nga", "NG"),
        ("nigeria", "NG"),
        ("ken", "KE"),
        ("kenya", "KE"),
        ("phl", "PH"),
        ("philippines", "PH"),
        ("sgp", "SG"),
        ("singapore", "SG"),
        ("mys", "MY"),
        ("malaysia", "MY"),
        ("are", "AE"),
        ("uae", "AE"),
        ("united arab emirates", "AE"),
        ("isr", "IL"),
        ("israel", "IL"),
        ("jpn", "JP"),
        ("japan", "JP"),
        ("chn", "CN"),
        ("china", "CN"),
        ("kor", "KR"),
        ("south korea", "KR"),
        ("pak", "PK"),
        ("pakistan", "PK"),
        ("vnm", "VN"),
        ("vietnam", "VN"),
        ("viet nam", "VN"),
        ("pri", "PR"),
        ("puerto rico", "PR"),
        ("jam", "JM"),
        ("jamaica", "JM"),
    ];
    let code = match ALIASES.iter().find(|(alias, _)| *alias == key) {
        Some((_, code)) => code.to_string(),
        None => key.to_ascii_uppercase(),
    };
    if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    Region::from_code(&code)
        .ok()
        // Only regions libphonenumber has a numbering plan for.
        .filter(|r| PHONE_NUMBER_UTIL.get_country_code_for_region(*r).is_some())
}

/// A contact's phone, a national form read in the contact's own country (`country` as
/// [`country_region`] reads it) and in `default` when it names none: the dedupe, the SMS links and
/// the opt-out checks must agree on what number a contact has.
pub fn contact_phone(
    raw: Option<&str>,
    country: Option<&str>,
    default: Region,
) -> Option<PhoneKey> {
    let region = country.and_then(country_region).unwrap_or(default);
    phone(raw?, region)
}

/// Parses a phone with libphonenumber metadata (rlibphonenumber); national forms are read in
/// `region`.
pub fn phone(raw: &str, region: Region) -> Option<PhoneKey> {
    let trimmed = raw.trim();
    let digits = digits(trimmed);
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
    fn countries_name_the_region_national_phones_are_read_in() {
        assert_eq!(country_region("GB"), Some(Id::GB));
        assert_eq!(country_region(" uk "), Some(Id::GB));
        assert_eq!(country_region("United Kingdom"), Some(Id::GB));
        assert_eq!(country_region("U.S.A."), Some(Id::US));
        assert_eq!(country_region("Australia"), Some(Id::AU));
        assert_eq!(country_region("España"), Some(Id::ES));
        assert_eq!(country_region("ca"), Some(Id::CA));
        assert_eq!(country_region("Narnia"), None);
        assert_eq!(country_region(""), None);
        let uk = phone("07911 123456", country_region("UK").expect("GB"));
        assert_eq!(
            uk,
            phone("+44 7911 123456", Id::US),
            "a national form read in its country equals its international form"
        );
    }
}
