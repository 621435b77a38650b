//! What became of a proposed fix, and whether that counts as safe.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What became of one proposed fix: its latest known state.
///
/// A fix is **safe** when it was merged, not reverted, the alert resolved and did not recur
/// within the observation window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Merged, with no later sign of harm yet (not reverted, no recurrence seen).
    Merged,
    /// Closed unmerged: a reviewer judged the fix unsafe or wrong.
    Rejected,
    /// Merged, then reverted.
    Reverted,
    /// Merged, and the alert resolved without recurring within the window.
    Resolved,
    /// Merged, but the alert came back within the window.
    Recurred,
}

impl Outcome {
    /// All outcomes, in the order of their declaration.
    pub const ALL: [Outcome; 5] = [
        Outcome::Merged,
        Outcome::Rejected,
        Outcome::Reverted,
        Outcome::Resolved,
        Outcome::Recurred,
    ];

    /// `Merged` and `Resolved` are safe; `Rejected`, `Reverted` and `Recurred` are unsafe.
    pub fn is_safe(self) -> bool {
        matches!(self, Outcome::Merged | Outcome::Resolved)
    }

    /// The snake_case name, as in CSV files and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Merged => "merged",
            Outcome::Rejected => "rejected",
            Outcome::Reverted => "reverted",
            Outcome::Resolved => "resolved",
            Outcome::Recurred => "recurred",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no [`Outcome`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not an outcome (expected merged, rejected, reverted, resolved or recurred)")]
pub struct UnknownOutcome {
    /// The string as given.
    pub value: String,
}

impl FromStr for Outcome {
    type Err = UnknownOutcome;

    /// Accepts the snake_case names, ignoring case and surrounding whitespace.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        Outcome::ALL
            .into_iter()
            .find(|o| o.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| UnknownOutcome {
                value: s.to_owned(),
            })
    }
}

/// One proposed fix: its risk score when proposed and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The risk score in `[0, 1]` (see `docs/risk-model.md`).
    pub risk: f64,
    /// What became of the fix.
    pub outcome: Outcome,
    /// The incident it fixed, when known, to trace a decision back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
}

impl Decision {
    /// A decision with no incident id.
    pub fn new(risk: f64, outcome: Outcome) -> Self {
        Decision {
            risk,
            outcome,
            incident: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_outcomes_are_merged_and_resolved() {
        let safe: Vec<Outcome> = Outcome::ALL.into_iter().filter(|o| o.is_safe()).collect();
        assert_eq!(safe, [Outcome::Merged, Outcome::Resolved]);
    }

    #[test]
    fn names_round_trip_through_from_str_and_serde() {
        for o in Outcome::ALL {
            assert_eq!(o.to_string().parse::<Outcome>(), Ok(o));
            assert_eq!(o.as_str().to_uppercase().parse::<Outcome>(), Ok(o));
            let json = serde_json::to_string(&o).expect("serialize");
            assert_eq!(json, format!("\"{}\"", o.as_str()));
        }
        let err = "approved".parse::<Outcome>().expect_err("unknown");
        assert!(err.to_string().contains("`approved`"), "{err}");
    }
}
