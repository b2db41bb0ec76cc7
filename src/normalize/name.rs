//! Names: folded for comparison (accents, scripts, case), nicknames, middle initials, generational
//! suffixes, whole names typed into one field, and a phonetic key for blocking.

use rustc_hash::FxHashMap;
use std::sync::OnceLock;
use unicode_normalization::UnicodeNormalization;

/// A name folded for comparison: NFKC, case-folded, whitespace collapsed, accents and scripts
/// transliterated to ASCII (`Zoë` → `zoe`, `Łukasz` → `lukasz`, `王伟` → `wang wei`), punctuation
/// other than inner hyphens and apostrophes dropped. Empty when nothing is left.
pub fn name(raw: &str) -> String {
    // Symbols and emoji go before transliteration (deunicode would spell 😀 "grinning").
    let nfkc: String = raw
        .nfkc()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '\'' {
                c
            } else {
                ' '
            }
        })
        .collect();
    let ascii = deunicode::deunicode(&nfkc).to_lowercase();
    let mut out = String::with_capacity(ascii.len());
    let mut space = false;
    for c in ascii.chars() {
        if c.is_ascii_alphanumeric() {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.push(c);
        } else if c == '-' || c == '\'' {
            // O'Brien = OBrien = O Brien for matching; Smith-Jones keeps its parts.
            if c == '-' {
                space = true;
            }
        } else {
            space = true;
        }
    }
    out
}

/// Honorifics and generational suffixes that say nothing about identity... except Jr./Sr., which
/// tell a parent from a child: those are kept by [`generation`].
const NOISE_TOKENS: &[&str] = &["mr", "mrs", "ms", "miss", "dr", "prof"];

