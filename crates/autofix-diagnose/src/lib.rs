//! Diagnosis: from evidence to a root cause, its evidence and, where it is safe, a fix.
//!
//! A [`Diagnoser`] is a seam with two real implementations: [`RuleDiagnoser`] (deterministic,
//! offline, no API key) and the LLM diagnoser of `autofix-llm` for what rules cannot explain.
//!
//! Layout: `facts.rs` reads the evidence once into the shape the rules ask about; `analyzers.rs`
//! holds the ordered rule analyzers, one per root-cause class; `fixes.rs` derives the
//! deterministic fixes (revert to the last good revision, raise a limit, correct a near-miss
//! name...); `diff.rs` compares pod templates leaf by leaf.

mod analyzers;
mod diff;
mod facts;
mod fixes;

use analyzers::{ANALYZERS, Fix};
use autofix_core::quantity::Quantity;
use autofix_core::{Action, Alternative, Diagnosis, Evidence, Remediation};

/// Why a diagnoser could not answer. Empty: the rules always answer (at worst `unknown`), and the
/// LLM chain ends in an escalation rather than an error when the provider fails.
#[derive(Debug, thiserror::Error)]
pub enum DiagnoseError {}

/// Something that turns evidence into a diagnosis.
#[async_trait::async_trait]
pub trait Diagnoser: Send + Sync {
    /// Diagnoses one incident's evidence.
    async fn diagnose(&self, evidence: &Evidence) -> Result<Diagnosis, DiagnoseError>;
}

/// Bounds the rule fixes respect.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleConfig {
    /// Largest memory limit a fix may set, bytes (policy default 8Gi).
    pub max_memory_bytes: f64,
    /// Largest CPU limit a fix may set, cores (policy default 8).
    pub max_cpu_cores: f64,
    /// Factor applied to a memory limit after an OOM kill (default 2).
    pub memory_factor: f64,
    /// Factor applied to a CPU limit under throttling (default 2).
    pub cpu_factor: f64,
}

impl Default for RuleConfig {
    fn default() -> Self {
        RuleConfig {
            max_memory_bytes: Quantity::parse("8Gi").map_or(0.0, |q| q.0),
            max_cpu_cores: 8.0,
            memory_factor: 2.0,
            cpu_factor: 2.0,
        }
    }
}

/// The deterministic rule analyzers.
#[derive(Debug, Clone, Default)]
pub struct RuleDiagnoser {
    config: RuleConfig,
}

impl RuleDiagnoser {
    /// Rules bounded by `config`.
    pub fn new(config: RuleConfig) -> Self {
        RuleDiagnoser { config }
    }

    /// Runs the analyzers in order; the first that recognises the evidence answers.
    pub fn analyze(&self, evidence: &Evidence) -> Diagnosis {
        let facts = facts::Facts::new(evidence);
        let (name, analysis) = ANALYZERS
            .iter()
            .find_map(|(name, analyzer)| analyzer(&facts, &self.config).map(|a| (*name, a)))
            .expect("the unknown analyzer always answers");
        let (action, remediation, escalation_reason) = match analysis.fix {
            Fix::Changes { strategy, changes } => {
                (Action::Pr, Some(Remediation { strategy, changes }), None)
            }
            Fix::Escalate(reason) => (Action::Escalate, None, Some(reason)),
        };
        let mut diagnosis = Diagnosis {
            category: analysis.category,
            action,
            workload: evidence.workload.clone(),
            container: facts.container.clone(),
            summary: analysis.summary,
            confidence: analysis.confidence,
            evidence: analysis.findings,
            remediation,
            escalation_reason,
            diagnoser: format!("rules/{name}"),
            attempts: Vec::new(),
            alternatives: Vec::new(),
        };
        let firing = evidence
            .alerts
            .iter()
            .any(|a| a.status == autofix_core::alert::AlertStatus::Firing);
        if !firing {
            diagnosis.action = Action::None;
            diagnosis.remediation = None;
            diagnosis.escalation_reason = None;
            diagnosis.summary = format!("Resolved: {}", diagnosis.summary);
        } else if let Some(revert) = revert_alternative(&facts, &diagnosis) {
            diagnosis.alternatives.push(revert);
        }
        diagnosis
    }
}

/// The container fields a revert to the last good rollout restores.
const REVERT_FIELDS: [&str; 5] = ["image", "command", "args", "env", "resources"];

/// How well a blanket revert is supported: the rollout is a suspect, not a proven cause.
const REVERT_CONFIDENCE: f64 = 0.5;

/// Reverting the failing container to the last revision that ran healthy, as a candidate next
/// to a targeted fix: when there is such a revision and it differs, and the fix is not already
/// a revert.
fn revert_alternative(facts: &facts::Facts, diagnosis: &Diagnosis) -> Option<Alternative> {
    let fix = diagnosis.remediation.as_ref()?;
    if fix.strategy.starts_with("revert") {
        return None;
    }
    let (strategy, changes) = fixes::revert(facts, &REVERT_FIELDS, &mut Vec::new()).ok()?;
    Some(Alternative {
        source: "revert-to-last-good".into(),
        remediation: Remediation { strategy, changes },
        confidence: REVERT_CONFIDENCE,
    })
}

#[async_trait::async_trait]
impl Diagnoser for RuleDiagnoser {
    async fn diagnose(&self, evidence: &Evidence) -> Result<Diagnosis, DiagnoseError> {
        Ok(self.analyze(evidence))
    }
}
