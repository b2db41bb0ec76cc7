//! The contact fields the pipeline reads, compares, merges and writes, by one name: survivorship,
//! the golden records, the diff against GHL and the migration all go through [`ContactField`]
//! instead of each matching on field-name strings.

use crate::snapshot::contact::SnapshotContact;
use crate::snapshot::desired::DesiredContact;

/// A contact's data field (tags, DND, notes and custom fields are not data fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ContactField {
    FirstName,
    LastName,
    Email,
    Phone,
    CompanyName,
    City,
    PostalCode,
    Country,
    Source,
}

use ContactField::*;

impl ContactField {
    /// Every data field, in the snapshot's column order: a change to any of them is a change of
    /// the contact's data.
    pub const ALL: [ContactField; 9] = [
        FirstName,
        LastName,
        Email,
        Phone,
        CompanyName,
        City,
        PostalCode,
        Country,
        Source,
    ];

    /// The fields a golden record is built from (all but the source).
    pub const GOLDEN: [ContactField; 8] = [
        FirstName,
        LastName,
        Email,
        Phone,
        CompanyName,
        City,
        PostalCode,
        Country,
    ];

    /// The field's name in the snapshot, the desired state and the golden records.
    pub const fn name(self) -> &'static str {
        match self {
            FirstName => "first_name",
            LastName => "last_name",
            Email => "email",
            Phone => "phone",
            CompanyName => "company_name",
            City => "city",
            PostalCode => "postal_code",
            Country => "country",
            Source => "source",
        }
    }

    /// The field of a snapshot name; `None` for a name that is no data field.
    pub fn from_name(name: &str) -> Option<ContactField> {
        ContactField::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The field's name in GHL's contact API.
    pub fn api_name(self) -> &'static str {
        match self {
            FirstName => "firstName",
            LastName => "lastName",
            Email => "email",
            Phone => "phone",
            CompanyName => "companyName",
            City => "city",
            PostalCode => "postalCode",
            Country => "country",
            Source => "source",
        }
    }

    /// Whether an update (`PUT /contacts/{id}`) can write the field: every one but the company,
    /// which GHL's update leaves as it is. The diff plans only these, and the transform predicts
    /// the next run's contacts with only these changed.
    pub fn update_can_write(self) -> bool {
        self != CompanyName
    }

    /// Email and phone identify a contact in GHL (its duplicate rule): they are never moved from
    /// one contact to another.
    pub fn is_identity(self) -> bool {
        matches!(self, Email | Phone)
    }

    /// The field's value on a snapshot contact.
    pub fn of_contact(self, c: &SnapshotContact) -> &Option<String> {
        match self {
            FirstName => &c.first_name,
            LastName => &c.last_name,
            Email => &c.email,
            Phone => &c.phone,
            CompanyName => &c.company_name,
            City => &c.city,
            PostalCode => &c.postal_code,
            Country => &c.country,
            Source => &c.source,
        }
    }

    /// The field's slot on a snapshot contact.
    pub fn of_contact_mut(self, c: &mut SnapshotContact) -> &mut Option<String> {
        match self {
            FirstName => &mut c.first_name,
            LastName => &mut c.last_name,
            Email => &mut c.email,
            Phone => &mut c.phone,
            CompanyName => &mut c.company_name,
            City => &mut c.city,
            PostalCode => &mut c.postal_code,
            Country => &mut c.country,
            Source => &mut c.source,
        }
    }

    /// The field's wanted value in the desired state.
    pub fn of_desired(self, d: &DesiredContact) -> &Option<String> {
        match self {
            FirstName => &d.first_name,
            LastName => &d.last_name,
            Email => &d.email,
            Phone => &d.phone,
            CompanyName => &d.company_name,
            City => &d.city,
            PostalCode => &d.postal_code,
            Country => &d.country,
            Source => &d.source,
        }
    }

    /// The field's slot in the desired state.
    pub fn of_desired_mut(self, d: &mut DesiredContact) -> &mut Option<String> {
        match self {
            FirstName => &mut d.first_name,
            LastName => &mut d.last_name,
            Email => &mut d.email,
            Phone => &mut d.phone,
            CompanyName => &mut d.company_name,
            City => &mut d.city,
            PostalCode => &mut d.postal_code,
            Country => &mut d.country,
            Source => &mut d.source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_reach_the_same_slot_everywhere() {
        let mut contact = SnapshotContact::default();
        let mut desired = DesiredContact::default();
        for field in ContactField::ALL {
            assert_eq!(ContactField::from_name(field.name()), Some(field));
            *field.of_contact_mut(&mut contact) = Some(field.api_name().to_string());
            *field.of_desired_mut(&mut desired) = Some(field.name().to_string());
        }
        assert_eq!(contact.company_name.as_deref(), Some("companyName"));
        assert_eq!(contact.postal_code.as_deref(), Some("postalCode"));
        assert_eq!(desired.first_name.as_deref(), Some("first_name"));
        assert_eq!(desired.source.as_deref(), Some("source"));
        for field in ContactField::ALL {
            assert_eq!(contact.field(field.name()), Some(field.api_name()));
            assert_eq!(field.of_desired(&desired).as_deref(), Some(field.name()));
        }
        assert_eq!(ContactField::from_name("tags"), None);
    }

    #[test]
    fn an_update_writes_every_field_but_the_company() {
        let writable: Vec<_> = ContactField::ALL
            .into_iter()
            .filter(|f| !f.update_can_write())
            .collect();
        assert_eq!(writable, vec![ContactField::CompanyName]);
    }
}
