//! Test support: fake servers that speak real HTTP APIs, so tests drive the real clients.
//!
//! [`FakeKube`] serves a scenario folder (`cluster/*.yaml`, `logs/`) through the Kubernetes REST
//! paths the kube-rs client uses: lists, gets, field and label selectors, pagination and container
//! logs (`previous` included), with the apiserver's `Status` bodies for errors. It records every
//! request so tests can prove a client only read.
//!
//! [`FakeGithub`] is a stateful GitHub REST API (pull requests with drafts, reviewers, closing
//! and merging; issues; labels; GitHub App installations minting short-lived tokens from a
//! verified JWT) for the octocrab client, with injectable faults.
//!
//! [`GitHttpServer`] serves bare repositories over git's smart HTTP protocol (the real
//! `git http-backend`) behind basic auth, so git2's credential path is exercised for real.
//!
//! [`FakeOpenAi`] (`fake_openai.rs`) is a scripted OpenAI-compatible chat completions server
//! (patches, raw content, 429 with `Retry-After`, 5xx, hangs) that records every request.
//!
//! [`GithubWebhook`] sends signed GitHub webhook deliveries (`ping`, `pull_request` as the fake
//! GitHub's pull requests stand, `push`), with good, wrong or missing signatures.
//!
//! [`fresh_postgres_database`] makes an empty database per test on the PostgreSQL server the test
//! script started.
//!
//! [`scenario_dirs`] lists the scenario folders every conformance-style test runs over.
//!
//! Layout: `scenarios.rs` (where the scenario folders are), `fake_github.rs` (the fake GitHub;
//! `fake_github/` its routes, JSON shapes and App auth), `git_http.rs` (the smart HTTP git
//! server), `github_webhook.rs` (signed webhook deliveries), `fake_kube.rs` (the server handle),
//! `fake_kube/world.rs` (the scenario's objects and logs), `fake_kube/api.rs` (the routes),
//! `fake_kube/selector.rs` (field and label selectors).

mod fake_github;
mod fake_kube;
mod fake_openai;
mod git_http;
mod github_webhook;
mod names;
mod postgres;
mod scenarios;

pub use fake_github::{
    FakeGithub, FakeIssue, FakePull, Fault, GithubRequest, TEST_APP_PRIVATE_KEY,
    TEST_APP_PUBLIC_KEY, UNKNOWN_PRIVATE_KEY,
};

pub use fake_kube::{FakeKube, RecordedRequest};
pub use fake_openai::{FakeOpenAi, OpenAiRequest, Reply};
pub use git_http::GitHttpServer;
pub use github_webhook::{Delivery, GithubWebhook, Signature, sign};
pub use names::pod_suffix;
pub use postgres::{POSTGRES_ENV, fresh_postgres_database};
pub use scenarios::{
    LONG_TAIL_SCENARIO, copy_dir, git_repo_from, long_tail_patch, scenario_dirs, try_copy_dir,
    try_git_repo_from,
};

use std::path::PathBuf;

/// Why a fake server could not start.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    /// A scenario file or folder could not be read or copied, or the socket could not be bound.
    #[error("cannot use {path}: {source}")]
    Io {
        /// The file, folder or address.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A scenario file is not valid YAML.
    #[error("{path}: invalid YAML: {source}")]
    Yaml {
        /// The file.
        path: PathBuf,
        /// The parser's complaint.
        #[source]
        source: autofix_core::yaml::YamlError,
    },
    /// A request to a server under test failed (connection, reading the answer).
    #[error("request to {url} failed: {source}")]
    Http {
        /// The URL.
        url: String,
        /// The client's error.
        #[source]
        source: reqwest::Error,
    },
    /// A git repository could not be made.
    #[error("git: {0}")]
    Git(#[from] git2::Error),
}

/// A listener on loopback `port` (0: a free one) and its base URL (`http://127.0.0.1:PORT`), for
/// a fake server that may need its own URL before it starts serving.
async fn bind_loopback(port: u16) -> Result<(tokio::net::TcpListener, String), TestkitError> {
    let addr = format!("127.0.0.1:{port}");
    let io_error = |source| TestkitError::Io {
        path: addr.clone().into(),
        source,
    };
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(io_error)?;
    let url = format!("http://{}", listener.local_addr().map_err(io_error)?);
    Ok((listener, url))
}

/// Serves `app` on `listener` in the background until the handle is aborted. Serving only ends
/// with an accept error; the test then sees refused connections.
fn spawn_server(
    listener: tokio::net::TcpListener,
    app: axum::Router,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    })
}
