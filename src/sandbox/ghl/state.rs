//! The emulated location's data: contacts (in their API shape), tasks, notes, appointments, and
//! the indexes that let search page in O(page) rather than O(contacts).

use crate::sandbox::seed::{SeedAppointment, SeedContact, SeedNote, SeedTask};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::{BTreeSet, HashMap};

/// ISO-8601 with milliseconds and `Z`, as GHL writes dates.
pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A contact as the API returns it.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    pub id: String,
    pub location_id: String,
    pub contact_name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub first_name_lower_case: Option<String>,
    pub last_name_lower_case: Option<String>,
    pub email: Option<String>,
    pub email_lower_case: Option<String>,
    pub phone: Option<String>,
    pub company_name: Option<String>,
    pub address1: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
    pub timezone: Option<String>,
    pub website: Option<String>,
    pub source: Option<String>,
    #[serde(rename = "type")]
    pub contact_type: Option<String>,
    pub assigned_to: Option<String>,
    pub tags: Vec<String>,
    pub custom_fields: Vec<Value>,
    pub dnd: bool,
    pub dnd_settings: Map<String, Value>,
    pub business_id: Option<String>,
    pub date_of_birth: Option<String>,
    pub additional_emails: Vec<Value>,
    pub additional_phones: Vec<Value>,
    pub date_added: String,
    pub date_updated: String,
    #[serde(skip)]
    pub date_added_ms: i64,
    #[serde(skip)]
    pub date_updated_ms: i64,
    /// When the search index shows this version (writes reach search after a lag).
    #[serde(skip)]
    pub searchable_from_ms: i64,
}

impl Contact {
    /// Recomputes the derived fields (lower-case copies, contact name) after a write.
    pub fn refresh_derived(&mut self) {
        self.first_name_lower_case = self.first_name.as_ref().map(|s| s.to_lowercase());
        self.last_name_lower_case = self.last_name.as_ref().map(|s| s.to_lowercase());
        self.email_lower_case = self.email.as_ref().map(|s| s.to_lowercase());
        let name = [self.first_name.as_deref(), self.last_name.as_deref()]
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        self.contact_name = (!name.is_empty()).then_some(name);
    }

    /// The API JSON of this contact.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("Contact serialises")
    }

    /// The JSON of this contact in a list answer (search, the duplicate search, the deprecated
    /// list, contacts of a business): without `dnd` and `dndSettings`, which only
    /// `GET /contacts/{id}` carries (integrators report search answering without them:
    /// highlevel-api-docs issue 43; the list schema of the spec has neither).
    pub fn to_list_json(&self) -> Value {
        let mut json = self.to_json();
        if let Some(map) = json.as_object_mut() {
            map.remove("dnd");
            map.remove("dndSettings");
        }
        json
    }

    /// True when the SMS channel is opted out.
    pub fn sms_dnd(&self) -> bool {
        self.dnd
            || self
                .dnd_settings
                .get("SMS")
                .and_then(|s| s.get("status"))
                .and_then(Value::as_str)
                .is_some_and(|s| s == "active" || s == "permanent")
    }
}

/// A task.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub id: String,
    pub contact_id: String,
    pub title: String,
    pub body: Option<String>,
    pub assigned_to: Option<String>,
    pub due_date: String,
    pub completed: bool,
}

/// A note.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Note {
    pub id: String,
    pub contact_id: String,
    pub body: String,
    pub user_id: Option<String>,
    pub date_added: String,
}

/// An appointment (`events[]`), with the fields of the spec's `GetEventSchema`. Its times are
/// written as the spec's examples are, "2021-07-16 11:00:00" with no zone (the sandbox's are UTC),
/// not ISO-8601 like the rest of the API.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Appointment {
    pub id: String,
    pub calendar_id: String,
    pub location_id: String,
    pub contact_id: String,
    pub group_id: Option<String>,
    pub title: String,
    pub status: String,
    pub appointment_status: String,
    pub assigned_user_id: Option<String>,
    pub users: Vec<String>,
    pub assigned_resources: Vec<String>,
    pub notes: Option<String>,
    pub address: Option<String>,
    pub start_time: String,
    pub end_time: String,
    pub date_added: String,
    pub date_updated: String,
}

