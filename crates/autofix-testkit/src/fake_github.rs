//! A stateful fake GitHub REST API: repositories, pull requests, issues and labels in memory,
//! served over HTTP in GitHub's JSON shapes so the real octocrab client can be pointed at it.
//!
//! Routes (all under `/repos/{owner}/{repo}`): `GET`/`POST /pulls` (`state`, `head=owner:branch`
//! and `base` filters; a second open pull request for the same head and base answers 422 "A pull
//! request already exists"), `GET`/`PATCH /pulls/{n}`, `GET`/`POST /issues` (`state` and `labels`
//! filters; like GitHub, the list includes pull requests), `GET`/`PATCH /issues/{n}`,
//! `POST`/`PUT /issues/{n}/labels`. Faults can be injected per method and path, either instead of
//! handling the request or after handling it (the change happens, the client sees the fault).

use crate::TestkitError;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;
use tokio::task::JoinHandle;

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
    created: BTreeMap<u64, (String, String)>,
}

#[derive(Debug, Default)]
struct World {
    base_url: String,
    token: Option<String>,
    repos: BTreeMap<(String, String), Repo>,
    faults: Vec<Fault>,
    requests: Vec<GithubRequest>,
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
    /// When `token` is given, requests must carry it (`Authorization: Bearer` or `token`) or
    /// get 401.
    pub async fn start(token: Option<&str>) -> Result<FakeGithub, TestkitError> {
        let addr = "127.0.0.1:0";
        let io_error = |source| TestkitError::Io {
            path: addr.into(),
            source,
        };
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(io_error)?;
        let url = format!("http://{}", listener.local_addr().map_err(io_error)?);
        let world = Shared::new(Mutex::new(World {
            base_url: url.clone(),
            token: token.map(str::to_string),
            ..World::default()
        }));
        let app = Router::new().fallback(serve).with_state(world.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
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
            }
            if let Some(i) = r.issues.get_mut(&number) {
                i.state = "closed".into();
            }
        }
    }

    /// Every request received so far, in order (bodies included, headers not).
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

    let mut world = lock(&world);
    let authorized = match &world.token {
        None => true,
        Some(token) => parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == format!("Bearer {token}") || v == format!("token {token}")),
    };
    let fault = take_fault(&mut world, &method, &path);
    let (status, headers, json_body) = if !authorized {
        (
            401,
            Vec::new(),
            json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}),
        )
    } else {
        match fault {
            Some(f) if !f.after_handling => (f.status, f.headers, f.body),
            Some(f) => {
                let _ = handle(&mut world, &method, &path, &params, body.as_ref());
                (f.status, f.headers, f.body)
            }
            None => {
                let (s, b) = handle(&mut world, &method, &path, &params, body.as_ref());
                (s, Vec::new(), b)
            }
        }
    };
    world.requests.push(GithubRequest {
        method: method.to_string(),
        path,
        query,
        body,
        status,
    });
    drop(world);
    respond(status, &headers, json_body)
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

fn not_found() -> (u16, Value) {
    (
        404,
        json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}),
    )
}

fn validation_failed(resource: &str, message: String) -> (u16, Value) {
    (
        422,
        json!({
            "message": "Validation Failed",
            "errors": [{"resource": resource, "code": "custom", "message": message}],
            "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request",
            "status": "422",
        }),
    )
}

