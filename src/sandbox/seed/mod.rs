//! Seeded data: realistic contacts with planted duplicates and look-alikes, their ground truth, and
//! the tasks, notes, appointments and SMS history that hang off them.
//!
//! The records here are neutral (not in either API's wire shape); each emulator turns them into its
//! own objects. Generation is deterministic for a seed and linear in size.
//!
//! # Documented choices
//! Neither vendor says what a CRM's data looks like; these are the generator's choices.
//! - Persons are drawn in groups: most alone, some as look-alike groups of distinct persons
//!   ([`LookalikeKind`]): households (shared last name, street address and home phone), namesakes
//!   (same first and last name; a third of them in the same city), colleagues sharing an office
//!   inbox (`info@`, `office@` ...), twins (same last name, birth date, city and email domain) and
//!   Jr./Sr. pairs (same name and address).
//! - 20 % of persons get 2-4 records (2: 60 %, 3: 28 %, 4: 12 %); the last person is cut short so
//!   that exactly `spec.contacts` records exist. A person's first record is clean; each further
//!   record varies its name (nickname, typo, swap, case, whitespace, initial, accents dropped,
//!   missing last name), email (case, `+tag`, Gmail dots, typo, another address, missing), phone
//!   (another format, another number, missing), company, address (moved, missing) and its own
//!   source, tags and dates, each independently.
//! - Personal emails and phone numbers are unique per person, except the shared inboxes and the
//!   shared home phones of households and some Jr./Sr. pairs.
//! - Records are shuffled, so duplicates are not adjacent; `truth[i]` belongs to `contacts[i]`.
//! - Contact, task, note, appointment, business, user and calendar ids are 20 random characters of
//!   `[0-9A-Za-z]` (GHL's shape); collisions are not checked (62^20 makes them negligible).
//! - Dates: `date_added` uniform over the 730 days before `spec.now`, `date_updated` between it and
//!   now (equal for 40 % of records), millisecond precision.
//! - SMS history covers the 180 days before `spec.now`. Message ids are
//!   `1_415_000_000_000_000_000 + (ms since the window start) << 22 + sequence`, the snowflake shape
//!   of the observed ids, so they ascend with submission date.
//! - About 3.5 % of reachable numbers reply STOP (capped at a quarter of the message budget); each
//!   STOP is a RECEIVED reply to a DELIVERED send, the number is on `blocked_numbers`, and later
//!   sends to it are `FAILED.BLOCKED`. Replies only go to the long-number sender, never to the
//!   alphanumeric one ("ACME"). About 1 % of messages are inbound from numbers of no contact.
//! - GHL's DND state is set independently of the STOP replies: syncing the two is the pipeline's job.
//! - The account's own senders are `14155550100` and `14155550199` (the fictional 555-01xx range)
//!   and the alphanumeric `ACME`; unknown inbound numbers are US mobiles of no person.
//! - Custom fields are the fixed [`CUSTOM_FIELDS`]; the location's 5 users and 3 calendars (task
//!   assignees, note authors, appointment calendars) get seed-dependent ids.
//! - Name lists are embedded (`data/*.txt`) by origin, sampled Zipf-like by rank (exponent 0.8) so
//!   namesakes occur naturally; about 1.5 % of persons have Chinese- or Cyrillic-script names.
//! - CSV export: RFC 4180 quoting, also for fields with leading or trailing whitespace (which is
//!   part of the data); an absent value and an empty string are both an empty field.

use chrono::{DateTime, Utc};
use serde::Serialize;

mod activity;
mod companies;
mod export;
mod generate;
mod ids;
mod messages;
mod names;
mod people;
mod places;
mod sampling;
mod variants;

pub use export::{CONTACTS_CSV_HEADER, write_contacts_csv, write_truth_csv};
pub use generate::{generate, generate_with_summary};

/// What to generate.
#[derive(Debug, Clone)]
pub struct SeedSpec {
    /// RNG seed: the same spec always gives the same data.
    pub seed: u64,
    /// Number of GHL contact records (duplicates included).
    pub contacts: usize,
    /// Number of BulkSMS messages (sent and received).
    pub messages: usize,
    /// "Now" for the generated dates (everything is in the past of it).
    pub now: DateTime<Utc>,
}

/// Everything seeded into both emulators.
#[derive(Debug, Clone, Default)]
pub struct SeedData {
    /// The GHL location's contacts.
    pub contacts: Vec<SeedContact>,
    /// Tasks of those contacts.
    pub tasks: Vec<SeedTask>,
    /// Notes of those contacts.
    pub notes: Vec<SeedNote>,
    /// Appointments of those contacts.
    pub appointments: Vec<SeedAppointment>,
    /// BulkSMS message history, ids ascending.
    pub messages: Vec<SeedMessage>,
    /// Numbers on the BulkSMS blocked list (digits, no `+`).
    pub blocked_numbers: Vec<String>,
    /// Which real person each contact record stands for.
    pub truth: Vec<TruthRow>,
}

/// One row of `GET /_sandbox/truth`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TruthRow {
    /// The contact id.
    pub id: String,
    /// The person it stands for; records of one person share it.
    pub person: String,
}

