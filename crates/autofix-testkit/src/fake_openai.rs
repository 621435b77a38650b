//! A scripted fake OpenAI-compatible server: real HTTP, `POST .../chat/completions` (the
//! OpenAI path `/v1/chat/completions` and Azure's `/openai/deployments/D/chat/completions`).
//!
//! Each request takes the next [`Reply`] of the script (a patch, raw content, an error status
//! with `Retry-After`, or a hang); an empty script answers the default reply (500 unless set).
//! Every request is recorded (path, query, headers, JSON body) so tests can check what the
//! client sent: the schema, the prompt, the model.

use crate::TestkitError;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::task::JoinHandle;

/// One scripted answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A `chat.completion` whose message content is this JSON (the patch), with `usage`.
    Patch(Value),
    /// A `chat.completion` whose message content is this raw text (invalid JSON, a reply
    /// violating the schema...).
    Content(String),
    /// An error status, with `Retry-After: N` (seconds) when set, and this body.
    Status {
        /// HTTP status code, e.g. 429 or 500.
        status: u16,
        /// `Retry-After` seconds.
        retry_after: Option<u64>,
        /// The response body (an OpenAI error object: see [`Reply::error`]).
        body: String,
    },
    /// No answer for this long (then a 504), so the client's timeout fires.
    Hang(Duration),
}

impl Reply {
    /// An error status with an OpenAI-shaped error body.
    pub fn error(status: u16, retry_after: Option<u64>, message: &str) -> Reply {
        let kind = if status == 429 {
            "rate_limit_error"
        } else {
            "server_error"
        };
        Reply::Status {
            status,
            retry_after,
            body: json!({"error": {"message": message, "type": kind, "param": null, "code": null}})
                .to_string(),
        }
    }
}

/// One request received.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenAiRequest {
    /// The path, e.g. `/v1/chat/completions`.
    pub path: String,
    /// The query string, when there is one (Azure's `api-version=...`).
    pub query: Option<String>,
    /// Headers, names lowercase.
    pub headers: BTreeMap<String, String>,
    /// The JSON body (`Value::Null` when it was not JSON).
    pub body: Value,
}

#[derive(Debug)]
struct World {
    script: VecDeque<Reply>,
    default: Reply,
    requests: Vec<OpenAiRequest>,
}

type Shared = Arc<Mutex<World>>;

/// The fake server on `127.0.0.1`; stops when dropped.
#[derive(Debug)]
pub struct FakeOpenAi {
    url: String,
    world: Shared,
    server: JoinHandle<()>,
}

impl FakeOpenAi {
    /// Starts on a free port with an empty script.
    pub async fn start() -> Result<FakeOpenAi, TestkitError> {
        let world = Arc::new(Mutex::new(World {
            script: VecDeque::new(),
            default: Reply::error(500, None, "the fake's script is empty"),
            requests: Vec::new(),
        }));
        let (listener, url) = crate::bind_loopback(0).await?;
        let app = app(world.clone());
        let server = crate::spawn_server(listener, app);
        Ok(FakeOpenAi { url, world, server })
    }

    /// The OpenAI-style base URL, ending in `/v1`.
    pub fn url(&self) -> String {
        format!("{}/v1", self.url)
    }

    /// The server root (an Azure resource endpoint), without `/v1`.
    pub fn root(&self) -> &str {
        &self.url
    }

    /// Appends replies to the script, consumed one per request in order.
    pub fn script(&self, replies: Vec<Reply>) {
        self.lock().script.extend(replies);
    }

    /// The reply given once the script is empty (default: a 500).
    pub fn set_default(&self, reply: Reply) {
        self.lock().default = reply;
    }

    /// Scripted replies not yet consumed.
    pub fn remaining(&self) -> usize {
        self.lock().script.len()
    }

    /// The JSON bodies of every request so far, in order.
    pub fn requests(&self) -> Vec<Value> {
        self.lock()
            .requests
            .iter()
            .map(|r| r.body.clone())
            .collect()
    }