/// An event time as `GET /contacts/{id}/appointments` writes it: "2021-07-16 11:00:00".
pub fn event_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// The location's data.
#[derive(Debug, Default)]
pub struct GhlState {
    pub contacts: HashMap<String, Contact>,
    /// (dateUpdated ms, id) of every contact: the order incremental readers page in.
    pub by_updated: BTreeSet<(i64, String)>,
    /// (dateAdded ms, id) of every contact: the default sort.
    pub by_added: BTreeSet<(i64, String)>,
    pub tasks: HashMap<String, Vec<Task>>,
    pub notes: HashMap<String, Vec<Note>>,
    pub appointments: HashMap<String, Vec<Appointment>>,
    pub location_id: String,
    /// Lower-cased email → (dateAdded ms, id), for duplicate search.
    pub by_email: HashMap<String, BTreeSet<(i64, String)>>,
    /// [`phone_key`] → (dateAdded ms, id), for duplicate search.
    pub by_phone: HashMap<String, BTreeSet<(i64, String)>>,
    /// Bumped on every write (search caches its totals per version).
    pub version: u64,
}

/// The key duplicate search compares phones by: the last ten digits. It matches national,
/// international and punctuated forms of one number without parsing a million numbers at start-up
/// (documented choice; numbers differing only in country code collide, which is rare).
pub fn phone_key(raw: &str) -> Option<String> {
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 6 {
        return None;
    }
    Some(digits[digits.len().saturating_sub(10)..].to_string())
}

impl GhlState {
    /// Builds the location from seed records.
    pub fn from_seed(
        location_id: &str,
        contacts: &[SeedContact],
        tasks: &[SeedTask],
        notes: &[SeedNote],
        appointments: &[SeedAppointment],
    ) -> Self {
        let mut state = GhlState {
            location_id: location_id.to_string(),
            ..GhlState::default()
        };
        for seed in contacts {
            state.insert(contact_from_seed(location_id, seed));
        }
        for t in tasks {
            state
                .tasks
                .entry(t.contact_id.clone())
                .or_default()
                .push(Task {
                    id: t.id.clone(),
                    contact_id: t.contact_id.clone(),
                    title: t.title.clone(),
                    body: t.body.clone(),
                    assigned_to: t.assigned_to.clone(),
                    due_date: iso(t.due_date),
                    completed: t.completed,
                });
        }
        for n in notes {
            state
                .notes
                .entry(n.contact_id.clone())
                .or_default()
                .push(Note {
                    id: n.id.clone(),
                    contact_id: n.contact_id.clone(),
                    body: n.body.clone(),
                    user_id: n.user_id.clone(),
                    date_added: iso(n.date_added),
                });
        }
        for a in appointments {
            state
                .appointments
                .entry(a.contact_id.clone())
                .or_default()
                .push(Appointment {
                    id: a.id.clone(),
                    calendar_id: a.calendar_id.clone(),
                    location_id: location_id.to_string(),
                    contact_id: a.contact_id.clone(),
                    group_id: None,
                    title: a.title.clone(),
                    status: a.appointment_status.clone(),
                    appointment_status: a.appointment_status.clone(),
                    assigned_user_id: None,
                    users: Vec::new(),
                    assigned_resources: Vec::new(),
                    notes: None,
                    address: None,
                    start_time: event_time(a.start_time),
                    end_time: event_time(a.end_time),
                    date_added: event_time(a.date_added),
                    date_updated: event_time(a.date_added),
                });
        }
        state
    }

