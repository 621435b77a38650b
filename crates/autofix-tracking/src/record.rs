//! What one incident run logs to MLflow, built from the pipeline's [`RunReport`].
//!
//! A [`RunRecord`] is plain data (serialisable, so it can be spooled): the parent run's params,
//! metrics, tags, note and artifacts, and one [`AttemptRecord`] per nested run. Nothing in it
//! needs MLflow to be up. What goes in is listed in `docs/observability.md`; raw logs, env
//! values, full prompts and credentials never do (evidence is redacted at the source, and
//! [`RunRecord::redacted`] passes every string through [`autofix_core::redact`] once more).

use crate::batch::{Metric, Param, Tag};
use crate::client::RunStatus;
use autofix_core::Incident;
use autofix_core::redact::redact;
use autofix_pipeline::RunReport;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Tag that identifies a record's runs, so a replay finds them instead of logging twice.
pub const RECORD_ID_TAG: &str = "autofix.record_id";

/// One file to store with a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// Path under the run's artifact root, `/` separated (e.g. `manifests/shop/cart.yaml`).
    pub path: String,
    /// Content (text: every artifact kube-autofix writes is text).
    pub content: String,
}

impl Artifact {
    /// An artifact from a path and its content.
    pub fn new(path: impl Into<String>, content: impl Into<String>) -> Self {
        Artifact {
            path: path.into(),
            content: content.into(),
        }
    }
}

/// One attempt of the agent (an iteration, a retry or a fallback): a nested run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// What attempted, e.g. `rules/app-env` or `llm/gpt-4o`.
    pub name: String,
    /// Agent type: `rules` or `llm`.
    pub agent: String,
    /// Iteration number, from 1; the step of the attempt's metrics.
    pub iteration: u32,
    /// `Finished`, or `Failed` when the attempt gave up or errored.
    pub status: RunStatus,
    /// Metrics of the attempt (e.g. `confidence`, `llm_latency_ms`, `prompt_tokens`).
    pub metrics: BTreeMap<String, f64>,
    /// Params of the attempt (e.g. `model`, `temperature`).
    pub params: BTreeMap<String, String>,
    /// Tags of the attempt (e.g. `outcome`).
    pub tags: BTreeMap<String, String>,
    /// The error chain when the attempt failed; stored as `error.txt`.
    pub error: Option<String>,
}

/// What a run knew besides its report: the alerts, the agent's settings and extra artifacts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunContext {
    /// Cluster of the incident.
    pub cluster: String,
    /// Namespace of the incident.
    pub namespace: String,
    /// Names of the incident's alerts, firing first.
    pub alertnames: Vec<String>,
    /// The workload the alert labels name (before the cluster resolved the owner), if any.
    pub subject: Option<String>,
    /// Diagnosis provider: `rules`, or the LLM provider.
    pub provider: String,
    /// LLM model, when one is used.
    pub model: Option<String>,
    /// `pr` (open pull requests) or `propose-only`.
    pub mode: String,
    /// Most agent iterations allowed.
    pub max_iterations: u32,
    /// Version of the safety policy and risk weights, when the caller has one.
    pub policy_version: Option<String>,
    /// When the run started, in ms since the epoch.
    pub start_time: i64,
    /// The attempts, in order; empty means one rules attempt, derived from the report.
    pub attempts: Vec<AttemptRecord>,
    /// Corrected manifests (GitOps path -> full content after the fix), stored under
    /// `manifests/`.
    pub manifests: BTreeMap<String, String>,
    /// Redacted prompts and raw replies; stored under `prompts/` only when
    /// `tracking.log_prompts` is on.
    pub prompts: Vec<Artifact>,
}

impl RunContext {
    /// The context of an incident handled by the rule diagnoser, opening pull requests, now.
    pub fn from_incident(incident: &Incident) -> Self {
        let alertnames = incident.alerts.iter().fold(Vec::new(), |mut names, a| {
            if !a.name().is_empty() && !names.iter().any(|n| n == a.name()) {
                names.push(a.name().to_string());
            }
            names
        });
        let subject = incident
            .alerts
            .iter()
            .find_map(|a| autofix_core::workload_hint(&a.labels))
            .map(|h| h.name);
        RunContext {
            cluster: incident.cluster.clone(),
            namespace: incident.namespace.clone(),
            alertnames,
            subject,
            provider: "rules".into(),
            model: None,
            mode: "pr".into(),
            max_iterations: 1,
            policy_version: None,
            start_time: now_ms(),
            attempts: Vec::new(),
            manifests: BTreeMap::new(),
            prompts: Vec::new(),
        }
    }

