//! The words reviewers read: pull-request and escalation titles and bodies, commit messages.

use crate::report::{CandidatesReport, ChangedFile, DryRunOutcome, ReportedChange};
use autofix_core::{Diagnosis, Evidence, IncidentKey, RiskScore, Validation, Verdict};
use std::fmt::Write;

/// Events listed in a pull request body, newest first.
const MAX_EVENTS: usize = 8;

/// Where a line of the PR body says how the change reaches the cluster.
const MERGE_NOTE: &str = "A merge is the only way this change reaches the cluster: Argo CD / Flux applies it after review. Closing the PR discards it.";

/// The one-line subject of the fix, e.g.
/// `fix(shop/cart): raise the memory limit 128Mi -> 256Mi (OOMKilled)`.
pub fn title(diagnosis: &Diagnosis, changes: &[ReportedChange], strategy: &str) -> String {
    let w = &diagnosis.workload;
    let what = match changes {
        [one] => format!("{strategy} {} -> {}", plain(&one.from), plain(&one.to)),
        _ => format!("{strategy} ({} fields)", changes.len()),
    };
    format!(
        "fix({}/{}): {what} ({})",
        w.namespace,
        w.name,
        diagnosis.category.symptom()
    )
}

/// The hidden marker naming the incident in a pull request or issue body.
pub fn incident_marker(key: &IncidentKey) -> String {
    format!("<!-- autofix:incident={} -->", key.short_hash())
}

/// The hidden marker naming the fix (its files and contents) in a pull request body; a
/// declined pull request with the same marker is not proposed again.
pub fn fix_marker(fix_id: &str) -> String {
    format!("<!-- autofix:fix={fix_id} -->")
}

/// A JSON value as a reviewer would write it.
pub fn plain(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "(unset)".into(),
        other => other.to_string(),
    }
}

/// Commit message: subject, a short body, and the incident trailer.
pub fn commit_message(subject: &str, diagnosis: &Diagnosis, key: &IncidentKey) -> String {
    format!(
        "{subject}\n\n{}\nCategory: {} (confidence {:.2}, {}).\n\nAutofix-Incident: {}\n",
        diagnosis.summary,
        diagnosis.category,
        diagnosis.confidence,
        diagnosis.diagnoser,
        key.short_hash()
    )
}

fn diagnosis_section(out: &mut String, diagnosis: &Diagnosis, key: &IncidentKey) {
    let w = &diagnosis.workload;
    let _ = writeln!(out, "## Diagnosis\n");
    let _ = writeln!(out, "{}\n", diagnosis.summary);
    let _ = writeln!(out, "| | |\n|---|---|");
    let _ = writeln!(
        out,
        "| Workload | {} `{}/{}` on cluster `{}` |",
        w.kind, w.namespace, w.name, key.cluster
    );
    if let Some(c) = &diagnosis.container {
        let _ = writeln!(out, "| Container | `{c}` |");
    }
    let _ = writeln!(out, "| Root cause | `{}` |", diagnosis.category);
    let _ = writeln!(
        out,
        "| Confidence | {:.0}% ({}) |",
        diagnosis.confidence * 100.0,
        diagnosis.diagnoser
    );
    let _ = writeln!(out, "| Incident | `{}` |\n", key.short_hash());
    let _ = writeln!(out, "### Evidence\n");
    for f in &diagnosis.evidence {
        let _ = writeln!(out, "- **{}**: {}", escape(&f.source), escape(&f.detail));
    }
    out.push('\n');
}

