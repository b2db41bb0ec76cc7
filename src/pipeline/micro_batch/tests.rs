//! Unit tests of the micro-batch's reading of spooled events.

use super::*;

fn event(seq: u64, source: EventSource, body: Value) -> SpooledEvent {
    SpooledEvent {
        seq,
        source,
        key: None,
        received_at_ms: 0,
        body: body.to_string(),
    }
}

#[test]
fn events_name_each_contact_once_and_stop_replies_by_number_or_contact() {
    let events = vec![
        event(
            0,
            EventSource::Ghl,
            serde_json::json!({"type": "ContactCreate", "id": "c1"}),
        ),
        event(
            1,
            EventSource::Ghl,
            serde_json::json!({"type": "ContactTagUpdate", "id": "c1"}),
        ),
        event(
            2,
            EventSource::Ghl,
            serde_json::json!({"type": "ContactDelete", "id": "c2"}),
        ),
        event(
            3,
            EventSource::Ghl,
            serde_json::json!({"type": "NoteCreate", "id": "n1", "contactId": "c3"}),
        ),
        event(
            4,
            EventSource::Ghl,
            serde_json::json!({"type": "InboundMessage", "contactId": "c4", "body": "hello"}),
        ),
        event(
            5,
            EventSource::Ghl,
            serde_json::json!({"type": "InboundMessage", "contactId": "c5", "body": "Stop"}),
        ),
        event(
            6,
            EventSource::Bulksms,
            serde_json::json!([
                {"type": "RECEIVED", "id": "m1", "from": "+44 7700 900123", "body": "STOP"},
                {"type": "RECEIVED", "id": "m2", "from": "447700900999", "body": "thanks"},
                {"type": "SENT", "id": "m3", "from": "447700900555", "body": "STOP"},
            ]),
        ),
        event(
            8,
            EventSource::Ghl,
            serde_json::json!({"type": "ContactUpdate", "id": "../locations/x?y=1"}),
        ),
        SpooledEvent {
            body: "not json".into(),
            ..event(7, EventSource::Ghl, Value::Null)
        },
    ];
    let changes = Changes::of(&events);
    assert_eq!(changes.contact_ids, ["c1", "c2", "c5"]);
    assert_eq!(
        changes.opt_out_numbers,
        BTreeMap::from([("447700900123".to_string(), "m1".to_string())])
    );
    assert_eq!(changes.opt_out_contacts, BTreeSet::from(["c5".to_string()]));
}
