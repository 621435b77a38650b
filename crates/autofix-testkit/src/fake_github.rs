//! A stateful fake GitHub REST API: repositories, pull requests, issues, labels, review requests
//! and GitHub App installations in memory, served over HTTP in GitHub's JSON shapes so the real
//! octocrab client can be pointed at it.
//!
//! Routes under `/repos/{owner}/{repo}`: `GET`/`POST /pulls` (`state` = `open`, `closed` or
//! `all`, `head=owner:branch` and `base` filters; a second open pull request for the same head
//! and base answers 422 "A pull request already exists"; `draft` is stored), `GET`/`PATCH
//! /pulls/{n}`, `POST /pulls/{n}/requested_reviewers` (201 with the pull request; 422 for a user
//! outside the collaborators, when [`FakeGithub::set_collaborators`] set them), `GET`/`POST
//! /issues` (`state` and `labels` filters; like GitHub, the list includes pull requests),
//! `GET`/`PATCH /issues/{n}`, `POST`/`PUT /issues/{n}/labels`. Tests close and merge pull requests
//! as a human would ([`FakeGithub::close_pull`], [`FakeGithub::merge_pull`]).
//!
//! GitHub Apps: [`FakeGithub::add_app`] registers an app's public key and
//! [`FakeGithub::install_app`] installs it on a repository. `GET /repos/{owner}/{repo}/installation`
//! and `POST /app/installations/{id}/access_tokens` (201 `{token, expires_at, ...}`) require
//! `Authorization: Bearer <JWT>` whose RS256 signature verifies against the app's key and whose
//! `iss` is the app ID. Repository routes then accept the configured token or an unexpired
//! installation token of an installation covering the repository; each request records the
//! credential it carried.
//!
//! Faults can be injected per method and path, either instead of handling the request or after
//! handling it (the change happens, the client sees the fault).
//!
//! Submodules: `routes` (what each request does), `json` (GitHub's shapes), `app` (app JWTs and
//! the test keys).

mod app;
mod json;
mod routes;

pub use app::{TEST_APP_PRIVATE_KEY, TEST_APP_PUBLIC_KEY, UNKNOWN_PRIVATE_KEY};

use crate::TestkitError;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};
use tokio::task::JoinHandle;

/// How long minted installation tokens live unless [`FakeGithub::set_token_lifetime`] says
/// otherwise: one hour, like GitHub's.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60 * 60);

/// One request the fake received.
#[derive(Debug, Clone, PartialEq)]
pub struct GithubRequest {
    /// HTTP method (`GET`, `POST`...).
    pub method: String,
    /// Path, e.g. `/repos/acme/gitops/pulls`.
    pub path: String,
    /// Raw query string, if any (still percent-encoded).
    pub query: Option<String>,
    /// The JSON body, if any.
    pub body: Option<Value>,
    /// The credential of the `Authorization` header (after `Bearer ` or `token `), if any: a
    /// token or an app's JWT.
    pub credential: Option<String>,
    /// The answer's status code.
    pub status: u16,
}

/// An answer to give instead of (or after) handling matching requests.
#[derive(Debug, Clone)]
pub struct Fault {
    method: String,
    path: String,
    times: u32,
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
    after_handling: bool,
}

impl Fault {
    /// The next request with this method and exact path answers `status` (once by default).
    pub fn new(method: &str, path: &str, status: u16) -> Fault {
        Fault {
            method: method.to_ascii_uppercase(),
            path: path.to_string(),
            times: 1,
            status,
            headers: Vec::new(),
            body: json!({
                "message": "Injected fault",
                "documentation_url": "https://docs.github.com/rest",
            }),
            after_handling: false,
        }
    }

    /// GitHub's secondary rate limit answer: 403 with `Retry-After: <seconds>`.
    pub fn secondary_rate_limit(method: &str, path: &str, retry_after_secs: u64) -> Fault {
        Fault::new(method, path, 403)
            .header("retry-after", &retry_after_secs.to_string())
            .body(json!({
                "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
            }))
    }

    /// Applies to the next `n` matching requests.
    pub fn times(mut self, n: u32) -> Fault {
        self.times = n;
        self
    }

