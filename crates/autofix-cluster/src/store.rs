//! Cluster objects held in memory, and the assembly of evidence from them.

use crate::ClusterError;
use crate::redaction::redact_object;
use autofix_core::evidence::ConfigObject;
use autofix_core::incident::Subject;
use autofix_core::{Evidence, Incident, WorkloadKind, WorkloadRef};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Kubernetes objects as JSON, each with the place it was read from.
#[derive(Debug, Default)]
pub struct ObjectStore {
    /// Human name of where the objects came from, for error messages.
    origin: String,
    objects: Vec<(String, Value)>,
}

fn str_at<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

impl ObjectStore {
    /// An empty store; `origin` names it in errors (e.g. the snapshot's cluster/ folder).
    pub fn new(origin: impl Into<String>) -> Self {
        ObjectStore {
            origin: origin.into(),
            objects: Vec::new(),
        }
    }

    /// Adds an object read from `file`, redacting it on the way in.
    pub fn insert(&mut self, file: impl Into<String>, mut object: Value) {
        redact_object(&mut object);
        self.objects.push((file.into(), object));
    }

    /// Objects of a kind in a namespace (`None`: cluster-scoped or any namespace).
    fn list<'a, 'k>(
        &'a self,
        kind: &'k str,
        namespace: Option<&'k str>,
    ) -> impl Iterator<Item = &'a (String, Value)> + use<'a, 'k> {
        self.objects.iter().filter(move |(_, o)| {
            str_at(o, "/kind") == kind
                && namespace.is_none_or(|ns| str_at(o, "/metadata/namespace") == ns)
        })
    }

    fn find(&self, kind: &str, namespace: &str, name: &str) -> Option<&(String, Value)> {
        self.list(kind, Some(namespace))
            .find(|(_, o)| str_at(o, "/metadata/name") == name)
    }

    fn typed<T: DeserializeOwned>(
        &self,
        (file, object): &(String, Value),
    ) -> Result<T, ClusterError> {
        serde_path_to_error::deserialize(object).map_err(|source| ClusterError::Object {
            origin: file.clone(),
            kind: str_at(object, "/kind").to_string(),
            name: str_at(object, "/metadata/name").to_string(),
            source,
        })
    }

    fn not_found(&self, kind: &str, namespace: &str, name: &str) -> ClusterError {
        ClusterError::WorkloadNotFound {
            kind: kind.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
            origin: self.origin.clone(),
        }
    }

    /// Walks a pod's controller owner references up to its workload.
    fn owner_of_pod(&self, pod: &Value) -> Result<WorkloadRef, ClusterError> {
        let namespace = str_at(pod, "/metadata/namespace");
        let workload = |kind, name: &str| WorkloadRef {
            kind,
            namespace: namespace.to_string(),
            name: name.to_string(),
        };
        let Some((kind, name)) = controller_of(pod) else {
            return Ok(workload(WorkloadKind::Pod, str_at(pod, "/metadata/name")));
        };
        match kind {
            "ReplicaSet" => {
                let deployment = match self.find("ReplicaSet", namespace, name) {
                    Some((_, rs)) => match controller_of(rs) {
                        Some(("Deployment", d)) => d.to_string(),
                        _ => {
                            return Err(self.not_found(
                                "Deployment owning ReplicaSet",
                                namespace,
                                name,
                            ));
                        }
                    },
                    // The ReplicaSet may be gone; its name is `<deployment>-<pod-template-hash>`.
                    None => {
                        let hash = str_at(pod, "/metadata/labels/pod-template-hash");
                        name.strip_suffix(&format!("-{hash}"))
                            .filter(|_| !hash.is_empty())
                            .ok_or_else(|| self.not_found("ReplicaSet", namespace, name))?
                            .to_string()
                    }
                };
                Ok(workload(WorkloadKind::Deployment, &deployment))
            }
            "Job" => match self
                .find("Job", namespace, name)
                .and_then(|(_, j)| controller_of(j))
            {
                Some(("CronJob", cron)) => Ok(workload(WorkloadKind::CronJob, cron)),
                _ => Ok(workload(WorkloadKind::Job, name)),
            },
            other => WorkloadKind::parse(other)
                .map(|k| workload(k, name))
                .ok_or_else(|| self.not_found(other, namespace, name)),
        }
    }

    /// The workload and container the incident is about.
    fn subject(&self, incident: &Incident) -> Result<(WorkloadRef, Option<String>), ClusterError> {
        let subjects = incident.subjects();
        let first = subjects.first().ok_or(ClusterError::NoSubject)?;
        // Prefer a subject the store knows; report the first one otherwise.
        for subject in &subjects {
            match subject {
                Subject::Pod { pod, container } => {
                    if let Some((_, p)) = self.find("Pod", &incident.namespace, pod) {
                        return Ok((self.owner_of_pod(p)?, container.clone()));
                    }
                }
                Subject::Workload(w) => {
                    if self.find(w.kind.as_str(), &w.namespace, &w.name).is_some() {
                        return Ok((w.clone(), None));
                    }
                }
            }
        }
        Err(match first {
            Subject::Pod { pod, .. } => ClusterError::PodNotFound {
                namespace: incident.namespace.clone(),
                pod: pod.clone(),
                origin: self.origin.clone(),
            },
            Subject::Workload(w) => self.not_found(w.kind.as_str(), &w.namespace, &w.name),
        })
    }
}

