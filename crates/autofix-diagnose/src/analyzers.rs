//! The rule analyzers, strongest signal first.
//!
//! Each analyzer recognises one root-cause class from the facts and, where the evidence supports
//! it, derives a deterministic fix; otherwise it says why humans must act. Order matters: an
//! OOM kill explains the readiness timeouts around it, a liveness kill explains the readiness
//! failures at restart, so the more specific signal runs first.

use crate::RuleConfig;
use crate::facts::{Facts, event_count};
use crate::fixes;
use autofix_core::{Category, FieldChange, Finding, WorkloadKind};

/// What an analyzer concluded.
pub struct Analysis {
    /// Root-cause class.
    pub category: Category,
    /// Confidence in the class, in [0, 1].
    pub confidence: f64,
    /// One sentence for a reviewer.
    pub summary: String,
    /// Evidence, strongest first.
    pub findings: Vec<Finding>,
    /// The fix, or why there is none.
    pub fix: Fix,
}

/// A derived fix, or the reason none can be derived.
pub enum Fix {
    /// Field changes on the workload, with the strategy's name.
    Changes {
        /// e.g. `revert to revision 3`.
        strategy: String,
        /// The changes.
        changes: Vec<FieldChange>,
    },
    /// No safe fix: the reason, for humans.
    Escalate(String),
}

impl From<Result<(String, Vec<FieldChange>), String>> for Fix {
    fn from(result: Result<(String, Vec<FieldChange>), String>) -> Self {
        match result {
            Ok((strategy, changes)) => Fix::Changes { strategy, changes },
            Err(reason) => Fix::Escalate(reason),
        }
    }
}

type Analyzer = fn(&Facts, &RuleConfig) -> Option<Analysis>;

/// The analyzers in priority order.
pub const ANALYZERS: [(&str, Analyzer); 13] = [
    ("job", job_failed),
    ("image", image_pull),
    ("config-ref", missing_config_ref),
    ("command", crash_loop_command),
    ("oom", oom_killed),
    ("liveness", liveness_probe),
    ("app-crash", crash_loop_app),
    ("scheduling", scheduling),
    ("volume", volume_mount),
    ("cpu-throttling", cpu_throttled),
    ("readiness", readiness_probe),
    ("rollout", rollout_stuck),
    ("unknown", unknown),
];

fn pod_finding(o: &crate::facts::ContainerObservation, detail: String) -> Finding {
    Finding::new(format!("pod/{} container {}", o.pod, o.container), detail)
}

/// The first `max` events as findings, with their counts.
fn event_findings(events: &[&k8s_openapi::api::core::v1::Event], max: usize) -> Vec<Finding> {
    events
        .iter()
        .take(max)
        .map(|e| {
            Finding::new(
                format!(
                    "event {} on {}/{}",
                    e.reason.as_deref().unwrap_or(""),
                    e.involved_object.kind.as_deref().unwrap_or(""),
                    e.involved_object.name.as_deref().unwrap_or("")
                ),
                format!(
                    "{} (x{})",
                    e.message.as_deref().unwrap_or("").trim(),
                    event_count(e)
                ),
            )
        })
        .collect()
}

/// Log lines that look like errors, last ones first, at most `max`.
fn error_log_findings(facts: &Facts, max: usize) -> Vec<Finding> {
    let markers = [
        "error",
        "fatal",
        "panic",
        "exception",
        "invalid",
        "failed",
        "traceback",
    ];
    facts
        .log_lines()
        .iter()
        .rev()
        .filter(|l| {
            let lower = l.to_ascii_lowercase();
            markers.iter().any(|m| lower.contains(m))
        })
        .take(max)
        .map(|l| Finding::new("logs", truncate(l, 300)))
        .collect()
}

/// Cuts text to at most `max` characters, marking the cut.
pub fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

fn job_failed(facts: &Facts, _: &RuleConfig) -> Option<Analysis> {
    if facts.evidence.workload.kind != WorkloadKind::Job {
        return None;
    }
    let (status, reason, message) = facts.workload_condition("Failed")?;
    if status != "True" {
        return None;
    }
    let mut findings = vec![Finding::new(
        format!("job/{}", facts.evidence.workload.name),
        format!("condition Failed: {reason}: {message}"),
    )];
    findings.extend(
        facts
            .observations
            .iter()
            .filter_map(|o| {
                let (r, code, _) = o.terminated.as_ref()?;
                Some(pod_finding(o, format!("terminated {r} (exit {code})")))
            })
            .take(3),
    );
    findings.extend(error_log_findings(facts, 4));
    Some(Analysis {
        category: Category::JobFailed,
        confidence: 0.9,
        summary: format!(
            "Job {} failed ({reason}); its pods exit with errors that a manifest change cannot be shown to fix.",
            facts.evidence.workload.name
        ),
        findings,
        fix: Fix::Escalate(
            "A failed Job needs its failure understood (credentials, data, dependencies) and the Job re-run; no manifest change is supported by the evidence.".into(),
        ),
    })
}

