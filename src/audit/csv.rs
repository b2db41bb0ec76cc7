//! CSV output for finding lists, safe to open in a spreadsheet.

use std::io::Write;

/// Writes one CSV cell: quoted when needed, and neutralised when a spreadsheet would read it as a
/// formula (cells starting with `= + - @`, tab or carriage return get a leading `'`). An E.164
/// phone number (`+` and digits only) is left as it is: it computes nothing, and a `'` in front
/// of it breaks every join on phone.
pub fn cell(value: &str) -> String {
    let neutral = match value.chars().next() {
        Some('+') if is_e164(value) => value.to_string(),
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}"),
        _ => value.to_string(),
    };
    if neutral.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", neutral.replace('"', "\"\""))
    } else {
        neutral
    }
}

/// `+` then 7 to 15 digits, nothing else.
fn is_e164(value: &str) -> bool {
    let digits = &value[1..];
    (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Writes a header and rows.
pub fn write_table(
    out: &mut impl Write,
    columns: &[String],
    rows: &[Vec<String>],
) -> std::io::Result<()> {
    let line = |cells: &[String]| cells.iter().map(|c| cell(c)).collect::<Vec<_>>().join(",");
    writeln!(out, "{}", line(columns))?;
    for row in rows {
        writeln!(out, "{}", line(row))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_looking_cells_are_neutralised() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(
            cell("+14155550100"),
            "+14155550100",
            "a phone stays joinable"
        );
        assert_eq!(cell("+1555+1234"), "'+1555+1234");
        assert_eq!(cell("+SUM(A1)"), "'+SUM(A1)");
        assert_eq!(cell("-1"), "'-1");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("line\nbreak"), "\"line\nbreak\"");
    }

    #[test]
    fn tables_have_a_header_and_one_line_per_row() {
        let mut out = Vec::new();
        write_table(
            &mut out,
            &["id".into(), "name".into()],
            &[vec!["1".into(), "=cmd".into()]],
        )
        .expect("write");
        assert_eq!(String::from_utf8(out).expect("utf8"), "id,name\n1,'=cmd\n");
    }
}
