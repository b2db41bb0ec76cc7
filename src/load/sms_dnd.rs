//! Whether a number may be texted, as GHL says right before the send: SMS DND of every contact
//! holding it (load's last messaging-safety check, beside the blocked list and quiet hours).

use crate::api::ghl::GhlClient;
use serde_json::Value;

/// What GHL says about a number right before a send.
pub(super) struct NumberDnd {
    /// A contact holding the number that has SMS DND on.
    pub opted_out_by: Option<String>,
    /// Time zone of the message's contact (else of the first contact holding the number).
    pub timezone: Option<String>,
}

/// Reads SMS DND of every contact that holds `to` with `GET /contacts/{id}`, the one answer known
/// to carry `dnd` and `dndSettings` (search and the duplicate search leave them out). The holders:
/// the contact the message names, the duplicate search's match (it sees a contact written a moment
/// ago) and whatever a `phone` search finds. Costs 2 + (holders) requests per send. `Err` when any
/// answer is missing or does not say: the caller then holds the send.
pub(super) async fn ghl_sms_dnd(
    ghl: &GhlClient,
    named: Option<&str>,
    to: &str,
) -> Result<NumberDnd, String> {
    let mut holders: Vec<String> = named.map(str::to_string).into_iter().collect();
    let mut add = |id: String| {
        if !holders.contains(&id) {
            holders.push(id);
        }
    };
    match ghl.find_duplicate(None, Some(to)).await {
        Ok(Some(contact)) => {
            if let Some(id) = contact.get("id").and_then(Value::as_str) {
                add(id.to_string());
            }
        }
        Ok(None) => {}
        Err(e) => return Err(format!("duplicate search: {e}")),
    }
    for id in ghl
        .contact_ids_with_phone(to)
        .await
        .map_err(|e| format!("search by phone: {e}"))?
    {
        add(id);
    }
    let mut timezone = None;
    for id in &holders {
        let contact = match ghl.get_contact(id).await {
            Ok(Some(contact)) => contact,
            // Deleted since: it no longer holds the number.
            Ok(None) => continue,
            Err(e) => return Err(format!("GET /contacts/{id}: {e}")),
        };
        if timezone.is_none() {
            timezone = contact
                .get("timezone")
                .and_then(Value::as_str)
                .map(str::to_string);
        }
        match crate::api::ghl::types::sms_dnd_of(&contact) {
            Some(true) => {
                return Ok(NumberDnd {
                    opted_out_by: Some(id.clone()),
                    timezone,
                });
            }
            Some(false) => {}
            None => return Err(format!("GET /contacts/{id} carried no dnd/dndSettings")),
        }
    }
    Ok(NumberDnd {
        opted_out_by: None,
        timezone,
    })
}
