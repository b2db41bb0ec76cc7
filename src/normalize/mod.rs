//! Normalisers: phones to E.164, emails to a match key, names folded for comparison. Each keeps the
//! raw value; what is stored is never rewritten, only what is compared.
//!
//! Shared domain code, not a stage's: what an E.164 number or a folded name is must be the same for
//! the matcher, the transform stage, the migration's row checks and the micro-batch.

pub mod email;
pub mod name;
pub mod phone;

pub use email::{EmailKey, email, is_free_mail, local_of_match_key};
pub use name::*;
pub use phone::{
    PhoneKey, Region, contact_phone, country_region, last7_of, phone, phone_canonical, region,
};

use crate::snapshot::contact::SnapshotContact;
use crate::snapshot::contract::transform_outputs::NormalizedRow;

/// The contact table as the matcher compares it (`transform/normalized.parquet`); raw values stay
/// in the snapshot. Everything after this step that needs a contact's number reads it here.
pub fn contact_rows(contacts: &[SnapshotContact], region: Region) -> Vec<NormalizedRow> {
    contacts
        .iter()
        .map(|c| {
            let phone = contact_phone(c.phone.as_deref(), c.country.as_deref(), region);
            let email = c.email.as_deref().and_then(email);
            let fold = |v: &Option<String>| v.as_deref().map(name).filter(|n| !n.is_empty());
            NormalizedRow {
                id: c.id.clone(),
                first_name: fold(&c.first_name),
                last_name: fold(&c.last_name),
                email: email.as_ref().map(|e| e.address.clone()),
                email_match_key: email.map(|e| e.match_key),
                phone_raw: c.phone.clone(),
                phone_e164: match &phone {
                    Some(PhoneKey::E164(e)) => Some(e.clone()),
                    _ => None,
                },
                phone_unparsed: matches!(phone, Some(PhoneKey::Digits(_))),
                company: fold(&c.company_name),
                city: fold(&c.city),
                postal_code: c.postal_code.as_deref().map(|p| p.trim().to_uppercase()),
                country: c.country.as_deref().map(|p| p.trim().to_uppercase()),
                // Set by the transform, which knows the previous run's data times.
                data_updated: None,
            }
        })
        .collect()
}

/// The digits a contact's number is linked by: its E.164 digits, or the digits of a number that
/// did not parse; `None` when it has no number.
pub fn link_digits(row: &NormalizedRow) -> Option<String> {
    match (&row.phone_e164, &row.phone_raw) {
        (Some(e164), _) => Some(crate::snapshot::phone::digits(e164)),
        (None, Some(raw)) if row.phone_unparsed => Some(crate::snapshot::phone::digits(raw)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contacts_link_digits_are_its_parsed_phones_digits() {
        // Linking reads normalized.parquet's columns instead of parsing the phone again: for
        // parsed, unparsed, national-in-another-country and missing numbers alike, the digits
        // must be those of the phone as contact_phone reads it.
        let cases: [(Option<&str>, Option<&str>); 6] = [
            (Some("(415) 555-0134"), None),
            (Some("07911 123456"), Some("UK")),
            (Some("+44 7911 123456"), Some("US")),
            (Some("12-34-56"), None),
            (Some("call me"), None),
            (None, Some("US")),
        ];
        let contacts: Vec<SnapshotContact> = cases
            .iter()
            .enumerate()
            .map(|(i, (phone, country))| SnapshotContact {
                id: format!("c{i}"),
                phone: phone.map(str::to_string),
                country: country.map(str::to_string),
                ..SnapshotContact::default()
            })
            .collect();
        let rows = contact_rows(&contacts, Region::US);
        for ((phone, country), row) in cases.iter().zip(&rows) {
            let parsed = contact_phone(*phone, *country, Region::US);
            assert_eq!(
                link_digits(row),
                parsed.map(|p| crate::snapshot::phone::digits(p.as_str())),
                "{phone:?} in {country:?}"
            );
        }
        assert_eq!(link_digits(&rows[1]).as_deref(), Some("447911123456"));
        assert_eq!(link_digits(&rows[3]).as_deref(), Some("123456"));
        assert_eq!(link_digits(&rows[5]), None);
    }
}
