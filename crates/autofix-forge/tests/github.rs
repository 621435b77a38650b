//! The GitHub forge (real octocrab client) against the stateful fake GitHub.

use autofix_forge::{
    ESCALATION_LABEL, Escalation, Forge, ForgeError, GithubConfig, GithubForge, PullRequest,
    RetryPolicy,
};
use autofix_testkit::{FakeGithub, Fault};
use secrecy::SecretString;
use std::time::{Duration, Instant};

const TOKEN: &str = "ghp_test_token_do_not_log_0123456789";
const PULLS: &str = "/repos/acme/gitops/pulls";

async fn setup() -> (FakeGithub, GithubForge) {
    let gh = FakeGithub::start(Some(TOKEN)).await.expect("fake GitHub");
    gh.add_repo("acme", "gitops");
    let forge = forge_for(&gh);
    (gh, forge)
}

fn forge_for(gh: &FakeGithub) -> GithubForge {
    let config = GithubConfig::new("acme", "gitops", SecretString::from(TOKEN))
        .with_base_uri(gh.url())
        .with_retry(RetryPolicy {
            max_retries: 2,
            max_wait: Duration::from_secs(5),
            base_backoff: Duration::from_millis(20),
        });
    GithubForge::new(config).expect("forge")
}

fn pr(body: &str) -> PullRequest {
    PullRequest {
        head: "autofix/shop-cart-oom".into(),
        base: "main".into(),
        title: "fix(shop/cart): raise memory limit 128Mi -> 256Mi (OOMKilled)".into(),
        body: body.into(),
        labels: vec!["autofix".into(), "risk/low".into(), "category/oom".into()],
        ..PullRequest::default()
    }
}

#[tokio::test]
async fn create_opens_one_pr_with_labels() {
    let (gh, forge) = setup().await;
    let record = forge.open_or_update_pr(&pr("first")).await.expect("open");
    assert!(record.created);
    assert_eq!(record.number, 1);
    assert!(
        record.url.ends_with("/acme/gitops/pull/1"),
        "{}",
        record.url
    );
    let pulls = gh.pulls("acme", "gitops");
    assert_eq!(pulls.len(), 1);
    assert_eq!(pulls[0].head, "autofix/shop-cart-oom");
    assert_eq!(pulls[0].base, "main");
    assert_eq!(pulls[0].body.as_deref(), Some("first"));
    assert_eq!(pulls[0].labels, ["autofix", "risk/low", "category/oom"]);
    // The list was filtered by owner:branch, as GitHub requires.
    let list = &gh.requests()[0];
    assert_eq!(list.method, "GET");
    let query = list.query.as_deref().unwrap_or("");
    assert!(
        query.contains("head=acme%3Aautofix%2Fshop-cart-oom")
            || query.contains("head=acme:autofix/shop-cart-oom"),
        "{query}"
    );
}

#[tokio::test]
async fn the_same_pr_twenty_times_sequentially_and_concurrently_stays_one() {
    let (gh, forge) = setup().await;
    for i in 0..20 {
        let record = forge
            .open_or_update_pr(&pr(&format!("body {i}")))
            .await
            .expect("open or update");
        assert_eq!(record.number, 1);
        assert_eq!(record.created, i == 0);
    }
    // Twenty replicas (separate clients) at once, on a fresh branch.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let forge = forge_for(&gh);
        tasks.push(tokio::spawn(async move {
            let mut request = pr(&format!("concurrent {i}"));
            request.head = "autofix/other".into();
            request.labels = vec!["autofix".into(), "risk/medium".into()];
            forge.open_or_update_pr(&request).await
        }));
    }
    let mut created = 0;
    for task in tasks {
        let record = task.await.expect("task").expect("open or update");
        assert_eq!(record.number, 2);
        created += usize::from(record.created);
    }
    assert_eq!(created, 1);
    let pulls = gh.pulls("acme", "gitops");
    assert_eq!(pulls.len(), 2, "{pulls:?}");
    assert_eq!(pulls[0].body.as_deref(), Some("body 19"));
    assert_eq!(pulls[0].labels, ["autofix", "risk/low", "category/oom"]);
    assert_eq!(pulls[1].labels, ["autofix", "risk/medium"]);
    assert!(pulls[1].updates >= 19);
}

