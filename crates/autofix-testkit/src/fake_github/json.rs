//! GitHub's JSON shapes for what the fake stores (fields as in the REST API reference).

use super::{FakeIssue, FakePull};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::SystemTime;

/// Creation and last-update times by number, RFC 3339.
pub(super) type Times = BTreeMap<u64, (String, String)>;

/// The repository an answer is about, for its URLs.
pub(super) struct Ctx {
    pub(super) base: String,
    pub(super) owner: String,
    pub(super) repo: String,
}

impl Ctx {
    fn api(&self) -> String {
        format!("{}/repos/{}/{}", self.base, self.owner, self.repo)
    }
    fn html(&self) -> String {
        format!("{}/{}/{}", self.base, self.owner, self.repo)
    }
}

/// Moves the update time of `number` to now.
pub(super) fn touch(times: &mut Times, number: u64) {
    if let Some(times) = times.get_mut(&number) {
        times.1 = now();
    }
}

fn times(times: &Times, number: u64) -> (String, String) {
    times
        .get(&number)
        .cloned()
        .unwrap_or_else(|| (now(), now()))
}

pub(super) fn user_json(base: &str, login: &str) -> Value {
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

/// A stable small id derived from a name.
fn id_of(name: &str) -> u64 {
    name.bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
        % 1_000_000_000
}

pub(super) fn label_json(ctx: &Ctx, name: &str) -> Value {
    let id = id_of(name);
    json!({
        "id": id, "node_id": format!("LA_{id}"),
        "url": format!("{}/labels/{}", ctx.api(), name.replace('/', "%2F")),
        "name": name, "description": null, "color": "ededed", "default": false,
    })
}

fn team_json(ctx: &Ctx, slug: &str) -> Value {
    let id = id_of(slug);
    let url = format!("{}/orgs/{}/teams/{slug}", ctx.base, ctx.owner);
    json!({
        "id": id, "node_id": format!("T_{id}"), "url": url,
        "html_url": format!("{}/orgs/{}/teams/{slug}", ctx.base, ctx.owner),
        "name": slug, "slug": slug, "description": null, "privacy": "closed",
        "notification_setting": "notifications_enabled", "permission": "pull",
        "members_url": format!("{url}/members{{/member}}"), "repositories_url": format!("{url}/repos"),
        "parent": null,
    })
}

pub(super) fn pull_json(ctx: &Ctx, p: &FakePull, times_of: &Times) -> Value {
    let (created_at, updated_at) = times(times_of, p.number);
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
        "created_at": created_at, "updated_at": updated_at,
        "closed_at": p.closed_at, "merged_at": p.merged_at,
        "merge_commit_sha": null, "assignee": null, "assignees": [],
        "requested_reviewers": p.requested_reviewers.iter().map(|r| user_json(&ctx.base, r)).collect::<Vec<_>>(),
        "requested_teams": p.requested_teams.iter().map(|t| team_json(ctx, t)).collect::<Vec<_>>(),
        "draft": p.draft,
        "head": branch(&p.head), "base": branch(&p.base),
        "author_association": "NONE",
    })
}

/// A repository as webhook payloads carry it.
pub(super) fn repository_json(ctx: &Ctx) -> Value {
    json!({
        "id": id_of(&format!("{}/{}", ctx.owner, ctx.repo)), "name": ctx.repo,
        "full_name": format!("{}/{}", ctx.owner, ctx.repo), "private": true,
        "owner": user_json(&ctx.base, &ctx.owner),
        "html_url": ctx.html(), "url": ctx.api(), "default_branch": "main",
    })
}

pub(super) fn pull_as_issue_json(ctx: &Ctx, p: &FakePull, times_of: &Times) -> Value {
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
        times_of,
    );
    let html = format!("{}/pull/{}", ctx.html(), p.number);
    v["html_url"] = json!(html);
    v["closed_at"] = json!(p.closed_at);
    v["pull_request"] = json!({
        "url": format!("{}/pulls/{}", ctx.api(), p.number), "html_url": html,
        "diff_url": format!("{html}.diff"), "patch_url": format!("{html}.patch"),
        "merged_at": p.merged_at,
    });
    v
}

pub(super) fn issue_json(ctx: &Ctx, i: &FakeIssue, times_of: &Times) -> Value {
    let (created_at, updated_at) = times(times_of, i.number);
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

/// The permissions every fake installation and token has.
fn permissions() -> Value {
    json!({
        "contents": "write", "issues": "write", "metadata": "read", "pull_requests": "write",
    })
}

/// `GET /repos/{owner}/{repo}/installation`: the installation of an app on the repository's owner.
pub(super) fn installation_json(base: &str, id: u64, app_id: u64, owner: &str) -> Value {
    let mut account = user_json(base, owner);
    account["type"] = json!("Organization");
    json!({
        "id": id, "account": account,
        "access_tokens_url": format!("{base}/app/installations/{id}/access_tokens"),
        "repositories_url": format!("{base}/installation/repositories"),
        "html_url": format!("{base}/organizations/{owner}/settings/installations/{id}"),
        "app_id": app_id, "app_slug": "autofix", "client_id": format!("Iv1.{app_id:016x}"),
        "target_id": 1, "target_type": "Organization",
        "permissions": permissions(), "events": ["pull_request", "issues"],
        "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
        "single_file_name": null, "has_multiple_single_files": false, "single_file_paths": [],
        "repository_selection": "selected", "suspended_by": null, "suspended_at": null,
    })
}

/// `POST /app/installations/{id}/access_tokens`: a minted installation token.
pub(super) fn token_json(token: &str, expires_at: SystemTime) -> Value {
    json!({
        "token": token,
        "expires_at": humantime::format_rfc3339_seconds(expires_at).to_string(),
        "permissions": permissions(),
        "repository_selection": "selected",
    })
}

/// The current time as RFC 3339 UTC, to the second.
pub(super) fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}
