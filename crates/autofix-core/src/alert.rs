//! Alertmanager webhook payloads (version 4) and the alerts they carry.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Whether an alert (or a group of alerts) is still firing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    /// The alert condition holds.
    Firing,
    /// The alert condition no longer holds.
    Resolved,
}

/// One alert inside a webhook body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// Firing or resolved.
    pub status: AlertStatus,
    /// Identifying labels (alertname, namespace, pod, container, ...).
    pub labels: BTreeMap<String, String>,
    /// Descriptive annotations (summary, description, runbook_url).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// When the alert started firing (RFC 3339).
    pub starts_at: String,
    /// When it resolved; `0001-01-01T00:00:00Z` while firing.
    #[serde(default)]
    pub ends_at: String,
    /// Link to the expression in Prometheus.
    #[serde(default, rename = "generatorURL")]
    pub generator_url: String,
    /// Hash of the label set: identifies re-deliveries of the same alert.
    #[serde(default)]
    pub fingerprint: String,
}

impl Alert {
    /// A label's value, if present and not empty.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The alert's name (`alertname` label).
    pub fn name(&self) -> &str {
        self.label("alertname").unwrap_or("")
    }
}

/// The JSON body Alertmanager POSTs to a webhook receiver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookPayload {
    /// Payload format version; only "4" exists.
    pub version: String,
    /// The aggregation group's key.
    #[serde(default)]
    pub group_key: String,
    /// How many alerts `max_alerts` cut off.
    #[serde(default)]
    pub truncated_alerts: u64,
    /// The receiver's name.
    #[serde(default)]
    pub receiver: String,
    /// Firing if any alert in the group fires.
    pub status: AlertStatus,
    /// The alerts of the group.
    pub alerts: Vec<Alert>,
    /// Labels the group was formed by.
    #[serde(default)]
    pub group_labels: BTreeMap<String, String>,
    /// Labels all alerts share.
    #[serde(default)]
    pub common_labels: BTreeMap<String, String>,
    /// Annotations all alerts share.
    #[serde(default)]
    pub common_annotations: BTreeMap<String, String>,
    /// Alertmanager's own URL.
    #[serde(default, rename = "externalURL")]
    pub external_url: String,
}

/// Why a webhook body was refused.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// The body is not the JSON shape Alertmanager sends.
    #[error("invalid Alertmanager payload at `{path}`: {source}")]
    Json {
        /// JSON path of the failing element.
        path: String,
        /// The decoder's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// The payload declares a version this receiver does not speak.
    #[error("unsupported Alertmanager payload version {0:?} (expected \"4\")")]
    Version(String),
}

impl WebhookPayload {
    /// Parses a webhook body, naming the JSON path of any mismatch.
    pub fn from_json(body: &[u8]) -> Result<Self, PayloadError> {
        // Tracking the path costs a fifth of the parse: only a body that fails is read again
        // with it, to name where.
        let payload: WebhookPayload = match serde_json::from_slice(body) {
            Ok(payload) => payload,
            Err(_) => {
                let de = &mut serde_json::Deserializer::from_slice(body);
                serde_path_to_error::deserialize(de).map_err(|e| PayloadError::Json {
                    path: e.path().to_string(),
                    source: e.into_inner(),
                })?
            }
        };
        if payload.version != "4" {
            return Err(PayloadError::Version(payload.version));
        }
        Ok(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_failing_path() {
        let err = WebhookPayload::from_json(
            br#"{"version":"4","status":"firing","alerts":[{"status":"boom"}]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("alerts[0].status"), "{err}");
    }

    #[test]
    fn refuses_other_versions() {
        let err = WebhookPayload::from_json(br#"{"version":"3","status":"firing","alerts":[]}"#)
            .unwrap_err();
        assert!(matches!(err, PayloadError::Version(v) if v == "3"));
    }
}
