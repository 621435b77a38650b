//! Facts read off the evidence once, in the shape the analyzers ask about.

use autofix_core::{Evidence, FieldPath, WorkloadKind};
use k8s_openapi::api::core::v1::{ContainerStatus, Event, PodTemplateSpec};
use serde_json::Value;

/// What one container of one pod shows.
#[derive(Debug, Clone)]
pub struct ContainerObservation {
    /// Pod name.
    pub pod: String,
    /// Container name.
    pub container: String,
    /// Current waiting reason and message.
    pub waiting: Option<(String, String)>,
    /// Last termination (reason, exit code, message), current or previous instance.
    pub terminated: Option<(String, i32, String)>,
    /// Restart count.
    pub restarts: i32,
    /// Ready flag.
    pub ready: bool,
    /// Pod phase.
    pub phase: String,
}

/// One revision of a Deployment's pod template.
#[derive(Debug, Clone)]
pub struct Revision {
    /// `deployment.kubernetes.io/revision`.
    pub number: u64,
    /// ReplicaSet name.
    pub name: String,
    /// Normalized pod template.
    pub template: Value,
    /// Ready replicas now.
    pub ready: i32,
}

/// Facts shared by the analyzers.
pub struct Facts<'a> {
    /// The evidence the facts come from.
    pub evidence: &'a Evidence,
    /// The container at fault, when known.
    pub container: Option<String>,
    /// Path of the pod template inside the workload object (`spec.template`).
    pub template_path: FieldPath,
    /// The live pod template, normalized through the Kubernetes types.
    pub template: Value,
    /// Observations of the containers in question.
    pub observations: Vec<ContainerObservation>,
    /// Revisions, oldest first (Deployments only).
    pub revisions: Vec<Revision>,
    /// The workload's current revision.
    pub current_revision: Option<u64>,
}

/// Round-trips a pod template through k8s-openapi so that live and ReplicaSet templates compare
/// field by field with the same defaults and number forms.
fn normalize_template(raw: Option<&Value>) -> Value {
    raw.and_then(|t| serde_json::from_value::<PodTemplateSpec>(t.clone()).ok())
        .and_then(|t| serde_json::to_value(t).ok())
        .unwrap_or(Value::Null)
}

fn revision_of(annotations: Option<&std::collections::BTreeMap<String, String>>) -> Option<u64> {
    annotations?
        .get("deployment.kubernetes.io/revision")?
        .parse()
        .ok()
}

impl<'a> Facts<'a> {
    /// Reads the facts off the evidence.
    pub fn new(evidence: &'a Evidence) -> Self {
        let template_path = match evidence.workload.kind {
            WorkloadKind::CronJob => FieldPath::must("spec.jobTemplate.spec.template"),
            WorkloadKind::Pod => FieldPath::default(),
            _ => FieldPath::must("spec.template"),
        };
        let template = if evidence.workload.kind == WorkloadKind::Pod {
            let obj = &evidence.workload_object;
            normalize_template(Some(
                &serde_json::json!({"metadata": obj.get("metadata"), "spec": obj.get("spec")}),
            ))
        } else {
            normalize_template(template_path.get(&evidence.workload_object))
        };
        let container = evidence.container.clone();
        let observations = evidence
            .pods
            .iter()
            .flat_map(|pod| {
                let name = pod.metadata.name.clone().unwrap_or_default();
                let phase = pod
                    .status
                    .as_ref()
                    .and_then(|s| s.phase.clone())
                    .unwrap_or_default();
                let statuses: Vec<ContainerStatus> = pod
                    .status
                    .iter()
                    .flat_map(|s| {
                        s.init_container_statuses
                            .iter()
                            .flatten()
                            .chain(s.container_statuses.iter().flatten())
                    })
                    .cloned()
                    .collect();
                statuses.into_iter().map(move |s| observe(&name, &phase, s))
            })
            .filter(|o| container.as_ref().is_none_or(|c| &o.container == c))
            .collect();
        let mut revisions: Vec<Revision> = evidence
            .replica_sets
            .iter()
            .filter_map(|rs| {
                Some(Revision {
                    number: revision_of(rs.metadata.annotations.as_ref())?,
                    name: rs.metadata.name.clone().unwrap_or_default(),
                    template: normalize_template(
                        serde_json::to_value(rs.spec.as_ref()?.template.as_ref()?)
                            .ok()
                            .as_ref(),
                    ),
                    ready: rs
                        .status
                        .as_ref()
                        .and_then(|s| s.ready_replicas)
                        .unwrap_or(0),
                })
            })
            .collect();
        revisions.sort_by_key(|r| r.number);
        let current_revision = evidence
            .workload_object
            .pointer("/metadata/annotations/deployment.kubernetes.io~1revision")
            .and_then(Value::as_str)
            .and_then(|r| r.parse().ok())
            .or(revisions.last().map(|r| r.number));
        Facts {
            evidence,
            container: evidence.container.clone(),
            template_path,
            template,
            observations,
            revisions,
            current_revision,
        }
    }

