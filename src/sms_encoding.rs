//! SMS encoding facts — the GSM 03.38 alphabet, UCS-2, and how many parts a message takes — shared
//! by the BulkSMS emulator (billing) and the send planner (predicted cost). A neutral leaf: it
//! depends on nothing else in the crate.

/// Characters of the GSM 03.38 basic table (one septet each).
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

/// Characters of the GSM 03.38 extension table (an escape plus one septet: two each).
const GSM_EXTENSION: &str = "\u{0C}^{}\\[~]|€";

/// How a message body is encoded on the air.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// GSM 7-bit: 160 septets in one part, 153 per part when concatenated.
    Text,
    /// UCS-2: 70 UTF-16 units in one part, 67 per part when concatenated.
    Unicode,
}

impl Encoding {
    /// The name the BulkSMS API uses.
    pub fn api_name(self) -> &'static str {
        match self {
            Encoding::Text => "TEXT",
            Encoding::Unicode => "UNICODE",
        }
    }

    /// Parses the API name (`TEXT`, `UNICODE`).
    pub fn from_api_name(name: &str) -> Option<Self> {
        match name {
            "TEXT" => Some(Encoding::Text),
            "UNICODE" => Some(Encoding::Unicode),
            _ => None,
        }
    }
}

/// Septets a character takes in GSM 7-bit, or `None` when it is not in the alphabet.
pub fn gsm_septets(c: char) -> Option<u32> {
    if GSM_BASIC.contains(c) {
        Some(1)
    } else if GSM_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// True when every character of `body` is in the GSM alphabet.
pub fn is_gsm(body: &str) -> bool {
    body.chars().all(|c| gsm_septets(c).is_some())
}

/// The encoding a body is sent with: with `auto_unicode`, one non-GSM character switches the whole
/// message to UNICODE; without it, TEXT is used and such characters become `?`.
pub fn encoding_for(body: &str, auto_unicode: bool) -> Encoding {
    if auto_unicode && !is_gsm(body) {
        Encoding::Unicode
    } else {
        Encoding::Text
    }
}

/// What a TEXT send without `auto-unicode` delivers: non-GSM characters replaced by `?`.
pub fn text_substituted(body: &str) -> String {
    body.chars()
        .map(|c| if gsm_septets(c).is_some() { c } else { '?' })
        .collect()
}

/// The size of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartCount {
    pub encoding: Encoding,
    /// Septets (TEXT) or UTF-16 units (UNICODE) of the whole body.
    pub units: u32,
    /// Parts billed.
    pub parts: u32,
    /// Units a part holds for this message (160/153 or 70/67).
    pub units_per_part: u32,
}

/// Counts the parts of `body` sent as `encoding`. A character is never split across parts (an
/// extension character's two septets, or a surrogate pair, go together into the next part).
pub fn count_parts(body: &str, encoding: Encoding) -> PartCount {
    let sizes: Vec<u32> = match encoding {
        Encoding::Text => body.chars().map(|c| gsm_septets(c).unwrap_or(1)).collect(),
        Encoding::Unicode => body.chars().map(|c| c.len_utf16() as u32).collect(),
    };
    let units: u32 = sizes.iter().sum();
    let (single, multi) = match encoding {
        Encoding::Text => (160, 153),
        Encoding::Unicode => (70, 67),
    };
    if units <= single {
        return PartCount {
            encoding,
            units,
            parts: 1,
            units_per_part: single,
        };
    }
    let mut parts = 1;
    let mut used = 0;
    for size in sizes {
        if used + size > multi {
            parts += 1;
            used = 0;
        }
        used += size;
    }
    PartCount {
        encoding,
        units,
        parts,
        units_per_part: multi,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm_letters_stay_text_and_others_switch_to_unicode() {
        assert_eq!(encoding_for("Café Ä ñ", true), Encoding::Text);
        assert_eq!(encoding_for("Łukasz", true), Encoding::Unicode);
        assert_eq!(encoding_for("ą", false), Encoding::Text);
        assert_eq!(text_substituted("Zażółć"), "Za???ć".replace('ć', "?"));
        assert_eq!(encoding_for("hi 😀", true), Encoding::Unicode);
    }

    #[test]
    fn text_boundaries() {
        let p = count_parts(&"a".repeat(160), Encoding::Text);
        assert_eq!((p.units, p.parts), (160, 1));
        let p = count_parts(&"a".repeat(161), Encoding::Text);
        assert_eq!(p.parts, 2);
        assert_eq!(count_parts(&"a".repeat(306), Encoding::Text).parts, 2);
        assert_eq!(count_parts(&"a".repeat(307), Encoding::Text).parts, 3);
    }

    #[test]
    fn extension_characters_count_two_and_are_not_split() {
        let p = count_parts(&"€".repeat(80), Encoding::Text);
        assert_eq!((p.units, p.parts), (160, 1));
        let p = count_parts(&"€".repeat(81), Encoding::Text);
        assert_eq!(p.units, 162);
        // 152 'a' + '€' would straddle the 153 boundary: the euro moves to part two.
        let body = format!("{}€{}", "a".repeat(152), "a".repeat(10));
        assert_eq!(count_parts(&body, Encoding::Text).parts, 2);
    }

    #[test]
    fn unicode_counts_utf16_units_and_emoji_count_two() {
        assert_eq!(count_parts(&"ą".repeat(70), Encoding::Unicode).parts, 1);
        assert_eq!(count_parts(&"ą".repeat(71), Encoding::Unicode).parts, 2);
        let p = count_parts("😀", Encoding::Unicode);
        assert_eq!(p.units, 2);
        assert_eq!(count_parts(&"😀".repeat(35), Encoding::Unicode).parts, 1);
        assert_eq!(count_parts(&"😀".repeat(36), Encoding::Unicode).parts, 2);
    }
}