fn image_pull(facts: &Facts, _: &RuleConfig) -> Option<Analysis> {
    let reasons = ["ErrImagePull", "ImagePullBackOff", "InvalidImageName"];
    let stuck: Vec<_> = facts
        .observations
        .iter()
        .filter(|o| {
            o.waiting
                .as_ref()
                .is_some_and(|(r, _)| reasons.contains(&r.as_str()))
        })
        .collect();
    let first = stuck.first()?;
    let (reason, message) = first.waiting.clone().unwrap_or_default();
    let mut findings = vec![pod_finding(first, format!("waiting {reason}: {message}"))];
    let pull_errors: Vec<_> = facts
        .events(&["Failed"])
        .into_iter()
        .filter(|e| {
            e.message
                .as_deref()
                .is_some_and(|m| m.starts_with("Failed to pull image"))
        })
        .collect();
    findings.extend(event_findings(&pull_errors, 2));
    let auth = pull_errors.iter().any(|e| {
        let m = e.message.as_deref().unwrap_or("").to_ascii_lowercase();
        m.contains("unauthorized") || m.contains("authentication required") || m.contains("denied")
    });
    let fix = if auth {
        Fix::Escalate("The registry refuses the pull (authorization): a pull secret or registry permission must be fixed by a human.".into())
    } else {
        fixes::revert(facts, &["image"], &mut findings).into()
    };
    Some(Analysis {
        category: Category::ImagePullError,
        confidence: 0.95,
        summary: format!(
            "Container {} cannot pull its image ({reason}).",
            first.container
        ),
        findings,
        fix,
    })
}

fn missing_config_ref(facts: &Facts, _: &RuleConfig) -> Option<Analysis> {
    let stuck: Vec<_> = facts
        .observations
        .iter()
        .filter(|o| {
            o.waiting
                .as_ref()
                .is_some_and(|(r, _)| r == "CreateContainerConfigError")
        })
        .collect();
    let first = stuck.first()?;
    let (_, message) = first.waiting.clone().unwrap_or_default();
    let mut findings = vec![pod_finding(
        first,
        format!("waiting CreateContainerConfigError: {message}"),
    )];
    let fix = fixes::config_ref_near_miss(facts, &message, &mut findings).into();
    Some(Analysis {
        category: Category::MissingConfigRef,
        confidence: 0.95,
        summary: format!("Container {} cannot start: {message}.", first.container),
        findings,
        fix,
    })
}

fn crash_loop_command(facts: &Facts, _: &RuleConfig) -> Option<Analysis> {
    let hit = facts.observations.iter().find(|o| {
        o.terminated
            .as_ref()
            .is_some_and(|(reason, code, message)| {
                let m = message.to_ascii_lowercase();
                reason == "StartError"
                    || reason == "ContainerCannotRun"
                    || matches!(code, 126 | 127)
                    || (*code == 128 && (m.contains("exec") || m.contains("no such file")))
            })
    })?;
    let (reason, code, message) = hit.terminated.clone().unwrap_or_default();
    let mut findings = vec![pod_finding(
        hit,
        format!(
            "terminated {reason} (exit {code}): {}",
            truncate(message.trim(), 300)
        ),
    )];
    findings.extend(event_findings(&facts.events(&["Failed"]), 1));
    let fix = fixes::revert(
        facts,
        &["command", "args", "image", "workingDir"],
        &mut findings,
    )
    .into();
    Some(Analysis {
        category: Category::CrashLoopCommand,
        confidence: 0.9,
        summary: format!(
            "Container {} cannot start its process ({reason}, exit {code}).",
            hit.container
        ),
        findings,
        fix,
    })
}

