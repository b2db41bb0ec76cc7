//! CSV export of the contacts and their ground truth, for the dedupe accuracy benchmark.

use super::SeedData;
use chrono::SecondsFormat;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// Header of [`write_contacts_csv`].
pub const CONTACTS_CSV_HEADER: &str =
    "id,first_name,last_name,email,phone,company,city,postal_code,country,source,date_updated,tags";

/// Writes the contacts as CSV (RFC 4180 quoting; absent values are empty fields; tags joined by `;`).
pub fn write_contacts_csv(data: &SeedData, path: &Path) -> std::io::Result<()> {
    let mut out = BufWriter::new(File::create(path)?);
    writeln!(out, "{CONTACTS_CSV_HEADER}")?;
    let mut line = String::with_capacity(256);
    for c in &data.contacts {
        line.clear();
        let date_updated = c.date_updated.to_rfc3339_opts(SecondsFormat::Millis, true);
        let tags = c.tags.join(";");
        let fields = [
            Some(c.id.as_str()),
            c.first_name.as_deref(),
            c.last_name.as_deref(),
            c.email.as_deref(),
            c.phone.as_deref(),
            c.company_name.as_deref(),
            c.city.as_deref(),
            c.postal_code.as_deref(),
            c.country.as_deref(),
            c.source.as_deref(),
            Some(date_updated.as_str()),
            Some(tags.as_str()),
        ];
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            push_csv_field(&mut line, field.unwrap_or(""));
        }
        line.push('\n');
        out.write_all(line.as_bytes())?;
    }
    out.flush()
}

/// Writes the ground truth as CSV: `id,person`, one row per contact.
pub fn write_truth_csv(data: &SeedData, path: &Path) -> std::io::Result<()> {
    let mut out = BufWriter::new(File::create(path)?);
    writeln!(out, "id,person")?;
    let mut line = String::with_capacity(64);
    for row in &data.truth {
        line.clear();
        push_csv_field(&mut line, &row.id);
        line.push(',');
        push_csv_field(&mut line, &row.person);
        line.push('\n');
        out.write_all(line.as_bytes())?;
    }
    out.flush()
}

/// Appends one CSV field, quoted when it holds a delimiter, quote or line break, or when leading or
/// trailing whitespace would otherwise be trimmed by lenient readers.
fn push_csv_field(line: &mut String, value: &str) {
    let needs_quotes = value.contains([',', '"', '\n', '\r'])
        || value.starts_with(char::is_whitespace)
        || value.ends_with(char::is_whitespace);
    if !needs_quotes {
        line.push_str(value);
        return;
    }
    line.push('"');
    for c in value.chars() {
        if c == '"' {
            line.push('"');
        }
        line.push(c);
    }
    line.push('"');
}

#[cfg(test)]
mod tests {
    use super::push_csv_field;

    fn quoted(value: &str) -> String {
        let mut line = String::new();
        push_csv_field(&mut line, value);
        line
    }

    #[test]
    fn quotes_only_what_needs_it() {
        assert_eq!(quoted("plain"), "plain");
        assert_eq!(quoted(""), "");
        assert_eq!(quoted("Smith, Jones & Co."), "\"Smith, Jones & Co.\"");
        assert_eq!(
            quoted("Bob's \"Best\" Burgers"),
            "\"Bob's \"\"Best\"\" Burgers\""
        );
        assert_eq!(quoted("two\nlines"), "\"two\nlines\"");
        assert_eq!(quoted("John "), "\"John \"");
        assert_eq!(quoted("Zoë"), "Zoë");
    }
}
