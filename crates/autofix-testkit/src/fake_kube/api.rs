//! The routes: Kubernetes REST paths over the world, with the apiserver's `Status` errors.

use super::dry_run::{self, DryRunScript};
use super::selector::{FieldSelector, LabelSelector};
use super::world::{Resource, World, find_resource, str_at};
use super::{RecordedRequest, RequestLog};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError};

/// Query parameters of a request.
pub(super) type Params = BTreeMap<String, String>;

/// Largest request body the fake accepts (and records), in bytes: 4 MiB, above the apiserver's
/// 3 MiB object limit.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// What the routes serve: the frozen world and the scripted dry-run answers.
#[derive(Debug, Clone)]
struct Served {
    world: Arc<World>,
    dry_runs: DryRunScript,
}

/// The fake apiserver's router; every request is recorded before it is answered.
pub fn app(world: Arc<World>, dry_runs: DryRunScript, requests: RequestLog) -> Router {
    Router::new()
        .route("/api/{version}/{*rest}", any(core_group))
        .route("/apis/{group}/{version}/{*rest}", any(named_group))
        .fallback(|| async { path_not_found() })
        .with_state(Served { world, dry_runs })
        .layer(middleware::from_fn_with_state(requests, record))
}

async fn record(State(requests): State<RequestLog>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return status(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            "request body unreadable or too large".to_string(),
        );
    };
    let header_text = |name| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let entry = RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        content_type: header_text(header::CONTENT_TYPE),
        authorization: header_text(header::AUTHORIZATION),
        body: body.to_vec(),
    };
    requests
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(entry);
    next.run(Request::from_parts(parts, Body::from(body))).await
}

async fn core_group(
    State(served): State<Served>,
    method: Method,
    Path((version, rest)): Path<(String, String)>,
    Query(params): Query<Params>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    route(&served, &method, &version, &rest, &params, &headers, &body)
}

async fn named_group(
    State(served): State<Served>,
    method: Method,
    Path((group, version, rest)): Path<(String, String, String)>,
    Query(params): Query<Params>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let api_version = format!("{group}/{version}");
    route(
        &served,
        &method,
        &api_version,
        &rest,
        &params,
        &headers,
        &body,
    )
}

/// PATCH goes to the dry-run answers; everything else to the read-only world.
fn route(
    served: &Served,
    method: &Method,
    api_version: &str,
    rest: &str,
    params: &Params,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    if method == Method::PATCH {
        let script = served
            .dry_runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        return dry_run::patch(&script, api_version, rest, params, headers, body);
    }
    serve(&served.world, method, api_version, rest, params)
}

fn serve(
    world: &World,
    method: &Method,
    api_version: &str,
    rest: &str,
    params: &Params,
) -> Response {
    if method != Method::GET {
        return status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("the fake Kubernetes API only serves reads; {method} is not allowed"),
        );
    }
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        [plural] => list(world, api_version, plural, None, params),
        ["namespaces", ns, plural] => list(world, api_version, plural, Some(ns), params),
        ["namespaces", ns, "pods", pod, "log"] if api_version == "v1" => {
            log(world, ns, pod, params)
        }
        ["namespaces", ns, plural, name] => get(world, api_version, plural, Some(ns), name),
        [plural, name] => get(world, api_version, plural, None, name),
        _ => path_not_found(),
    }
}

/// The resource a path names, if the fake knows it in that scope.
pub(super) fn resource_in_scope(
    api_version: &str,
    plural: &str,
    namespaced: bool,
) -> Option<Resource> {
    find_resource(api_version, plural).filter(|r| r.namespaced || !namespaced)
}

fn list(
    world: &World,
    api_version: &str,
    plural: &str,
    namespace: Option<&str>,
    params: &Params,
) -> Response {
    let Some(resource) = resource_in_scope(api_version, plural, namespace.is_some()) else {
        return path_not_found();
    };
    let selectors = params
        .get("fieldSelector")
        .map(|t| FieldSelector::parse(resource.kind, t))
        .transpose()
        .and_then(|f| {
            let l = params.get("labelSelector").map(|t| LabelSelector::parse(t));
            Ok((f.unwrap_or_default(), l.transpose()?.unwrap_or_default()))
        });
    let (fields, labels) = match selectors {
        Ok(s) => s,
        Err(message) => return status(StatusCode::BAD_REQUEST, "BadRequest", message),
    };
    let items: Vec<Value> = world
        .objects(resource, namespace)
        .filter(|o| fields.matches(o) && labels.matches(o))
        .map(|o| {
            // Items of a typed list carry no kind/apiVersion: the list does.
            let mut item = o.clone();
            if let Some(map) = item.as_object_mut() {
                map.remove("kind");
                map.remove("apiVersion");
            }
            item
        })
        .collect();
    let start = match params.get("continue").map(|c| c.parse::<usize>()) {
        None => 0,
        Some(Ok(offset)) if offset <= items.len() => offset,
        Some(_) => {
            return status(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "invalid continue token".to_string(),
            );
        }
    };
    let limit = params
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let end = limit.map_or(items.len(), |l| (start + l).min(items.len()));
    let mut metadata = json!({"resourceVersion": "1"});
    if end < items.len() {
        metadata["continue"] = json!(end.to_string());
        metadata["remainingItemCount"] = json!(items.len() - end);
    }
    axum::Json(json!({
        "apiVersion": resource.api_version,
        "kind": format!("{}List", resource.kind),
        "metadata": metadata,
        "items": &items[start..end],
    }))
    .into_response()
}