/// Handles a request against the world; answers status and JSON body.
fn handle(
    world: &mut World,
    method: &Method,
    path: &str,
    params: &BTreeMap<String, String>,
    body: Option<&Value>,
) -> (u16, Value) {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let ["repos", owner, repo, rest @ ..] = segments.as_slice() else {
        return not_found();
    };
    let base_url = world.base_url.clone();
    let ctx = Ctx {
        base: base_url,
        owner: owner.to_string(),
        repo: repo.to_string(),
    };
    let Some(r) = world.repos.get_mut(&(ctx.owner.clone(), ctx.repo.clone())) else {
        return not_found();
    };
    let str_field = |name: &str| body.and_then(|b| b.get(name)).and_then(Value::as_str);
    let labels_field = || -> Option<Vec<String>> {
        let v = body?;
        let list = if v.is_array() {
            v.as_array()
        } else {
            v.get("labels").and_then(Value::as_array)
        }?;
        Some(
            list.iter()
                .filter_map(|l| {
                    l.as_str()
                        .or_else(|| l.get("name").and_then(Value::as_str))
                        .map(str::to_string)
                })
                .collect(),
        )
    };
    match (method.as_str(), rest) {
        ("GET", ["pulls"]) => {
            let state = params.get("state").map_or("open", String::as_str);
            let head = params
                .get("head")
                .and_then(|h| h.split_once(':'))
                .map(|(o, b)| (o.to_string(), b.to_string()));
            let base = params.get("base");
            let list: Vec<Value> = r
                .pulls
                .values()
                .rev()
                .filter(|p| state == "all" || p.state == state)
                .filter(|p| {
                    head.as_ref()
                        .is_none_or(|(o, b)| *o == ctx.owner && *b == p.head)
                })
                .filter(|p| base.is_none_or(|b| *b == p.base))
                .map(|p| pull_json(&ctx, p, &r.created))
                .collect();
            (200, Value::Array(list))
        }
        ("POST", ["pulls"]) => {
            let (Some(title), Some(head), Some(base)) =
                (str_field("title"), str_field("head"), str_field("base"))
            else {
                return validation_failed(
                    "PullRequest",
                    "title, head and base are required".into(),
                );
            };
            let head = head
                .split_once(':')
                .map_or(head, |(_, branch)| branch)
                .to_string();
            if r.pulls
                .values()
                .any(|p| p.state == "open" && p.head == head && p.base == base)
            {
                return validation_failed(
                    "PullRequest",
                    format!("A pull request already exists for {}:{head}.", ctx.owner),
                );
            }
            r.next_number += 1;
            let number = r.next_number;
            let pull = FakePull {
                number,
                head,
                base: base.to_string(),
                title: title.to_string(),
                body: str_field("body").map(str::to_string),
                state: "open".into(),
                draft: body
                    .and_then(|b| b.get("draft"))
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                labels: Vec::new(),
                updates: 0,
            };
            r.created.insert(number, (now(), now()));
            let json = pull_json(&ctx, &pull, &r.created);
            r.pulls.insert(number, pull);
            (201, json)
        }
        ("GET", ["pulls", n]) => match n.parse().ok().and_then(|n: u64| r.pulls.get(&n)) {
            Some(p) => (200, pull_json(&ctx, p, &r.created)),
            None => not_found(),
        },
        ("PATCH", ["pulls", n]) => {
            let Some(number) = n.parse::<u64>().ok().filter(|n| r.pulls.contains_key(n)) else {
                return not_found();
            };
            let p = r.pulls.get_mut(&number).expect("checked above");
            if let Some(t) = str_field("title") {
                p.title = t.to_string();
            }
            if let Some(b) = str_field("body") {
                p.body = Some(b.to_string());
            }
            if let Some(s) = str_field("state") {
                p.state = s.to_string();
            }
            if let Some(b) = str_field("base") {
                p.base = b.to_string();
            }
            p.updates += 1;
            touch(&mut r.created, number);
            (200, pull_json(&ctx, &r.pulls[&number], &r.created))
        }
        ("GET", ["issues"]) => {
            let state = params.get("state").map_or("open", String::as_str);
            let wanted: Vec<String> = params
                .get("labels")
                .map(|l| {
                    l.split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            let mut items: Vec<(u64, Value)> = Vec::new();
            for i in r.issues.values() {
                if (state == "all" || i.state == state)
                    && wanted.iter().all(|w| i.labels.contains(w))
                {
                    items.push((i.number, issue_json(&ctx, i, &r.created)));
                }
            }
            for p in r.pulls.values() {
                if (state == "all" || p.state == state)
                    && wanted.iter().all(|w| p.labels.contains(w))
                {
                    items.push((p.number, pull_as_issue_json(&ctx, p, &r.created)));
                }
            }
            items.sort_by_key(|item| std::cmp::Reverse(item.0));
            (
                200,
                Value::Array(items.into_iter().map(|(_, v)| v).collect()),
            )
        }
        ("POST", ["issues"]) => {
            let Some(title) = str_field("title") else {
                return validation_failed("Issue", "title is required".into());
            };
            r.next_number += 1;
            let number = r.next_number;
            let issue = FakeIssue {
                number,
                title: title.to_string(),
                body: str_field("body").map(str::to_string),
                state: "open".into(),
                labels: labels_field().unwrap_or_default(),
                updates: 0,
            };
            r.created.insert(number, (now(), now()));
            let json = issue_json(&ctx, &issue, &r.created);
            r.issues.insert(number, issue);
            (201, json)
        }
        ("GET", ["issues", n]) => {
            let Ok(number) = n.parse::<u64>() else {
                return not_found();
            };
            if let Some(i) = r.issues.get(&number) {
                (200, issue_json(&ctx, i, &r.created))
            } else if let Some(p) = r.pulls.get(&number) {
                (200, pull_as_issue_json(&ctx, p, &r.created))
            } else {
                not_found()
            }
        }
        ("PATCH", ["issues", n]) => {
            let Some(number) = n.parse::<u64>().ok().filter(|n| r.issues.contains_key(n)) else {
                return not_found();
            };
            let labels = labels_field();
            let i = r.issues.get_mut(&number).expect("checked above");
            if let Some(t) = str_field("title") {
                i.title = t.to_string();
            }
            if let Some(b) = str_field("body") {
                i.body = Some(b.to_string());
            }
            if let Some(s) = str_field("state") {
                i.state = s.to_string();
            }
            if let Some(l) = labels {
                i.labels = l;
            }
            i.updates += 1;
            touch(&mut r.created, number);
            (200, issue_json(&ctx, &r.issues[&number], &r.created))
        }
        (m @ ("POST" | "PUT"), ["issues", n, "labels"]) => {
            let Ok(number) = n.parse::<u64>() else {
                return not_found();
            };
            let given = labels_field().unwrap_or_default();
            let current = if let Some(i) = r.issues.get_mut(&number) {
                i.updates += 1;
                &mut i.labels
            } else if let Some(p) = r.pulls.get_mut(&number) {
                p.updates += 1;
                &mut p.labels
            } else {
                return not_found();
            };
            if m == "PUT" {
                current.clear();
            }
            for l in given {
                if !current.contains(&l) {
                    current.push(l);
                }
            }
            let json = Value::Array(current.iter().map(|l| label_json(&ctx, l)).collect());
            touch(&mut r.created, number);
            (200, json)
        }
        _ => not_found(),
    }
}

struct Ctx {
    base: String,
    owner: String,
    repo: String,
}

impl Ctx {
    fn api(&self) -> String {
        format!("{}/repos/{}/{}", self.base, self.owner, self.repo)
    }
    fn html(&self) -> String {
        format!("{}/{}/{}", self.base, self.owner, self.repo)
    }
}

fn touch(created: &mut BTreeMap<u64, (String, String)>, number: u64) {
    if let Some(times) = created.get_mut(&number) {
        times.1 = now();
    }
}

fn times(created: &BTreeMap<u64, (String, String)>, number: u64) -> (String, String) {
    created
        .get(&number)
        .cloned()
        .unwrap_or_else(|| (now(), now()))
}

fn user_json(base: &str, login: &str) -> Value {
    let u = format!("{base}/users/{login}");
    json!({
        "login": login, "id": 1, "node_id": "MDQ6VXNlcjE=",
        "avatar_url": format!("{base}/avatars/{login}"), "gravatar_id": "",
        "url": u, "html_url": format!("{base}/{login}"),
        "followers_url": format!("{u}/followers"), "following_url": format!("{u}/following{{/other_user}}"),
        "gists_url": format!("{u}/gists{{/gist_id}}"), "starred_url": format!("{u}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{u}/subscriptions"), "organizations_url": format!("{u}/orgs"),
        "repos_url": format!("{u}/repos"), "events_url": format!("{u}/events{{/privacy}}"),
        "received_events_url": format!("{u}/received_events"), "type": "Bot", "site_admin": false,
    })
}

fn label_json(ctx: &Ctx, name: &str) -> Value {
    let id = name
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
        % 1_000_000_000;
    json!({
        "id": id, "node_id": format!("LA_{id}"),
        "url": format!("{}/labels/{}", ctx.api(), name.replace('/', "%2F")),
        "name": name, "description": null, "color": "ededed", "default": false,
    })
}

fn pull_json(ctx: &Ctx, p: &FakePull, created: &BTreeMap<u64, (String, String)>) -> Value {
    let (created_at, updated_at) = times(created, p.number);
    let api = format!("{}/pulls/{}", ctx.api(), p.number);
    let html = format!("{}/pull/{}", ctx.html(), p.number);
    let branch = |name: &str| {
        json!({
            "label": format!("{}:{name}", ctx.owner), "ref": name,
            "sha": "0000000000000000000000000000000000000000",
            "user": user_json(&ctx.base, &ctx.owner),
        })
    };
    json!({
        "id": 1000 + p.number, "node_id": format!("PR_{}", p.number), "number": p.number,
        "url": api, "html_url": html,
        "diff_url": format!("{html}.diff"), "patch_url": format!("{html}.patch"),
        "issue_url": format!("{}/issues/{}", ctx.api(), p.number),
        "commits_url": format!("{api}/commits"), "review_comments_url": format!("{api}/comments"),
        "review_comment_url": format!("{}/pulls/comments{{/number}}", ctx.api()),
        "comments_url": format!("{}/issues/{}/comments", ctx.api(), p.number),
        "statuses_url": format!("{}/statuses/0000000000000000000000000000000000000000", ctx.api()),
        "state": p.state, "locked": false, "title": p.title, "body": p.body,
        "user": user_json(&ctx.base, "autofix[bot]"),
        "labels": p.labels.iter().map(|l| label_json(ctx, l)).collect::<Vec<_>>(),
        "milestone": null, "active_lock_reason": null,
        "created_at": created_at, "updated_at": updated_at, "closed_at": null, "merged_at": null,
        "merge_commit_sha": null, "assignee": null, "assignees": [], "requested_reviewers": [],
        "requested_teams": [], "draft": p.draft,
        "head": branch(&p.head), "base": branch(&p.base),
        "author_association": "NONE",
    })
}

fn pull_as_issue_json(ctx: &Ctx, p: &FakePull, created: &BTreeMap<u64, (String, String)>) -> Value {
    let mut v = issue_json(
        ctx,
        &FakeIssue {
            number: p.number,
            title: p.title.clone(),
            body: p.body.clone(),
            state: p.state.clone(),
            labels: p.labels.clone(),
            updates: p.updates,
        },
        created,
    );
    let html = format!("{}/pull/{}", ctx.html(), p.number);
    v["html_url"] = json!(html);
    v["pull_request"] = json!({
        "url": format!("{}/pulls/{}", ctx.api(), p.number), "html_url": html,
        "diff_url": format!("{html}.diff"), "patch_url": format!("{html}.patch"),
    });
    v
}

fn issue_json(ctx: &Ctx, i: &FakeIssue, created: &BTreeMap<u64, (String, String)>) -> Value {
    let (created_at, updated_at) = times(created, i.number);
    let api = format!("{}/issues/{}", ctx.api(), i.number);
    json!({
        "id": 1000 + i.number, "node_id": format!("I_{}", i.number), "number": i.number,
        "url": api, "repository_url": ctx.api(), "labels_url": format!("{api}/labels{{/name}}"),
        "comments_url": format!("{api}/comments"), "events_url": format!("{api}/events"),
        "html_url": format!("{}/issues/{}", ctx.html(), i.number),
        "state": i.state, "state_reason": null, "title": i.title, "body": i.body,
        "user": user_json(&ctx.base, "autofix[bot]"),
        "labels": i.labels.iter().map(|l| label_json(ctx, l)).collect::<Vec<_>>(),
        "assignee": null, "assignees": [], "milestone": null, "locked": false,
        "active_lock_reason": null, "comments": 0, "closed_at": null,
        "created_at": created_at, "updated_at": updated_at, "author_association": "NONE",
    })
}

/// The current time as RFC 3339 UTC, to the second.
fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}