#[tokio::test]
async fn labels_are_replaced_on_update() {
    let (gh, forge) = setup().await;
    forge.open_or_update_pr(&pr("a")).await.expect("open");
    let mut changed = pr("b");
    changed.labels = vec!["autofix".into(), "risk/high".into()];
    forge.open_or_update_pr(&changed).await.expect("update");
    assert_eq!(
        gh.pulls("acme", "gitops")[0].labels,
        ["autofix", "risk/high"]
    );
}

#[tokio::test]
async fn a_422_after_a_lost_response_updates_the_existing_pr() {
    let (gh, forge) = setup().await;
    // An earlier attempt made the PR but its answer never came: the lookup misses it (the fault
    // hides the list once) and GitHub refuses the create.
    forge.open_or_update_pr(&pr("first")).await.expect("open");
    gh.inject(Fault::new("GET", PULLS, 200).body(serde_json::json!([])));
    let record = forge
        .open_or_update_pr(&pr("second"))
        .await
        .expect("update");
    assert!(!record.created);
    assert_eq!(record.number, 1);
    let pulls = gh.pulls("acme", "gitops");
    assert_eq!(pulls.len(), 1);
    assert_eq!(pulls[0].body.as_deref(), Some("second"));
    let statuses: Vec<(String, u16)> = gh
        .requests()
        .iter()
        .filter(|r| r.path == PULLS)
        .map(|r| (r.method.clone(), r.status))
        .collect();
    assert!(
        statuses.contains(&("POST".to_string(), 422)),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn secondary_rate_limit_then_created_is_one_pr() {
    let (gh, forge) = setup().await;
    gh.inject(Fault::secondary_rate_limit("POST", PULLS, 1));
    let started = Instant::now();
    let record = forge.open_or_update_pr(&pr("x")).await.expect("open");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
    assert!(record.created);
    assert_eq!(gh.pulls("acme", "gitops").len(), 1);
    let posts: Vec<u16> = gh
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == PULLS)
        .map(|r| r.status)
        .collect();
    assert_eq!(posts, [403, 201]);
}

#[tokio::test]
async fn primary_rate_limit_reset_too_far_fails_without_waiting() {
    let (gh, forge) = setup().await;
    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 3600;
    gh.inject(
        Fault::new("GET", PULLS, 403)
            .header("x-ratelimit-remaining", "0")
            .header("x-ratelimit-reset", &reset.to_string()),
    );
    let started = Instant::now();
    let error = forge
        .open_or_update_pr(&pr("x"))
        .await
        .expect_err("rate limited");
    assert!(started.elapsed() < Duration::from_secs(2));
    match error {
        ForgeError::Github {
            status,
            retry_after,
            ..
        } => {
            assert_eq!(status, 403);
            assert!(retry_after.expect("wait") > Duration::from_secs(3000));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(gh.pulls("acme", "gitops").is_empty());
}

#[tokio::test]
async fn a_500_after_the_pr_was_made_is_still_one_pr() {
    let (gh, forge) = setup().await;
    gh.inject(Fault::new("POST", PULLS, 500).after_handling());
    let record = forge.open_or_update_pr(&pr("x")).await.expect("open");
    assert_eq!(record.number, 1);
    let pulls = gh.pulls("acme", "gitops");
    assert_eq!(pulls.len(), 1);
    assert_eq!(pulls[0].labels, ["autofix", "risk/low", "category/oom"]);
}

#[tokio::test]
async fn other_4xx_fail_at_once_with_the_status() {
    let (gh, forge) = setup().await;
    gh.inject(Fault::new("POST", PULLS, 404).times(5));
    let error = forge.open_or_update_pr(&pr("x")).await.expect_err("404");
    assert!(
        matches!(error, ForgeError::Github { status: 404, .. }),
        "{error:?}"
    );
    let posts = gh
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == PULLS)
        .count();
    assert_eq!(posts, 1);
}

#[tokio::test]
async fn persistent_5xx_gives_up_after_bounded_retries() {
    let (gh, forge) = setup().await;
    gh.inject(Fault::new("GET", PULLS, 502).times(10));
    let error = forge.open_or_update_pr(&pr("x")).await.expect_err("502");
    assert!(
        matches!(error, ForgeError::Github { status: 502, .. }),
        "{error:?}"
    );
    assert_eq!(gh.requests().len(), 3, "one attempt and two retries");
}

fn escalation(body: &str) -> Escalation {
    Escalation {
        key: "shop/cart/oom-7f3a".into(),
        title: "autofix: cannot fix shop/cart (OOMKilled)".into(),
        body: body.into(),
        labels: vec!["autofix".into()],
    }
}

#[tokio::test]
async fn escalation_is_deduplicated_by_marker() {
    let (gh, forge) = setup().await;
    let first = forge
        .escalate(&escalation("first"))
        .await
        .expect("escalate");
    assert!(first.created);
    // A PR in between shares the number space.
    forge.open_or_update_pr(&pr("x")).await.expect("open");
    for i in 0..5 {
        let again = forge
            .escalate(&escalation(&format!("again {i}")))
            .await
            .expect("escalate");
        assert_eq!(again.number, first.number);
        assert!(!again.created);
    }
    let mut other = escalation("other");
    other.key = "shop/api/crashloop".into();
    let second = forge.escalate(&other).await.expect("escalate");
    assert!(second.created);
    let issues = gh.issues("acme", "gitops");
    assert_eq!(issues.len(), 2);
    let body = issues[0].body.as_deref().unwrap_or("");
    assert!(body.starts_with("again 4"), "{body}");
    assert!(
        body.contains("<!-- autofix:incident=shop/cart/oom-7f3a -->"),
        "{body}"
    );
    assert_eq!(issues[0].labels, ["autofix", ESCALATION_LABEL]);
    // Closed escalations are not reopened: the next one opens a new issue.
    gh.close("acme", "gitops", first.number);
    let reopened = forge.escalate(&escalation("new")).await.expect("escalate");
    assert!(reopened.created);
    assert_eq!(gh.issues("acme", "gitops").len(), 3);
}

#[tokio::test]
async fn escalation_create_answered_500_after_creating_is_one_issue() {
    let (gh, forge) = setup().await;
    gh.inject(Fault::new("POST", "/repos/acme/gitops/issues", 500).after_handling());
    let record = forge.escalate(&escalation("x")).await.expect("escalate");
    assert!(!record.created);
    assert_eq!(gh.issues("acme", "gitops").len(), 1);
}

#[tokio::test]
async fn wrong_token_is_a_401_and_the_token_never_shows_in_debug() {
    let gh = FakeGithub::start(Some("the-right-one"))
        .await
        .expect("fake");
    gh.add_repo("acme", "gitops");
    let config =
        GithubConfig::new("acme", "gitops", SecretString::from(TOKEN)).with_base_uri(gh.url());
    let config_debug = format!("{config:?}");
    assert!(!config_debug.contains(TOKEN), "{config_debug}");
    let forge = GithubForge::new(config).expect("forge");
    let forge_debug = format!("{forge:?}");
    assert!(!forge_debug.contains(TOKEN), "{forge_debug}");
    let error = forge.open_or_update_pr(&pr("x")).await.expect_err("401");
    assert!(matches!(error, ForgeError::Github { status: 401, .. }));
    let shown = format!("{error:?} {error}");
    assert!(!shown.contains(TOKEN), "{shown}");
}

#[test]
fn token_from_file_trims_and_is_redacted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("token");
    std::fs::write(&path, format!("{TOKEN}\n")).expect("write");
    let token = GithubConfig::token_from_file(&path).expect("token");
    assert_eq!(secrecy::ExposeSecret::expose_secret(&token), TOKEN);
    assert!(!format!("{token:?}").contains(TOKEN));
    std::fs::write(&path, "  \n").expect("write");
    assert!(GithubConfig::token_from_file(&path).is_err());
}

fn count(gh: &FakeGithub, method: &str, path: &str) -> usize {
    gh.requests()
        .iter()
        .filter(|r| r.method == method && r.path == path)
        .count()
}

#[tokio::test]
async fn a_draft_pr_is_created_as_draft() {
    let (gh, forge) = setup().await;
    let mut draft = pr("x");
    draft.draft = true;
    forge.open_or_update_pr(&draft).await.expect("open");
    let mut ready = pr("y");
    ready.head = "autofix/other".into();
    forge.open_or_update_pr(&ready).await.expect("open");
    let pulls = gh.pulls("acme", "gitops");
    assert!(pulls[0].draft);
    assert!(!pulls[1].draft);
}

#[tokio::test]
async fn reviewers_are_requested_once_on_creation() {
    let (gh, forge) = setup().await;
    let mut request = pr("first");
    request.reviewers = vec!["alice".into(), "bob".into()];
    request.team_reviewers = vec!["sre".into()];
    let record = forge.open_or_update_pr(&request).await.expect("open");
    assert!(record.created);
    forge
        .open_or_update_pr(&request)
        .await
        .expect("update without asking again");
    let path = "/repos/acme/gitops/pulls/1/requested_reviewers";
    assert_eq!(count(&gh, "POST", path), 1);
    let asked = gh
        .requests()
        .into_iter()
        .find(|r| r.path == path)
        .expect("request");
    assert_eq!(asked.status, 201);
    assert_eq!(
        asked.body,
        Some(serde_json::json!({"reviewers": ["alice", "bob"], "team_reviewers": ["sre"]}))
    );
    let pulls = gh.pulls("acme", "gitops");
    assert_eq!(pulls[0].requested_reviewers, ["alice", "bob"]);
    assert_eq!(pulls[0].requested_teams, ["sre"]);
    // No reviewers, no request.
    let mut other = pr("x");
    other.head = "autofix/other".into();
    forge.open_or_update_pr(&other).await.expect("open");
    assert_eq!(
        count(
            &gh,
            "POST",
            "/repos/acme/gitops/pulls/2/requested_reviewers"
        ),
        0
    );
}

#[tokio::test]
async fn a_refused_reviewer_does_not_fail_the_pr() {
    let (gh, forge) = setup().await;
    gh.set_collaborators("acme", "gitops", &["alice"]);
    let mut request = pr("x");
    request.reviewers = vec!["mallory".into()];
    let record = forge.open_or_update_pr(&request).await.expect("open");
    assert!(record.created);
    let statuses: Vec<u16> = gh
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/requested_reviewers"))
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [422]);
    let pulls = gh.pulls("acme", "gitops");
    assert_eq!(pulls.len(), 1);
    assert_eq!(pulls[0].state, "open");
    assert!(pulls[0].requested_reviewers.is_empty());
    assert_eq!(pulls[0].labels, ["autofix", "risk/low", "category/oom"]);
}