    /// Every request so far with its path, query and headers.
    pub fn recorded(&self) -> Vec<OpenAiRequest> {
        self.lock().requests.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn app(world: Shared) -> Router {
    Router::new().fallback(answer).with_state(world)
}

async fn answer(
    State(world): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method != Method::POST || !uri.path().ends_with("/chat/completions") {
        return (StatusCode::NOT_FOUND, "not a chat completions route").into_response();
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (number, reply) = {
        let mut world = world.lock().unwrap_or_else(PoisonError::into_inner);
        world.requests.push(OpenAiRequest {
            path: uri.path().to_string(),
            query: uri.query().map(str::to_string),
            headers: headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: body.clone(),
        });
        let default = world.default.clone();
        (
            world.requests.len(),
            world.script.pop_front().unwrap_or(default),
        )
    };
    match reply {
        Reply::Patch(patch) => completion(number, &body, patch.to_string()),
        Reply::Content(text) => completion(number, &body, text),
        Reply::Status {
            status,
            retry_after,
            body,
        } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response =
                (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
            if let Some(secs) = retry_after
                && let Ok(value) = secs.to_string().parse()
            {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        Reply::Hang(duration) => {
            tokio::time::sleep(duration).await;
            (StatusCode::GATEWAY_TIMEOUT, "hung").into_response()
        }
    }
}

/// A `chat.completion` in the shape OpenAI answers, with token counts estimated as chars / 4.
fn completion(number: usize, request: &Value, content: String) -> Response {
    let prompt_tokens = request["messages"].to_string().len().div_ceil(4);
    let completion_tokens = content.len().div_ceil(4);
    axum::Json(json!({
        "id": format!("chatcmpl-fake-{number}"),
        "object": "chat.completion",
        "created": 1_764_000_000,
        "model": request["model"].as_str().unwrap_or("fake-model"),
        "system_fingerprint": "fp_fake",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": null},
            "logprobs": null,
            "finish_reason": "stop"
        }],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens
        }
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn post(client: &reqwest::Client, url: &str, body: &Value) -> reqwest::Response {
        client
            .post(url)
            .header("content-type", "application/json")
            .header("authorization", "Bearer sk-x")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn replies_follow_the_script_then_the_default_and_requests_are_recorded() {
        let fake = FakeOpenAi::start().await.unwrap();
        fake.script(vec![
            Reply::error(429, Some(7), "slow down"),
            Reply::Patch(json!({"category": "unknown"})),
            Reply::Content("not json".into()),
        ]);
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::new();
        let url = format!("{}/chat/completions", fake.url());
        let body = json!({"model": "m1", "messages": [{"role": "user", "content": "hi"}]});

        let limited = post(&client, &url, &body).await;
        assert_eq!(limited.status(), 429);
        assert_eq!(limited.headers()["retry-after"], "7");
        let error: Value = serde_json::from_str(&limited.text().await.unwrap()).unwrap();
        assert_eq!(error["error"]["type"], "rate_limit_error");

        let ok: Value =
            serde_json::from_str(&post(&client, &url, &body).await.text().await.unwrap()).unwrap();
        assert_eq!(ok["object"], "chat.completion");
        assert_eq!(ok["model"], "m1");
        assert_eq!(ok["choices"][0]["message"]["role"], "assistant");
        assert_eq!(
            ok["choices"][0]["message"]["content"],
            json!({"category": "unknown"}).to_string()
        );
        assert_eq!(ok["choices"][0]["finish_reason"], "stop");
        let usage = &ok["usage"];
        assert_eq!(
            usage["total_tokens"].as_u64(),
            Some(
                usage["prompt_tokens"].as_u64().unwrap()
                    + usage["completion_tokens"].as_u64().unwrap()
            )
        );

        let raw: Value =
            serde_json::from_str(&post(&client, &url, &body).await.text().await.unwrap()).unwrap();
        assert_eq!(raw["choices"][0]["message"]["content"], "not json");
        assert_eq!(
            post(&client, &url, &body).await.status(),
            500,
            "the script is empty"
        );
        assert_eq!(fake.remaining(), 0);

        let other = client
            .get(format!("{}/models", fake.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(other.status(), 404);

        let recorded = fake.recorded();
        assert_eq!(recorded.len(), 4, "only chat completions are recorded");
        assert_eq!(recorded[0].path, "/v1/chat/completions");
        assert_eq!(recorded[0].headers["authorization"], "Bearer sk-x");
        assert_eq!(fake.requests()[3], body);
    }

    #[tokio::test]
    async fn a_hang_outlasts_the_client_timeout() {
        let fake = FakeOpenAi::start().await.unwrap();
        fake.script(vec![Reply::Hang(Duration::from_secs(300))]);
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(200))
            .build()
            .unwrap();
        let err = client
            .post(format!("{}/chat/completions", fake.url()))
            .body("{}")
            .send()
            .await
            .unwrap_err();
        assert!(err.is_timeout());
    }
}
