//! Applying a create/update/upsert body to a contact, validated like GHL's DTOs: unknown
//! properties are refused with 422 "property X should not exist", phones are stored as E.164.

use super::state::Contact;
use serde_json::{Map, Value, json};

/// Properties of `CreateContactDto` (also `UpsertContactDto`, plus `createNewIfDuplicateAllowed`).
const CREATE_FIELDS: &[&str] = &[
    "firstName",
    "lastName",
    "name",
    "email",
    "locationId",
    "gender",
    "phone",
    "address1",
    "city",
    "state",
    "postalCode",
    "website",
    "timezone",
    "dnd",
    "dndSettings",
    "inboundDndSettings",
    "tags",
    "customFields",
    "source",
    "dateOfBirth",
    "country",
    "companyName",
    "assignedTo",
];

/// Properties of `UpdateContactDto`: no `locationId`, `gender` or `companyName`.
const UPDATE_FIELDS: &[&str] = &[
    "firstName",
    "lastName",
    "name",
    "email",
    "phone",
    "address1",
    "city",
    "state",
    "postalCode",
    "website",
    "timezone",
    "dnd",
    "dndSettings",
    "inboundDndSettings",
    "tags",
    "customFields",
    "source",
    "dateOfBirth",
    "country",
    "assignedTo",
];

/// Which DTO a body is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dto {
    Create,
    Upsert,
    Update,
}

/// Checks a body's property names; returns the 422 messages.
pub fn validate(body: &Map<String, Value>, dto: Dto) -> Vec<String> {
    let allowed = match dto {
        Dto::Create => CREATE_FIELDS,
        Dto::Upsert => CREATE_FIELDS,
        Dto::Update => UPDATE_FIELDS,
    };
    let mut errors: Vec<String> = body
        .keys()
        .filter(|k| {
            let upsert_only = dto == Dto::Upsert && k.as_str() == "createNewIfDuplicateAllowed";
            !(allowed.contains(&k.as_str()) || upsert_only)
        })
        .map(|k| format!("property {k} should not exist"))
        .collect();
    for key in ["tags"] {
        if let Some(v) = body.get(key)
            && !v.is_array()
        {
            errors.push(format!("{key} must be an array"));
        }
    }
    if let Some(email) = body.get("email").and_then(Value::as_str)
        && !email.is_empty()
        && !email.contains('@')
    {
        errors.push("email must be an email".into());
    }
    errors
}

/// Normalises a phone as GHL stores it: E.164, read with the contact's country (else US).
/// A number that cannot be read is kept as given (GHL's own validation is looser than ours).
pub fn normalise_phone(raw: &str, country: Option<&str>) -> String {
    use rlibphonenumber::enums::Region;
    use rlibphonenumber::{PHONE_NUMBER_UTIL, PhoneNumberFormat};
    let region = country
        .and_then(|c| Region::from_code(c).ok())
        .unwrap_or(Region::US);
    match PHONE_NUMBER_UTIL.parse(raw, Some(region)) {
        Ok(number) if number.is_valid() => number.format_as(PhoneNumberFormat::E164).to_string(),
        _ => raw.to_string(),
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Applies a validated body to a contact.
pub fn apply(contact: &mut Contact, body: &Map<String, Value>) {
    for (key, value) in body {
        match key.as_str() {
            "firstName" => contact.first_name = text(value),
            "lastName" => contact.last_name = text(value),
            "name" => {
                if let Some(name) = text(value)
                    && contact.first_name.is_none()
                    && contact.last_name.is_none()
                {
                    let mut parts = name.splitn(2, ' ');
                    contact.first_name = parts.next().map(str::to_string);
                    contact.last_name = parts.next().map(str::to_string);
                }
            }
            "email" => contact.email = text(value).map(|e| e.trim().to_string()),
            "phone" => {
                contact.phone = text(value).filter(|p| !p.trim().is_empty()).map(|p| {
                    normalise_phone(
                        &p,
                        body.get("country")
                            .and_then(Value::as_str)
                            .or(contact.country.as_deref()),
                    )
                })
            }
            "address1" => contact.address1 = text(value),
            "city" => contact.city = text(value),
            "state" => contact.state = text(value),
            "postalCode" => contact.postal_code = text(value),
            "website" => contact.website = text(value),
            "timezone" => contact.timezone = text(value),
            "source" => contact.source = text(value),
            "country" => contact.country = text(value),
            "companyName" => contact.company_name = text(value),
            "assignedTo" => contact.assigned_to = text(value),
            "dateOfBirth" => contact.date_of_birth = text(value),
            "dnd" => contact.dnd = value.as_bool().unwrap_or(false),
            "dndSettings" => {
                if let Some(map) = value.as_object() {
                    for (channel, setting) in map {
                        contact
                            .dnd_settings
                            .insert(channel.clone(), setting.clone());
                    }
                }
            }
            "tags" => {
                // On create and update `tags` replaces the whole list (GHL documents this trap).
                contact.tags = value
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect();
            }
            "customFields" => {
                for field in value.as_array().into_iter().flatten() {
                    let id = field
                        .get("id")
                        .or_else(|| field.get("key"))
                        .and_then(Value::as_str);
                    if let Some(id) = id {
                        let v = field.get("field_value").cloned().unwrap_or(Value::Null);
                        contact
                            .custom_fields
                            .retain(|f| f.get("id").and_then(Value::as_str) != Some(id));
                        contact.custom_fields.push(json!({"id": id, "value": v}));
                    }
                }
            }
            _ => {}
        }
    }
    contact.refresh_derived();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_refuses_fields_only_create_takes() {
        let body: Map<String, Value> =
            serde_json::from_value(json!({"companyName": "x", "firstName": "a"})).expect("map");
        assert_eq!(
            validate(&body, Dto::Update),
            vec!["property companyName should not exist".to_string()]
        );
        assert!(validate(&body, Dto::Create).is_empty());
    }

    #[test]
    fn phones_are_stored_as_e164() {
        assert_eq!(normalise_phone("(415) 555-0134", None), "+14155550134");
        assert_eq!(
            normalise_phone("020 7946 0018", Some("GB")),
            "+442079460018"
        );
        assert_eq!(normalise_phone("not a phone", None), "not a phone");
    }
}
