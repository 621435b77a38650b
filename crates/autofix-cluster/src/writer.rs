//! Writes a snapshot folder (FORMAT.md layout) from a live cluster, so an incident can be
//! replayed offline and attached to a bug report.
//!
//! Objects go through the same redaction as evidence before they are written: Secret values
//! become "", secret-looking env values and credentials in strings `[REDACTED]`.

use crate::ClusterError;
use crate::live::{LiveOptions, gather};
use crate::redaction::redact_object;
use autofix_core::alert::{Alert, AlertStatus, WebhookPayload};
use autofix_core::incident::DEFAULT_CLUSTER;
use autofix_core::{Incident, WorkloadRef};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Name of the alert written to `alert.json`, so the folder can be diagnosed as it is.
pub const SNAPSHOT_ALERT: &str = "AutofixSnapshot";

/// What [`write_snapshot`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotSummary {
    /// The workload that owns the pod.
    pub workload: WorkloadRef,
    /// Files written, relative to the output folder, in writing order.
    pub files: Vec<PathBuf>,
    /// Objects written under `cluster/` (events included).
    pub objects: usize,
    /// Log files written under `logs/`.
    pub logs: usize,
}

/// Reads what the evidence for `pod` needs from the cluster and writes it under `out`:
/// `cluster/<resource>.yaml` (each a `kind: List`, as `kubectl get -o yaml` prints it),
/// `logs/<ns>/<pod>/<container>[.previous].log` (tailed, redacted) and an `alert.json` naming
/// the pod (alert [`SNAPSHOT_ALERT`]). Secrets are written only with
/// [`LiveOptions::read_secrets`], and never with their values.
pub async fn write_snapshot(
    client: kube::Client,
    namespace: &str,
    pod: &str,
    out: &Path,
    options: &LiveOptions,
) -> Result<SnapshotSummary, ClusterError> {
    for name in [namespace, pod] {
        check_name(name)?;
    }
    let alert = snapshot_alert(namespace, pod);
    let incident = Incident {
        cluster: DEFAULT_CLUSTER.to_string(),
        namespace: namespace.to_string(),
        alerts: vec![alert.clone()],
        alerts_left_out: 0,
    };
    let gathered = gather(&client, options, &incident).await?;
    let mut writer = Writer {
        root: out,
        files: Vec::new(),
    };
    let mut objects = 0;
    let lists = gathered
        .objects
        .into_iter()
        .map(|f| (f.plural, f.items))
        .chain([("events", gathered.events)]);
    for (plural, mut items) in lists {
        items.iter_mut().for_each(redact_object);
        objects += items.len();
        let list = json!({
            "apiVersion": "v1",
            "items": items,
            "kind": "List",
            "metadata": {"resourceVersion": ""},
        });
        let path = PathBuf::from("cluster").join(format!("{plural}.yaml"));
        let text = serde_saphyr::to_string(&list).map_err(|e| encode_error(out, &path, e))?;
        writer.write(&path, text).await?;
    }
    let evidence = gathered.evidence;
    for log in &evidence.logs {
        check_name(&log.pod)?;
        check_name(&log.container)?;
        let suffix = if log.previous {
            ".previous.log"
        } else {
            ".log"
        };
        let path = PathBuf::from("logs")
            .join(namespace)
            .join(&log.pod)
            .join(format!("{}{suffix}", log.container));
        let mut text = log.lines.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        writer.write(&path, text).await?;
    }
    let payload = WebhookPayload {
        version: "4".to_string(),
        group_key: String::new(),
        truncated_alerts: 0,
        receiver: "autofix-snapshot".to_string(),
        status: AlertStatus::Firing,
        group_labels: BTreeMap::new(),
        common_labels: alert.labels.clone(),
        common_annotations: alert.annotations.clone(),
        external_url: String::new(),
        alerts: vec![alert],
    };
    let path = PathBuf::from("alert.json");
    let text = serde_json::to_string_pretty(&payload).map_err(|e| encode_error(out, &path, e))?;
    writer.write(&path, text + "\n").await?;
    Ok(SnapshotSummary {
        workload: evidence.workload,
        logs: evidence.logs.len(),
        objects,
        files: writer.files,
    })
}

/// The alert `alert.json` holds: firing now, naming the pod.
fn snapshot_alert(namespace: &str, pod: &str) -> Alert {
    let labels = [
        ("alertname", SNAPSHOT_ALERT),
        ("namespace", namespace),
        ("pod", pod),
    ];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Alert {
        status: AlertStatus::Firing,
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        annotations: BTreeMap::from([(
            "summary".to_string(),
            format!("Snapshot of pod {namespace}/{pod} taken by autofix"),
        )]),
        starts_at: rfc3339(now),
        ends_at: "0001-01-01T00:00:00Z".to_string(),
        generator_url: String::new(),
        fingerprint: String::new(),
    }
}

/// Refuses names that could leave the output folder once used as a path component.
fn check_name(name: &str) -> Result<(), ClusterError> {
    let valid = !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.'));
    if valid {
        Ok(())
    } else {
        Err(ClusterError::InvalidName(name.to_string()))
    }
}

fn encode_error(
    out: &Path,
    path: &Path,
    source: impl std::error::Error + Send + Sync + 'static,
) -> ClusterError {
    ClusterError::Encode {
        path: out.join(path),
        source: Box::new(source),
    }
}

/// Writes files below a root, creating folders, remembering what it wrote.
struct Writer<'a> {
    root: &'a Path,
    files: Vec<PathBuf>,
}

impl Writer<'_> {
    async fn write(&mut self, relative: &Path, text: String) -> Result<(), ClusterError> {
        let path = self.root.join(relative);
        let io_error = |source| ClusterError::Io {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io_error)?;
        }
        tokio::fs::write(&path, text).await.map_err(io_error)?;
        self.files.push(relative.to_path_buf());
        Ok(())
    }
}

/// An RFC 3339 UTC timestamp (`2026-11-20T08:14:03Z`) of a Unix time in seconds.
fn rfc3339(unix_seconds: u64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix_seconds);
    humantime::format_rfc3339_seconds(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_unix_times_as_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_162_443), "2026-11-20T08:14:03Z");
    }

    #[test]
    fn refuses_names_that_escape_the_folder() {
        for bad in ["", "..", "a/b", "../etc", "Pod"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert!(check_name("cart-764d7f7f78-sqswk").is_ok());
    }

    #[test]
    fn the_alert_names_the_pod() {
        let alert = snapshot_alert("shop", "cart-1");
        assert_eq!(alert.label("pod"), Some("cart-1"));
        assert_eq!(alert.name(), SNAPSHOT_ALERT);
        assert_eq!(alert.starts_at.len(), "2026-11-20T08:14:03Z".len());
    }
}