    /// The context with the LLM's provider, model and iterations when its mode asks it.
    pub fn with_llm(mut self, llm: &autofix_llm::LlmConfig) -> Self {
        if llm.mode != autofix_llm::DiagnosisMode::Rules {
            self.provider = if llm.azure.is_some() {
                "azure-openai"
            } else {
                "openai-compatible"
            }
            .into();
            self.model = Some(llm.model.clone());
            self.max_iterations = llm.max_iterations;
        }
        self
    }

    /// A readable run name: `shop/cart KubePodCrashLooping`.
    pub fn run_name(&self) -> String {
        run_name(
            &self.namespace,
            self.subject.as_deref().unwrap_or("*"),
            self.alertnames.first().map_or("alert", String::as_str),
        )
    }
}

/// Everything one incident run logs: the parent run and its nested runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Unique id, also the spool file name and the [`RECORD_ID_TAG`] value; starts with the
    /// start time so ids sort in run order.
    pub id: String,
    /// Display name of the parent run.
    pub run_name: String,
    /// Final status.
    pub status: RunStatus,
    /// Start, in ms since the epoch.
    pub start_time: i64,
    /// End, in ms since the epoch.
    pub end_time: i64,
    /// Params (write-once).
    pub params: BTreeMap<String, String>,
    /// Metric points.
    pub metrics: Vec<Metric>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Markdown note shown on the run page (`mlflow.note.content`).
    pub note: String,
    /// Files stored with the parent run.
    pub artifacts: Vec<Artifact>,
    /// Prompt artifacts, dropped unless `tracking.log_prompts` is on.
    pub prompts: Vec<Artifact>,
    /// Nested runs, one per attempt.
    pub attempts: Vec<AttemptRecord>,
}

