//! Evidence from a snapshot folder: `cluster/*.yaml` and `logs/<ns>/<pod>/<container>[.previous].log`.

use crate::store::{ObjectStore, assemble};
use crate::{ClusterError, EvidenceSource};
use autofix_core::evidence::LogExcerpt;
use autofix_core::redact::redact;
use autofix_core::{Evidence, Incident};
use std::path::{Path, PathBuf};

/// How many trailing lines of each log are kept as evidence.
pub const LOG_TAIL_LINES: usize = 300;

/// A frozen cluster: the objects of a snapshot folder, loaded once.
#[derive(Debug)]
pub struct SnapshotSource {
    dir: PathBuf,
    store: ObjectStore,
}

impl SnapshotSource {
    /// Loads every YAML file under `<dir>/cluster/` (each one object or a `kind: List`).
    pub fn open(dir: &Path) -> Result<Self, ClusterError> {
        let cluster_dir = dir.join("cluster");
        if !cluster_dir.is_dir() {
            return Err(ClusterError::MissingSnapshot(dir.to_path_buf()));
        }
        let mut store = ObjectStore::new(cluster_dir.display().to_string());
        for path in yaml_files(&cluster_dir)? {
            let text = read(&path)?;
            let objects =
                autofix_core::yaml::parse_objects(&text).map_err(|source| ClusterError::Yaml {
                    path: path.clone(),
                    source,
                })?;
            for object in objects {
                store.insert(path.display().to_string(), object);
            }
        }
        Ok(SnapshotSource {
            dir: dir.to_path_buf(),
            store,
        })
    }

    fn logs_for(&self, evidence: &Evidence) -> Result<Vec<LogExcerpt>, ClusterError> {
        let mut out = Vec::new();
        for pod in &evidence.pods {
            let name = pod.metadata.name.as_deref().unwrap_or_default();
            let pod_dir = self
                .dir
                .join("logs")
                .join(&evidence.workload.namespace)
                .join(name);
            let Some(spec) = &pod.spec else { continue };
            for container in spec
                .init_containers
                .iter()
                .flatten()
                .chain(&spec.containers)
            {
                for previous in [true, false] {
                    let suffix = if previous { ".previous.log" } else { ".log" };
                    let path = pod_dir.join(format!("{}{suffix}", container.name));
                    if !path.is_file() {
                        continue;
                    }
                    let text = read(&path)?;
                    let all: Vec<&str> = text.lines().collect();
                    let tail = &all[all.len().saturating_sub(LOG_TAIL_LINES)..];
                    out.push(LogExcerpt {
                        pod: name.to_string(),
                        container: container.name.clone(),
                        previous,
                        lines: tail.iter().map(|l| redact(l)).collect(),
                    });
                }
            }
        }
        Ok(out)
    }
}

#[async_trait::async_trait]
impl EvidenceSource for SnapshotSource {
    async fn collect(&self, incident: &Incident) -> Result<Evidence, ClusterError> {
        let mut evidence = assemble(&self.store, incident)?;
        evidence.logs = self.logs_for(&evidence)?;
        Ok(evidence)
    }
}

fn read(path: &Path) -> Result<String, ClusterError> {
    std::fs::read_to_string(path).map_err(|source| ClusterError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// YAML files below a folder, sorted for determinism.
fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, ClusterError> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|source| ClusterError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries {
        let path = entry
            .map_err(|source| ClusterError::Io {
                path: dir.to_path_buf(),
                source,
            })?
            .path();
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
