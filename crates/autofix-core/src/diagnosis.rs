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
    /// The tries of a diagnoser that can try several times (the LLM chain), in order; empty
    /// for the rules, which answer in one go.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<Attempt>,
    /// Other defensible fixes for the same diagnosis (e.g. reverting the last rollout), which
    /// the pipeline weighs against `remediation` before it proposes one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<Alternative>,
}

/// A fix other than the diagnoser's first choice, with where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alternative {
    /// The strategy that produced it, e.g. `revert-to-last-good`.
    pub source: String,
    /// The fix.
    pub remediation: Remediation,
    /// How well the evidence supports it, in [0, 1].
    pub confidence: f64,
}

/// One try of a diagnoser: an LLM iteration, a fallback model or a narrower scope. Each becomes
/// a nested tracking run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// What tried, e.g. `llm/gpt-4.1-mini`.
    pub name: String,
    /// The kind of diagnoser: `rules` or `llm`.
    pub agent: String,
    /// From 1, across the whole chain.
    pub iteration: u32,
    /// The step of the chain: `primary`, `fallback-model` or `narrow-scope`.
    pub stage: String,
    /// `accepted`, `invalid` (the reply was refused) or `error` (the call failed).
    pub outcome: String,
    /// Why the reply was refused or the call failed.
    pub error: Option<String>,
    /// Wall-clock milliseconds of the call, retries included.
    pub latency_ms: f64,
    /// Prompt tokens, when the provider said.
    pub prompt_tokens: Option<u64>,
    /// Completion tokens, when the provider said.
    pub completion_tokens: Option<u64>,
    /// The prompt as sent (built from redacted evidence only). Kept out of JSON output and
    /// stored records: only tracking with `log_prompts` on writes it.
    #[serde(skip)]
    pub prompt: Option<String>,
    /// The raw reply; kept out of JSON output like the prompt.
    #[serde(skip)]
    pub reply: Option<String>,
}

impl Diagnosis {
    /// Turns this diagnosis into an escalation, keeping the category and evidence.
    pub fn escalate(mut self, reason: impl Into<String>) -> Self {
        self.action = Action::Escalate;
        self.escalation_reason = Some(reason.into());
        self
    }
}
