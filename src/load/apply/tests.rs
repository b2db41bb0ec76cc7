//! Unit tests of `apply`.

use super::*;

#[test]
fn send_identifiers_fit_the_api_limits_and_are_stable() {
    let key = "0123456789abcdef0123456789abcdef";
    assert!(user_supplied_id(key).len() <= 20);
    assert_eq!(user_supplied_id(key), user_supplied_id(key));
    assert_eq!(marker(key), "[contactsync:0123456789ab]");
}

#[test]
fn sends_come_after_opt_outs_and_creates_first() {
    let send = PlanOp::SendSms {
        to: "+1".into(),
        body: "x".into(),
        trigger: "t".into(),
        event: "e".into(),
        contact_id: None,
        encoding: "TEXT".into(),
        parts: 1,
    };
    let dnd = PlanOp::SetSmsDnd {
        contact_id: "c".into(),
        active: true,
        event: None,
    };
    let create = PlanOp::CreateContact {
        fields: serde_json::Map::new(),
    };
    assert!(phase(&create) < phase(&dnd));
    assert!(phase(&dnd) < phase(&send));
}
