//! The result of one run, as printed with `--json` (documented in `docs/cli.md`).

use autofix_cluster::DryRunVerdict;
use autofix_core::{
    Action, Attempt, Category, Diagnosis, Finding, IncidentKey, RiskScore, Validation, Verdict,
    WorkloadRef,
};
use serde::Serialize;
use std::collections::BTreeMap;

/// A file the fix edits, with its unified diff.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangedFile {
    /// Path relative to the GitOps repo.
    pub file: String,
    /// Unified diff of the edit.
    pub diff: String,
    /// The whole file after the fix (kept out of `--json`, which shows the diff).
    #[serde(skip)]
    pub after: String,
}

/// A field change as reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportedChange {
    /// Path on the live workload.
    pub path: String,
    /// Value before (JSON), `null` when absent.
    pub from: serde_json::Value,
    /// Value after (JSON).
    pub to: serde_json::Value,
    /// Why.
    pub reason: String,
}

/// Title, body and labels of a pull request or escalation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PublishedText {
    /// Title.
    pub title: String,
    /// Markdown body.
    pub body: String,
    /// Labels.
    pub labels: Vec<String>,
    /// Number given by the forge.
    pub number: u64,
    /// Where the record lives.
    pub url: String,
    /// False when an existing record was updated.
    pub created: bool,
}

/// What the cluster's admission said about the fix in a server-side dry run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DryRunOutcome {
    /// The API server judged the corrected object.
    Judged(DryRunVerdict),
    /// The dry run could not be made (unreachable, timeout, no permission): no verdict.
    Unavailable {
        /// Why.
        error: String,
    },
}

impl DryRunOutcome {
    /// `accepted`, `denied` or `unavailable` (the MLflow tag).
    pub fn result(&self) -> &'static str {
        match self {
            DryRunOutcome::Judged(DryRunVerdict::Accepted { .. }) => "accepted",
            DryRunOutcome::Judged(DryRunVerdict::Denied { .. }) => "denied",
            DryRunOutcome::Unavailable { .. } => "unavailable",
        }
    }

    /// The PR body section.
    pub fn to_markdown(&self) -> String {
        match self {
            DryRunOutcome::Judged(verdict) => verdict.to_markdown(),
            DryRunOutcome::Unavailable { error } => format!(
                "### Server-side dry-run\n\nUnavailable, so the cluster's admission did not judge this change before review: {error}\n"
            ),
        }
    }
}

/// The candidate fixes weighed for this run and the one chosen (docs/risk-model.md).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CandidatesReport {
    /// The chosen candidate's id; `None` when none passed the safety gate.
    pub chosen: Option<String>,
    /// The strategy learned outcome statistics chose, when they made the choice (else the
    /// rank order did).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub learned: Option<String>,
    /// What the statistics say about each strategy for this category, when learning is on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub arms: Vec<autofix_choose::ArmStats>,
    /// Its position in `considered`.
    #[serde(skip)]
    pub chosen_index: Option<usize>,
    /// Every candidate, in the order they were proposed.
    pub considered: Vec<ConsideredCandidate>,
    /// The Markdown table of the pull request.
    #[serde(skip)]
    pub table: String,
}

/// One candidate fix and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConsideredCandidate {
    /// The strategy, numbered when it offered several fixes (`rule`, `revert-to-last-good`).
    pub id: String,
    /// Where it came from: `rule`, `revert-to-last-good`, `llm`, `llm-narrowed`.
    pub strategy: String,
    /// What it does.
    pub summary: String,
    /// Whether it passed the safety gate (validation, block threshold).
    pub passed: bool,
    /// Its risk score (1 when it could not be judged).
    pub risk: f64,
    /// Why it was or was not chosen.
    pub verdict: String,
}