    /// Adds a response header.
    pub fn header(mut self, name: &str, value: &str) -> Fault {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Replaces the JSON body.
    pub fn body(mut self, body: Value) -> Fault {
        self.body = body;
        self
    }

    /// Handles the request first (its change is kept), then answers with the fault: a lost
    /// response.
    pub fn after_handling(mut self) -> Fault {
        self.after_handling = true;
        self
    }
}

/// A pull request as the fake stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct FakePull {
    /// Number, shared with issues.
    pub number: u64,
    /// Head branch (without owner).
    pub head: String,
    /// Base branch.
    pub base: String,
    /// Title.
    pub title: String,
    /// Body.
    pub body: Option<String>,
    /// `open` or `closed`.
    pub state: String,
    /// Whether it was opened as a draft.
    pub draft: bool,
    /// Label names.
    pub labels: Vec<String>,
    /// Logins whose review was requested.
    pub requested_reviewers: Vec<String>,
    /// Team slugs whose review was requested.
    pub requested_teams: Vec<String>,
    /// When it was closed (RFC 3339), if it is.
    pub closed_at: Option<String>,
    /// When it was merged (RFC 3339), if it was.
    pub merged_at: Option<String>,
    /// How many times it was changed after creation (PATCH or labels).
    pub updates: u32,
}

/// An issue as the fake stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeIssue {
    /// Number, shared with pull requests.
    pub number: u64,
    /// Title.
    pub title: String,
    /// Body.
    pub body: Option<String>,
    /// `open` or `closed`.
    pub state: String,
    /// Label names.
    pub labels: Vec<String>,
    /// How many times it was changed after creation.
    pub updates: u32,
}

#[derive(Debug, Default)]
struct Repo {
    next_number: u64,
    pulls: BTreeMap<u64, FakePull>,
    issues: BTreeMap<u64, FakeIssue>,
    created: json::Times,
    /// Who may be asked for reviews; anyone when `None`.
    collaborators: Option<Vec<String>>,
}

/// A GitHub App's installation.
#[derive(Debug)]
struct Installation {
    app_id: u64,
    /// The `(owner, repo)` pairs it was granted.
    repos: Vec<(String, String)>,
}

impl Installation {
    fn covers(&self, owner: &str, repo: &str) -> bool {
        self.repos.iter().any(|(o, r)| o == owner && r == repo)
    }
}

/// An installation token the fake minted.
#[derive(Debug)]
struct IssuedToken {
    token: String,
    installation_id: u64,
    expires_at: SystemTime,
}

#[derive(Debug, Default)]
struct World {
    base_url: String,
    token: Option<String>,
    repos: BTreeMap<(String, String), Repo>,
    faults: Vec<Fault>,
    requests: Vec<GithubRequest>,
    /// Public keys (PEM) by app ID.
    apps: BTreeMap<u64, String>,
    installations: BTreeMap<u64, Installation>,
    tokens: Vec<IssuedToken>,
    token_lifetime: Duration,
}

/// Who a request authenticated as.
#[derive(Debug, Clone, Copy)]
enum Caller {
    /// No credentials are configured: anyone may call.
    Anyone,
    /// The configured token.
    Token,
    /// An installation token of this installation.
    Installation(u64),
    /// A GitHub App's JWT.
    App(u64),
}

type Shared = Arc<Mutex<World>>;

fn lock(world: &Shared) -> MutexGuard<'_, World> {
    world.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A GitHub REST API on `127.0.0.1` holding its world in memory; stops when dropped.
#[derive(Debug)]
pub struct FakeGithub {
    url: String,
    world: Shared,
    server: JoinHandle<()>,
}

impl FakeGithub {
    /// Starts an empty GitHub on a free port; add repositories with [`FakeGithub::add_repo`].
    /// When `token` is given or an app is added, requests must carry that token (`Authorization:
    /// Bearer` or `token`) or an installation token, or get 401.
    pub async fn start(token: Option<&str>) -> Result<FakeGithub, TestkitError> {
        let (listener, url) = crate::bind_loopback(0).await?;
        let world = Shared::new(Mutex::new(World {
            base_url: url.clone(),
            token: token.map(str::to_string),
            token_lifetime: DEFAULT_TOKEN_LIFETIME,
            ..World::default()
        }));
        let app = Router::new().fallback(serve).with_state(world.clone());
        let server = crate::spawn_server(listener, app);
        Ok(FakeGithub { url, world, server })
    }

