//! The `filter` query language of `GET /messages`: clauses `name OP value` joined by `&`.

use super::errors::BulkSmsError;
use super::state::{Direction, Message};
use chrono::{DateTime, Utc};

/// One clause.
#[derive(Debug, Clone, PartialEq)]
pub enum Clause {
    IdLess(u64),
    IdGreater(u64),
    Type(Direction),
    SubmissionId(String),
    StatusType(String),
    StatusId(String),
    UserSuppliedId(String),
    SubmissionDate(DateOp, DateTime<Utc>),
}

/// Comparison of `submission.date`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateOp {
    Lt,
    Le,
    Gt,
    Ge,
}

fn split_clause(clause: &str) -> Option<(&str, &str, &str)> {
    for op in [">=", "<=", "=", "<", ">"] {
        if let Some(pos) = clause.find(op) {
            return Some((&clause[..pos], op, &clause[pos + op.len()..]));
        }
    }
    None
}

/// Parses a (URL-decoded) filter.
pub fn parse(filter: &str) -> Result<Vec<Clause>, BulkSmsError> {
    let mut clauses = Vec::new();
    for raw in filter.split('&').filter(|c| !c.is_empty()) {
        let (name, op, value) = split_clause(raw)
            .ok_or_else(|| BulkSmsError::bad_request(format!("Invalid filter clause '{raw}'")))?;
        let bad_op = || {
            BulkSmsError::bad_request(format!(
                "The operator '{op}' is not supported for the field '{name}'"
            ))
        };
        let clause = match name {
            "id" => {
                let n = value.parse::<u64>().map_err(|_| {
                    BulkSmsError::bad_request(format!("Invalid value '{value}' for the field 'id'"))
                })?;
                match op {
                    "<" => Clause::IdLess(n),
                    ">" => Clause::IdGreater(n),
                    _ => return Err(bad_op()),
                }
            }
            "type" if op == "=" => match value {
                "SENT" => Clause::Type(Direction::Sent),
                "RECEIVED" => Clause::Type(Direction::Received),
                _ => {
                    return Err(BulkSmsError::bad_request(format!(
                        "Invalid value '{value}' for the field 'type'"
                    )));
                }
            },
            "submission.id" if op == "=" => Clause::SubmissionId(value.to_string()),
            "status.type" if op == "=" => {
                if !matches!(
                    value,
                    "ACCEPTED" | "SCHEDULED" | "SENT" | "DELIVERED" | "UNKNOWN" | "FAILED"
                ) {
                    return Err(BulkSmsError::bad_request(format!(
                        "Invalid value '{value}' for the field 'status.type'"
                    )));
                }
                Clause::StatusType(value.to_string())
            }
            "status.id" if op == "=" => Clause::StatusId(value.to_string()),
            "userSuppliedId" if op == "=" => Clause::UserSuppliedId(value.to_string()),
            "submission.date" => {
                let date = DateTime::parse_from_rfc3339(value)
                    .map_err(|_| {
                        BulkSmsError::bad_request(format!(
                            "Invalid value '{value}' for the field 'submission.date': a fully specified date is required"
                        ))
                    })?
                    .with_timezone(&Utc);
                let op = match op {
                    "<" => DateOp::Lt,
                    "<=" => DateOp::Le,
                    ">" => DateOp::Gt,
                    ">=" => DateOp::Ge,
                    _ => return Err(bad_op()),
                };
                Clause::SubmissionDate(op, date)
            }
            "type" | "submission.id" | "status.type" | "status.id" | "userSuppliedId" => {
                return Err(bad_op());
            }
            other => {
                return Err(BulkSmsError::bad_request(format!(
                    "The field '{other}' is not a valid filter field"
                )));
            }
        };
        clauses.push(clause);
    }
    Ok(clauses)
}

/// True when a message passes every clause at `now`.
pub fn accepts(clauses: &[Clause], m: &Message, now: DateTime<Utc>) -> bool {
    clauses.iter().all(|c| match c {
        Clause::IdLess(n) => m.id < *n,
        Clause::IdGreater(n) => m.id > *n,
        Clause::Type(d) => m.direction == *d,
        Clause::SubmissionId(s) => &m.submission_id == s,
        Clause::StatusType(t) => m.status_at(now).0 == t,
        Clause::StatusId(id) => {
            let (t, sub) = m.status_at(now);
            format!("{t}.{}", sub.unwrap_or("null")) == *id || t == id
        }
        Clause::UserSuppliedId(u) => {
            m.direction == Direction::Sent && m.user_supplied_id.as_deref() == Some(u.as_str())
        }
        Clause::SubmissionDate(op, d) => match op {
            DateOp::Lt => m.submitted_at < *d,
            DateOp::Le => m.submitted_at <= *d,
            DateOp::Gt => m.submitted_at > *d,
            DateOp::Ge => m.submitted_at >= *d,
        },
    })
}

/// The id range clauses bound, to walk only that part of the id index.
pub fn id_bounds(clauses: &[Clause]) -> (Option<u64>, Option<u64>) {
    let mut above = None;
    let mut below = None;
    for c in clauses {
        match c {
            Clause::IdGreater(n) => above = Some(above.map_or(*n, |a: u64| a.max(*n))),
            Clause::IdLess(n) => below = Some(below.map_or(*n, |b: u64| b.min(*n))),
            _ => {}
        }
    }
    (above, below)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_clauses_parse() {
        let c =
            parse("type=SENT&id<123&submission.date>=2017-01-01T10:00:00+01:00").expect("parse");
        assert_eq!(c.len(), 3);
        assert_eq!(c[1], Clause::IdLess(123));
        assert_eq!(parse("id>5").expect("parse"), vec![Clause::IdGreater(5)]);
    }

    #[test]
    fn unknown_fields_and_values_are_refused_with_a_detail() {
        let e = parse("colour=red").expect_err("unknown field");
        assert!(e.detail.contains("colour"), "{}", e.detail);
        assert!(parse("type=LOUD").is_err());
        assert!(parse("id=abc").is_err());
        assert!(parse("submission.date>=yesterday").is_err());
    }
}
