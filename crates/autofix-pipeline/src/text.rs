//! The words reviewers read: pull-request and escalation titles and bodies, commit messages.

use crate::report::{ChangedFile, ReportedChange};
use autofix_core::{Diagnosis, IncidentKey, RiskScore, Validation};
use std::fmt::Write;

/// Where a line of the PR body says how the change reaches the cluster.
const MERGE_NOTE: &str = "A merge is the only way this change reaches the cluster: Argo CD / Flux applies it after review. Closing the PR discards it.";

/// The one-line subject of the fix: `fix(<ns>/<workload>): <what>`.
pub fn title(diagnosis: &Diagnosis, changes: &[ReportedChange], strategy: &str) -> String {
    let w = &diagnosis.workload;
    let what = match changes {
        [one] => {
            // The field below the container (or pod spec), e.g. `resources.limits.memory`.
            let field = one
                .path
                .rsplit_once("].")
                .map_or(one.path.as_str(), |(_, tail)| tail);
            format!(
                "{strategy} ({field}: {} -> {})",
                plain(&one.from),
                plain(&one.to)
            )
        }
        _ => format!("{strategy} ({} fields)", changes.len()),
    };
    format!("fix({}/{}): {what}", w.namespace, w.name)
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

/// The pull request body: diagnosis, evidence, the change, its diff, risk and validation.
pub fn pr_body(
    diagnosis: &Diagnosis,
    key: &IncidentKey,
    changes: &[ReportedChange],
    files: &[ChangedFile],
    risk: &RiskScore,
    validation: &Validation,
) -> String {
    let mut out = String::new();
    diagnosis_section(&mut out, diagnosis, key);
    let _ = writeln!(out, "## Change\n");
    let _ = writeln!(out, "| Field | From | To | Why |\n|---|---|---|---|");
    for c in changes {
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
    for f in files {
        let _ = writeln!(
            out,
            "<details open><summary><code>{}</code></summary>\n\n```diff\n{}```\n\n</details>\n",
            f.file, f.diff
        );
    }
    risk_section(&mut out, risk);
    validation_section(&mut out, validation);
    let _ = writeln!(
        out,
        "---\n{MERGE_NOTE}\n\n<sub>Opened by kube-autofix. Branch `{}`.</sub>",
        key.branch_name()
    );
    out
}

/// The escalation body: diagnosis, evidence and why no change is proposed.
pub fn escalation_body(
    diagnosis: &Diagnosis,
    key: &IncidentKey,
    reason: &str,
    validation: Option<&Validation>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "kube-autofix diagnosed this incident but proposes no change.\n\n**Why a human is needed:** {reason}\n"
    );
    diagnosis_section(&mut out, diagnosis, key);
    if let Some(v) = validation.filter(|v| !v.passed) {
        validation_section(&mut out, v);
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
