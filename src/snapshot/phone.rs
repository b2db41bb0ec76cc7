//! BulkSMS phone numbers as snapshots, plans and load hold them: E.164 with its `+`.
//!
//! BulkSMS documents numbers as "E.164" yet writes them both with and without the `+` (its spec's
//! examples are `44123456789` and `+27001234567`), and echoes bare digits. Strings compared as
//! they come let a blocked `+44…` miss a send to `44…`, so every BulkSMS number the pipeline
//! stores, compares or checks goes through [`e164`] first.

/// The ASCII digits of a string, in order: how a number is keyed once its `+`, spaces and
/// separators no longer matter (the one helper for it; the sandbox keeps its own, as it imports
/// nothing of the pipeline).
pub fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// The E.164 form (`+` and 7 to 15 digits, the first not 0) of an international number written
/// with or without `+` (or the `00` international prefix), with spaces, dashes, dots or brackets
/// between digits; `None` when it is not one (a short code, a national number, text).
pub fn e164(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    let (plus, rest) = match trimmed.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, trimmed),
    };
    let mut digits = String::with_capacity(rest.len());
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return None,
        }
    }
    let digits = match digits.strip_prefix("00") {
        Some(international) if !plus => international.to_string(),
        _ => digits,
    };
    let valid = (7..=15).contains(&digits.len()) && !digits.starts_with('0');
    valid.then(|| format!("+{digits}"))
}

#[cfg(test)]
mod tests {
    use super::e164;

    #[test]
    fn both_spec_examples_and_their_spellings_meet_in_one_form() {
        assert_eq!(e164("44123456789").as_deref(), Some("+44123456789"));
        assert_eq!(e164("+44123456789").as_deref(), Some("+44123456789"));
        assert_eq!(e164(" +44 (123) 456-789 ").as_deref(), Some("+44123456789"));
        assert_eq!(e164("0044123456789").as_deref(), Some("+44123456789"));
        assert_eq!(e164("+27001234567").as_deref(), Some("+27001234567"));
        assert_eq!(
            e164(&e164("15005550006").expect("valid")),
            e164("15005550006")
        );
    }

    #[test]
    fn what_is_not_an_international_number_is_refused() {
        for raw in [
            "",
            "+",
            "123456",
            "0123456789",
            "1234567890123456",
            "ACME",
            "+44 12x456789",
        ] {
            assert_eq!(e164(raw), None, "{raw:?}");
        }
    }
}