/// A GHL contact record as entered (phones may be in any format: legacy imports keep what was typed).
#[derive(Debug, Clone, Default)]
pub struct SeedContact {
    pub id: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company_name: Option<String>,
    pub address1: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    /// ISO 3166 alpha-2.
    pub country: Option<String>,
    pub timezone: Option<String>,
    pub website: Option<String>,
    pub source: Option<String>,
    /// "lead" or "customer".
    pub contact_type: Option<String>,
    pub tags: Vec<String>,
    pub business_id: Option<String>,
    pub date_of_birth: Option<String>,
    /// (custom field id, value).
    pub custom_fields: Vec<(String, serde_json::Value)>,
    pub dnd: bool,
    /// SMS channel DND status: "active", "inactive" or "permanent"; None when never set.
    pub dnd_sms: Option<String>,
    pub date_added: DateTime<Utc>,
    pub date_updated: DateTime<Utc>,
}

/// A task of a contact.
#[derive(Debug, Clone)]
pub struct SeedTask {
    pub id: String,
    pub contact_id: String,
    pub title: String,
    pub body: Option<String>,
    pub due_date: DateTime<Utc>,
    pub completed: bool,
    pub assigned_to: Option<String>,
}

/// A note of a contact.
#[derive(Debug, Clone)]
pub struct SeedNote {
    pub id: String,
    pub contact_id: String,
    pub body: String,
    pub user_id: Option<String>,
    pub date_added: DateTime<Utc>,
}

/// An appointment of a contact.
#[derive(Debug, Clone)]
pub struct SeedAppointment {
    pub id: String,
    pub contact_id: String,
    pub calendar_id: String,
    pub title: String,
    /// "confirmed", "cancelled", "showed", "noshow", "new".
    pub appointment_status: String,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    pub date_added: DateTime<Utc>,
}

/// Direction of a BulkSMS message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedMessageType {
    Sent,
    Received,
}

/// A BulkSMS message already in the account's history.
#[derive(Debug, Clone)]
pub struct SeedMessage {
    /// Numeric id, ascending with submission date.
    pub id: u64,
    pub message_type: SeedMessageType,
    /// Digits without `+` (the API echoes them so).
    pub from: String,
    /// Digits without `+`.
    pub to: String,
    pub body: String,
    /// Final status type: DELIVERED, FAILED, SENT, ACCEPTED, UNKNOWN (RECEIVED messages: RECEIVED).
    pub status_type: String,
    /// FAILED subtype: EXPIRED, HANDSET_ERROR, BLOCKED, NOT_SENT.
    pub status_subtype: Option<String>,
    pub submission_date: DateTime<Utc>,
    pub user_supplied_id: Option<String>,
    /// For RECEIVED replies: the SENT message replied to.
    pub related_sent_message_id: Option<u64>,
}

/// Kinds of groups of distinct persons that look alike (a good dedupe keeps them apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LookalikeKind {
    /// 2-4 persons sharing last name, address and home phone.
    Household,
    /// 2-3 persons with the same first and last name.
    Namesakes,
    /// 2-4 colleagues whose records give the same office inbox.
    SharedInbox,
    /// Two siblings with the same last name, birth date, city and email domain.
    Twins,
    /// Father and son with the same name and address, Jr./Sr.
    JuniorSenior,
}

/// One planted look-alike group: the person ids in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LookalikeGroup {
    /// What the persons have in common.
    pub kind: LookalikeKind,
    /// Person ids (as in [`TruthRow::person`]).
    pub persons: Vec<String>,
}

/// What a generation planted, for benchmarks and tests (the data itself is in [`SeedData`]).
#[derive(Debug, Clone, Default, Serialize)]
pub struct SeedSummary {
    /// Distinct persons behind the contacts.
    pub persons: usize,
    /// Persons with more than one contact record.
    pub duplicated_persons: usize,
    /// Planted look-alike groups of distinct persons.
    pub lookalike_groups: Vec<LookalikeGroup>,
    /// Numbers that replied STOP (all on the blocked list).
    pub stop_repliers: usize,
    /// Inbound messages from numbers of no contact.
    pub unknown_inbound: usize,
}

/// A custom field the seeded location defines; contacts' `custom_fields` use these ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedCustomField {
    /// GHL-style field id.
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
    /// `contact.<key>` as GHL writes field keys.
    pub field_key: &'static str,
    /// GHL data type (TEXT, NUMERICAL, SINGLE_OPTIONS, DATE ...).
    pub data_type: &'static str,
}

/// The location's custom fields (fixed, so pipeline configs can name them).
pub const CUSTOM_FIELDS: &[SeedCustomField] = &[
    SeedCustomField {
        id: "cF7qLm2XbR9tUw4ZkA1e",
        name: "Budget",
        field_key: "contact.budget",
        data_type: "MONETORY",
    },
    SeedCustomField {
        id: "cF3nPz8VyH5sJd0GxC6r",
        name: "Preferred Language",
        field_key: "contact.preferred_language",
        data_type: "SINGLE_OPTIONS",
    },
    SeedCustomField {
        id: "cF9kWe1TqB7mNa2YhD4u",
        name: "Lead Score",
        field_key: "contact.lead_score",
        data_type: "NUMERICAL",
    },
    SeedCustomField {
        id: "cF5rXc6LpS3vKg8QjE0i",
        name: "Interested In",
        field_key: "contact.interested_in",
        data_type: "TEXT",
    },
    SeedCustomField {
        id: "cF2hMy4ZnU9bRt1WfG7o",
        name: "Last Visit",
        field_key: "contact.last_visit",
        data_type: "DATE",
    },
];
