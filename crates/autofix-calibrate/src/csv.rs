//! Reading decisions from a CSV file with a `risk_score,outcome` header.
//!
//! The format is the one a spreadsheet or `mlflow runs` export writes: a header line naming the
//! columns (`risk_score` and `outcome` required, `incident` optional, any others ignored, in any
//! order), then one decision per line. Fields may be quoted (`"a,b"`, `""` for a quote) but not
//! span lines. Blank lines are skipped. Every error names the line (1-based, the header is line
//! 1) and, for a bad value, the column.

use std::num::ParseFloatError;

use crate::outcome::{Decision, Outcome};

/// Why decisions or a calibration config could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CalibrateError {
    /// The text has no header line.
    #[error("the CSV is empty: expected a header with `risk_score` and `outcome` columns")]
    Empty,
    /// The header lacks a required column.
    #[error("line {line}: the header has no `{column}` column (found: {found})")]
    MissingColumn {
        /// The header's line.
        line: usize,
        /// The missing column.
        column: &'static str,
        /// The columns the header does name, comma-separated.
        found: String,
    },
    /// A row has a different number of fields than the header.
    #[error("line {line}: expected {expected} fields as in the header, found {found}")]
    FieldCount {
        /// The row's line.
        line: usize,
        /// Fields in the header.
        expected: usize,
        /// Fields in the row.
        found: usize,
    },
    /// A quoted field is not closed on its line.
    #[error("line {line}: a quoted field is not closed")]
    UnclosedQuote {
        /// The row's line.
        line: usize,
    },
    /// A risk score is not a number.
    #[error("line {line}, column risk_score: `{value}` is not a number")]
    RiskNotNumber {
        /// The row's line.
        line: usize,
        /// The field as written.
        value: String,
        /// The parse failure.
        #[source]
        source: ParseFloatError,
    },
    /// A risk score is a number outside `[0, 1]`.
    #[error("line {line}, column risk_score: {value} is outside [0, 1]")]
    RiskOutOfRange {
        /// The row's line.
        line: usize,
        /// The field as written.
        value: String,
    },
    /// An outcome names none of the known outcomes.
    #[error(
        "line {line}, column outcome: `{value}` is not an outcome \
         (expected merged, rejected, reverted, resolved or recurred)"
    )]
    UnknownOutcome {
        /// The row's line.
        line: usize,
        /// The field as written.
        value: String,
    },
    /// A [`CalibrationConfig`](crate::CalibrationConfig) field is out of range.
    #[error("invalid calibration config `{field}`: {reason}")]
    Config {
        /// The field's name.
        field: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
}

/// Reads decisions from CSV text with a header naming `risk_score` and `outcome`.
pub fn read_csv(text: &str) -> Result<Vec<Decision>, CalibrateError> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim().is_empty());
    let (header_line, header) = lines.next().ok_or(CalibrateError::Empty)?;
    let header = split_fields(header.trim_start_matches('\u{feff}'), header_line)?;
    let column = |name: &'static str| header.iter().position(|h| h.eq_ignore_ascii_case(name));
    let missing = |name| CalibrateError::MissingColumn {
        line: header_line,
        column: name,
        found: header.join(", "),
    };
    let risk_at = column("risk_score").ok_or_else(|| missing("risk_score"))?;
    let outcome_at = column("outcome").ok_or_else(|| missing("outcome"))?;
    let incident_at = column("incident");

    let mut decisions = Vec::new();
    for (line, row) in lines {
        let fields = split_fields(row, line)?;
        if fields.len() != header.len() {
            return Err(CalibrateError::FieldCount {
                line,
                expected: header.len(),
                found: fields.len(),
            });
        }
        let risk = parse_risk(&fields[risk_at], line)?;
        let outcome =
            fields[outcome_at]
                .parse::<Outcome>()
                .map_err(|e| CalibrateError::UnknownOutcome {
                    line,
                    value: e.value,
                })?;
        let incident = incident_at
            .map(|i| fields[i].clone())
            .filter(|s| !s.is_empty());
        decisions.push(Decision {
            risk,
            outcome,
            incident,
        });
    }
    Ok(decisions)
}

fn parse_risk(field: &str, line: usize) -> Result<f64, CalibrateError> {
    let risk: f64 = field
        .parse()
        .map_err(|source| CalibrateError::RiskNotNumber {
            line,
            value: field.to_owned(),
            source,
        })?;
    if !(0.0..=1.0).contains(&risk) {
        return Err(CalibrateError::RiskOutOfRange {
            line,
            value: field.to_owned(),
        });
    }
    Ok(risk)
}

/// Splits one line into trimmed fields, honouring double quotes.
fn split_fields(line: &str, number: usize) -> Result<Vec<String>, CalibrateError> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' if quoted => quoted = false,
            '"' if field.trim().is_empty() => {
                field.clear();
                quoted = true;
            }
            ',' if !quoted => fields.push(std::mem::take(&mut field).trim().to_owned()),
            _ => field.push(c),
        }
    }
    if quoted {
        return Err(CalibrateError::UnclosedQuote { line: number });
    }
    fields.push(field.trim().to_owned());
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_fields_keep_commas_and_quotes() {
        let fields = split_fields(r#" a ,"b, ""c""", d"#, 1).expect("splits");
        assert_eq!(fields, ["a", r#"b, "c""#, "d"]);
        assert_eq!(
            split_fields(r#"a,"b"#, 7),
            Err(CalibrateError::UnclosedQuote { line: 7 })
        );
    }
}