/// Escapes text for a Markdown table cell or list item.
fn escape(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn risk_section(out: &mut String, risk: &RiskScore) {
    let _ = writeln!(out, "## Risk: {:.2} ({})\n", risk.score, risk.level);
    let _ = writeln!(
        out,
        "Weighted geometric mean of four factors, each in (0, 1]; see docs/risk-model.md.\n"
    );
    let _ = writeln!(
        out,
        "| Factor | Value | Weight | Why |\n|---|---:|---:|---|"
    );
    let f = &risk.factors;
    let w = &risk.weights;
    for (name, factor, weight) in [
        ("Blast radius", &f.blast_radius, w.blast_radius),
        (
            "Resource sensitivity",
            &f.resource_sensitivity,
            w.resource_sensitivity,
        ),
        (
            "Rollback complexity",
            &f.rollback_complexity,
            w.rollback_complexity,
        ),
        ("Namespace scope", &f.namespace_scope, w.namespace_scope),
    ] {
        let _ = writeln!(
            out,
            "| {name} | {:.2} | {weight:.2} | {} |",
            factor.value,
            escape(&factor.why)
        );
    }
    out.push('\n');
}

fn validation_section(out: &mut String, validation: &Validation) {
    if validation.passed {
        let _ = writeln!(
            out,
            "## Validation: passed\n\nKubernetes schema, safety policy (no privileged, host namespaces, hostPath or added capabilities; no new kinds, namespace changes or dropped limits) and declared paths only.\n"
        );
    } else {
        let _ = writeln!(out, "## Validation: failed\n");
        for v in &validation.violations {
            let _ = writeln!(out, "- {}", escape(&v.to_string()));
        }
        out.push('\n');
    }
}

/// What a pull request body is made of.
pub struct PrText<'a> {
    /// The diagnosis.
    pub diagnosis: &'a Diagnosis,
    /// The incident.
    pub key: &'a IncidentKey,
    /// The evidence (alerts and events are quoted).
    pub evidence: &'a Evidence,
    /// The field changes.
    pub changes: &'a [ReportedChange],
    /// The edited files with their diffs.
    pub files: &'a [ChangedFile],
    /// The risk of the change.
    pub risk: &'a RiskScore,
    /// The validation results.
    pub validation: &'a Validation,
    /// The cluster's admission in a server-side dry run, when asked.
    pub dry_run: Option<&'a DryRunOutcome>,
    /// The candidate fixes weighed, when there were several.
    pub candidates: Option<&'a CandidatesReport>,
    /// The fix's id (see [`fix_marker`]).
    pub fix_id: &'a str,
}

/// The pull request body: what broke and since when, the diagnosis with its evidence and
/// events, the change and its diff, risk, validation, how to roll back, and hidden markers.
pub fn pr_body(t: &PrText<'_>) -> String {
    let mut out = String::new();
    since_section(&mut out, t.evidence);
    diagnosis_section(&mut out, t.diagnosis, t.key);
    events_section(&mut out, t.evidence);
    let _ = writeln!(out, "## Change\n");
    let _ = writeln!(out, "| Field | From | To | Why |\n|---|---|---|---|");
    for c in t.changes {
        let _ = writeln!(
            out,
            "| `{}` | `{}` | `{}` | {} |",
            c.path,
            plain(&c.from),
            plain(&c.to),
            escape(&c.reason)
        );
    }
    out.push('\n');
    for f in t.files {
        let _ = writeln!(
            out,
            "<details open><summary><code>{}</code></summary>\n\n```diff\n{}```\n\n</details>\n",
            f.file, f.diff
        );
    }
    risk_section(&mut out, t.risk);
    validation_section(&mut out, t.validation);
    if let Some(candidates) = t.candidates {
        let _ = writeln!(
            out,
            "### Candidates considered\n\nThe chosen fix passed the safety gate with the lowest risk, then the smallest blast radius, change and cost among the fixes not dominated by another.\n\n{}\n",
            candidates.table
        );
    }
    if let Some(dry_run) = t.dry_run {
        let _ = writeln!(out, "{}", dry_run.to_markdown());
    }
    let _ = writeln!(
        out,
        "## Rolling back\n\nRevert the merge commit (`git revert -m 1 <merge-commit>` on the base branch, or GitHub's **Revert** button) and merge the revert: Argo CD / Flux applies the previous values. Nothing outside the files above was changed.\n"
    );
    let _ = writeln!(
        out,
        "---\n{MERGE_NOTE}\n\n<sub>Opened by kube-autofix. Branch `{}`.</sub>\n\n{}\n{}",
        t.key.branch_name(),
        incident_marker(t.key),
        fix_marker(t.fix_id)
    );
    out
}

