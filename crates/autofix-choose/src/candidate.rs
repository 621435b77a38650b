//! What is being chosen: candidate fixes and the strategy each came from.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a candidate fix came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// A deterministic rule analyzer's fix.
    Rule,
    /// Rolling the workload back to its last healthy revision.
    RevertToLastGood,
    /// A patch proposed by the LLM.
    Llm,
    /// A patch proposed by the LLM after its scope was narrowed to fewer fields.
    LlmNarrowed,
}

impl Strategy {
    /// Every strategy, in declaration order (the order ties are broken in).
    pub const ALL: [Strategy; 4] = [
        Strategy::Rule,
        Strategy::RevertToLastGood,
        Strategy::Llm,
        Strategy::LlmNarrowed,
    ];

    /// The kebab-case name used in config, JSON and PR text.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Rule => "rule",
            Strategy::RevertToLastGood => "revert-to-last-good",
            Strategy::Llm => "llm",
            Strategy::LlmNarrowed => "llm-narrowed",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A strategy name that is none of [`Strategy::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown strategy `{0}` (expected rule, revert-to-last-good, llm or llm-narrowed)")]
pub struct UnknownStrategy(pub String);

impl FromStr for Strategy {
    type Err = UnknownStrategy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Strategy::ALL
            .into_iter()
            .find(|strategy| strategy.as_str() == s)
            .ok_or_else(|| UnknownStrategy(s.to_owned()))
    }
}

/// One validated, risk-scored remediation proposed for an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// Unique among the incident's candidates, e.g. `rule:memory-limit`.
    pub id: String,
    /// Where the fix came from.
    pub strategy: Strategy,
    /// One line for humans, e.g. `raise the memory limit 128Mi -> 256Mi`.
    pub summary: String,
    /// Whether the edited manifests passed schema and safety-policy validation.
    pub validation_passed: bool,
    /// Why validation failed; empty when it passed.
    pub problems: Vec<String>,
    /// Overall risk score, 0..=1.
    pub risk: f64,
    /// The risk model's blast-radius factor, 0..=1.
    pub blast_radius: f64,
    /// Manifest fields the fix changes.
    pub fields_changed: u32,
    /// Lines of YAML the fix changes.
    pub lines_changed: u32,
    /// LLM tokens spent producing the fix (0 for rules and reverts).
    pub tokens: u64,
    /// Wall-clock time spent producing the fix, in milliseconds.
    pub elapsed_ms: u64,
    /// Strength of the supporting evidence (confidence), 0..=1.
    pub evidence: f64,
}

impl Candidate {
    /// Whether the candidate may be chosen at all: it passed validation and its scores are
    /// finite numbers (a NaN risk is a bug upstream, not a low risk).
    pub fn passes_gate(&self) -> bool {
        self.validation_passed && self.scores_are_finite()
    }

    /// Why the safety gate refuses the candidate; empty when it passes.
    pub(crate) fn gate_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !self.validation_passed {
            if self.problems.is_empty() {
                problems.push("no problem recorded".to_owned());
            } else {
                problems.extend(self.problems.iter().cloned());
            }
        }
        if !self.scores_are_finite() {
            problems.push(format!(
                "scores are not finite numbers (risk {}, blast radius {}, evidence {})",
                self.risk, self.blast_radius, self.evidence
            ));
        }
        problems
    }

    fn scores_are_finite(&self) -> bool {
        [self.risk, self.blast_radius, self.evidence]
            .iter()
            .all(|score| score.is_finite())
    }
}
