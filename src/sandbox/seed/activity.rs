//! Tasks, notes and appointments hanging off the contacts.

use super::ids::{ghl_id, instant_between};
use super::{SeedAppointment, SeedContact, SeedNote, SeedTask};
use chrono::{DateTime, Duration, DurationRound, Utc};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

const TASK_TITLES: &[&str] = &[
    "Call back",
    "Send quote",
    "Follow up on estimate",
    "Confirm appointment",
    "Send contract",
    "Check in after service",
    "Ask for a review",
    "Collect payment",
];

const NOTE_BODIES: &[&str] = &[
    "Called, left voicemail.",
    "Interested in the spring special, wants a call next week.",
    "Prefers text over calls.",
    "Spoke with spouse; decision maker is out of town until Friday.",
    "Asked about financing options, sent the \"12 months, 0%\" brochure.",
    "Wrong number on file? Person answering said \"no one by that name\".",
    "Booked consultation.\nBring photos of the damage.",
    "Not interested right now, try again in 3 months.",
    "Referred by a neighbour, mention the referral discount.",
    "Paid deposit, 50% balance due on completion.",
];

const APPOINTMENT_TITLES: &[&str] = &[
    "Consultation",
    "Estimate visit",
    "Follow-up call",
    "Service appointment",
    "Demo",
];

/// Tasks, notes and appointments of the contacts.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    pub(crate) tasks: Vec<SeedTask>,
    pub(crate) notes: Vec<SeedNote>,
    pub(crate) appointments: Vec<SeedAppointment>,
}

/// About 30 % of contacts get 1-3 tasks, 30 % 1-3 notes, 10 % an appointment.
pub(crate) fn generate(
    contacts: &[SeedContact],
    now: DateTime<Utc>,
    rng: &mut ChaCha8Rng,
) -> Activity {
    // A small team works the location; its users and calendars are ids like any other.
    let users: Vec<String> = (0..5).map(|_| ghl_id(rng)).collect();
    let calendars: Vec<String> = (0..3).map(|_| ghl_id(rng)).collect();
    let mut activity = Activity {
        tasks: Vec::with_capacity(contacts.len() * 6 / 10),
        notes: Vec::with_capacity(contacts.len() * 6 / 10),
        appointments: Vec::with_capacity(contacts.len() / 9),
    };
    for contact in contacts {
        if rng.random_bool(0.3) {
            for _ in 0..rng.random_range(1..=3) {
                let due_date =
                    instant_between(now - Duration::days(60), now + Duration::days(30), rng);
                let completed = rng.random_bool(if due_date < now { 0.7 } else { 0.1 });
                activity.tasks.push(SeedTask {
                    id: ghl_id(rng),
                    contact_id: contact.id.clone(),
                    title: TASK_TITLES[rng.random_range(0..TASK_TITLES.len())].to_string(),
                    body: rng
                        .random_bool(0.5)
                        .then(|| NOTE_BODIES[rng.random_range(0..NOTE_BODIES.len())].to_string()),
                    due_date,
                    completed,
                    assigned_to: rng
                        .random_bool(0.8)
                        .then(|| users[rng.random_range(0..users.len())].clone()),
                });
            }
        }
        if rng.random_bool(0.3) {
            for _ in 0..rng.random_range(1..=3) {
                activity.notes.push(SeedNote {
                    id: ghl_id(rng),
                    contact_id: contact.id.clone(),
                    body: NOTE_BODIES[rng.random_range(0..NOTE_BODIES.len())].to_string(),
                    user_id: rng
                        .random_bool(0.9)
                        .then(|| users[rng.random_range(0..users.len())].clone()),
                    date_added: instant_between(contact.date_added, now, rng),
                });
            }
        }
        if rng.random_bool(0.1) {
            let start = instant_between(now - Duration::days(90), now + Duration::days(30), rng)
                .duration_trunc(Duration::minutes(30))
                .expect("30 minutes divides a timestamp");
            let status = if start > now {
                ["confirmed", "new"][rng.random_range(0..2)]
            } else {
                ["showed", "showed", "noshow", "cancelled", "confirmed"][rng.random_range(0..5)]
            };
            let booked = instant_between(contact.date_added.min(start), start.min(now), rng);
            activity.appointments.push(SeedAppointment {
                id: ghl_id(rng),
                contact_id: contact.id.clone(),
                calendar_id: calendars[rng.random_range(0..calendars.len())].clone(),
                title: APPOINTMENT_TITLES[rng.random_range(0..APPOINTMENT_TITLES.len())]
                    .to_string(),
                appointment_status: status.to_string(),
                start_time: start,
                end_time: start + Duration::minutes([30, 60][rng.random_range(0..2)]),
                date_added: booked,
            });
        }
    }
    activity
}