/// A folded name without honorifics.
pub fn name_core(folded: &str) -> String {
    folded
        .split(' ')
        .filter(|t| !NOISE_TOKENS.contains(t) && !matches!(*t, "jr" | "sr" | "ii" | "iii" | "iv"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A whole name typed into the first-name field, split into given and family names for matching:
/// "Patricia Horton" → ("Patricia", "Horton"), "Horton, Patricia" → ("Patricia", "Horton"),
/// "Ludwig van Beethoven" → ("Ludwig", "van Beethoven"), "John Smith Jr." → ("John", "Smith Jr.").
/// `None` for a single word, or when the last word is only an initial ("John A.": a middle or
/// family initial, not a family name).
pub fn split_full_name(raw: &str) -> Option<(String, String)> {
    let raw = raw.trim();
    if let Some((family, given)) = raw.split_once(',') {
        let (family, given) = (family.trim(), given.trim());
        // "Smith, Jr." is a suffix after a comma, not a reversed name.
        if family.is_empty() || given.is_empty() || generational_suffix(given).is_some() {
            return None;
        }
        return Some((given.to_string(), family.to_string()));
    }
    let words: Vec<&str> = raw.split_whitespace().collect();
    // Suffixes stay with the family name, where the generation check reads them.
    let mut end = words.len();
    while end > 0 && generational_suffix(words[end - 1]).is_some() {
        end -= 1;
    }
    if end < 2 {
        return None;
    }
    // A Latin initial ("A.") is no family name; one Han character is.
    let mut last_word = words[end - 1].trim_end_matches('.').chars();
    if matches!((last_word.next(), last_word.next()), (Some(c), None) if c.is_ascii_alphabetic()) {
        return None;
    }
    // Particles belong to the family name ("van Beethoven", "de la Cruz").
    let mut start = end - 1;
    while start > 1 && is_family_particle(words[start - 1]) {
        start -= 1;
    }
    Some((words[..start].join(" "), words[start..].join(" ")))
}

/// Words that begin a family name rather than end a given name.
fn is_family_particle(word: &str) -> bool {
    matches!(
        word.to_lowercase().as_str(),
        "van"
            | "von"
            | "de"
            | "der"
            | "den"
            | "del"
            | "della"
            | "di"
            | "da"
            | "dos"
            | "das"
            | "du"
            | "la"
            | "le"
            | "st"
            | "st."
            | "ter"
            | "ten"
            | "bin"
            | "ibn"
            | "al"
            | "el"
    )
}

/// A folded given name without trailing middle initials ("deb s" → "deb", "mary ann j" →
/// "mary ann"): forms add them as often as people leave them out. A name that is only initials
/// ("j r") keeps them.
pub fn without_middle_initials(folded: &str) -> &str {
    let mut end = folded.len();
    while let Some(space) = folded[..end].rfind(' ') {
        let token = &folded[space + 1..end];
        let first = folded.split(' ').next().unwrap_or("");
        if token.chars().count() != 1 || first.chars().count() < 2 {
            break;
        }
        end = space;
    }
    &folded[..end]
}

/// The generational suffix of a name, if any (`jr`, `sr`, `ii`, `iii`).
pub fn generation(folded: &str) -> Option<&'static str> {
    folded.split(' ').find_map(|t| match t {
        "jr" => Some("jr"),
        "sr" => Some("sr"),
        "ii" => Some("ii"),
        "iii" => Some("iii"),
        "iv" => Some("iv"),
        _ => None,
    })
}

fn nickname_groups() -> &'static FxHashMap<String, Vec<u32>> {
    static GROUPS: OnceLock<FxHashMap<String, Vec<u32>>> = OnceLock::new();
    GROUPS.get_or_init(|| {
        let mut map: FxHashMap<String, Vec<u32>> = FxHashMap::default();
        let data = include_str!("nicknames.csv");
        for (group, line) in data
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .enumerate()
        {
            for n in line.split(',') {
                let key = name(n);
                if !key.is_empty() {
                    map.entry(key).or_default().push(group as u32);
                }
            }
        }
        map
    })
}

/// True when two folded given names are the same name by the nickname table (Bill ~ William).
pub fn same_given_name(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let groups = nickname_groups();
    match (groups.get(a), groups.get(b)) {
        (Some(x), Some(y)) => x.iter().any(|g| y.contains(g)),
        _ => false,
    }
}

/// Whether two strings are equal once the characters `skip` accepts are dropped ("van der berg"
/// and "vanderberg"), compared without building either.
pub fn equal_without(a: &str, b: &str, skip: impl Fn(char) -> bool) -> bool {
    a.chars()
        .filter(|c| !skip(*c))
        .eq(b.chars().filter(|c| !skip(*c)))
}

/// Names of the nickname table reachable by deleting at most one letter, by what is left: a
/// misspelt name finds its table entries through a shared deletion (the symmetric-delete trick),
/// without comparing it to every entry.
fn nickname_deletions() -> &'static FxHashMap<String, Vec<&'static str>> {
    static DELETIONS: OnceLock<FxHashMap<String, Vec<&'static str>>> = OnceLock::new();
    DELETIONS.get_or_init(|| {
        let mut map: FxHashMap<String, Vec<&'static str>> = FxHashMap::default();
        for entry in nickname_groups().keys() {
            if entry.chars().count() < MIN_NICKNAME_TYPO_LEN {
                continue;
            }
            for variant in with_one_deletion(entry) {
                map.entry(variant).or_default().push(entry.as_str());
            }
        }
        for entries in map.values_mut() {
            entries.sort_unstable();
            entries.dedup();
        }
        map
    })
}

/// Shorter names are too close to each other for a typo of one to be told from another name.
const MIN_NICKNAME_TYPO_LEN: usize = 5;

/// The string itself and every string one character shorter.
fn with_one_deletion(s: &str) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = vec![s.to_string()];
    for skip in 0..chars.len() {
        out.push(
            chars
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, c)| c)
                .collect(),
        );
    }
    out
}

