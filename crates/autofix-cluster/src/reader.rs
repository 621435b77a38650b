//! Reads from the Kubernetes API: only `get`, `list` and `log`, never a write.
//!
//! Every request is bounded: lists are paged and capped, events are asked per object of interest
//! (field selector `involvedObject.kind=..,involvedObject.name=..`), logs are tailed and capped
//! in bytes, for a bounded number of pods.

use crate::ClusterError;
use crate::live::LiveOptions;
use autofix_core::evidence::LogExcerpt;
use autofix_core::redact::redact;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    ConfigMap, Event, Namespace, Node, PersistentVolumeClaim, Pod, Secret,
};
use kube::Resource;
use kube::api::{Api, ListParams, LogParams};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt::Debug;

/// Most objects of one kind read in one collection (over all pages); more are cut with a warning.
pub const MAX_LIST_ITEMS: usize = 5000;

/// Objects of one kind as JSON, named by their `kubectl` resource (`pods`, `replicasets`...).
#[derive(Debug)]
pub(crate) struct Fetched {
    /// Resource name, plural: the snapshot file is `cluster/<plural>.yaml`.
    pub(crate) plural: &'static str,
    /// The objects, each with `kind` and `apiVersion` set.
    pub(crate) items: Vec<Value>,
}

/// A read-only view of the API for one collection.
pub(crate) struct ApiReader<'a> {
    client: &'a kube::Client,
    options: &'a LiveOptions,
}

fn api_error(what: impl Into<String>, source: kube::Error) -> ClusterError {
    ClusterError::Api {
        what: what.into(),
        source,
    }
}

/// A typed object as JSON with its `kind` and `apiVersion`, which list items do not carry.
fn to_json<K: Resource<DynamicType = ()> + Serialize>(object: &K) -> Result<Value, ClusterError> {
    let mut value = serde_json::to_value(object).map_err(|e| {
        api_error(
            format!("encoding a {} as JSON", K::kind(&())),
            kube::Error::SerdeError(e),
        )
    })?;
    if let Value::Object(map) = &mut value {
        map.insert("apiVersion".into(), K::api_version(&()).into());
        map.insert("kind".into(), K::kind(&()).into());
    }
    Ok(value)
}

impl<'a> ApiReader<'a> {
    /// A reader using `client`, bounded by `options`.
    pub(crate) fn new(client: &'a kube::Client, options: &'a LiveOptions) -> Self {
        ApiReader { client, options }
    }

    /// Every page of a list (up to [`MAX_LIST_ITEMS`]), as JSON.
    async fn list<K>(
        &self,
        api: Api<K>,
        fields: Option<&str>,
        what: &str,
    ) -> Result<Vec<Value>, ClusterError>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Serialize + Debug,
    {
        let mut params = ListParams::default().limit(self.options.page_size.max(1));
        if let Some(selector) = fields {
            params = params.fields(selector);
        }
        let mut out = Vec::new();
        loop {
            let page = api
                .list(&params)
                .await
                .map_err(|source| api_error(format!("list {what}"), source))?;
            for item in &page.items {
                out.push(to_json(item)?);
            }
            match page.metadata.continue_.filter(|t| !t.is_empty()) {
                Some(_) if out.len() >= MAX_LIST_ITEMS => {
                    tracing::warn!(what, read = out.len(), "list cut at MAX_LIST_ITEMS");
                    break;
                }
                Some(token) => params = params.continue_token(&token),
                None => break,
            }
        }
        Ok(out)
    }

