//! The daily digest: an SMS a team acts on (what waits for an answer first, then failures,
//! opt-outs, new contacts by source and duplicates), cut to two SMS parts, and the fuller
//! `digest.md` beside the run's transform outputs.

use super::render;
use crate::sms_encoding::{count_parts, encoding_for};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

/// Most parts the digest SMS takes: 306 GSM-7 septets or 134 UCS-2 characters.
pub const DIGEST_MAX_PARTS: u32 = 2;

/// `[transform.triggers.digest]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestTrigger {
    /// Team number in E.164 (`+14155550100`).
    pub to: String,
    /// Body; placeholders `{date}` and the run's counts ([`DIGEST_PLACEHOLDERS`]). Each line is a
    /// line of the SMS, the first the most important: lines are dropped from the end until the
    /// SMS fits in two parts. Unset: the built-in layout (counts, then the details).
    #[serde(default)]
    pub template: Option<String>,
}

/// The counts a digest can show.
pub const DIGEST_PLACEHOLDERS: [&str; 13] = [
    "date",
    "contacts",
    "new_contacts",
    "duplicate_clusters",
    "opted_out",
    "failed_deliveries",
    "inbound",
    "leads",
    "new_by_source",
    "waiting_replies",
    "new_opt_outs",
    "new_duplicates",
    "waiting_list",
];

/// A reply nobody has answered yet (no outbound message to its number after it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WaitingReply {
    pub number: String,
    /// Names of the number's contacts (nameless ones, and names that are just the number, left
    /// out: a team reading an SMS learns nothing from an id).
    pub contacts: Vec<String>,
    /// Ids of the number's contacts, for `digest.md`.
    pub contact_ids: Vec<String>,
    pub body: String,
    pub received: String,
}

/// A send that failed since the previous acting run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FailedDelivery {
    pub number: String,
    pub reason: String,
    pub sent: String,
}

/// What the digest reports beyond the counts.
#[derive(Debug, Clone, Default)]
pub struct DigestFacts {
    /// New contacts by their source (`unknown` when they have none).
    pub new_by_source: BTreeMap<String, u64>,
    pub waiting: Vec<WaitingReply>,
    pub failed: Vec<FailedDelivery>,
    /// Numbers (E.164) that opted out since the previous acting run.
    pub new_opt_outs: Vec<String>,
    /// Contacts found to be duplicates that are not marked yet: (duplicate, survivor).
    pub new_duplicates: Vec<(String, String)>,
}