/// Whether one name is a one-letter typo of a name the nickname table puts in a group with the
/// other ("Zaxhary" / "Zach", "Bil" / "William" is too short, "Robret" / "Bob").
pub fn typo_of_nickname(a: &str, b: &str) -> bool {
    // Mario is one letter from Marie, a form of Maria: a gendered pair stays two names.
    if gendered_forms(a, b) {
        return false;
    }
    let groups = nickname_groups();
    let near = |typo: &str, other: &str| -> bool {
        let Some(other_groups) = groups.get(other) else {
            return false;
        };
        // A name of the table is no typo (Gabriel is not a misspelt Gabriela), and reaching the
        // other name itself is mere closeness, which the gendered-forms rule judges.
        if typo.chars().count() < MIN_NICKNAME_TYPO_LEN || groups.contains_key(typo) {
            return false;
        }
        let deletions = nickname_deletions();
        with_one_deletion(typo)
            .iter()
            .filter_map(|v| deletions.get(v))
            .flatten()
            .filter(|entry| **entry != other && strsim::osa_distance(typo, entry) <= 1)
            .filter_map(|entry| groups.get(*entry))
            .any(|g| g.iter().any(|x| other_groups.contains(x)))
    };
    near(a, b) || near(b, a)
}

/// Whether two folded given names that are close in spelling but neither equal nor nicknames of
/// each other can still be one person's name: a typo, an initial, an added middle name or
/// initial. The cluster guard asks this before it lets a shared phone or address link two
/// records, because close spellings are often different people: twins and siblings (Ethan and
/// Evan, Madison and Mason), the male and female forms of a name (Gabriel and Gabriela, Mario and
/// María, Julian and Julia), and short names one letter apart (Tim and Tom, Mark and Mary).
pub fn plausibly_same_given_name(a: &str, b: &str) -> bool {
    if a == b || same_given_name(a, b) || typo_of_nickname(a, b) {
        return true;
    }
    if equal_without(a, b, |c| c == ' ' || c == '-') {
        return true;
    }
    let (wa, wb): (Vec<&str>, Vec<&str>) = (a.split(' ').collect(), b.split(' ').collect());
    // An initial for a name ("J" / "John"), or the same first word with a middle name or initial
    // added ("John A" / "John", "Mary Ann" / "Mary").
    let initial = |x: &str, y: &str| x.chars().count() == 1 && y.starts_with(x);
    if initial(wa[0], wb[0]) || initial(wb[0], wa[0]) {
        return true;
    }
    if wa.len() != wb.len() {
        return wa[0] == wb[0] || same_given_name(wa[0], wb[0]);
    }
    if gendered_forms(a, b) {
        return false;
    }
    // A name cut short ("Joh", "Patrici").
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if short.len() >= 3 && long.starts_with(short) {
        return true;
    }
    let (la, lb) = (a.chars().count(), b.chars().count());
    let shorter = la.min(lb);
    match strsim::osa_distance(a, b) {
        0 => true,
        // One letter changed in a short name is usually another name (Tim/Tom, Dan/Don,
        // Mark/Mary, Kim/Jim) unless it sounds the same (Carl/Karl); a letter typed twice, left
        // out or swapped with its neighbour is a typo (Bethh, Codvy, Brb, Jhon).
        1 if shorter <= 4 && la == lb => {
            !strsim::hamming(a, b).is_ok_and(|d| d == 1)
                || consonant_sounds(a) == consonant_sounds(b) && first_vowel(a) == first_vowel(b)
        }
        1 => true,
        // Two edits are a typo only in a long name (Mohammed/Muhammad, Jonathon/Johnathan).
        2 => shorter >= 7,
        _ => false,
    }
}

/// The male and female forms of one name: one ends where the other adds an ending
/// (Gabriel/Gabriela, Paul/Paula, Louis/Louise, Joseph/Josephine, Julia/Julian), or the two differ
/// only in a final -o/-a or -e/-a (Mario/Maria, Antonio/Antonia).
fn gendered_forms(a: &str, b: &str) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if short.len() >= 3
        && let Some(ending) = long.strip_prefix(short)
    {
        // A vowel ending added to a name that ends in a consonant (Gabriel/Gabriela), not to one
        // cut short after a vowel (Patrici/Patricia is a typo).
        let consonant_end = short.ends_with(|c: char| !"aeiouy".contains(c));
        return (consonant_end
            && matches!(
                ending,
                "a" | "e" | "la" | "na" | "ine" | "ina" | "ette" | "elle"
            ))
            || (ending == "n" && short.ends_with('a'));
    }
    if a.len() == b.len() && a.len() >= 4 {
        let (stem_a, end_a) = a.split_at(a.len() - 1);
        let (stem_b, end_b) = b.split_at(b.len() - 1);
        return stem_a == stem_b && matches!((end_a, end_b), ("a", "o" | "e") | ("o" | "e", "a"));
    }
    false
}