fn oom_killed(facts: &Facts, config: &RuleConfig) -> Option<Analysis> {
    let killed: Vec<_> = facts
        .observations
        .iter()
        .filter(|o| {
            o.terminated
                .as_ref()
                .is_some_and(|(r, _, _)| r == "OOMKilled")
        })
        .collect();
    let first = killed.first()?;
    let mut findings: Vec<Finding> = killed
        .iter()
        .map(|o| {
            let code = o.terminated.as_ref().map_or(0, |t| t.1);
            pod_finding(
                o,
                format!(
                    "last terminated OOMKilled (exit {code}), {} restarts",
                    o.restarts
                ),
            )
        })
        .collect();
    findings.extend(
        facts
            .log_lines()
            .iter()
            .rev()
            .filter(|l| l.contains("heap") || l.to_ascii_lowercase().contains("memory"))
            .take(2)
            .map(|l| Finding::new("logs", truncate(l, 300))),
    );
    let fix = fixes::raise_memory_limit(facts, config, &mut findings).into();
    Some(Analysis {
        category: Category::OomKilled,
        confidence: 0.95,
        summary: format!(
            "Container {} is OOMKilled: it needs more memory than its limit.",
            first.container
        ),
        findings,
        fix,
    })
}

fn liveness_probe(facts: &Facts, _: &RuleConfig) -> Option<Analysis> {
    let failed = facts.events_with_message("Liveness probe failed");
    let restarted = facts.observations.iter().any(|o| o.restarts > 0);
    if failed.is_empty() || !restarted {
        return None;
    }
    let mut findings = event_findings(&failed, 2);
    findings.extend(event_findings(
        &facts
            .events(&["Killing"])
            .into_iter()
            .filter(|e| e.message.as_deref().is_some_and(|m| m.contains("liveness")))
            .collect::<Vec<_>>(),
        1,
    ));
    let fix = fixes::fix_probe(facts, "livenessProbe", &mut findings).into();
    Some(Analysis {
        category: Category::LivenessProbeFailed,
        confidence: 0.9,
        summary: "The liveness probe fails and the kubelet keeps restarting the container.".into(),
        findings,
        fix,
    })
}

fn crash_loop_app(facts: &Facts, _: &RuleConfig) -> Option<Analysis> {
    let hit = facts.observations.iter().find(|o| {
        o.restarts > 0
            && o.terminated.as_ref().is_some_and(|(_, code, _)| *code != 0)
            && o.waiting
                .as_ref()
                .is_some_and(|(r, _)| r == "CrashLoopBackOff")
    })?;
    let (reason, code, _) = hit.terminated.clone().unwrap_or_default();
    let mut findings = vec![pod_finding(
        hit,
        format!(
            "CrashLoopBackOff, last terminated {reason} (exit {code}), {} restarts",
            hit.restarts
        ),
    )];
    findings.extend(error_log_findings(facts, 4));
    let fix = fixes::revert(
        facts,
        &["image", "env", "envFrom", "args", "command"],
        &mut findings,
    )
    .into();
    Some(Analysis {
        category: Category::CrashLoopApp,
        confidence: 0.8,
        summary: format!(
            "Container {} starts and exits with an application error (exit {code}).",
            hit.container
        ),
        findings,
        fix,
    })
}

fn scheduling(facts: &Facts, _: &RuleConfig) -> Option<Analysis> {
    let events = facts.events(&["FailedScheduling"]);
    let event = events.first()?;
    let message = event.message.clone().unwrap_or_default();
    let mut findings = event_findings(&events, 1);
    if message.contains("unbound immediate PersistentVolumeClaims")
        || message.contains("volume node affinity")
    {
        return None; // the volume analyzer explains this one
    }
    if message.contains("Insufficient ") {
        let fix = fixes::lower_requests(facts, &message, &mut findings).into();
        return Some(Analysis {
            category: Category::InsufficientResources,
            confidence: 0.9,
            summary:
                "The pod requests more than any node can allocate, so it can never be scheduled."
                    .into(),
            findings,
            fix,
        });
    }
    if message.contains("didn't match Pod's node affinity/selector")
        || message.contains("untolerated taint")
        || message.contains("node affinity")
    {
        let fix = fixes::node_selector_near_miss(facts, &message, &mut findings).into();
        return Some(Analysis {
            category: Category::UnschedulableConstraints,
            confidence: 0.85,
            summary: "No node satisfies the pod's node selector, affinity or tolerations.".into(),
            findings,
            fix,
        });
    }
    None
}

