//! Server-side apply dry runs (`PATCH ...?dryRun=All`): echoed back as the apiserver would
//! answer, or refused as a test scripted. Nothing is ever written to the world.

use super::api::{Params, path_not_found, resource_in_scope, status, status_body};
use super::world::str_at;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The only field manager the fake answers dry runs for.
const FIELD_MANAGER: &str = "kube-autofix";

/// The content type of a server-side apply patch.
const APPLY_PATCH: &str = "application/apply-patch+yaml";

/// How the fake answers a dry run for one object.
#[derive(Debug, Default, Clone)]
pub struct Scripted {
    /// A failure `Status` (code and message) instead of the echoed object.
    pub failure: Option<(StatusCode, String)>,
    /// `Warning` headers sent with the answer, as their text.
    pub warnings: Vec<String>,
}

/// Scripted answers by `(kind, name)`; objects not in it are accepted without warnings.
pub type DryRunScript = Arc<Mutex<BTreeMap<(String, String), Scripted>>>;

/// The `reason` the apiserver gives with a status code.
fn reason(code: StatusCode) -> &'static str {
    match code.as_u16() {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        422 => "Invalid",
        429 => "TooManyRequests",
        500.. => "InternalError",
        _ => "",
    }
}

/// Answers a PATCH: only a server-side apply dry run by kube-autofix on a namespaced object.
pub fn patch(
    script: &BTreeMap<(String, String), Scripted>,
    api_version: &str,
    rest: &str,
    params: &Params,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    if params.get("dryRun").map(String::as_str) != Some("All") {
        return status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "the fake Kubernetes API never writes: PATCH is only answered with dryRun=All"
                .to_string(),
        );
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if content_type != Some(APPLY_PATCH) {
        return status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            format!(
                "the fake only answers server-side apply ({APPLY_PATCH}), not {content_type:?}"
            ),
        );
    }
    if params.get("fieldManager").map(String::as_str) != Some(FIELD_MANAGER) {
        return status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            format!("the fake only answers dry runs by field manager {FIELD_MANAGER}"),
        );
    }
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let ["namespaces", namespace, plural, name] = segments.as_slice() else {
        return path_not_found();
    };
    let Some(resource) = resource_in_scope(api_version, plural, true) else {
        return path_not_found();
    };
    let bad_request = |message: String| status(StatusCode::BAD_REQUEST, "BadRequest", message);
    // kube sends the apply patch as JSON, which is YAML.
    let mut object = match serde_json::from_slice::<Value>(body) {
        Ok(object @ Value::Object(_)) => object,
        _ => return bad_request("the apply patch is not a JSON object".to_string()),
    };
    let (kind, sent_version) = (str_at(&object, "/kind"), str_at(&object, "/apiVersion"));
    if (kind, sent_version) != (resource.kind, resource.api_version) {
        return bad_request(format!(
            "{sent_version} {kind} does not match the URL's {} {}",
            resource.api_version, resource.kind
        ));
    }
    let sent_name = str_at(&object, "/metadata/name");
    if sent_name != *name {
        return bad_request(format!(
            "the name of the object ({sent_name}) does not match the name on the URL ({name})"
        ));
    }
    let sent_namespace = str_at(&object, "/metadata/namespace");
    if !sent_namespace.is_empty() && sent_namespace != *namespace {
        return bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
                .to_string(),
        );
    }
    let scripted = script
        .get(&(resource.kind.to_string(), name.to_string()))
        .cloned()
        .unwrap_or_default();
    let mut response = match scripted.failure {
        Some((code, message)) => {
            (code, axum::Json(status_body(code, reason(code), message))).into_response()
        }
        None => {
            // What the apiserver adds to an applied object (the rest of defaulting is not faked).
            object["metadata"]["namespace"] = json!(namespace);
            object["metadata"]["resourceVersion"] = json!("2");
            object["metadata"]["managedFields"] = json!([{
                "manager": FIELD_MANAGER,
                "operation": "Apply",
                "apiVersion": resource.api_version,
                "fieldsType": "FieldsV1",
                "fieldsV1": {},
            }]);
            axum::Json(object).into_response()
        }
    };
    for warning in &scripted.warnings {
        // RFC 7234 form, as the apiserver sends it: code 299, no agent, quoted text.
        let escaped = warning.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(value) = HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    response
}