    /// Path of the container at fault inside the workload object.
    pub fn container_path(&self) -> Option<FieldPath> {
        let name = self.container.as_deref()?;
        let kind = if self.is_init_container(name) {
            "initContainers"
        } else {
            "containers"
        };
        Some(
            self.template_path
                .key("spec")
                .key(kind)
                .select("name", name),
        )
    }

    fn is_init_container(&self, name: &str) -> bool {
        self.template
            .pointer("/spec/initContainers")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.get("name").and_then(Value::as_str) == Some(name))
            })
    }

    /// The container at fault, from the live template (normalized).
    pub fn container_spec(&self) -> Option<&Value> {
        let name = self.container.as_deref()?;
        ["containers", "initContainers"].iter().find_map(|kind| {
            self.template
                .get("spec")?
                .get(*kind)?
                .as_array()?
                .iter()
                .find(|c| c.get("name").and_then(Value::as_str) == Some(name))
        })
    }

    /// The live, un-normalized value at a path of the workload object.
    pub fn live(&self, path: &FieldPath) -> Option<&Value> {
        path.get(&self.evidence.workload_object)
    }

    /// Events whose reason is one of `reasons`, most frequent first.
    pub fn events(&self, reasons: &[&str]) -> Vec<&Event> {
        let mut out: Vec<&Event> = self
            .evidence
            .events
            .iter()
            .filter(|e| e.reason.as_deref().is_some_and(|r| reasons.contains(&r)))
            .collect();
        out.sort_by_key(|e| std::cmp::Reverse(event_count(e)));
        out
    }

    /// Events whose message starts with a prefix (any reason).
    pub fn events_with_message(&self, prefix: &str) -> Vec<&Event> {
        self.evidence
            .events
            .iter()
            .filter(|e| e.message.as_deref().is_some_and(|m| m.starts_with(prefix)))
            .collect()
    }

    /// True when an alert of this name is firing.
    pub fn alert_firing(&self, name: &str) -> bool {
        self.evidence
            .alerts
            .iter()
            .any(|a| a.name() == name && a.status == autofix_core::alert::AlertStatus::Firing)
    }

    /// The newest revision older than the current one, preferring one that still has ready pods.
    pub fn last_good_revision(&self) -> Option<&Revision> {
        let current = self.current_revision?;
        let older = || {
            self.revisions
                .iter()
                .rev()
                .filter(move |r| r.number < current)
        };
        older().find(|r| r.ready > 0).or_else(|| older().next())
    }

    /// The current revision's entry.
    pub fn current(&self) -> Option<&Revision> {
        let current = self.current_revision?;
        self.revisions.iter().find(|r| r.number == current)
    }

    /// Log lines of the container at fault.
    pub fn log_lines(&self) -> Vec<&str> {
        match &self.container {
            Some(c) => self.evidence.log_lines(c).collect(),
            None => self
                .evidence
                .logs
                .iter()
                .flat_map(|l| l.lines.iter().map(String::as_str))
                .collect(),
        }
    }

    /// Workload conditions (`status.conditions`) of a type, as (status, reason, message).
    pub fn workload_condition(&self, kind: &str) -> Option<(String, String, String)> {
        let conditions = self
            .evidence
            .workload_object
            .pointer("/status/conditions")?
            .as_array()?;
        conditions
            .iter()
            .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
            .map(|c| {
                let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                (s("status"), s("reason"), s("message"))
            })
    }
}

/// How many times an event was seen (core `count` or events.k8s.io `series.count`).
pub fn event_count(event: &Event) -> i32 {
    event
        .count
        .or(event.series.as_ref().and_then(|s| s.count))
        .unwrap_or(1)
}

fn observe(pod: &str, phase: &str, status: ContainerStatus) -> ContainerObservation {
    let state = status.state.as_ref();
    let waiting = state.and_then(|s| s.waiting.as_ref()).map(|w| {
        (
            w.reason.clone().unwrap_or_default(),
            w.message.clone().unwrap_or_default(),
        )
    });
    let terminated = state
        .and_then(|s| s.terminated.as_ref())
        .or(status
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref()))
        .map(|t| {
            (
                t.reason.clone().unwrap_or_default(),
                t.exit_code,
                t.message.clone().unwrap_or_default(),
            )
        });
    ContainerObservation {
        pod: pod.to_string(),
        container: status.name,
        waiting,
        terminated,
        restarts: status.restart_count,
        ready: status.ready,
        phase: phase.to_string(),
    }
}