fn volume_mount(facts: &Facts, _: &RuleConfig) -> Option<Analysis> {
    let mut events = facts.events(&["FailedMount", "FailedAttachVolume", "ProvisioningFailed"]);
    events.extend(facts.events(&["FailedScheduling"]).into_iter().filter(|e| {
        e.message
            .as_deref()
            .is_some_and(|m| m.contains("PersistentVolumeClaims"))
    }));
    let pending_claims: Vec<_> = facts
        .evidence
        .claims
        .iter()
        .filter(|c| c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Pending"))
        .collect();
    if events.is_empty() && pending_claims.is_empty() {
        return None;
    }
    let mut findings = event_findings(&events, 3);
    findings.extend(pending_claims.iter().map(|c| {
        Finding::new(
            format!("pvc/{}", c.metadata.name.as_deref().unwrap_or("")),
            format!(
                "Pending (storageClassName {})",
                c.spec
                    .as_ref()
                    .and_then(|s| s.storage_class_name.as_deref())
                    .unwrap_or("default")
            ),
        )
    }));
    Some(Analysis {
        category: Category::VolumeMountFailed,
        confidence: 0.85,
        summary: "A volume cannot be provisioned or mounted, so the pod cannot start.".into(),
        findings,
        fix: Fix::Escalate(
            "Volume sources (claims, storage classes, referenced objects) need a human: claim templates are immutable and a missing volume source cannot be invented safely.".into(),
        ),
    })
}

fn cpu_throttled(facts: &Facts, config: &RuleConfig) -> Option<Analysis> {
    if !facts.alert_firing("CPUThrottlingHigh") {
        return None;
    }
    let mut findings: Vec<Finding> = facts
        .evidence
        .alerts
        .iter()
        .filter(|a| a.name() == "CPUThrottlingHigh")
        .map(|a| {
            Finding::new(
                format!(
                    "alert CPUThrottlingHigh pod/{}",
                    a.label("pod").unwrap_or("")
                ),
                a.annotations
                    .get("description")
                    .cloned()
                    .unwrap_or_default(),
            )
        })
        .collect();
    let fix = fixes::raise_cpu_limit(facts, config, &mut findings).into();
    Some(Analysis {
        category: Category::CpuThrottled,
        confidence: 0.85,
        summary: "The container is throttled hard by its CPU limit.".into(),
        findings,
        fix,
    })
}

fn readiness_probe(facts: &Facts, _: &RuleConfig) -> Option<Analysis> {
    let failed = facts.events_with_message("Readiness probe failed");
    let never_ready = facts
        .observations
        .iter()
        .any(|o| !o.ready && o.phase == "Running");
    if failed.is_empty() || !never_ready {
        return None;
    }
    let mut findings = event_findings(&failed, 2);
    if let Some((_, reason, message)) = facts
        .workload_condition("Progressing")
        .filter(|c| c.0 == "False")
    {
        findings.push(Finding::new(
            format!("deployment/{}", facts.evidence.workload.name),
            format!("Progressing=False {reason}: {message}"),
        ));
    }
    let fix = fixes::fix_probe(facts, "readinessProbe", &mut findings).into();
    Some(Analysis {
        category: Category::ReadinessProbeFailed,
        confidence: 0.85,
        summary: "The readiness probe fails, so new pods never become Ready.".into(),
        findings,
        fix,
    })
}

fn rollout_stuck(facts: &Facts, _: &RuleConfig) -> Option<Analysis> {
    let (status, reason, message) = facts.workload_condition("Progressing")?;
    if status != "False" || reason != "ProgressDeadlineExceeded" {
        return None;
    }
    let findings = vec![Finding::new(
        format!("deployment/{}", facts.evidence.workload.name),
        format!("Progressing=False {reason}: {message}"),
    )];
    Some(Analysis {
        category: Category::RolloutStuck,
        confidence: 0.7,
        summary: "The rollout exceeded its progress deadline and the evidence shows no deeper cause.".into(),
        findings,
        fix: Fix::Escalate(
            "No deeper cause is visible (events may have expired); a human should inspect the new ReplicaSet and decide between a rollback and a fix.".into(),
        ),
    })
}

fn unknown(facts: &Facts, _: &RuleConfig) -> Option<Analysis> {
    let findings = facts
        .evidence
        .alerts
        .iter()
        .take(3)
        .map(|a| {
            Finding::new(
                format!("alert {}", a.name()),
                a.annotations
                    .get("description")
                    .cloned()
                    .unwrap_or_default(),
            )
        })
        .collect();
    Some(Analysis {
        category: Category::Unknown,
        confidence: 0.3,
        summary: "The evidence supports no known root cause.".into(),
        findings,
        fix: Fix::Escalate("No rule explains the evidence; a human should look.".into()),
    })
}