    /// Adds or replaces a contact, keeping the indexes in step.
    pub fn insert(&mut self, contact: Contact) {
        self.version += 1;
        if let Some(old) = self.contacts.remove(&contact.id) {
            self.unindex(&old);
        }
        self.by_updated
            .insert((contact.date_updated_ms, contact.id.clone()));
        self.by_added
            .insert((contact.date_added_ms, contact.id.clone()));
        let key = (contact.date_added_ms, contact.id.clone());
        if let Some(email) = &contact.email_lower_case {
            self.by_email
                .entry(email.clone())
                .or_default()
                .insert(key.clone());
        }
        if let Some(phone) = contact.phone.as_deref().and_then(phone_key) {
            self.by_phone.entry(phone).or_default().insert(key);
        }
        self.contacts.insert(contact.id.clone(), contact);
    }

    fn unindex(&mut self, old: &Contact) {
        let key = (old.date_added_ms, old.id.clone());
        self.by_updated
            .remove(&(old.date_updated_ms, old.id.clone()));
        self.by_added.remove(&key);
        if let Some(email) = &old.email_lower_case
            && let Some(set) = self.by_email.get_mut(email)
        {
            set.remove(&key);
        }
        if let Some(phone) = old.phone.as_deref().and_then(phone_key)
            && let Some(set) = self.by_phone.get_mut(&phone)
        {
            set.remove(&key);
        }
    }

    /// Removes a contact and what hangs off it.
    pub fn remove(&mut self, id: &str) -> Option<Contact> {
        let old = self.contacts.remove(id)?;
        self.version += 1;
        self.unindex(&old);
        self.tasks.remove(id);
        self.notes.remove(id);
        self.appointments.remove(id);
        Some(old)
    }

    /// The whole state in API shapes, sorted by id (for `/_sandbox/state`).
    pub fn to_json(&self) -> Value {
        let mut contacts: Vec<&Contact> = self.contacts.values().collect();
        contacts.sort_by(|a, b| a.id.cmp(&b.id));
        let mut tasks: Vec<&Task> = self.tasks.values().flatten().collect();
        tasks.sort_by(|a, b| a.id.cmp(&b.id));
        let mut notes: Vec<&Note> = self.notes.values().flatten().collect();
        notes.sort_by(|a, b| a.id.cmp(&b.id));
        json!({"contacts": contacts, "tasks": tasks, "notes": notes})
    }
}

/// A seeded record in the API shape. Phones stay as seeded: legacy imports keep what was typed.
pub fn contact_from_seed(location_id: &str, seed: &SeedContact) -> Contact {
    let mut dnd_settings = Map::new();
    if let Some(status) = &seed.dnd_sms {
        dnd_settings.insert(
            "SMS".into(),
            json!({"status": status, "message": "", "code": ""}),
        );
    }
    let mut contact = Contact {
        id: seed.id.clone(),
        location_id: location_id.to_string(),
        contact_name: None,
        first_name: seed.first_name.clone(),
        last_name: seed.last_name.clone(),
        first_name_lower_case: None,
        last_name_lower_case: None,
        email: seed.email.clone(),
        email_lower_case: None,
        phone: seed.phone.clone(),
        company_name: seed.company_name.clone(),
        address1: seed.address1.clone(),
        city: seed.city.clone(),
        state: seed.state.clone(),
        postal_code: seed.postal_code.clone(),
        country: seed.country.clone(),
        timezone: seed.timezone.clone(),
        website: seed.website.clone(),
        source: seed.source.clone(),
        contact_type: seed.contact_type.clone(),
        assigned_to: None,
        tags: seed.tags.clone(),
        custom_fields: seed
            .custom_fields
            .iter()
            .map(|(id, value)| json!({"id": id, "value": value}))
            .collect(),
        dnd: seed.dnd,
        dnd_settings,
        business_id: seed.business_id.clone(),
        date_of_birth: seed.date_of_birth.clone(),
        additional_emails: Vec::new(),
        additional_phones: Vec::new(),
        date_added: iso(seed.date_added),
        date_updated: iso(seed.date_updated),
        date_added_ms: seed.date_added.timestamp_millis(),
        date_updated_ms: seed.date_updated.timestamp_millis(),
        searchable_from_ms: 0,
    };
    contact.refresh_derived();
    contact
}
