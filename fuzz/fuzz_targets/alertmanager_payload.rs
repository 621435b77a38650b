//! Alertmanager webhook bodies, as `POST /webhook/alertmanager` receives them: parsing
//! ([`WebhookPayload::from_json`]), the incident built from them and the label-only workload
//! hint intake groups alerts by. Nothing may panic, and the hint must name a workload.
#![no_main]

use autofix_core::alert::{AlertStatus, WebhookPayload};
use autofix_core::incident::Incident;
use autofix_core::workload_hint;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let Ok(payload) = WebhookPayload::from_json(body) else {
        return;
    };
    for alert in &payload.alerts {
        let _ = alert.name();
        if let Some(hint) = workload_hint(&alert.labels) {
            // Intake keys incidents by `cluster/namespace/kind/name`: an empty part would merge
            // unrelated alerts into one incident.
            assert_eq!(Some(hint.namespace.as_str()), alert.label("namespace"));
            assert!(
                !hint.name.is_empty(),
                "empty workload name for {:?}",
                alert.labels
            );
            let _ = hint.to_string();
        }
    }
    let Ok(incident) = Incident::from_payload(&payload) else {
        return;
    };
    assert_eq!(incident.alerts.len(), payload.alerts.len());
    assert!(!incident.namespace.is_empty());
    let firing = incident.firing().count();
    assert_eq!(incident.is_firing(), firing > 0);
    // Firing alerts come first.
    assert!(
        incident.alerts[..firing]
            .iter()
            .all(|a| a.status == AlertStatus::Firing)
    );
    let subjects = incident.subjects();
    assert!(subjects.len() <= incident.alerts.len());
    for alert in &incident.alerts {
        assert!(incident.has_alert(alert.name()));
    }
});