fn get(
    world: &World,
    api_version: &str,
    plural: &str,
    namespace: Option<&str>,
    name: &str,
) -> Response {
    let Some(resource) = resource_in_scope(api_version, plural, namespace.is_some()) else {
        return path_not_found();
    };
    match world.object(resource, namespace, name) {
        Some(object) => axum::Json(object.clone()).into_response(),
        None => object_not_found(plural, name),
    }
}

/// `GET .../pods/{pod}/log`: `container`, `previous`, `tailLines`, `limitBytes` as upstream.
fn log(world: &World, namespace: &str, pod_name: &str, params: &Params) -> Response {
    let Some(pod) =
        find_resource("v1", "pods").and_then(|r| world.object(r, Some(namespace), pod_name))
    else {
        return object_not_found("pods", pod_name);
    };
    let containers: Vec<&str> = ["/spec/initContainers", "/spec/containers"]
        .iter()
        .filter_map(|p| pod.pointer(p).and_then(Value::as_array))
        .flatten()
        .map(|c| str_at(c, "/name"))
        .collect();
    let bad_request = |message: String| status(StatusCode::BAD_REQUEST, "BadRequest", message);
    let container = match (params.get("container"), containers.as_slice()) {
        (Some(c), _) => c.as_str(),
        (None, [only]) => only,
        (None, _) => {
            return bad_request(format!(
                "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                containers.join(" ")
            ));
        }
    };
    if !containers.contains(&container) {
        return bad_request(format!(
            "container {container} is not valid for pod {pod_name}"
        ));
    }
    let previous = params.get("previous").is_some_and(|p| p == "true");
    let Some(text) = world.log(namespace, pod_name, container, previous) else {
        return bad_request(if previous {
            format!("previous terminated container \"{container}\" in pod \"{pod_name}\" not found")
        } else {
            format!(
                "container \"{container}\" in pod \"{pod_name}\" is waiting to start: ContainerCreating"
            )
        });
    };
    let mut body = text.into_bytes();
    if let Some(tail) = params
        .get("tailLines")
        .and_then(|t| t.parse::<usize>().ok())
    {
        body = tail_lines(&body, tail).to_vec();
    }
    if let Some(limit) = params
        .get("limitBytes")
        .and_then(|l| l.parse::<usize>().ok())
    {
        // The apiserver cuts at a byte count, even inside a line or a UTF-8 character.
        body.truncate(limit);
    }
    ([(header::CONTENT_TYPE, "text/plain")], body).into_response()
}

/// The last `n` lines of a log (a final line without newline counts).
fn tail_lines(body: &[u8], n: usize) -> &[u8] {
    let content = body.strip_suffix(b"\n").unwrap_or(body);
    let start = content
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, b)| **b == b'\n')
        .nth(n.saturating_sub(1))
        .map_or(0, |(i, _)| i + 1);
    if n == 0 { &[] } else { &body[start..] }
}

/// A `Status` failure body, as the apiserver sends with every error.
pub(super) fn status(code: StatusCode, reason: &str, message: String) -> Response {
    (code, axum::Json(status_body(code, reason, message))).into_response()
}

pub(super) fn status_body(code: StatusCode, reason: &str, message: String) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code.as_u16(),
    })
}

fn object_not_found(plural: &str, name: &str) -> Response {
    let code = StatusCode::NOT_FOUND;
    let mut body = status_body(code, "NotFound", format!("{plural} \"{name}\" not found"));
    body["details"] = json!({"name": name, "kind": plural});
    (code, axum::Json(body)).into_response()
}

pub(super) fn path_not_found() -> Response {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        "the server could not find the requested resource".to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::tail_lines;

    #[test]
    fn tails_lines_like_kubectl() {
        assert_eq!(tail_lines(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(tail_lines(b"a\nb\nc", 2), b"b\nc");
        assert_eq!(tail_lines(b"a\nb\n", 5), b"a\nb\n");
        assert_eq!(tail_lines(b"a\n", 0), b"");
    }
}