/// The kind and name of an object's controlling owner.
fn controller_of(object: &Value) -> Option<(&str, &str)> {
    let owners = object.pointer("/metadata/ownerReferences")?.as_array()?;
    let owner = owners
        .iter()
        .find(|o| o.get("controller").and_then(Value::as_bool) == Some(true))
        .or(owners.first())?;
    Some((str_at(owner, "/kind"), str_at(owner, "/name")))
}

/// What belongs to an incident in a store: the workload and the objects around it.
struct Scope<'s> {
    workload: WorkloadRef,
    alert_container: Option<String>,
    workload_object: &'s Value,
    replica_sets: Vec<&'s (String, Value)>,
    pods: Vec<&'s (String, Value)>,
    claims: Vec<&'s (String, Value)>,
    /// (kind, name) of every object whose events are evidence.
    involved: BTreeSet<(String, String)>,
}

impl<'s> Scope<'s> {
    fn of(store: &'s ObjectStore, incident: &Incident) -> Result<Self, ClusterError> {
        let (workload, alert_container) = store.subject(incident)?;
        let ns = workload.namespace.as_str();
        let (_, workload_object) = store
            .find(workload.kind.as_str(), ns, &workload.name)
            .ok_or_else(|| store.not_found(workload.kind.as_str(), ns, &workload.name))?;

        let replica_sets: Vec<&(String, Value)> = if workload.kind == WorkloadKind::Deployment {
            store
                .list("ReplicaSet", Some(ns))
                .filter(|(_, rs)| controller_of(rs) == Some(("Deployment", workload.name.as_str())))
                .collect()
        } else {
            Vec::new()
        };
        let mut owners: BTreeSet<(&str, &str)> = BTreeSet::new();
        owners.insert((workload.kind.as_str(), workload.name.as_str()));
        for (_, rs) in &replica_sets {
            owners.insert(("ReplicaSet", str_at(rs, "/metadata/name")));
        }
        if workload.kind == WorkloadKind::CronJob {
            for (_, job) in store.list("Job", Some(ns)) {
                if controller_of(job) == Some(("CronJob", workload.name.as_str())) {
                    owners.insert(("Job", str_at(job, "/metadata/name")));
                }
            }
        }
        let pods: Vec<&(String, Value)> = store
            .list("Pod", Some(ns))
            .filter(|(_, p)| {
                controller_of(p).is_some_and(|owner| owners.contains(&owner))
                    || (workload.kind == WorkloadKind::Pod
                        && str_at(p, "/metadata/name") == workload.name)
            })
            .collect();

        let claim_names: BTreeSet<String> = pods
            .iter()
            .flat_map(|(_, p)| {
                p.pointer("/spec/volumes")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
            })
            .filter_map(|v| {
                v.pointer("/persistentVolumeClaim/claimName")
                    .and_then(Value::as_str)
            })
            .map(str::to_string)
            .collect();
        let claims: Vec<&(String, Value)> = store
            .list("PersistentVolumeClaim", Some(ns))
            .filter(|(_, c)| claim_names.contains(str_at(c, "/metadata/name")))
            .collect();

        let mut involved: BTreeSet<(String, String)> = owners
            .iter()
            .map(|(k, n)| (k.to_string(), n.to_string()))
            .collect();
        for (kind, entries) in [("Pod", &pods), ("PersistentVolumeClaim", &claims)] {
            for (_, o) in entries.iter() {
                involved.insert((kind.to_string(), str_at(o, "/metadata/name").to_string()));
            }
        }
        Ok(Scope {
            workload,
            alert_container,
            workload_object,
            replica_sets,
            pods,
            claims,
            involved,
        })
    }
}