/// Everything one pipeline run decided and did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunReport {
    /// Short hash of the incident key.
    pub incident: String,
    /// Cluster name.
    pub cluster: String,
    /// Root-cause class.
    pub category: Category,
    /// What was done.
    pub action: Action,
    /// The workload at fault.
    pub workload: WorkloadRef,
    /// The container at fault.
    pub container: Option<String>,
    /// One sentence for a reviewer.
    pub summary: String,
    /// Diagnoser confidence in [0, 1].
    pub confidence: f64,
    /// Which diagnoser answered.
    pub diagnoser: String,
    /// Evidence, strongest first.
    pub evidence: Vec<Finding>,
    /// Strategy of the fix, when there is one.
    pub strategy: Option<String>,
    /// Where the fix came from: `rule`, `revert-to-last-good`, `llm` or `llm-narrowed` (what the
    /// learned strategy statistics count).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The field changes of the fix.
    pub changes: Vec<ReportedChange>,
    /// Risk of the fix (absent when there is no fix).
    pub risk: Option<RiskScore>,
    /// Validation of the fix (passed with no violations when there is no fix).
    pub validation: Validation,
    /// The candidate fixes weighed, when there was more than one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidates: Option<CandidatesReport>,
    /// The cluster's own admission on the fix (`[dry_run]`), when asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<DryRunOutcome>,
    /// Why humans must act, for escalations.
    pub escalation_reason: Option<String>,
    /// Fix branch.
    pub branch: Option<String>,
    /// The remote repository the branch was pushed to (absent for a local work tree).
    pub remote: Option<String>,
    /// Why no pull request was opened or updated although there is a fix: declined before,
    /// edited by a human, or already on the base.
    pub note: Option<String>,
    /// Fix commit id.
    pub commit: Option<String>,
    /// Files the fix changes, with diffs.
    pub files_changed: Vec<ChangedFile>,
    /// The pull request, for action `pr`.
    pub pr: Option<PublishedText>,
    /// The escalation, for action `escalate`.
    pub escalation: Option<PublishedText>,
    /// Wall-clock milliseconds per stage: evidence, diagnose, remedy, validate, publish.
    pub stage_ms: BTreeMap<String, f64>,
    /// The diagnoser's tries (LLM iterations and fallbacks); empty for the rules. Their prompts
    /// and replies are never serialized.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<Attempt>,
}

impl RunReport {
    /// The report of a diagnosis and its verdict, before anything is published.
    pub(crate) fn new(key: &IncidentKey, diagnosis: &Diagnosis, verdict: Option<&Verdict>) -> Self {
        let changes = diagnosis
            .remediation
            .iter()
            .flat_map(|r| &r.changes)
            .map(|c| ReportedChange {
                path: c.path.to_string(),
                from: c.from.clone().unwrap_or(serde_json::Value::Null),
                to: c.to.clone(),
                reason: c.reason.clone(),
            })
            .collect();
        RunReport {
            incident: key.short_hash(),
            cluster: key.cluster.clone(),
            category: diagnosis.category,
            action: diagnosis.action,
            workload: diagnosis.workload.clone(),
            container: diagnosis.container.clone(),
            summary: diagnosis.summary.clone(),
            confidence: diagnosis.confidence,
            diagnoser: diagnosis.diagnoser.clone(),
            evidence: diagnosis.evidence.clone(),
            strategy: diagnosis.remediation.as_ref().map(|r| r.strategy.clone()),
            source: None,
            changes,
            risk: verdict.map(|v| v.risk.clone()),
            validation: verdict
                .map(|v| v.validation.clone())
                .unwrap_or_else(|| Validation::from_violations(Vec::new())),
            candidates: None,
            dry_run: None,
            escalation_reason: diagnosis.escalation_reason.clone(),
            branch: None,
            remote: None,
            note: None,
            commit: None,
            files_changed: Vec::new(),
            pr: None,
            escalation: None,
            stage_ms: BTreeMap::new(),
            attempts: diagnosis.attempts.clone(),
        }
    }
}