impl RunRecord {
    /// The record of a run that produced a report (a pull request, an escalation or nothing).
    pub fn from_report(report: &RunReport, ctx: &RunContext) -> Self {
        let end_time = now_ms();
        let attempts = if !ctx.attempts.is_empty() {
            ctx.attempts.clone()
        } else if !report.attempts.is_empty() {
            report.attempts.iter().map(diagnoser_attempt).collect()
        } else {
            vec![rules_attempt(report)]
        };
        let step = i64::from(attempts.last().map_or(1, |a| a.iteration));
        let w = &report.workload;

        let mut params = base_params(ctx);
        params.insert("diagnoser".into(), report.diagnoser.clone());
        params.insert("workload".into(), w.name.clone());
        params.insert("kind".into(), w.kind.to_string());
        if let Some(c) = &report.container {
            params.insert("container".into(), c.clone());
        }
        if let Some(s) = &report.strategy {
            params.insert("strategy".into(), s.clone());
        }
        if let Some(risk) = &report.risk {
            let weights = &risk.weights;
            for (name, value) in [
                ("blast_radius", weights.blast_radius),
                ("resource_sensitivity", weights.resource_sensitivity),
                ("rollback_complexity", weights.rollback_complexity),
                ("namespace_scope", weights.namespace_scope),
            ] {
                params.insert(format!("risk_weight_{name}"), value.to_string());
            }
        }

        let mut values: Vec<(String, f64)> = report
            .stage_ms
            .iter()
            .map(|(stage, ms)| (format!("latency_{stage}_ms"), *ms))
            .collect();
        values.push(("latency_total_ms".into(), report.stage_ms.values().sum()));
        values.push(("confidence".into(), report.confidence));
        if let Some(risk) = &report.risk {
            let f = &risk.factors;
            values.push(("risk_score".into(), risk.score));
            values.push(("risk_blast_radius".into(), f.blast_radius.value));
            values.push((
                "risk_resource_sensitivity".into(),
                f.resource_sensitivity.value,
            ));
            values.push((
                "risk_rollback_complexity".into(),
                f.rollback_complexity.value,
            ));
            values.push(("risk_namespace_scope".into(), f.namespace_scope.value));
        }
        let published_fix = report.pr.is_some();
        values.push(("validation_passed".into(), flag(report.validation.passed)));
        values.push((
            "violations".into(),
            report.validation.violations.len() as f64,
        ));
        values.push(("files_changed".into(), report.files_changed.len() as f64));
        values.push((
            "lines_changed".into(),
            report
                .files_changed
                .iter()
                .map(|f| lines_changed(&f.diff))
                .sum::<usize>() as f64,
        ));
        values.push(("success".into(), flag(published_fix)));
        values.push(("iterations".into(), attempts.len() as f64));
        let metrics = values
            .into_iter()
            .map(|(key, value)| Metric {
                key,
                value,
                timestamp: end_time,
                step,
            })
            .collect();

        let mut tags = base_tags(ctx);
        tags.insert("category".into(), report.category.to_string());
        tags.insert("action".into(), report.action.to_string());
        tags.insert("workload".into(), w.name.clone());
        tags.insert("kind".into(), w.kind.to_string());
        tags.insert("incident".into(), report.incident.clone());
        tags.insert("diagnoser".into(), report.diagnoser.clone());
        tags.insert("outcome".into(), outcome(report).into());
        if let Some(risk) = &report.risk {
            tags.insert("risk_level".into(), risk.level.to_string());
        }
        if let Some(dry_run) = &report.dry_run {
            tags.insert("dry_run".into(), dry_run.result().into());
        }
        if let Some(candidates) = &report.candidates {
            tags.insert("candidates".into(), candidates.considered.len().to_string());
            let chosen = candidates.chosen.as_deref().unwrap_or("none");
            tags.insert("chosen_candidate".into(), chosen.into());
            let by = if candidates.learned.is_some() {
                "learned-outcomes"
            } else {
                "rank-order"
            };
            tags.insert("chosen_by".into(), by.into());
            for arm in &candidates.arms {
                let name = format!(
                    "strategy_{}_success_mean",
                    arm.strategy.as_str().replace('-', "_")
                );
                tags.insert(name, format!("{:.3}", arm.posterior_mean));
            }
        }
        if let Some(pr) = &report.pr {
            tags.insert("pr_url".into(), pr.url.clone());
            tags.insert("pr_number".into(), pr.number.to_string());
        }
        if let Some(e) = &report.escalation {
            tags.insert("escalation_url".into(), e.url.clone());
        }
        if let Some(b) = &report.branch {
            tags.insert("branch".into(), b.clone());
        }

        let mut artifacts = vec![
            Artifact::new("diagnosis.md", diagnosis_markdown(report)),
            Artifact::new(
                "evidence.redacted.json",
                serde_json::to_string_pretty(&report.evidence).unwrap_or_default(),
            ),
            Artifact::new(
                "report.json",
                serde_json::to_string_pretty(report).unwrap_or_default(),
            ),
        ];
        if !report.files_changed.is_empty() {
            let diff: String = report
                .files_changed
                .iter()
                .map(|f| f.diff.as_str())
                .collect();
            artifacts.push(Artifact::new("fix.diff", diff));
        }
        // The corrected manifests: those the caller gave, else the files the fix changed.
        let changed = report.files_changed.iter().map(|f| (&f.file, &f.after));
        let manifests: BTreeMap<&String, &String> = changed.chain(&ctx.manifests).collect();
        for (file, content) in manifests {
            artifacts.push(Artifact::new(format!("manifests/{file}"), content.clone()));
        }
        if let Some(pr) = &report.pr {
            artifacts.push(Artifact::new(
                "pr.md",
                format!("# {}\n\n{}\n", pr.title, pr.body),
            ));
        }
        if let Some(e) = &report.escalation {
            artifacts.push(Artifact::new(
                "escalation.md",
                format!("# {}\n\n{}\n", e.title, e.body),
            ));
        }

        RunRecord {
            id: new_id(ctx.start_time),
            run_name: run_name(
                &w.namespace,
                &w.name,
                ctx.alertnames
                    .first()
                    .map_or(report.category.as_str(), String::as_str),
            ),
            status: RunStatus::Finished,
            start_time: ctx.start_time,
            end_time,
            params,
            metrics,
            tags,
            note: note_markdown(report),
            artifacts,
            prompts: ctx
                .prompts
                .iter()
                .cloned()
                .chain(report.attempts.iter().flat_map(prompt_artifacts))
                .collect(),
            attempts,
        }
    }

