//! Sends GitHub webhook deliveries as GitHub does: `X-GitHub-Event`, `X-GitHub-Delivery` and
//! `X-Hub-Signature-256` (HMAC-SHA256 of the raw body with the shared secret), with the real
//! payload shapes of `ping`, `pull_request` (see [`crate::FakeGithub::pull_request_event`]) and
//! `push`.

use crate::TestkitError;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::sync::atomic::{AtomicU64, Ordering};

/// Numbers delivery ids, unique within the test process.
static NEXT_DELIVERY: AtomicU64 = AtomicU64::new(1);

/// How a delivery is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signature {
    /// With the hook's secret, as GitHub does.
    Valid,
    /// With another secret.
    Wrong,
    /// No `X-Hub-Signature-256` header.
    Missing,
}

/// One webhook delivery: event, id and JSON body. Sending it twice is a GitHub redelivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// `X-GitHub-Event`.
    pub event: String,
    /// `X-GitHub-Delivery` (a fresh GUID-like id per delivery).
    pub id: String,
    /// The payload.
    pub body: Value,
}

impl Delivery {
    /// A delivery of `event` with a fresh id.
    pub fn new(event: &str, body: Value) -> Delivery {
        let n = NEXT_DELIVERY.fetch_add(1, Ordering::Relaxed);
        Delivery {
            event: event.to_string(),
            id: format!("{:08x}-0000-4000-8000-{:012x}", std::process::id(), n),
            body,
        }
    }

    /// GitHub's `ping`, sent when a hook is created.
    pub fn ping() -> Delivery {
        Delivery::new(
            "ping",
            json!({"zen": "Keep it logically awesome.", "hook_id": 1, "hook": {"type": "Repository", "events": ["pull_request", "push"]}}),
        )
    }

    /// A `pull_request` delivery with this payload (e.g. from
    /// [`crate::FakeGithub::pull_request_event`]).
    pub fn pull_request(payload: Value) -> Delivery {
        Delivery::new("pull_request", payload)
    }

    /// A `push` of `(sha, message)` commits to `git_ref` (e.g. `refs/heads/main`) of
    /// `owner/repo`.
    pub fn push(owner: &str, repo: &str, git_ref: &str, commits: &[(&str, &str)]) -> Delivery {
        let commits: Vec<Value> = commits
            .iter()
            .map(|(id, message)| {
                json!({
                    "id": id, "tree_id": "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
                    "distinct": true, "message": message, "timestamp": "2026-01-01T00:00:00Z",
                    "url": format!("https://github.com/{owner}/{repo}/commit/{id}"),
                    "author": {"name": "Jane", "email": "jane@example.com", "username": "jane"},
                    "committer": {"name": "GitHub", "email": "noreply@github.com", "username": "web-flow"},
                    "added": [], "removed": [], "modified": [],
                })
            })
            .collect();
        let after = commits
            .last()
            .and_then(|c| c["id"].as_str())
            .unwrap_or("0000000000000000000000000000000000000000")
            .to_string();
        Delivery::new(
            "push",
            json!({
                "ref": git_ref, "before": "0000000000000000000000000000000000000000",
                "after": after, "created": false, "deleted": false, "forced": false,
                "base_ref": null, "compare": format!("https://github.com/{owner}/{repo}/compare"),
                "head_commit": commits.last(), "commits": commits,
                "pusher": {"name": "jane", "email": "jane@example.com"},
                "repository": {"name": repo, "full_name": format!("{owner}/{repo}"), "default_branch": "main"},
                "sender": {"login": "jane", "type": "User"},
            }),
        )
    }
}

/// `sha256=<hex>` of the HMAC-SHA256 of `body` under `secret`, as in `X-Hub-Signature-256`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        // HMAC takes keys of any length: this never happens.
        return String::new();
    };
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// A GitHub repository webhook pointing at `url` with a shared secret.
#[derive(Debug, Clone)]
pub struct GithubWebhook {
    url: String,
    secret: String,
    client: reqwest::Client,
}

impl GithubWebhook {
    /// A hook delivering to `url` (e.g. `http://127.0.0.1:8080/webhooks/github`).
    pub fn new(url: impl Into<String>, secret: impl Into<String>) -> GithubWebhook {
        GithubWebhook {
            url: url.into(),
            secret: secret.into(),
            client: reqwest::Client::new(),
        }
    }

    /// Sends a delivery as GitHub does (`application/json`), signed as asked; returns the
    /// status and body of the answer.
    pub async fn send(
        &self,
        delivery: &Delivery,
        signature: Signature,
    ) -> Result<(u16, Value), TestkitError> {
        let body = delivery.body.to_string().into_bytes();
        let mut request = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("user-agent", "GitHub-Hookshot/autofix-testkit")
            .header("x-github-event", &delivery.event)
            .header("x-github-delivery", &delivery.id)
            .header("x-github-hook-id", "1");
        match signature {
            Signature::Valid => {
                request = request.header("x-hub-signature-256", sign(&self.secret, &body))
            }
            Signature::Wrong => {
                request = request.header("x-hub-signature-256", sign("not-the-secret", &body));
            }
            Signature::Missing => {}
        }
        let error = |source| TestkitError::Http {
            url: self.url.clone(),
            source,
        };
        let response = request.body(body).send().await.map_err(error)?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(error)?;
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok((status, value))
    }
}