/// A name's consonants by sound (c/k/q/s alike, vowels and h/w/y dropped, doubles collapsed).
fn consonant_sounds(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        let code = match c {
            'b' | 'p' => 'b',
            'f' | 'v' => 'f',
            'c' | 'k' | 'q' | 'x' => 'k',
            'g' | 'j' => 'j',
            's' | 'z' => 's',
            'd' | 't' => 't',
            'l' => 'l',
            'm' | 'n' => 'n',
            'r' => 'r',
            _ => continue,
        };
        if !out.ends_with(code) {
            out.push(code);
        }
    }
    out
}

fn first_vowel(name: &str) -> Option<char> {
    name.chars()
        .find(|c| matches!(c, 'a' | 'e' | 'i' | 'o' | 'u' | 'y'))
}

/// A phonetic key (a compact Soundex-like code over the folded name) for blocking: names that
/// sound alike share it even when spelled differently.
pub fn phonetic(folded: &str) -> String {
    let mut chars = folded.chars().filter(char::is_ascii_alphabetic);
    let Some(first) = chars.next() else {
        return String::new();
    };
    let code = |c: char| match c {
        'b' | 'f' | 'p' | 'v' => '1',
        'c' | 'g' | 'j' | 'k' | 'q' | 's' | 'x' | 'z' => '2',
        'd' | 't' => '3',
        'l' => '4',
        'm' | 'n' => '5',
        'r' => '6',
        _ => '0',
    };
    let mut out = String::from(first.to_ascii_uppercase());
    let mut last = code(first);
    for c in chars {
        let k = code(c);
        if k != '0' && k != last {
            out.push(k);
            if out.len() == 4 {
                break;
            }
        }
        if c != 'h' && c != 'w' {
            last = k;
        }
    }
    while out.len() < 4 {
        out.push('0');
    }
    out
}

