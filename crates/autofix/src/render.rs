//! Readable terminal reports (the default output; `--json` prints the data instead).

use autofix_core::{Action, Diagnosis, Finding};
use autofix_pipeline::RunReport;
use autofix_pipeline::text::plain;
use std::fmt::Write;
use std::io::IsTerminal;

/// ANSI styling, only when stdout is a terminal and NO_COLOR is unset.
struct Style {
    on: bool,
}

impl Style {
    fn detect() -> Self {
        Style {
            on: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }

    fn action(&self, action: Action) -> String {
        match action {
            Action::Pr => self.paint("1;32", "PR"),
            Action::Escalate => self.paint("1;33", "ESCALATE"),
            Action::None => self.paint("1;2", "NONE"),
        }
    }

    fn diff_line(&self, line: &str) -> String {
        match line.as_bytes().first() {
            Some(b'+') if !line.starts_with("+++") => self.paint("32", line),
            Some(b'-') if !line.starts_with("---") => self.paint("31", line),
            Some(b'@') => self.paint("36", line),
            _ => line.to_string(),
        }
    }
}

fn evidence(out: &mut String, style: &Style, findings: &[Finding]) {
    let _ = writeln!(out, "\n{}", style.bold("Evidence"));
    for f in findings {
        let _ = writeln!(out, "  • {}: {}", f.source, f.detail);
    }
}

/// The report of `autofix diagnose`.
pub fn diagnosis(d: &Diagnosis) -> String {
    let style = Style::detect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {} {}  {}  confidence {:.0}%  ({})",
        style.action(d.action),
        style.bold(&d.category.to_string()),
        d.workload,
        d.container
            .as_deref()
            .map(|c| format!("container {c}"))
            .unwrap_or_default(),
        d.confidence * 100.0,
        d.diagnoser
    );
    let _ = writeln!(out, "{}", d.summary);
    evidence(&mut out, &style, &d.evidence);
    if let Some(r) = &d.remediation {
        let _ = writeln!(out, "\n{} ({})", style.bold("Proposed fix"), r.strategy);
        for c in &r.changes {
            let from = c.from.as_ref().map_or("(unset)".to_string(), plain);
            let _ = writeln!(
                out,
                "  {}: {} -> {}\n    {}",
                c.path,
                from,
                plain(&c.to),
                c.reason
            );
        }
    }
    if let Some(reason) = &d.escalation_reason {
        let _ = writeln!(out, "\n{} {reason}", style.bold("Escalation:"));
    }
    out
}

/// The report of `autofix run`.
pub fn run(r: &RunReport) -> String {
    let style = Style::detect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {} {} on {}  confidence {:.0}%  ({})  incident {}",
        style.action(r.action),
        style.bold(&r.category.to_string()),
        r.workload,
        r.cluster,
        r.confidence * 100.0,
        r.diagnoser,
        r.incident
    );
    let _ = writeln!(out, "{}", r.summary);
    evidence(&mut out, &style, &r.evidence);
    if !r.changes.is_empty() {
        let _ = writeln!(
            out,
            "\n{} ({})",
            style.bold("Fix"),
            r.strategy.as_deref().unwrap_or("")
        );
        for c in &r.changes {
            let _ = writeln!(
                out,
                "  {}: {} -> {}\n    {}",
                c.path,
                plain(&c.from),
                plain(&c.to),
                c.reason
            );
        }
    }
    if let Some(risk) = &r.risk {
        let _ = writeln!(
            out,
            "\n{} {:.2} ({})",
            style.bold("Risk"),
            risk.score,
            risk.level
        );
        let f = &risk.factors;
        let w = &risk.weights;
        for (name, factor, weight) in [
            ("blast radius", &f.blast_radius, w.blast_radius),
            (
                "resource sensitivity",
                &f.resource_sensitivity,
                w.resource_sensitivity,
            ),
            (
                "rollback complexity",
                &f.rollback_complexity,
                w.rollback_complexity,
            ),
            ("namespace scope", &f.namespace_scope, w.namespace_scope),
        ] {
            let bar = "█".repeat((factor.value * 10.0).round() as usize);
            let _ = writeln!(
                out,
                "  {name:<21} {:.2} {bar:<10} w={weight:.2}  {}",
                factor.value, factor.why
            );
        }
        let verdict = if r.validation.passed {
            style.paint("32", "passed")
        } else {
            style.paint("31", "failed")
        };
        let _ = writeln!(out, "\n{} {verdict}", style.bold("Validation"));
        for v in &r.validation.violations {
            let _ = writeln!(out, "  ✗ {v}");
        }
    }
    for f in &r.files_changed {
        let _ = writeln!(out);
        for line in f.diff.lines() {
            let _ = writeln!(out, "{}", style.diff_line(line));
        }
    }
    if let Some(reason) = &r.escalation_reason {
        let _ = writeln!(out, "\n{} {reason}", style.bold("Escalation:"));
    }
    match (&r.pr, &r.escalation) {
        (Some(pr), _) => {
            let verb = if pr.created { "opened" } else { "updated" };
            let _ = writeln!(
                out,
                "\nPR #{} {verb}: {}\n  branch {} commit {}\n  {}",
                pr.number,
                pr.title,
                r.branch.as_deref().unwrap_or(""),
                r.commit
                    .as_deref()
                    .map(|c| &c[..c.len().min(12)])
                    .unwrap_or(""),
                pr.url
            );
            if let Some(remote) = &r.remote {
                let _ = writeln!(out, "  pushed to {remote}");
            }
        }
        (_, Some(e)) => {
            let verb = if e.created { "recorded" } else { "updated" };
            let _ = writeln!(
                out,
                "\nEscalation #{} {verb}: {}\n  {}",
                e.number, e.title, e.url
            );
        }
        _ => match &r.note {
            Some(note) => {
                let _ = writeln!(out, "\n{} {note}", style.bold("No pull request:"));
            }
            None => {
                let _ = writeln!(out, "\nNothing to do.");
            }
        },
    }
    out
}

