//! What the policy stage says about a fix: validation results and a risk score.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// Rule identifier, e.g. `schema`, `privileged`, `undeclared-path`.
    pub rule: String,
    /// File the violation is in, relative to the GitOps repo.
    pub file: Option<String>,
    /// Field path the violation is at.
    pub path: Option<String>,
    /// Human explanation.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]", self.rule)?;
        if let Some(file) = &self.file {
            write!(f, " {file}")?;
        }
        if let Some(path) = &self.path {
            write!(f, " `{path}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Schema and safety validation of the edited manifests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Validation {
    /// True when there is no violation.
    pub passed: bool,
    /// Every violation found.
    pub violations: Vec<Violation>,
}

impl Validation {
    /// A validation holding these violations.
    pub fn from_violations(violations: Vec<Violation>) -> Self {
        Validation {
            passed: violations.is_empty(),
            violations,
        }
    }
}

/// Coarse risk bands, from config thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    /// Routine change.
    Low,
    /// Needs a careful review.
    Medium,
    /// Needs a senior reviewer; may be escalated by threshold.
    High,
}

impl fmt::Display for RiskLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RiskLevel::Low => "low",
            RiskLevel::Medium => "medium",
            RiskLevel::High => "high",
        })
    }
}

/// One factor of the risk score: a value in (0, 1] and the reason for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskFactor {
    /// The factor's value, floored at epsilon.
    pub value: f64,
    /// Why it has that value.
    pub why: String,
}

/// The four factors of the risk model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskFactors {
    /// How much of the service a bad change would hit.
    pub blast_radius: RiskFactor,
    /// How sensitive the changed fields are.
    pub resource_sensitivity: RiskFactor,
    /// How hard the change is to undo.
    pub rollback_complexity: RiskFactor,
    /// How critical the namespace is.
    pub namespace_scope: RiskFactor,
}

/// Weights of the geometric mean, one per factor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskWeights {
    /// Weight of blast radius (default 0.35).
    pub blast_radius: f64,
    /// Weight of resource sensitivity (default 0.25).
    pub resource_sensitivity: f64,
    /// Weight of rollback complexity (default 0.2).
    pub rollback_complexity: f64,
    /// Weight of namespace scope (default 0.2).
    pub namespace_scope: f64,
}

impl Default for RiskWeights {
    fn default() -> Self {
        RiskWeights {
            blast_radius: 0.35,
            resource_sensitivity: 0.25,
            rollback_complexity: 0.2,
            namespace_scope: 0.2,
        }
    }
}

/// The risk of a change: weighted geometric mean of the factors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskScore {
    /// The score in (0, 1].
    pub score: f64,
    /// The band the score falls in.
    pub level: RiskLevel,
    /// Each factor with its reason.
    pub factors: RiskFactors,
    /// The weights used.
    pub weights: RiskWeights,
}

/// The policy stage's answer about one fix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Validation of the edited files and of the remediation data.
    pub validation: Validation,
    /// Risk of the change.
    pub risk: RiskScore,
}