    /// The record of a run that failed before producing a report; the error chain is stored
    /// as `error.txt` and the run ends `FAILED`.
    pub fn from_error(
        ctx: &RunContext,
        error: &(dyn std::error::Error + 'static),
        stage_ms: &BTreeMap<String, f64>,
    ) -> Self {
        let end_time = now_ms();
        let chain = error_chain(error);
        let step = i64::from(ctx.attempts.last().map_or(1, |a| a.iteration));
        let mut values: Vec<(String, f64)> = stage_ms
            .iter()
            .map(|(stage, ms)| (format!("latency_{stage}_ms"), *ms))
            .collect();
        values.push(("success".into(), 0.0));
        values.push(("iterations".into(), ctx.attempts.len() as f64));
        let metrics = values
            .into_iter()
            .map(|(key, value)| Metric {
                key,
                value,
                timestamp: end_time,
                step,
            })
            .collect();
        let mut tags = base_tags(ctx);
        tags.insert("outcome".into(), "failed".into());
        RunRecord {
            id: new_id(ctx.start_time),
            run_name: ctx.run_name(),
            status: RunStatus::Failed,
            start_time: ctx.start_time,
            end_time,
            params: base_params(ctx),
            metrics,
            tags,
            note: format!("### The run failed\n\n```\n{chain}\n```\n"),
            artifacts: vec![Artifact::new("error.txt", chain)],
            prompts: ctx.prompts.clone(),
            attempts: ctx.attempts.clone(),
        }
    }

    /// The parent run's params.
    pub fn param_list(&self) -> Vec<Param> {
        self.params
            .iter()
            .map(|(key, value)| Param {
                key: key.clone(),
                value: value.clone(),
            })
            .collect()
    }

    /// The parent run's tags, with the note, the run name and the record id.
    pub fn tag_list(&self) -> Vec<Tag> {
        let mut tags: Vec<Tag> = self
            .tags
            .iter()
            .map(|(key, value)| Tag {
                key: key.clone(),
                value: value.clone(),
            })
            .collect();
        for (key, value) in [
            ("mlflow.note.content", &self.note),
            ("mlflow.runName", &self.run_name),
            (RECORD_ID_TAG, &self.id),
        ] {
            tags.push(Tag {
                key: key.into(),
                value: value.clone(),
            });
        }
        tags
    }

    /// This record with every string passed through [`autofix_core::redact::redact`], line by
    /// line: defense in depth on top of redaction at the source.
    pub fn redacted(mut self) -> Self {
        self.run_name = redact_text(&self.run_name);
        self.note = redact_text(&self.note);
        redact_map(&mut self.params);
        redact_map(&mut self.tags);
        for m in &mut self.metrics {
            m.key = redact_text(&m.key);
        }
        for a in self.artifacts.iter_mut().chain(&mut self.prompts) {
            a.path = redact_text(&a.path);
            a.content = redact_text(&a.content);
        }
        for a in &mut self.attempts {
            a.name = redact_text(&a.name);
            redact_map(&mut a.params);
            redact_map(&mut a.tags);
            a.error = a.error.as_deref().map(redact_text);
            a.metrics = std::mem::take(&mut a.metrics)
                .into_iter()
                .map(|(k, v)| (redact_text(&k), v))
                .collect();
        }
        self
    }
}

/// `<namespace>/<workload> <alertname>`.
fn run_name(namespace: &str, workload: &str, what: &str) -> String {
    format!("{namespace}/{workload} {what}")
}

/// Params every run has.
fn base_params(ctx: &RunContext) -> BTreeMap<String, String> {
    let mut params = BTreeMap::new();
    params.insert("provider".into(), ctx.provider.clone());
    params.insert(
        "model".into(),
        ctx.model.clone().unwrap_or_else(|| ctx.provider.clone()),
    );
    params.insert("cluster".into(), ctx.cluster.clone());
    params.insert("namespace".into(), ctx.namespace.clone());
    params.insert("mode".into(), ctx.mode.clone());
    params.insert("max_iterations".into(), ctx.max_iterations.to_string());
    if let Some(v) = &ctx.policy_version {
        params.insert("policy_version".into(), v.clone());
    }
    params
}

/// Tags every run has.
fn base_tags(ctx: &RunContext) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::new();
    tags.insert("alertname".into(), ctx.alertnames.join(","));
    tags.insert("cluster".into(), ctx.cluster.clone());
    tags.insert("namespace".into(), ctx.namespace.clone());
    tags.insert("agent_type".into(), ctx.provider.clone());
    tags.insert("mlflow.source.name".into(), "kube-autofix".into());
    tags.insert("mlflow.source.type".into(), "JOB".into());
    if let Some(s) = &ctx.subject {
        tags.insert("workload".into(), s.clone());
    }
    if let Some(v) = &ctx.policy_version {
        tags.insert("safety_model".into(), v.clone());
    }
    tags
}

