//! The outcome of diagnosis: a root cause, the evidence for it, and maybe a fix.

use crate::category::{Action, Category};
use crate::remediation::Remediation;
use crate::workload::WorkloadRef;
use serde::{Deserialize, Serialize};

/// One piece of evidence supporting a diagnosis, shown to reviewers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Where it was seen, e.g. `pod/cart-764d7f7f78-sqswk` or `events`.
    pub source: String,
    /// What was seen.
    pub detail: String,
}

impl Finding {
    /// A finding from a source and a detail.
    pub fn new(source: impl Into<String>, detail: impl Into<String>) -> Self {
        Finding {
            source: source.into(),
            detail: detail.into(),
        }
    }
}

/// A diagnosed incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// The root-cause class.
    pub category: Category,
    /// What to do about it.
    pub action: Action,
    /// The workload at fault.
    pub workload: WorkloadRef,
    /// The container at fault, when one is.
    pub container: Option<String>,
    /// One sentence for a reviewer.
    pub summary: String,
    /// How sure the diagnoser is, in [0, 1].
    pub confidence: f64,
    /// The evidence, strongest first.
    pub evidence: Vec<Finding>,
    /// The fix, when `action` is `pr`.
    pub remediation: Option<Remediation>,
    /// Why humans must act, when `action` is `escalate`.
    pub escalation_reason: Option<String>,
    /// Which diagnoser produced this (e.g. `rules/oom`).
    pub diagnoser: String,
}

impl Diagnosis {
    /// Turns this diagnosis into an escalation, keeping the category and evidence.
    pub fn escalate(mut self, reason: impl Into<String>) -> Self {
        self.action = Action::Escalate;
        self.escalation_reason = Some(reason.into());
        self
    }
}
