//! Blocking keys: what a rule's key parts make of a cell (a transform such as `phonetic` or
//! `first3`), and which fields a rule's key settles or reads.

use crate::matching::model::{BlockingRule, FieldKind};
use crate::matching::score::PreparedTable;
use crate::normalize;
use rlibphonenumber::enums::Region;

/// The key of one cell for a blocking transform.
pub fn key_of(raw: &str, transform: &str, region: Region) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    let key = match transform {
        "exact" => normalize::name(raw),
        "phonetic" => normalize::phonetic(&normalize::name(raw)),
        "initial" => normalize::name(raw).chars().next()?.to_string(),
        "prefix3" => normalize::name(raw)
            .chars()
            .filter(|c| *c != ' ')
            .take(3)
            .collect(),
        "email_key" => normalize::email(raw)?.match_key,
        "email_local" => email_local(&normalize::email(raw)?.match_key)?.to_string(),
        "phone" => normalize::phone(raw, region)?.as_str().to_string(),
        "phone_last7" => phone_last7(normalize::phone(raw, region)?.as_str())?.to_string(),
        "year" => raw.chars().filter(char::is_ascii_digit).take(4).collect(),
        "digits" => raw.chars().filter(char::is_ascii_digit).collect(),
        _ => return None,
    };
    (!key.is_empty()).then_some(key)
}

/// Per field of `table`: whether every pair `rule` brings agrees on it, because one of the rule's
/// keys is the field's whole normalised value (`postal_code`, `city`, `last_name:exact`,
/// `phone:phone`, `email:email_key`). A phonetic code, an initial or a prefix leaves the field's
/// comparison open, and so does a rule whose key parts may come in either order.
///
/// Scoring such a pair counts the agreement once, in the rule's prior (the share of matches among
/// the rule's pairs, which falls as the table grows and namesakes crowd each postcode), not a
/// second time as the field's match weight: counted twice, ten namesakes in one postcode would
/// each look like a certain match, however many of them the table holds.
pub fn settled_fields(rule: &BlockingRule, table: &PreparedTable) -> Vec<bool> {
    let mut settled = vec![false; table.fields.len()];
    if rule.unordered {
        return settled;
    }
    for (field, transform) in rule.key_parts() {
        let Some(f) = table.fields.iter().position(|x| x.name == field) else {
            continue;
        };
        settled[f] |= match (table.fields[f].kind, transform) {
            (FieldKind::Phone, "phone") | (FieldKind::Email, "email_key") => true,
            (FieldKind::Phone | FieldKind::Email, _) => false,
            (_, "exact") => true,
            _ => false,
        };
    }
    settled
}

/// Per field of `table`: whether `rule`'s key reads a name in it (its whole value, a phonetic
/// code, an initial). With swappable names, a key on one name reads the other too, as either may
/// hold the value.
///
/// Among a rule's pairs such a name agrees (or nearly) for duplicates and for the namesakes the
/// key joins alike, and the larger the table, the more namesakes: estimation leaves the name out
/// of that rule's pairs, as Splink leaves a training rule's own columns out, so the rule's prior
/// is judged by what tells namesakes apart (phone, email, place). Counted in, a rule on names
/// read the namesakes crowding its blocks in a million contacts as duplicates (its prior went to
/// 0.9997), because under any u but the rule's own, a shared name looks like evidence.
/// Identifiers and places stay in: strangers share a phone or an inbox only in a household or a
/// team, however large the table, and a place's crowding is what [`Crowding`] counts. (Leaving
/// them out too cost FEBRL2 and 3 a pair of dates of birth each.)
pub fn keyed_fields(rule: &BlockingRule, table: &PreparedTable) -> Vec<bool> {
    let mut keyed = vec![false; table.fields.len()];
    for (field, _) in rule.key_parts() {
        if let Some(f) = table.fields.iter().position(|x| x.name == field) {
            if !matches!(
                table.fields[f].kind,
                FieldKind::GivenName | FieldKind::FamilyName
            ) {
                continue;
            }
            keyed[f] = true;
            if let Some((a, b)) = table.swap
                && (f == a || f == b)
            {
                keyed[a] = true;
                keyed[b] = true;
            }
        }
    }
    keyed
}

/// The local part of an email's match key as a key: long enough to name someone (`jsmith`, not `jo`),
/// so a domain typo or a second provider (`karen.russell@yaho.com`) still meets its record.
pub(super) fn email_local(match_key: &str) -> Option<&str> {
    let local = normalize::local_of_match_key(match_key);
    (local.chars().count() >= 4).then_some(local)
}

/// The last seven digits of a phone (its E.164 form or digits) as a key: a national form read
/// in the wrong region, or a country code one record lacks, still meets the number it is.
pub(super) fn phone_last7(phone: &str) -> Option<&str> {
    (phone.len() >= 7).then(|| normalize::last7_of(phone))
}