/// The generational suffix of a name (`Jr.`, `Sr`, `II`, `III`, `IV`), as a canonical token.
pub fn generational_suffix(raw: &str) -> Option<&'static str> {
    raw.split(|c: char| c.is_whitespace() || c == ',')
        .map(|t| t.trim_end_matches('.').to_ascii_lowercase())
        .find_map(|t| match t.as_str() {
            "jr" | "junior" => Some("jr"),
            "sr" | "senior" => Some("sr"),
            "ii" | "2nd" => Some("ii"),
            "iii" | "3rd" => Some("iii"),
            "iv" | "4th" => Some("iv"),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fold_case_accents_width_and_scripts() {
        assert_eq!(name("  ZOË   O'Brien "), "zoe obrien");
        assert_eq!(name("Łukasz"), "lukasz");
        assert_eq!(name("Ｊｏｈｎ"), "john", "full-width letters (NFKC)");
        assert_eq!(name("Smith-Jones"), "smith jones");
        assert!(!name("王伟").is_empty(), "Han names transliterate");
        assert_eq!(name("Мария"), "mariia");
        assert_eq!(name("😀"), "", "emoji carry no name");
        assert_eq!(name("Ana 😀"), "ana");
    }

    #[test]
    fn nicknames_and_generations() {
        assert!(same_given_name("bill", "william"));
        assert!(same_given_name("peggy", "margaret"));
        assert!(same_given_name("jose", "pepe"));
        assert!(!same_given_name("bill", "robert"));
        assert_eq!(generation(&name("John Smith Jr.")), Some("jr"));
        assert_eq!(name_core(&name("Dr. Ann Lee Jr")), "ann lee");
    }

    #[test]
    fn close_given_names_pass_the_guard_only_as_typos_initials_or_middle_names() {
        let same = |a: &str, b: &str| plausibly_same_given_name(&name(a), &name(b));
        // Typos, initials, middle names, spacing, spellings of one sound.
        assert!(same("Jonathon", "Jonathan"));
        assert!(same("Jon", "John"));
        assert!(same("Carl", "Karl"));
        assert!(same("Ann", "Anne"));
        assert!(same("J.", "John"));
        assert!(same("John A.", "John"));
        assert!(same("Mary Ann", "Maryann"));
        assert!(same("Mohammed", "Muhammad"));
        assert!(same("Dave", "David"), "a nickname");
        assert!(same("Patrici", "Patricia"), "cut short");
        assert!(same("Bethh", "Beth"));
        assert!(same("Jhon", "John"));
        // Different people: twins, siblings, gendered forms, short names a letter apart.
        assert!(!same("Ethan", "Evan"));
        assert!(!same("Madison", "Mason"));
        assert!(!same("Gabriel", "Gabriela"));
        assert!(!same("Mario", "María"));
        assert!(!same("Julian", "Julia"));
        assert!(!same("Paul", "Paula"));
        assert!(!same("Louis", "Louise"));
        assert!(!same("Tim", "Tom"));
        assert!(!same("Mark", "Mary"));
        assert!(!same("Kim", "Jim"));
    }

    #[test]
    fn typos_of_nicknames_are_found_through_the_table() {
        assert!(typo_of_nickname("zaxhary", "zach"));
        assert!(typo_of_nickname("bob", "robret"));
        assert!(typo_of_nickname("wiliam", "bill"));
        assert!(!typo_of_nickname("zaxhary", "william"));
        assert!(!typo_of_nickname("ethan", "evan"));
        assert!(
            !typo_of_nickname("gabriel", "gabriela"),
            "a known name is no typo"
        );
    }

    #[test]
    fn middle_initials_leave_given_names() {
        assert_eq!(without_middle_initials("deb s"), "deb");
        assert_eq!(without_middle_initials("mary ann j"), "mary ann");
        assert_eq!(without_middle_initials("j r"), "j r");
        assert_eq!(without_middle_initials("john"), "john");
    }

    #[test]
    fn full_names_in_the_first_name_field_split_for_matching() {
        let split = |s: &str| split_full_name(s).map(|(g, f)| format!("{g}|{f}"));
        assert_eq!(split("Patricia Horton").as_deref(), Some("Patricia|Horton"));
        assert_eq!(
            split("Horton, Patricia").as_deref(),
            Some("Patricia|Horton")
        );
        assert_eq!(split("Mary Ann Smith").as_deref(), Some("Mary Ann|Smith"));
        assert_eq!(
            split("Ludwig van Beethoven").as_deref(),
            Some("Ludwig|van Beethoven")
        );
        assert_eq!(split("John Smith Jr.").as_deref(), Some("John|Smith Jr."));
        assert_eq!(split("王 伟").as_deref(), Some("王|伟"));
        assert_eq!(split("Patricia"), None);
        assert_eq!(
            split("John A."),
            None,
            "a trailing initial is no family name"
        );
        assert_eq!(split("Smith, Jr."), None);
        assert_eq!(split("Al Pacino").as_deref(), Some("Al|Pacino"));
    }

    #[test]
    fn phonetic_keys_group_spellings() {
        assert_eq!(phonetic("robert"), phonetic("rupert"));
        assert_eq!(phonetic("smith"), phonetic("smyth"));
        assert_ne!(phonetic("smith"), phonetic("jones"));
        assert_eq!(phonetic(""), "");
    }

    #[test]
    fn generational_suffixes_are_read_from_names() {
        assert_eq!(generational_suffix("Moreno Jr."), Some("jr"));
        assert_eq!(generational_suffix("Moreno, SR"), Some("sr"));
        assert_eq!(generational_suffix("Henry III"), Some("iii"));
        assert_eq!(generational_suffix("Junior"), Some("jr"));
        assert_eq!(generational_suffix("Ivy Srinivasan"), None);
    }
}