    /// Base URL, e.g. `http://127.0.0.1:41234` (the API root, like `https://api.github.com`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Creates an empty repository.
    pub fn add_repo(&self, owner: &str, repo: &str) {
        lock(&self.world)
            .repos
            .entry((owner.to_string(), repo.to_string()))
            .or_default();
    }

    /// Registers a GitHub App by its ID and RSA public key (PEM, e.g. [`TEST_APP_PUBLIC_KEY`]);
    /// a key that does not parse authenticates nobody.
    pub fn add_app(&self, app_id: u64, public_key_pem: &str) {
        lock(&self.world)
            .apps
            .insert(app_id, public_key_pem.to_string());
    }

    /// Installs app `app_id` on a repository as installation `installation_id` (installing the
    /// same installation again adds the repository to it).
    pub fn install_app(&self, app_id: u64, owner: &str, repo: &str, installation_id: u64) {
        lock(&self.world)
            .installations
            .entry(installation_id)
            .or_insert(Installation {
                app_id,
                repos: Vec::new(),
            })
            .repos
            .push((owner.to_string(), repo.to_string()));
    }

    /// How long installation tokens minted from now on live (default one hour); a lifetime under
    /// a client's refresh margin makes it mint on every use.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        lock(&self.world).token_lifetime = lifetime;
    }

    /// Every installation token minted so far, in order.
    pub fn installation_tokens(&self) -> Vec<String> {
        lock(&self.world)
            .tokens
            .iter()
            .map(|t| t.token.clone())
            .collect()
    }

    /// Limits who may be asked for reviews on a repository to these logins (by default anyone).
    pub fn set_collaborators(&self, owner: &str, repo: &str, logins: &[&str]) {
        if let Some(r) = lock(&self.world)
            .repos
            .get_mut(&(owner.to_string(), repo.to_string()))
        {
            r.collaborators = Some(logins.iter().map(|l| l.to_string()).collect());
        }
    }

    /// Queues a fault; faults are matched in the order they were added.
    pub fn inject(&self, fault: Fault) {
        lock(&self.world).faults.push(fault);
    }

    /// Every pull request of a repository, by number.
    pub fn pulls(&self, owner: &str, repo: &str) -> Vec<FakePull> {
        lock(&self.world)
            .repos
            .get(&(owner.to_string(), repo.to_string()))
            .map(|r| r.pulls.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Every issue (not pull request) of a repository, by number.
    pub fn issues(&self, owner: &str, repo: &str) -> Vec<FakeIssue> {
        lock(&self.world)
            .repos
            .get(&(owner.to_string(), repo.to_string()))
            .map(|r| r.issues.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Closes a pull request or issue, as a human would.
    pub fn close(&self, owner: &str, repo: &str, number: u64) {
        let mut world = lock(&self.world);
        if let Some(r) = world.repos.get_mut(&(owner.to_string(), repo.to_string())) {
            if let Some(p) = r.pulls.get_mut(&number) {
                p.state = "closed".into();
                p.closed_at = Some(json::now());
            }
            if let Some(i) = r.issues.get_mut(&number) {
                i.state = "closed".into();
            }
        }
    }

    /// Closes a pull request without merging it: declines it, as a human would.
    pub fn close_pull(&self, owner: &str, repo: &str, number: u64) {
        self.finish_pull(owner, repo, number, false);
    }

    /// Merges a pull request, as a human would: it is closed with `merged_at` set.
    pub fn merge_pull(&self, owner: &str, repo: &str, number: u64) {
        self.finish_pull(owner, repo, number, true);
    }

    /// The merge commit the fake gives pull request `number` when it is merged.
    pub fn merge_commit_sha(number: u64) -> String {
        format!("{:040x}", 0x6d_6572_6765_0000_u64 + number)
    }

    /// The `pull_request` webhook payload GitHub sends for this pull request as it is now:
    /// `closed` once closed or merged (with `merged` and `merge_commit_sha`), else `opened`.
    pub fn pull_request_event(&self, owner: &str, repo: &str, number: u64) -> Option<Value> {
        let world = lock(&self.world);
        let r = world.repos.get(&(owner.to_string(), repo.to_string()))?;
        let p = r.pulls.get(&number)?;
        let ctx = json::Ctx {
            base: world.base_url.clone(),
            owner: owner.to_string(),
            repo: repo.to_string(),
        };
        let merged = p.merged_at.is_some();
        let mut pull = json::pull_json(&ctx, p, &r.created);
        pull["merged"] = json!(merged);
        pull["merge_commit_sha"] = json!(merged.then(|| FakeGithub::merge_commit_sha(number)));
        Some(json!({
            "action": if p.state == "closed" { "closed" } else { "opened" },
            "number": number,
            "pull_request": pull,
            "repository": json::repository_json(&ctx),
            "sender": json::user_json(&ctx.base, owner),
        }))
    }

    fn finish_pull(&self, owner: &str, repo: &str, number: u64, merged: bool) {
        let mut world = lock(&self.world);
        let pull = world
            .repos
            .get_mut(&(owner.to_string(), repo.to_string()))
            .and_then(|r| r.pulls.get_mut(&number));
        if let Some(p) = pull {
            let now = json::now();
            p.state = "closed".into();
            p.merged_at = merged.then(|| now.clone());
            p.closed_at = Some(now);
        }
    }

    /// Every request received so far, in order (bodies and credentials included, other headers
    /// not).
    pub fn requests(&self) -> Vec<GithubRequest> {
        lock(&self.world).requests.clone()
    }
}

impl Drop for FakeGithub {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn serve(State(world): State<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes: Bytes = axum::body::to_bytes(body, 16 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let body: Option<Value> = serde_json::from_slice(&bytes).ok();
    let method = parts.method.clone();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().map(str::to_string);
    let params = parse_query(query.as_deref().unwrap_or(""));
    let credential = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("token "))
        })
        .map(|v| v.trim().to_string());
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();

    let mut world = lock(&world);
    let (status, headers, json_body) = match authenticate(&world, &segments, credential.as_deref())
    {
        Err(message) => (
            401,
            Vec::new(),
            json!({"message": message, "documentation_url": "https://docs.github.com/rest"}),
        ),
        Ok(caller) => match take_fault(&mut world, &method, &path) {
            Some(f) if !f.after_handling => (f.status, f.headers, f.body),
            Some(f) => {
                let _ = routes::handle(
                    &mut world,
                    caller,
                    &method,
                    &segments,
                    &params,
                    body.as_ref(),
                );
                (f.status, f.headers, f.body)
            }
            None => {
                let (s, b) = routes::handle(
                    &mut world,
                    caller,
                    &method,
                    &segments,
                    &params,
                    body.as_ref(),
                );
                (s, Vec::new(), b)
            }
        },
    };
    world.requests.push(GithubRequest {
        method: method.to_string(),
        path,
        query,
        body,
        credential,
        status,
    });
    drop(world);
    respond(status, &headers, json_body)
}

/// Who `credential` authenticates as for a request to `segments`, or GitHub's 401 message.
fn authenticate(
    world: &World,
    segments: &[&str],
    credential: Option<&str>,
) -> Result<Caller, &'static str> {
    let app_route = matches!(segments, ["app", ..] | ["repos", _, _, "installation"]);
    if app_route {
        return app::verify(&world.apps, credential.unwrap_or("")).map(Caller::App);
    }
    if world.token.is_none() && world.apps.is_empty() {
        return Ok(Caller::Anyone);
    }
    let Some(credential) = credential else {
        return Err("Requires authentication");
    };
    if world.token.as_deref() == Some(credential) {
        return Ok(Caller::Token);
    }
    match world.tokens.iter().find(|t| t.token == credential) {
        Some(t) if t.expires_at > SystemTime::now() => Ok(Caller::Installation(t.installation_id)),
        _ => Err("Bad credentials"),
    }
}

fn take_fault(world: &mut World, method: &Method, path: &str) -> Option<Fault> {
    let index = world
        .faults
        .iter()
        .position(|f| f.method == method.as_str() && f.path == path && f.times > 0)?;
    let fault = &mut world.faults[index];
    fault.times -= 1;
    let taken = fault.clone();
    if fault.times == 0 {
        world.faults.remove(index);
    }
    Some(taken)
}

fn respond(status: u16, headers: &[(String, String)], body: Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            map.insert(n, v);
        }
    }
    (status, map, axum::Json(body)).into_response()
}

fn parse_query(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