/// A nested run for one try of the diagnoser (an LLM iteration or fallback step).
fn diagnoser_attempt(a: &autofix_core::Attempt) -> AttemptRecord {
    let mut metrics = BTreeMap::new();
    metrics.insert("llm_latency_ms".into(), a.latency_ms);
    if let Some(t) = a.prompt_tokens {
        metrics.insert("prompt_tokens".into(), t as f64);
    }
    if let Some(t) = a.completion_tokens {
        metrics.insert("completion_tokens".into(), t as f64);
    }
    metrics.insert("accepted".into(), flag(a.outcome == "accepted"));
    let mut params = BTreeMap::new();
    params.insert("stage".into(), a.stage.clone());
    if let Some(model) = a.name.strip_prefix("llm/") {
        params.insert("model".into(), model.to_string());
    }
    let mut tags = BTreeMap::new();
    tags.insert("outcome".into(), a.outcome.clone());
    tags.insert("stage".into(), a.stage.clone());
    AttemptRecord {
        name: a.name.clone(),
        agent: a.agent.clone(),
        iteration: a.iteration,
        status: if a.outcome == "accepted" {
            RunStatus::Finished
        } else {
            RunStatus::Failed
        },
        metrics,
        params,
        tags,
        error: a.error.clone(),
    }
}

/// The prompt and reply of one try, stored under `prompts/` when `tracking.log_prompts` is on.
fn prompt_artifacts(a: &autofix_core::Attempt) -> Vec<Artifact> {
    let base = format!("prompts/{:02}-{}", a.iteration, a.stage);
    let mut out = Vec::new();
    if let Some(prompt) = &a.prompt {
        out.push(Artifact::new(format!("{base}-prompt.txt"), prompt.clone()));
    }
    if let Some(reply) = &a.reply {
        out.push(Artifact::new(format!("{base}-reply.txt"), reply.clone()));
    }
    out
}

/// The single attempt of a rules-only run, from its report.
fn rules_attempt(report: &RunReport) -> AttemptRecord {
    let mut metrics = BTreeMap::new();
    metrics.insert("confidence".into(), report.confidence);
    if let Some(ms) = report.stage_ms.get("diagnose") {
        metrics.insert("latency_diagnose_ms".into(), *ms);
    }
    metrics.insert("validation_passed".into(), flag(report.validation.passed));
    metrics.insert(
        "violations".into(),
        report.validation.violations.len() as f64,
    );
    if let Some(risk) = &report.risk {
        metrics.insert("risk_score".into(), risk.score);
    }
    let mut tags = BTreeMap::new();
    tags.insert("category".into(), report.category.to_string());
    tags.insert("action".into(), report.action.to_string());
    tags.insert("outcome".into(), outcome(report).into());
    let mut params = BTreeMap::new();
    params.insert("diagnoser".into(), report.diagnoser.clone());
    AttemptRecord {
        name: report.diagnoser.clone(),
        agent: "rules".into(),
        iteration: 1,
        status: RunStatus::Finished,
        metrics,
        params,
        tags,
        error: None,
    }
}

