//! Seeded data: realistic contacts with planted duplicates and look-alikes, their ground truth, and
//! the tasks, notes, appointments and SMS history that hang off them.
//!
//! The records here are neutral (not in either API's wire shape); each emulator turns them into its
//! own objects. Generation is deterministic for a seed and linear in size.

use chrono::{DateTime, Utc};
use serde::Serialize;

mod generate;
pub use generate::generate;

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

mod export;
mod names;
pub use export::{write_contacts_csv, write_truth_csv};
