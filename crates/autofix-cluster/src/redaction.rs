//! Redaction of cluster objects: done once, while evidence is built.

use autofix_core::redact::{REDACTED, is_secret_name, redact};
use serde_json::Value;

/// Annotations that may embed whole manifests (and so secrets) and say nothing diagnostic.
const DROPPED_ANNOTATIONS: [&str; 1] = ["kubectl.kubernetes.io/last-applied-configuration"];

/// Redacts an object in place: env values that look secret, credentials in any string, and
/// annotations that embed manifests. Secret `data` values are removed (key names stay).
pub fn redact_object(object: &mut Value) {
    if object.get("kind").and_then(Value::as_str) == Some("Secret") {
        for field in ["data", "stringData", "binaryData"] {
            if let Some(Value::Object(map)) = object.get_mut(field) {
                for value in map.values_mut() {
                    *value = Value::String(String::new());
                }
            }
        }
    }
    if let Some(Value::Object(annotations)) = object.pointer_mut("/metadata/annotations") {
        for key in DROPPED_ANNOTATIONS {
            annotations.remove(key);
        }
    }
    redact_value(object);
}

fn redact_value(value: &mut Value) {
    match value {
        Value::Object(map) => {
            // An env entry: {name: SECRET_THING, value: "..."}.
            let secret_env = map
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(is_secret_name)
                && map.get("value").is_some_and(Value::is_string);
            if secret_env && let Some(v) = map.get_mut("value") {
                *v = Value::String(REDACTED.to_string());
            }
            map.values_mut().for_each(redact_value);
        }
        Value::Array(items) => items.iter_mut().for_each(redact_value),
        Value::String(text) => {
            let clean = redact(text);
            if clean != *text {
                *text = clean;
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn redacts_env_and_urls_and_secret_data() {
        let mut pod = json!({"kind": "Pod", "spec": {"containers": [{"env": [
            {"name": "DB_PASSWORD", "value": "hunter2"},
            {"name": "REDIS_URL", "value": "redis://u:s3cr3t@redis:6379"},
            {"name": "LOG_LEVEL", "value": "info"}]}]}});
        redact_object(&mut pod);
        let text = pod.to_string();
        assert!(
            !text.contains("hunter2") && !text.contains("s3cr3t"),
            "{text}"
        );
        assert!(text.contains("\"info\""));
        let mut secret = json!({"kind": "Secret", "data": {"password": "aHVudGVyMg=="}});
        redact_object(&mut secret);
        assert_eq!(secret["data"]["password"], "");
    }
}
