//! BulkSMS history: sends to the contacts' numbers with their final statuses, replies, STOP
//! opt-outs (and the blocked list they produce), and inbound texts from unknown numbers.

use super::people::PersonFactory;
use super::places::{Country, Phone, PlaceTables};
use super::sampling::pick_weighted;
use super::{SeedMessage, SeedMessageType, SeedSpec};
use chrono::{DateTime, Duration, DurationRound, Utc};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

/// First message id: the size of the ids observed on the live API.
const FIRST_MESSAGE_ID: u64 = 1_415_000_000_000_000_000;

/// Low bits of an id left for a sequence within one millisecond (the observed ids' snowflake shape).
const SEQUENCE_BITS: u32 = 22;

/// How far back the SMS history goes.
const HISTORY_DAYS: i64 = 180;

/// Share of reachable numbers that reply STOP.
const STOP_SHARE: f64 = 0.035;

/// The account's senders: two long numbers people can reply to, and an alphanumeric id they cannot.
const SENDERS: &[(&str, u32)] = &[("14155550100", 45), ("14155550199", 25), ("ACME", 30)];

const SENT_BODIES: &[&str] = &[
    "Hi {first}, this is ACME Home Services. Your appointment is confirmed for tomorrow. Reply STOP to opt out.",
    "{first}, spring special: 20% off all services this week! Reply STOP to unsubscribe.",
    "Hi {first}, just following up on your estimate. Any questions? Reply here.",
    "Reminder: your appointment is today at 3:00 PM. Reply C to confirm.",
    "Thanks for choosing us, {first}! Could you leave us a review? https://g.page/r/acme 🙏",
];

const REPLY_BODIES: &[&str] = &[
    "Yes",
    "C",
    "Thanks!",
    "What time?",
    "Can we move it to Friday?",
    "Who is this?",
    "ok 👍",
    "Call me please",
];

const STOP_BODIES: &[&str] = &["STOP", "Stop", "stop"];

const LEAD_BODIES: &[&str] = &[
    "Hi, I saw your ad, how much for a quote?",
    "Is this the roofing company?",
    "Do you have availability this weekend?",
    "Please call me back about an estimate",
];

const CAMPAIGNS: &[&str] = &["spring-promo", "reminder", "review-ask", "followup"];

/// A number messages can be sent to, and the name to greet.
#[derive(Debug, Clone)]
pub(crate) struct Reachable {
    /// E.164 digits without `+`.
    pub(crate) number: String,
    pub(crate) first_name: &'static str,
}

/// The generated history.
#[derive(Debug, Default)]
pub(crate) struct History {
    pub(crate) messages: Vec<SeedMessage>,
    pub(crate) blocked_numbers: Vec<String>,
    pub(crate) unknown_inbound: usize,
}

/// A message before ids are assigned (`related` is an index into the drafts).
struct Draft {
    at: DateTime<Utc>,
    message: SeedMessage,
    related: Option<usize>,
}

/// Exactly `spec.messages` messages over the last 180 days, ids ascending with submission date.
pub(crate) fn generate(
    reachable: &[Reachable],
    factory: &PersonFactory,
    spec: &SeedSpec,
    rng: &mut ChaCha8Rng,
) -> History {
    let now = spec
        .now
        .duration_trunc(Duration::seconds(1))
        .expect("a second divides a timestamp");
    let window_start = now - Duration::days(HISTORY_DAYS);
    let mut drafts: Vec<Draft> = Vec::with_capacity(spec.messages);
    let mut history = History::default();

    // Opt-outs first: each is a delivered send answered by STOP, two messages of the budget.
    let max_stoppers = spec.messages / 4;
    let mut stop_at: Vec<Option<DateTime<Utc>>> = vec![None; reachable.len()];
    let mut stoppers: Vec<(DateTime<Utc>, usize)> = Vec::new();
    for (index, target) in reachable.iter().enumerate() {
        if stoppers.len() >= max_stoppers {
            break;
        }
        if !rng.random_bool(STOP_SHARE) {
            continue;
        }
        let stopped = random_second(window_start + Duration::days(1), now, rng);
        let sent = stopped - Duration::seconds(rng.random_range(60..3 * 3_600));
        let sender = long_sender(rng);
        drafts.push(sent_draft(sent, sender, target, "DELIVERED", None, rng));
        let body = STOP_BODIES[rng.random_range(0..STOP_BODIES.len())];
        drafts.push(received_draft(
            stopped,
            &target.number,
            sender,
            body,
            Some(drafts.len() - 1),
        ));
        stop_at[index] = Some(stopped);
        stoppers.push((stopped, index));
    }
    stoppers.sort();
    history.blocked_numbers = stoppers
        .iter()
        .map(|&(_, i)| reachable[i].number.clone())
        .collect();

    while drafts.len() < spec.messages {
        if reachable.is_empty() || rng.random_bool(0.01) {
            let at = random_second(window_start, now, rng);
            let from = unknown_number(factory, rng);
            let body = LEAD_BODIES[rng.random_range(0..LEAD_BODIES.len())];
            drafts.push(received_draft(at, &from, long_sender(rng), body, None));
            history.unknown_inbound += 1;
            continue;
        }
        let index = rng.random_range(0..reachable.len());
        let at = random_second(window_start, now, rng);
        let sender = pick_weighted(rng, SENDERS);
        let (status, subtype) = match stop_at[index] {
            Some(stopped) if at > stopped => ("FAILED", Some("BLOCKED")),
            _ => match rng.random_range(0..100) {
                0..3 => ("FAILED", Some("EXPIRED")),
                3..6 => ("FAILED", Some("HANDSET_ERROR")),
                6..8 => ("UNKNOWN", None),
                // Only the last day's sends can still be waiting for a delivery report.
                _ if now - at < Duration::days(1) && rng.random_bool(0.3) => ("SENT", None),
                _ => ("DELIVERED", None),
            },
        };
        drafts.push(sent_draft(
            at,
            sender,
            &reachable[index],
            status,
            subtype,
            rng,
        ));
        let reply_at = at + Duration::seconds(rng.random_range(30..4 * 3_600));
        let before_stop = stop_at[index].is_none_or(|stopped| reply_at < stopped);
        let can_reply = status == "DELIVERED" && sender != "ACME" && reply_at <= now && before_stop;
        if can_reply && drafts.len() < spec.messages && rng.random_bool(0.08) {
            let body = REPLY_BODIES[rng.random_range(0..REPLY_BODIES.len())];
            let related = Some(drafts.len() - 1);
            drafts.push(received_draft(
                reply_at,
                &reachable[index].number,
                sender,
                body,
                related,
            ));
        }
    }
    drafts.truncate(spec.messages);
    history.messages = assign_ids(drafts, window_start);
    history
}