/// The (kind, name) of every object whose events belong to the incident's evidence: the
/// workload, its ReplicaSets (or a CronJob's Jobs), its pods and their claims.
pub(crate) fn involved_objects(
    store: &ObjectStore,
    incident: &Incident,
) -> Result<BTreeSet<(String, String)>, ClusterError> {
    Ok(Scope::of(store, incident)?.involved)
}

/// Builds the evidence for an incident from the objects in a store (logs are the caller's).
pub fn assemble(store: &ObjectStore, incident: &Incident) -> Result<Evidence, ClusterError> {
    let Scope {
        workload,
        alert_container,
        workload_object,
        replica_sets: replica_set_entries,
        pods: pod_entries,
        claims: claim_entries,
        involved,
    } = Scope::of(store, incident)?;
    let ns = workload.namespace.as_str();
    let mut events = Vec::new();
    for entry in store.list("Event", Some(ns)) {
        let key = (
            str_at(&entry.1, "/involvedObject/kind").to_string(),
            str_at(&entry.1, "/involvedObject/name").to_string(),
        );
        if involved.contains(&key) {
            events.push(store.typed(entry)?);
        }
    }

    let container = alert_container.or_else(|| failing_container(&pod_entries, workload_object));
    let namespace_labels = store
        .list("Namespace", None)
        .find(|(_, n)| str_at(n, "/metadata/name") == ns)
        .and_then(|(_, n)| n.pointer("/metadata/labels"))
        .and_then(|l| serde_json::from_value::<BTreeMap<String, String>>(l.clone()).ok())
        .unwrap_or_default();

    Ok(Evidence {
        cluster: incident.cluster.clone(),
        container,
        workload_object: workload_object.clone(),
        namespace_labels,
        pods: pod_entries
            .iter()
            .map(|e| store.typed(e))
            .collect::<Result<_, _>>()?,
        replica_sets: replica_set_entries
            .iter()
            .map(|e| store.typed(e))
            .collect::<Result<_, _>>()?,
        events,
        nodes: store
            .list("Node", None)
            .map(|e| store.typed(e))
            .collect::<Result<_, _>>()?,
        config_maps: config_objects(store, "ConfigMap", ns),
        secrets: config_objects(store, "Secret", ns),
        claims: claim_entries
            .iter()
            .map(|e| store.typed(e))
            .collect::<Result<_, _>>()?,
        logs: Vec::new(),
        alerts: incident.alerts.clone(),
        alerts_left_out: incident.alerts_left_out,
        workload,
    })
}

/// The first container that is not ready in any pod, else the template's only container.
fn failing_container(pods: &[&(String, Value)], workload: &Value) -> Option<String> {
    let not_ready = pods.iter().find_map(|(_, p)| {
        p.pointer("/status/containerStatuses")?
            .as_array()?
            .iter()
            .find(|s| s.get("ready").and_then(Value::as_bool) == Some(false))
            .map(|s| str_at(s, "/name").to_string())
    });
    not_ready.or_else(|| {
        let containers = [
            "/spec/template/spec/containers",
            "/spec/jobTemplate/spec/template/spec/containers",
            "/spec/containers",
        ]
        .iter()
        .find_map(|p| workload.pointer(p))?
        .as_array()?;
        (containers.len() == 1).then(|| str_at(&containers[0], "/name").to_string())
    })
}

fn config_objects(store: &ObjectStore, kind: &str, namespace: &str) -> Vec<ConfigObject> {
    store
        .list(kind, Some(namespace))
        .map(|(_, o)| {
            let keys = ["data", "binaryData", "stringData"]
                .iter()
                .filter_map(|f| o.get(*f).and_then(Value::as_object))
                .flat_map(|m| m.keys().cloned())
                .collect();
            ConfigObject {
                name: str_at(o, "/metadata/name").to_string(),
                keys,
            }
        })
        .collect()
}