/// The table of `autofix incidents list`.
pub fn incidents(incidents: &[autofix_store::IncidentRecord]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>5}  {:<9} {:<42} {:>8} {:>7}  last error",
        "id", "state", "workload", "attempts", "firing"
    );
    for i in incidents {
        let workload = format!("{}/{} {}", i.namespace, i.workload_name, i.workload_kind);
        let _ = writeln!(
            out,
            "{:>5}  {:<9} {:<42} {:>8} {:>7}  {}",
            i.id,
            i.state.as_str(),
            workload,
            i.attempts,
            i.alerts_firing,
            i.last_error.as_deref().unwrap_or("")
        );
    }
    if incidents.is_empty() {
        let _ = writeln!(out, "(no incidents)");
    }
    out
}

/// The table of `autofix eval`: one row per scenario, then the failed checks of each failing one.
pub fn eval_table(report: &autofix_eval::EvalReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<40} {:<26} {:<26} {:<19} {:>7} {:>9}  result",
        "scenario", "expected category", "got", "action (exp/got)", "checks", "latency"
    );
    for s in &report.scenarios {
        let passed = s.checks.iter().filter(|c| c.passed).count();
        let action = format!(
            "{}/{}",
            s.expected_action,
            s.action.as_deref().unwrap_or("-")
        );
        let _ = writeln!(
            out,
            "{:<40} {:<26} {:<26} {:<19} {:>7} {:>7.0}ms  {}",
            s.scenario,
            s.expected_category,
            s.category.as_deref().unwrap_or("-"),
            action,
            format!("{passed}/{}", s.checks.len()),
            s.latency_ms,
            if s.passed { "ok" } else { "FAIL" }
        );
    }
    for s in report.scenarios.iter().filter(|s| !s.passed) {
        let _ = writeln!(out, "\nFAIL {} ({})", s.scenario, s.dir.display());
        for c in s.failures() {
            let _ = writeln!(out, "  ✗ {}: {}", c.name, c.detail);
        }
    }
    out
}

/// The summary of `autofix eval`: totals, then accuracy per expected category.
pub fn eval_summary(report: &autofix_eval::EvalReport) -> String {
    let s = &report.summary;
    let pct = |x: f64| format!("{:.0}%", x * 100.0);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{}/{} scenarios passed ({})  diagnoser {}{}  category {}  action {}  fix checks {}/{}  leaks {}  latency mean {:.0}ms p95 {:.0}ms  tokens {}",
        s.scenarios_passed,
        s.scenarios,
        pct(s.accuracy),
        report.diagnoser,
        report
            .model
            .as_deref()
            .map(|m| format!(" ({m})"))
            .unwrap_or_default(),
        pct(s.category_accuracy),
        pct(s.action_accuracy),
        s.fix_checks_passed,
        s.fix_checks_total,
        s.leaked,
        s.mean_latency_ms,
        s.p95_latency_ms,
        s.total_tokens
    );
    for (category, c) in &s.per_category {
        let _ = writeln!(
            out,
            "  {category:<26} {:>4}  ({}/{} right, {} passed)",
            pct(c.accuracy),
            c.correct,
            c.scenarios,
            c.passed
        );
    }
    out
}

/// The report of `autofix validate`: one line per violation and per unreadable file, then the
/// summary.
pub fn validation(report: &crate::validate::Report) -> String {
    let style = Style::detect();
    let mut out = String::new();
    for file in &report.files {
        if let Some(error) = &file.error {
            let _ = writeln!(
                out,
                "{}  {}  {error}",
                file.path,
                style.paint("1;31", "yaml")
            );
        }
        for object in &file.objects {
            for v in &object.violations {
                let at = v
                    .path
                    .as_deref()
                    .map(|p| format!("{p}: "))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "{}:{} {}  {}  {at}{}",
                    file.path,
                    object.location(),
                    object.title(),
                    style.paint("1;31", &v.rule),
                    v.message
                );
            }
        }
    }
    for chart in &report.charts_skipped {
        let _ = writeln!(out, "{chart}  skipped: a Helm chart (render it first)");
    }
    let s = &report.summary;
    let verdict = if s.failed + s.unreadable == 0 {
        style.paint("1;32", "PASS")
    } else {
        style.paint("1;31", "FAIL")
    };
    let unreadable = if s.unreadable > 0 {
        format!(", {} unreadable files", s.unreadable)
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "{verdict}  {} files, {} objects: {} passed, {} failed, {} skipped{unreadable} in {:.3} s",
        s.files,
        s.objects,
        s.passed,
        s.failed,
        s.skipped,
        s.elapsed_ms / 1000.0
    );
    out
}