/// Sorts by submission date and numbers the messages in that order.
fn assign_ids(drafts: Vec<Draft>, window_start: DateTime<Utc>) -> Vec<SeedMessage> {
    let mut order: Vec<usize> = (0..drafts.len()).collect();
    // Stable sort: a reply never shares a second with its send (it comes 30 s or more later).
    order.sort_by_key(|&i| drafts[i].at);
    let mut id_of = vec![0u64; drafts.len()];
    let mut last = 0u64;
    for &i in &order {
        let millis = (drafts[i].at - window_start).num_milliseconds().max(0) as u64;
        let id = (FIRST_MESSAGE_ID + (millis << SEQUENCE_BITS)).max(last + 1);
        id_of[i] = id;
        last = id;
    }
    let mut slots: Vec<Option<Draft>> = drafts.into_iter().map(Some).collect();
    order
        .iter()
        .map(|&i| {
            let draft = slots[i].take().expect("each draft is taken once");
            let mut message = draft.message;
            message.id = id_of[i];
            message.related_sent_message_id = draft.related.map(|r| id_of[r]);
            message
        })
        .collect()
}

fn sent_draft(
    at: DateTime<Utc>,
    sender: &str,
    target: &Reachable,
    status: &'static str,
    subtype: Option<&'static str>,
    rng: &mut ChaCha8Rng,
) -> Draft {
    let template = SENT_BODIES[rng.random_range(0..SENT_BODIES.len())];
    let user_supplied_id = rng.random_bool(0.3).then(|| {
        format!(
            "{}-{:02}",
            CAMPAIGNS[rng.random_range(0..CAMPAIGNS.len())],
            rng.random_range(1..100)
        )
    });
    Draft {
        at,
        message: SeedMessage {
            id: 0,
            message_type: SeedMessageType::Sent,
            from: sender.to_string(),
            to: target.number.clone(),
            body: template.replace("{first}", target.first_name),
            status_type: status.to_string(),
            status_subtype: subtype.map(str::to_string),
            submission_date: at,
            user_supplied_id,
            related_sent_message_id: None,
        },
        related: None,
    }
}

fn received_draft(
    at: DateTime<Utc>,
    from: &str,
    to: &str,
    body: &str,
    related: Option<usize>,
) -> Draft {
    Draft {
        at,
        message: SeedMessage {
            id: 0,
            message_type: SeedMessageType::Received,
            from: from.to_string(),
            to: to.to_string(),
            body: body.to_string(),
            status_type: "RECEIVED".to_string(),
            status_subtype: None,
            submission_date: at,
            user_supplied_id: None,
            related_sent_message_id: None,
        },
        related,
    }
}

fn long_sender(rng: &mut ChaCha8Rng) -> &'static str {
    SENDERS[rng.random_range(0..2)].0
}

fn random_second(start: DateTime<Utc>, end: DateTime<Utc>, rng: &mut ChaCha8Rng) -> DateTime<Utc> {
    let span = (end - start).num_seconds().max(0);
    start + Duration::seconds(rng.random_range(0..=span))
}

/// A US mobile number that belongs to no person (a lead texting in).
fn unknown_number(factory: &PersonFactory, rng: &mut ChaCha8Rng) -> String {
    let places = PlaceTables::get();
    loop {
        let city = places.pick_city(Country::Us, rng);
        let phone = Phone::random(places, city, false, rng);
        if !factory.is_known_phone(&phone) {
            return phone.e164_digits();
        }
    }
}