    fn namespaced<K>(&self, namespace: &str) -> Api<K>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
    {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// The namespace object and every object of the kinds evidence uses in it, plus the nodes.
    /// Secrets are read only when [`LiveOptions::read_secrets`] is set.
    pub(crate) async fn namespace_objects(&self, ns: &str) -> Result<Vec<Fetched>, ClusterError> {
        let namespace = async {
            let api: Api<Namespace> = Api::all(self.client.clone());
            let found = api
                .get_opt(ns)
                .await
                .map_err(|source| api_error(format!("get namespace {ns}"), source))?;
            found
                .as_ref()
                .map(to_json)
                .into_iter()
                .collect::<Result<Vec<_>, _>>()
        };
        let secrets = async {
            if self.options.read_secrets {
                self.list(self.namespaced::<Secret>(ns), None, "secrets")
                    .await
            } else {
                Ok(Vec::new())
            }
        };
        let (namespaces, pods, replica_sets, deployments, stateful_sets, daemon_sets) = tokio::try_join!(
            namespace,
            self.list(self.namespaced::<Pod>(ns), None, "pods"),
            self.list(self.namespaced::<ReplicaSet>(ns), None, "replicasets"),
            self.list(self.namespaced::<Deployment>(ns), None, "deployments"),
            self.list(self.namespaced::<StatefulSet>(ns), None, "statefulsets"),
            self.list(self.namespaced::<DaemonSet>(ns), None, "daemonsets"),
        )?;
        let (jobs, cron_jobs, config_maps, secrets, claims, nodes) = tokio::try_join!(
            self.list(self.namespaced::<Job>(ns), None, "jobs"),
            self.list(self.namespaced::<CronJob>(ns), None, "cronjobs"),
            self.list(self.namespaced::<ConfigMap>(ns), None, "configmaps"),
            secrets,
            self.list(
                self.namespaced::<PersistentVolumeClaim>(ns),
                None,
                "persistentvolumeclaims"
            ),
            self.list(Api::<Node>::all(self.client.clone()), None, "nodes"),
        )?;
        let mut out = vec![
            Fetched {
                plural: "namespaces",
                items: namespaces,
            },
            Fetched {
                plural: "pods",
                items: pods,
            },
            Fetched {
                plural: "replicasets",
                items: replica_sets,
            },
            Fetched {
                plural: "deployments",
                items: deployments,
            },
            Fetched {
                plural: "statefulsets",
                items: stateful_sets,
            },
            Fetched {
                plural: "daemonsets",
                items: daemon_sets,
            },
            Fetched {
                plural: "jobs",
                items: jobs,
            },
            Fetched {
                plural: "cronjobs",
                items: cron_jobs,
            },
            Fetched {
                plural: "configmaps",
                items: config_maps,
            },
        ];
        if self.options.read_secrets {
            out.push(Fetched {
                plural: "secrets",
                items: secrets,
            });
        }
        out.extend([
            Fetched {
                plural: "persistentvolumeclaims",
                items: claims,
            },
            Fetched {
                plural: "nodes",
                items: nodes,
            },
        ]);
        Ok(out)
    }

    /// Events of the namespace about the given (kind, name) objects, sorted by name as the
    /// apiserver lists them. One field-selected list per object (each event names one object,
    /// so the lists do not overlap); past
    /// [`LiveOptions::max_event_queries`] objects, one list of the namespace's events instead.
    pub(crate) async fn events(
        &self,
        ns: &str,
        involved: &BTreeSet<(String, String)>,
    ) -> Result<Vec<Value>, ClusterError> {
        let api = || self.namespaced::<Event>(ns);
        let mut events = Vec::new();
        if involved.len() > self.options.max_event_queries {
            for event in self.list(api(), None, "events").await? {
                let about = (
                    str_at(&event, "/involvedObject/kind").to_string(),
                    str_at(&event, "/involvedObject/name").to_string(),
                );
                if involved.contains(&about) {
                    events.push(event);
                }
            }
        } else {
            for (kind, name) in involved {
                let selector = format!("involvedObject.kind={kind},involvedObject.name={name}");
                events.extend(self.list(api(), Some(&selector), "events").await?);
            }
        }
        events.sort_by(|a, b| str_at(a, "/metadata/name").cmp(str_at(b, "/metadata/name")));
        Ok(events)
    }

    /// Current and previous logs of every container of the pods (unhealthy pods first when
    /// there are more than [`LiveOptions::max_log_pods`]), tailed and redacted, in pod order.
    /// A 400 answer means there is no such log (no previous instance, or the container has not
    /// started), a 404 that the pod is gone: both are skipped.
    pub(crate) async fn logs(
        &self,
        ns: &str,
        pods: &[Pod],
    ) -> Result<Vec<LogExcerpt>, ClusterError> {
        let api: Api<Pod> = self.namespaced(ns);
        let mut by_health: Vec<&Pod> = pods.iter().collect();
        by_health.sort_by_key(|p| is_healthy(p));
        let chosen: BTreeSet<&str> = by_health
            .iter()
            .take(self.options.max_log_pods)
            .filter_map(|p| p.metadata.name.as_deref())
            .collect();
        let tail = usize::try_from(self.options.log_tail_lines).unwrap_or(usize::MAX);
        let mut out = Vec::new();
        for pod in pods {
            let Some(name) = pod.metadata.name.as_deref().filter(|n| chosen.contains(n)) else {
                continue;
            };
            let Some(spec) = &pod.spec else { continue };
            for container in spec
                .init_containers
                .iter()
                .flatten()
                .chain(&spec.containers)
            {
                for previous in [true, false] {
                    let params = LogParams {
                        container: Some(container.name.clone()),
                        previous,
                        tail_lines: Some(self.options.log_tail_lines),
                        limit_bytes: Some(self.options.log_limit_bytes),
                        ..LogParams::default()
                    };
                    let text = match api.logs(name, &params).await {
                        Ok(text) => text,
                        // A byte limit can cut a character in two.
                        Err(kube::Error::FromUtf8(e)) => {
                            String::from_utf8_lossy(e.as_bytes()).into_owned()
                        }
                        Err(kube::Error::Api(status)) if matches!(status.code, 400 | 404) => {
                            continue;
                        }
                        Err(source) => {
                            return Err(api_error(
                                format!("logs of {ns}/{name}/{}", container.name),
                                source,
                            ));
                        }
                    };
                    let all: Vec<&str> = text.lines().collect();
                    out.push(LogExcerpt {
                        pod: name.to_string(),
                        container: container.name.clone(),
                        previous,
                        lines: all[all.len().saturating_sub(tail)..]
                            .iter()
                            .map(|l| redact(l))
                            .collect(),
                    });
                }
            }
        }
        Ok(out)
    }
}

/// True when every container is ready and none restarted: its logs matter least.
fn is_healthy(pod: &Pod) -> bool {
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref());
    statuses.is_some_and(|all| all.iter().all(|c| c.ready && c.restart_count == 0))
}

fn str_at<'v>(object: &'v Value, pointer: &str) -> &'v str {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or("")
}
