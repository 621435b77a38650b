//! The frozen cluster a fake serves: a scenario's objects and the folder of its logs.

use crate::TestkitError;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A REST resource the fake serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    /// Path segment, e.g. `replicasets`.
    pub plural: &'static str,
    /// Object kind, e.g. `ReplicaSet`.
    pub kind: &'static str,
    /// `apiVersion` of the objects, e.g. `apps/v1`.
    pub api_version: &'static str,
    /// False for cluster-scoped kinds (Nodes, Namespaces).
    pub namespaced: bool,
}

const fn resource(
    plural: &'static str,
    kind: &'static str,
    api_version: &'static str,
    namespaced: bool,
) -> Resource {
    Resource {
        plural,
        kind,
        api_version,
        namespaced,
    }
}

/// Every resource the fake knows; others answer 404 like an unknown resource does.
pub const RESOURCES: [Resource; 15] = [
    resource("pods", "Pod", "v1", true),
    resource("configmaps", "ConfigMap", "v1", true),
    resource("secrets", "Secret", "v1", true),
    resource(
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        "v1",
        true,
    ),
    resource("events", "Event", "v1", true),
    resource("services", "Service", "v1", true),
    resource("namespaces", "Namespace", "v1", false),
    resource("nodes", "Node", "v1", false),
    resource("deployments", "Deployment", "apps/v1", true),
    resource("replicasets", "ReplicaSet", "apps/v1", true),
    resource("statefulsets", "StatefulSet", "apps/v1", true),
    resource("daemonsets", "DaemonSet", "apps/v1", true),
    resource("controllerrevisions", "ControllerRevision", "apps/v1", true),
    resource("jobs", "Job", "batch/v1", true),
    resource("cronjobs", "CronJob", "batch/v1", true),
];

/// The resource behind `/api/<version>/...` or `/apis/<group>/<version>/...`.
pub fn find_resource(api_version: &str, plural: &str) -> Option<Resource> {
    RESOURCES
        .into_iter()
        .find(|r| r.api_version == api_version && r.plural == plural)
}

/// A scenario folder loaded for serving.
#[derive(Debug)]
pub struct World {
    /// Objects in file order (files sorted by path), as the snapshot reader sees them.
    objects: Vec<Value>,
    /// `<scenario>/logs`.
    logs_dir: PathBuf,
}

/// A string field of an object, or "".
pub fn str_at<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or("")
}

impl World {
    /// Reads every YAML file under `<dir>/cluster/` (single objects or `kind: List`).
    pub fn load(dir: &Path) -> Result<World, TestkitError> {
        let mut objects = Vec::new();
        for path in yaml_files(&dir.join("cluster"))? {
            let text = std::fs::read_to_string(&path).map_err(|source| TestkitError::Io {
                path: path.clone(),
                source,
            })?;
            let parsed = autofix_core::yaml::parse_objects(&text)
                .map_err(|source| TestkitError::Yaml { path, source })?;
            objects.extend(parsed);
        }
        Ok(World {
            objects,
            logs_dir: dir.join("logs"),
        })
    }

    /// Objects of a resource, in one namespace or (`None`) all of them.
    pub fn objects<'a, 'n>(
        &'a self,
        resource: Resource,
        namespace: Option<&'n str>,
    ) -> impl Iterator<Item = &'a Value> + use<'a, 'n> {
        self.objects.iter().filter(move |o| {
            str_at(o, "/kind") == resource.kind
                && str_at(o, "/apiVersion") == resource.api_version
                && (!resource.namespaced
                    || namespace.is_none_or(|ns| str_at(o, "/metadata/namespace") == ns))
        })
    }

    /// One object by name.
    pub fn object(
        &self,
        resource: Resource,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<&Value> {
        self.objects(resource, namespace)
            .find(|o| str_at(o, "/metadata/name") == name)
    }

    /// The text of `logs/<ns>/<pod>/<container>[.previous].log`, if the file exists.
    pub fn log(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        previous: bool,
    ) -> Option<String> {
        let suffix = if previous { ".previous.log" } else { ".log" };
        let path = self
            .logs_dir
            .join(namespace)
            .join(pod)
            .join(format!("{container}{suffix}"));
        std::fs::read_to_string(path).ok()
    }
}

/// YAML files below a folder (recursively), sorted like the snapshot reader sorts them.
fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, TestkitError> {
    let io_error = |source| TestkitError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error)? {
        let path = entry.map_err(io_error)?.path();
        if path.is_dir() {
            out.extend(yaml_files(&path)?);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}