#[tokio::test]
async fn declined_lists_closed_unmerged_prs_only() {
    let (gh, forge) = setup().await;
    let head = "autofix/shop-cart-oom";
    assert!(forge.declined(head, "main").await.expect("none").is_empty());
    let first = forge
        .open_or_update_pr(&pr("declined one"))
        .await
        .expect("open");
    gh.close_pull("acme", "gitops", first.number);
    let second = forge
        .open_or_update_pr(&pr("merged one"))
        .await
        .expect("open");
    gh.merge_pull("acme", "gitops", second.number);
    let third = forge
        .open_or_update_pr(&pr("declined two"))
        .await
        .expect("open");
    gh.close_pull("acme", "gitops", third.number);
    forge
        .open_or_update_pr(&pr("still open"))
        .await
        .expect("open");
    let mut elsewhere = pr("other head");
    elsewhere.head = "autofix/other".into();
    let other = forge.open_or_update_pr(&elsewhere).await.expect("open");
    gh.close_pull("acme", "gitops", other.number);

    let declined = forge.declined(head, "main").await.expect("declined");
    let seen: Vec<(u64, &str)> = declined
        .iter()
        .map(|d| (d.number, d.body.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (third.number, "declined two"),
            (first.number, "declined one")
        ]
    );
    assert!(
        declined[0]
            .url
            .ends_with(&format!("/acme/gitops/pull/{}", third.number))
    );
    assert!(
        forge
            .declined(head, "release")
            .await
            .expect("none")
            .is_empty()
    );
    let list = gh
        .requests()
        .into_iter()
        .rfind(|r| r.method == "GET" && r.path == PULLS)
        .expect("list");
    assert!(
        list.query.as_deref().unwrap_or("").contains("state=closed"),
        "{list:?}"
    );
}

#[tokio::test]
async fn git_token_with_a_token_is_that_token() {
    let (_gh, forge) = setup().await;
    let token = forge.git_token().await.expect("token");
    assert_eq!(secrecy::ExposeSecret::expose_secret(&token), TOKEN);
}
