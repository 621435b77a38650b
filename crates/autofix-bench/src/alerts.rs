//! Alertmanager version-4 webhook bodies, as Alertmanager writes them.

use serde_json::{Value, json};

/// Characters of the generated parts of pod names (what the Kubernetes name generator uses).
const SAFE: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// One firing alert.
#[derive(Debug, Clone)]
pub struct FiringAlert {
    /// `alertname`.
    pub name: String,
    /// Its labels other than `alertname`.
    pub labels: Vec<(String, String)>,
    /// `startsAt`, RFC 3339.
    pub starts_at: String,
    /// Alertmanager's fingerprint (16 hex digits).
    pub fingerprint: String,
}

impl FiringAlert {
    /// The alert as it appears in a body's `alerts`.
    pub fn to_json(&self) -> Value {
        let mut labels = serde_json::Map::new();
        labels.insert("alertname".into(), Value::String(self.name.clone()));
        for (k, v) in &self.labels {
            labels.insert(k.clone(), Value::String(v.clone()));
        }
        json!({
            "status": "firing",
            "labels": labels,
            "annotations": {"summary": "Pod is crash looping."},
            "startsAt": self.starts_at,
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.bench.invalid/graph",
            "fingerprint": self.fingerprint,
        })
    }
}

/// A webhook body carrying `alerts`, grouped by alertname and namespace.
pub fn body(alerts: &[FiringAlert]) -> Vec<u8> {
    let first = alerts.first();
    let group = |label: &str| {
        first
            .and_then(|a| {
                if label == "alertname" {
                    return Some(a.name.clone());
                }
                a.labels
                    .iter()
                    .find(|(k, _)| k == label)
                    .map(|(_, v)| v.clone())
            })
            .unwrap_or_default()
    };
    let (alertname, namespace) = (group("alertname"), group("namespace"));
    let payload = json!({
        "receiver": "kube-autofix",
        "status": "firing",
        "alerts": alerts.iter().map(FiringAlert::to_json).collect::<Vec<_>>(),
        "groupLabels": {"alertname": alertname, "namespace": namespace},
        "commonLabels": {"alertname": alertname, "namespace": namespace},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.bench.invalid",
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"{alertname}\", namespace=\"{namespace}\"}}"),
        "truncatedAlerts": 0,
    });
    serde_json::to_vec(&payload).unwrap_or_default()
}

/// The `id`-th distinct crash-looping alert of the intake benchmark: one of `workloads`
/// Deployments `bench-<w>` in namespace `bench`, one of five pods each, its own fingerprint.
pub fn crash_looping(id: u64, workloads: u64) -> FiringAlert {
    let workload = id % workloads.max(1);
    let pod = format!(
        "bench-{workload}-{}-{}",
        generated(workload, 9),
        generated(id % 5, 5)
    );
    FiringAlert {
        name: "KubePodCrashLooping".into(),
        labels: vec![
            ("cluster".into(), "bench".into()),
            ("namespace".into(), "bench".into()),
            ("pod".into(), pod),
            ("container".into(), "app".into()),
            ("reason".into(), "CrashLoopBackOff".into()),
            ("severity".into(), "warning".into()),
            ("job".into(), "kube-state-metrics".into()),
        ],
        starts_at: "2026-11-28T06:00:00.000Z".into(),
        fingerprint: format!("{id:016x}"),
    }
}

/// `len` characters of a generated name part, derived from `seed`.
fn generated(mut seed: u64, len: usize) -> String {
    (0..len)
        .map(|_| {
            let c = SAFE[(seed % SAFE.len() as u64) as usize] as char;
            seed = seed / SAFE.len() as u64 + 7;
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use autofix_core::alert::WebhookPayload;
    use autofix_core::workload_hint;

    #[test]
    fn generated_bodies_parse_and_name_a_deployment() {
        let alerts: Vec<FiringAlert> = (0..3).map(|i| crash_looping(i, 2)).collect();
        let payload = WebhookPayload::from_json(&body(&alerts)).unwrap();
        assert_eq!(payload.alerts.len(), 3);
        let hint = workload_hint(&payload.alerts[0].labels).unwrap();
        assert_eq!(hint.name, "bench-0");
        assert_eq!(hint.kind_str(), "Deployment");
        let hint = workload_hint(&payload.alerts[1].labels).unwrap();
        assert_eq!(hint.name, "bench-1");
    }
}