/// What came of the run: `pr_opened`, `pr_updated`, `escalated`, `escalation_updated` or
/// `no_action`.
fn outcome(report: &RunReport) -> &'static str {
    match (&report.pr, &report.escalation) {
        (Some(pr), _) if pr.created => "pr_opened",
        (Some(_), _) => "pr_updated",
        (None, Some(e)) if e.created => "escalated",
        (None, Some(_)) => "escalation_updated",
        (None, None) => "no_action",
    }
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// Added plus removed lines of a unified diff.
fn lines_changed(diff: &str) -> usize {
    diff.lines()
        .filter(|l| {
            (l.starts_with('+') && !l.starts_with("+++"))
                || (l.starts_with('-') && !l.starts_with("---"))
        })
        .count()
}

/// The run page's note: summary, evidence, and why humans must act when they must.
fn note_markdown(report: &RunReport) -> String {
    let mut md = format!(
        "### {}\n\n**{}** on {} ({}, confidence {:.2})\n",
        report.summary, report.category, report.workload, report.action, report.confidence
    );
    if let Some(reason) = &report.escalation_reason {
        let _ = write!(md, "\n**Escalated:** {reason}\n");
    }
    if let Some(pr) = &report.pr {
        let _ = write!(md, "\nPull request: {}\n", pr.url);
    }
    md.push_str("\n#### Evidence\n\n");
    for f in &report.evidence {
        let _ = writeln!(md, "- `{}`: {}", f.source, f.detail);
    }
    md
}

/// `diagnosis.md`: the note plus the fix, its risk and its validation.
fn diagnosis_markdown(report: &RunReport) -> String {
    let mut md = note_markdown(report);
    if !report.changes.is_empty() {
        md.push_str("\n#### Changes\n\n");
        for c in &report.changes {
            let _ = writeln!(md, "- `{}`: {} -> {} ({})", c.path, c.from, c.to, c.reason);
        }
    }
    if let Some(risk) = &report.risk {
        let f = &risk.factors;
        let _ = write!(md, "\n#### Risk: {} ({:.3})\n\n", risk.level, risk.score);
        for (name, factor) in [
            ("blast radius", &f.blast_radius),
            ("resource sensitivity", &f.resource_sensitivity),
            ("rollback complexity", &f.rollback_complexity),
            ("namespace scope", &f.namespace_scope),
        ] {
            let _ = writeln!(md, "- {name}: {:.3} ({})", factor.value, factor.why);
        }
    }
    let _ = write!(
        md,
        "\n#### Validation: {}\n\n",
        if report.validation.passed {
            "passed"
        } else {
            "failed"
        }
    );
    for v in &report.validation.violations {
        let _ = writeln!(md, "- {v}");
    }
    md
}

/// An error and its sources, one per line.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let _ = write!(chain, "\ncaused by: {e}");
        source = e.source();
    }
    chain
}

/// Redacts text line by line (the redactor works on single lines).
fn redact_text(text: &str) -> String {
    text.split('\n').map(redact).collect::<Vec<_>>().join("\n")
}

fn redact_map(map: &mut BTreeMap<String, String>) {
    for value in map.values_mut() {
        *value = redact_text(value);
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `<start ms, 13 digits>-<pid hex>-<counter>`: unique per process and sortable by start.
fn new_id(start_time: i64) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{start_time:013}-{:08x}-{n:06}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_changed_skips_headers() {
        let diff = "--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n a: 1\n-b: 2\n+b: 3\n";
        assert_eq!(lines_changed(diff), 2);
    }

    #[test]
    fn ids_sort_by_start_and_are_unique() {
        let a = new_id(5);
        let b = new_id(5);
        let c = new_id(1_700_000_000_000);
        assert_ne!(a, b);
        assert!(a < c && b < c);
    }

    #[test]
    fn redaction_reaches_every_string() {
        let ctx = RunContext {
            namespace: "shop".into(),
            provider: "rules".into(),
            mode: "pr".into(),
            ..RunContext::default()
        };
        let err = std::io::Error::other("connect postgres://app:hunter2hunter2@db/x failed");
        let record = RunRecord::from_error(&ctx, &err, &BTreeMap::new()).redacted();
        let shown = serde_json::to_string(&record).unwrap_or_default();
        assert!(!shown.contains("hunter2hunter2"), "{shown}");
        assert_eq!(record.status, RunStatus::Failed);
        assert_eq!(record.artifacts[0].path, "error.txt");
    }
}