/// What fired and since when: the alerts, earliest first.
fn since_section(out: &mut String, evidence: &Evidence) {
    let mut alerts: Vec<_> = evidence.alerts.iter().collect();
    alerts.sort_by(|a, b| a.starts_at.cmp(&b.starts_at));
    let Some(first) = alerts.first() else {
        return;
    };
    let names: std::collections::BTreeSet<&str> =
        alerts.iter().filter_map(|a| a.label("alertname")).collect();
    let names: Vec<&str> = names.into_iter().collect();
    let total = alerts.len() + evidence.alerts_left_out;
    let read = if evidence.alerts_left_out > 0 {
        format!(
            "; this run read {} of them, firing ones first",
            alerts.len()
        )
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "**What broke:** {} ({total} alert{}{read}), firing since {}.\n",
        names.join(", "),
        if total == 1 { "" } else { "s" },
        first.starts_at
    );
}

/// The newest events about the workload and its pods, as a table.
fn events_section(out: &mut String, evidence: &Evidence) {
    if evidence.events.is_empty() {
        return;
    }
    let mut events: Vec<_> = evidence.events.iter().collect();
    let when = |e: &k8s_openapi::api::core::v1::Event| {
        e.last_timestamp
            .as_ref()
            .and_then(|t| serde_json::to_value(t).ok())
            .or_else(|| {
                e.event_time
                    .as_ref()
                    .and_then(|t| serde_json::to_value(t).ok())
            })
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    };
    events.sort_by_key(|e| std::cmp::Reverse(when(e)));
    let _ = writeln!(out, "### Events\n");
    let _ = writeln!(
        out,
        "| Last seen | Type | Reason | Object | Count | Message |\n|---|---|---|---|---:|---|"
    );
    for e in events.iter().take(MAX_EVENTS) {
        let object = format!(
            "{}/{}",
            e.involved_object.kind.as_deref().unwrap_or("?"),
            e.involved_object.name.as_deref().unwrap_or("?")
        );
        let _ = writeln!(
            out,
            "| {} | {} | {} | `{}` | {} | {} |",
            when(e),
            e.type_.as_deref().unwrap_or(""),
            e.reason.as_deref().unwrap_or(""),
            object,
            e.count.unwrap_or(1),
            escape(e.message.as_deref().unwrap_or(""))
        );
    }
    if events.len() > MAX_EVENTS {
        let _ = writeln!(
            out,
            "\n{} older events not shown.",
            events.len() - MAX_EVENTS
        );
    }
    out.push('\n');
}

/// The escalation body: diagnosis, evidence and why no change is proposed.
pub fn escalation_body(
    diagnosis: &Diagnosis,
    key: &IncidentKey,
    reason: &str,
    verdict: Option<&Verdict>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "kube-autofix diagnosed this incident but proposes no change.\n\n**Why a human is needed:** {reason}\n"
    );
    diagnosis_section(&mut out, diagnosis, key);
    if let Some(verdict) = verdict {
        if !verdict.validation.passed {
            validation_section(&mut out, &verdict.validation);
        }
        risk_section(&mut out, &verdict.risk);
    }
    let _ = writeln!(
        out,
        "---\n<sub>Escalated by kube-autofix; no file in the GitOps repository was changed.</sub>"
    );
    out
}

/// Adds the link to the run's record (its MLflow run) at the end of a body.
pub fn with_run_link(mut body: String, run_link: Option<&str>) -> String {
    if let Some(link) = run_link {
        let _ = writeln!(
            body,
            "\n**Run record:** [MLflow run]({link}): stage latencies, evidence and artifacts of this run."
        );
    }
    body
}

/// The escalation title.
pub fn escalation_title(diagnosis: &Diagnosis) -> String {
    let w = &diagnosis.workload;
    format!(
        "autofix: {} in {}/{} needs a human",
        diagnosis.category, w.namespace, w.name
    )
}
