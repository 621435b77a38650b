//! The fake's routes: what each request reads and changes in the world.

use super::json::{self, Ctx};
use super::{Caller, FakeIssue, FakePull, IssuedToken, World};
use axum::http::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::SystemTime;

pub(super) fn not_found() -> (u16, Value) {
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

/// Handles an authenticated request against the world; answers status and JSON body.
pub(super) fn handle(
    world: &mut World,
    caller: Caller,
    method: &Method,
    segments: &[&str],
    params: &BTreeMap<String, String>,
    body: Option<&Value>,
) -> (u16, Value) {
    if let Caller::App(app_id) = caller {
        return handle_app(world, app_id, method, segments);
    }
    let ["repos", owner, repo, rest @ ..] = segments else {
        return not_found();
    };
    if let Caller::Installation(id) = caller
        && !world
            .installations
            .get(&id)
            .is_some_and(|i| i.covers(owner, repo))
    {
        return not_found();
    }
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
                .map(|p| json::pull_json(&ctx, p, &r.created))
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
                requested_reviewers: Vec::new(),
                requested_teams: Vec::new(),
                closed_at: None,
                merged_at: None,
                updates: 0,
            };
            r.created.insert(number, (json::now(), json::now()));
            let json = json::pull_json(&ctx, &pull, &r.created);
            r.pulls.insert(number, pull);
            (201, json)
        }
        ("GET", ["pulls", n]) => match n.parse().ok().and_then(|n: u64| r.pulls.get(&n)) {
            Some(p) => (200, json::pull_json(&ctx, p, &r.created)),
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
                p.closed_at = (s == "closed").then(json::now);
            }
            if let Some(b) = str_field("base") {
                p.base = b.to_string();
            }
            p.updates += 1;
            json::touch(&mut r.created, number);
            (200, json::pull_json(&ctx, &r.pulls[&number], &r.created))
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
                    items.push((i.number, json::issue_json(&ctx, i, &r.created)));
                }
            }
            for p in r.pulls.values() {
                if (state == "all" || p.state == state)
                    && wanted.iter().all(|w| p.labels.contains(w))
                {
                    items.push((p.number, json::pull_as_issue_json(&ctx, p, &r.created)));
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
            r.created.insert(number, (json::now(), json::now()));
            let json = json::issue_json(&ctx, &issue, &r.created);
            r.issues.insert(number, issue);
            (201, json)
        }
        ("GET", ["issues", n]) => {
            let Ok(number) = n.parse::<u64>() else {
                return not_found();
            };
            if let Some(i) = r.issues.get(&number) {
                (200, json::issue_json(&ctx, i, &r.created))
            } else if let Some(p) = r.pulls.get(&number) {
                (200, json::pull_as_issue_json(&ctx, p, &r.created))
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
            json::touch(&mut r.created, number);
            (200, json::issue_json(&ctx, &r.issues[&number], &r.created))
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
            let json = Value::Array(current.iter().map(|l| json::label_json(&ctx, l)).collect());
            json::touch(&mut r.created, number);
            (200, json)
        }
        ("POST", ["pulls", n, "requested_reviewers"]) => {
            let Some(number) = n.parse::<u64>().ok().filter(|n| r.pulls.contains_key(n)) else {
                return not_found();
            };
            let names = |field: &str| -> Vec<String> {
                body.and_then(|b| b.get(field))
                    .and_then(Value::as_array)
                    .map(|list| {
                        list.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let (users, teams) = (names("reviewers"), names("team_reviewers"));
            let strangers = r
                .collaborators
                .as_ref()
                .is_some_and(|known| users.iter().any(|u| !known.contains(u)));
            if strangers {
                return (
                    422,
                    json!({
                        "message": format!(
                            "Reviews may only be requested from collaborators. One or more of the users or teams you specified is not a collaborator of the {}/{} repository.",
                            ctx.owner, ctx.repo
                        ),
                        "documentation_url": "https://docs.github.com/rest/pulls/review-requests#request-reviewers-for-a-pull-request",
                        "status": "422",
                    }),
                );
            }
            let p = r.pulls.get_mut(&number).expect("checked above");
            for (given, requested) in [
                (users, &mut p.requested_reviewers),
                (teams, &mut p.requested_teams),
            ] {
                for name in given {
                    if !requested.contains(&name) {
                        requested.push(name);
                    }
                }
            }
            (201, json::pull_json(&ctx, &r.pulls[&number], &r.created))
        }
        _ => not_found(),
    }
}

/// The routes a GitHub App calls with its JWT: its installation on a repository, and minting
/// installation tokens.
fn handle_app(world: &mut World, app_id: u64, method: &Method, segments: &[&str]) -> (u16, Value) {
    match (method.as_str(), segments) {
        ("GET", ["repos", owner, repo, "installation"]) => {
            let found = world
                .installations
                .iter()
                .find(|(_, i)| i.app_id == app_id && i.covers(owner, repo));
            match found {
                Some((&id, _)) => (
                    200,
                    json::installation_json(&world.base_url, id, app_id, owner),
                ),
                None => not_found(),
            }
        }
        ("POST", ["app", "installations", id, "access_tokens"]) => {
            let Some(id) = id.parse::<u64>().ok().filter(|id| {
                world
                    .installations
                    .get(id)
                    .is_some_and(|i| i.app_id == app_id)
            }) else {
                return not_found();
            };
            let token = format!("ghs_fake{:028}", world.tokens.len() + 1);
            let expires_at = SystemTime::now() + world.token_lifetime;
            world.tokens.push(IssuedToken {
                token: token.clone(),
                installation_id: id,
                expires_at,
            });
            (201, json::token_json(&token, expires_at))
        }
        _ => not_found(),
    }
}
