//! What an inbound SMS reply asks for: opt out (STOP and its carrier synonyms), opt back in
//! (START, UNSTOP), or nothing. The one place the pipeline reads keywords from reply bodies.
//!
//! Carriers honour STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, OPTOUT and REVOKE in any case,
//! with punctuation or spaces around them ("Stop.", " stop ", "STOP!!"). How a keyword inside a
//! longer reply counts is decided here:
//! - A reply that is nothing but a keyword (punctuation and spaces aside) counts.
//! - A longer reply counts when its first word is an unambiguous opt-out word: STOP, STOPALL,
//!   UNSUBSCRIBE, OPTOUT (also written "opt out", "opt-out") or REVOKE ("Unsubscribe me",
//!   "Stop texting me please").
//! - CANCEL, END and QUIT are everyday words ("Cancel my appointment", "End of day works"), so
//!   they count only alone; START and UNSTOP likewise ("Start time?" is a question).
//! - A keyword later in the reply does not count ("Please don't stop"); such replies are kept as
//!   ordinary replies (an activity note shows them to the operator).

/// Words that opt a number out when they are the whole reply.
pub const OPT_OUT_WORDS: [&str; 8] = [
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "OPTOUT",
    "REVOKE",
];
/// Opt-out words that also count as the first word of a longer reply.
const LEADING_OPT_OUT_WORDS: [&str; 5] = ["STOP", "STOPALL", "UNSUBSCRIBE", "OPTOUT", "REVOKE"];
/// Words that ask to receive texts again.
pub const OPT_IN_WORDS: [&str; 2] = ["START", "UNSTOP"];

/// What a reply asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKeyword {
    /// Stop texting this number; the keyword as the canonical upper-case word.
    OptOut(&'static str),
    /// Texts are welcome again (START, UNSTOP).
    OptIn(&'static str),
}

/// The keyword a reply body carries, if any (see the module documentation for the rules).
pub fn classify(body: &str) -> Option<ReplyKeyword> {
    let mut words: Vec<String> = body
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_uppercase)
        .collect();
    // "opt out" / "opt-out" is the word OPTOUT written in two.
    if words.len() >= 2 && words[0] == "OPT" && words[1] == "OUT" {
        words.splice(0..2, ["OPTOUT".to_string()]);
    }
    let first = words.first()?;
    let canonical = |list: &[&'static str]| list.iter().copied().find(|w| w == first);
    if words.len() == 1 {
        if let Some(word) = canonical(&OPT_OUT_WORDS) {
            return Some(ReplyKeyword::OptOut(word));
        }
        if let Some(word) = canonical(&OPT_IN_WORDS) {
            return Some(ReplyKeyword::OptIn(word));
        }
        return None;
    }
    canonical(&LEADING_OPT_OUT_WORDS).map(ReplyKeyword::OptOut)
}

/// True when the reply opts its sender out.
pub fn is_opt_out(body: &str) -> bool {
    matches!(classify(body), Some(ReplyKeyword::OptOut(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_carrier_keyword_counts_alone_in_any_case_and_punctuation() {
        for word in OPT_OUT_WORDS {
            for body in [
                word.to_string(),
                word.to_lowercase(),
                format!("  {}.  ", word.to_lowercase()),
                format!("{word}!!"),
                format!("\"{word}\"\n"),
            ] {
                assert_eq!(
                    classify(&body),
                    Some(ReplyKeyword::OptOut(word)),
                    "{body:?}"
                );
            }
        }
        assert_eq!(classify("Stop."), Some(ReplyKeyword::OptOut("STOP")));
        assert_eq!(classify("opt-out"), Some(ReplyKeyword::OptOut("OPTOUT")));
        assert_eq!(classify("Opt out"), Some(ReplyKeyword::OptOut("OPTOUT")));
    }

    #[test]
    fn unambiguous_opt_out_words_count_as_the_first_word() {
        for body in [
            "Unsubscribe me",
            "STOP texting me please",
            "stop, stop, stop",
            "Opt out of this",
            "revoke consent",
            "StopAll now",
        ] {
            assert!(is_opt_out(body), "{body:?}");
        }
    }

    #[test]
    fn everyday_sentences_are_ordinary_replies() {
        for body in [
            "Cancel my appointment",
            "End of the day works for me",
            "Quit it, see you Tuesday",
            "Please don't stop",
            "Is this a stop-gap?",
            "Start time?",
            "",
            "   ",
            "👍",
            "Stopping by later",
        ] {
            assert_eq!(classify(body), None, "{body:?}");
        }
    }

    #[test]
    fn start_and_unstop_opt_back_in_only_alone() {
        assert_eq!(classify(" Start "), Some(ReplyKeyword::OptIn("START")));
        assert_eq!(classify("unstop!"), Some(ReplyKeyword::OptIn("UNSTOP")));
        assert_eq!(classify("start again please"), None);
        assert!(!is_opt_out("START"));
    }
}