impl DigestFacts {
    fn by_source(&self) -> String {
        self.new_by_source
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The SMS fitted to [`DIGEST_MAX_PARTS`]: lines kept in order while the whole fits, so the
/// lowest lines go first; a first line too long on its own is cut (with `...`, which stays GSM-7).
pub fn fit_two_parts(lines: &[String]) -> String {
    let fits = |text: &str| count_parts(text, encoding_for(text, true)).parts <= DIGEST_MAX_PARTS;
    let mut kept: Vec<&str> = Vec::new();
    for line in lines.iter().map(|l| l.trim_end()).filter(|l| !l.is_empty()) {
        kept.push(line);
        if !fits(&kept.join("\n")) {
            kept.pop();
            if !kept.is_empty() {
                break;
            }
            // The first line alone is too long: cut it to fit.
            let mut cut: String = line.to_string();
            while !cut.is_empty() && !fits(&format!("{cut}...")) {
                cut.pop();
            }
            return format!("{}...", cut.trim_end());
        }
    }
    kept.join("\n")
}

/// The digest SMS: the template's lines (or the built-in ones), most important first, fitted.
pub fn digest_sms(
    digest: &DigestTrigger,
    date: &str,
    counts: &BTreeMap<&'static str, u64>,
    facts: &DigestFacts,
) -> String {
    let count = |k: &str| counts.get(k).copied().unwrap_or(0);
    let waiting_list = facts
        .waiting
        .iter()
        .map(|w| match w.contacts.first() {
            Some(name) => format!("{name} {}", w.number),
            None => w.number.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let mut values: HashMap<&str, String> =
        counts.iter().map(|(k, v)| (*k, v.to_string())).collect();
    values.insert("date", date.to_string());
    values.insert("new_by_source", facts.by_source());
    values.insert("waiting_replies", facts.waiting.len().to_string());
    values.insert("new_opt_outs", facts.new_opt_outs.len().to_string());
    values.insert("new_duplicates", facts.new_duplicates.len().to_string());
    values.insert("waiting_list", waiting_list);
    let lines: Vec<String> = match &digest.template {
        Some(template) => template.lines().map(|l| render(l, &values)).collect(),
        None => {
            let mut lines = vec![format!(
                "contactsync {date}: {} replies waiting, {} failed, {} opt-outs, {} new contacts, {} duplicates",
                facts.waiting.len(),
                facts.failed.len(),
                facts.new_opt_outs.len(),
                count("new_contacts"),
                facts.new_duplicates.len()
            )];
            for w in &facts.waiting {
                let line = match w.contacts.first() {
                    Some(who) => format!("Waiting: {who} {}: {}", w.number, w.body),
                    None => format!("Waiting: {}: {}", w.number, w.body),
                };
                lines.push(line);
            }
            if !facts.failed.is_empty() {
                let numbers: Vec<&str> = facts.failed.iter().map(|f| f.number.as_str()).collect();
                lines.push(format!("Failed: {}", numbers.join(", ")));
            }
            if !facts.new_by_source.is_empty() {
                lines.push(format!("New by source: {}", facts.by_source()));
            }
            lines.push(format!("Details: digest.md of the run {date}"));
            lines
        }
    };
    fit_two_parts(&lines)
}

/// `digest.md`: everything the SMS had no room for.
pub fn digest_markdown(
    date: &str,
    counts: &BTreeMap<&'static str, u64>,
    facts: &DigestFacts,
    sms: Option<&str>,
) -> String {
    use std::fmt::Write;
    let count = |k: &str| counts.get(k).copied().unwrap_or(0);
    let mut md = format!("# contactsync digest {date}\n\n");
    let _ = writeln!(
        md,
        "{} contacts, {} new; {} replies waiting for an answer; {} failed deliveries; {} new opt-outs; \
         {} new duplicates ({} duplicate clusters in all).\n",
        count("contacts"),
        count("new_contacts"),
        facts.waiting.len(),
        facts.failed.len(),
        facts.new_opt_outs.len(),
        facts.new_duplicates.len(),
        count("duplicate_clusters"),
    );
    md.push_str("## Replies waiting for an answer\n\n");
    if facts.waiting.is_empty() {
        md.push_str("None.\n");
    }
    for w in &facts.waiting {
        let who = if !w.contacts.is_empty() {
            w.contacts.join(", ")
        } else if !w.contact_ids.is_empty() {
            format!("contact {}", w.contact_ids.join(", "))
        } else {
            "no contact".to_string()
        };
        let _ = writeln!(
            md,
            "- {} ({who}) at {}: \"{}\"",
            w.number,
            w.received,
            w.body.replace('\n', " ")
        );
    }
    md.push_str("\n## Failed deliveries\n\n");
    if facts.failed.is_empty() {
        md.push_str("None.\n");
    }
    for f in &facts.failed {
        let _ = writeln!(md, "- {} sent {}: {}", f.number, f.sent, f.reason);
    }
    md.push_str("\n## Opt-outs\n\n");
    if facts.new_opt_outs.is_empty() {
        md.push_str("None.\n");
    }
    for n in &facts.new_opt_outs {
        let _ = writeln!(md, "- {n}");
    }
    md.push_str("\n## New contacts by source\n\n");
    if facts.new_by_source.is_empty() {
        md.push_str("None.\n");
    }
    for (source, n) in &facts.new_by_source {
        let _ = writeln!(md, "- {source}: {n}");
    }
    md.push_str("\n## Duplicates found\n\n");
    if facts.new_duplicates.is_empty() {
        md.push_str("None.\n");
    }
    for (dup, survivor) in &facts.new_duplicates {
        let _ = writeln!(md, "- {dup} is a duplicate of {survivor}");
    }
    if let Some(sms) = sms {
        let parts = count_parts(sms, encoding_for(sms, true));
        let _ = write!(
            md,
            "\n## The SMS ({} {}, {} part(s))\n\n```\n{sms}\n```\n",
            parts.units,
            match parts.encoding {
                crate::sms_encoding::Encoding::Text => "GSM-7 septets",
                crate::sms_encoding::Encoding::Unicode => "UCS-2 characters",
            },
            parts.parts
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(text: &str) -> u32 {
        count_parts(text, encoding_for(text, true)).parts
    }

    #[test]
    fn lines_are_kept_in_order_while_two_gsm_parts_hold_them() {
        // 100 + 1 + 100 + 1 + 104 = 306 septets: exactly two parts.
        let lines = vec!["a".repeat(100), "b".repeat(100), "c".repeat(104)];
        let fitted = fit_two_parts(&lines);
        assert_eq!(fitted.chars().count(), 306);
        assert_eq!(parts(&fitted), 2);
        // One septet more and the lowest line goes.
        let lines = vec!["a".repeat(100), "b".repeat(100), "c".repeat(105)];
        assert_eq!(
            fit_two_parts(&lines),
            format!("{}\n{}", "a".repeat(100), "b".repeat(100))
        );
    }

    #[test]
    fn extension_characters_count_as_two_septets() {
        // 5 `€` and 290 letters are 295 characters but 300 septets: with the newline and a
        // 6-letter line 307, one too many (a count of characters would have kept it).
        let first = format!("{}{}", "€".repeat(5), "a".repeat(290));
        let lines = vec![first.clone(), "abcdef".into()];
        assert_eq!(fit_two_parts(&lines), first);
        let lines = vec![first.clone(), "abcde".into()];
        assert_eq!(fit_two_parts(&lines), format!("{first}\nabcde"));
        assert_eq!(parts(&fit_two_parts(&lines)), 2);
    }

    #[test]
    fn one_non_gsm_character_brings_the_ucs2_limit_of_134() {
        // "Łukasz" is not GSM-7: the whole SMS is UCS-2, 134 characters in two parts.
        let lines = vec![format!("Łukasz {}", "x".repeat(120)), "y".repeat(10)];
        let fitted = fit_two_parts(&lines);
        assert_eq!(fitted, lines[0]);
        assert_eq!(parts(&fitted), 2);
        let lines = vec![format!("Łukasz {}", "x".repeat(120)), "y".repeat(6)];
        assert_eq!(fit_two_parts(&lines).chars().count(), 134);
    }

    #[test]
    fn a_first_line_too_long_alone_is_cut_to_fit() {
        let fitted = fit_two_parts(&["z".repeat(400)]);
        assert!(fitted.ends_with("..."), "{fitted}");
        assert_eq!(fitted.chars().count(), 306);
    }

    #[test]
    fn the_built_in_digest_puts_waiting_replies_first_and_fits() {
        let facts = DigestFacts {
            new_by_source: BTreeMap::from([("web form".into(), 2), ("manual".into(), 1)]),
            waiting: (0..6)
                .map(|i| WaitingReply {
                    number: format!("+1415555000{i}"),
                    contacts: vec![format!("Contact {i}")],
                    contact_ids: vec![format!("id{i}")],
                    body: "Can we move the visit to Friday afternoon please?".into(),
                    received: "2026-12-05T18:00:00".into(),
                })
                .collect(),
            failed: vec![FailedDelivery {
                number: "+14155550099".into(),
                reason: "ABSENT_SUBSCRIBER".into(),
                sent: "2026-12-05T10:00:00".into(),
            }],
            new_opt_outs: vec!["+14155550098".into()],
            new_duplicates: vec![("d1".into(), "s1".into())],
        };
        let counts = BTreeMap::from([("new_contacts", 3), ("contacts", 40)]);
        let digest = DigestTrigger {
            to: "+14155550100".into(),
            template: None,
        };
        let sms = digest_sms(&digest, "2026-12-06", &counts, &facts);
        assert!(parts(&sms) <= 2, "{sms}");
        assert!(
            sms.starts_with(
                "contactsync 2026-12-06: 6 replies waiting, 1 failed, 1 opt-outs, 3 new contacts, 1 duplicates\nWaiting: Contact 0 +14155550000"
            ),
            "{sms}"
        );
        // Six long waiting lines cannot all fit: the lower ones and the rest were dropped...
        assert!(!sms.contains("New by source"), "{sms}");
        // ...and digest.md has all of them.
        let md = digest_markdown("2026-12-06", &counts, &facts, Some(&sms));
        assert!(md.contains("- +14155550005 (Contact 5)"), "{md}");
        assert!(md.contains("- web form: 2"), "{md}");
        assert!(md.contains("- d1 is a duplicate of s1"), "{md}");
        // A template keeps its placeholders working, new ones included.
        let digest = DigestTrigger {
            to: "+14155550100".into(),
            template: Some(
                "{date}: {new_contacts} new ({new_by_source})\n{waiting_replies} waiting".into(),
            ),
        };
        assert_eq!(
            digest_sms(&digest, "2026-12-06", &counts, &facts),
            "2026-12-06: 3 new (manual 1, web form 2)\n6 waiting"
        );
    }
}
