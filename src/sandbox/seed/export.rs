//! Writes seeded contacts and their truth as CSV, for the dedupe benchmark and for users who want
//! to try `contactsync dedupe` on realistic data.

use super::SeedData;
use std::io::{BufWriter, Write};
use std::path::Path;

fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) || field.starts_with(' ') || field.ends_with(' ') {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

/// `id,first_name,last_name,email,phone,company,city,postal_code,country,source,date_updated,tags`
/// (tags joined with `;`).
pub fn write_contacts_csv(data: &SeedData, path: &Path) -> std::io::Result<()> {
    let mut out = BufWriter::new(std::fs::File::create(path)?);
    writeln!(
        out,
        "id,first_name,last_name,email,phone,company,city,postal_code,country,source,date_updated,tags"
    )?;
    for c in &data.contacts {
        let opt = |v: &Option<String>| quote(v.as_deref().unwrap_or(""));
        writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{}",
            quote(&c.id),
            opt(&c.first_name),
            opt(&c.last_name),
            opt(&c.email),
            opt(&c.phone),
            opt(&c.company_name),
            opt(&c.city),
            opt(&c.postal_code),
            opt(&c.country),
            opt(&c.source),
            c.date_updated
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            quote(&c.tags.join(";")),
        )?;
    }
    out.flush()
}

/// `id,person`.
pub fn write_truth_csv(data: &SeedData, path: &Path) -> std::io::Result<()> {
    let mut out = BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "id,person")?;
    for t in &data.truth {
        writeln!(out, "{},{}", quote(&t.id), quote(&t.person))?;
    }
    out.flush()
}
