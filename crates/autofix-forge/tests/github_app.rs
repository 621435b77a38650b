//! The GitHub forge authenticating as a GitHub App, against the fake GitHub.

use autofix_forge::{Forge, ForgeError, GithubConfig, GithubForge, PullRequest, RetryPolicy};
use autofix_testkit::{FakeGithub, TEST_APP_PRIVATE_KEY, TEST_APP_PUBLIC_KEY, UNKNOWN_PRIVATE_KEY};
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;

const APP_ID: u64 = 4242;
const INSTALLATION: u64 = 77;
const LOOKUP: &str = "/repos/acme/gitops/installation";
const MINT: &str = "/app/installations/77/access_tokens";
const PULLS: &str = "/repos/acme/gitops/pulls";

/// A fake GitHub with the app installed on acme/gitops and no personal token accepted.
async fn github() -> FakeGithub {
    let gh = FakeGithub::start(None).await.expect("fake GitHub");
    gh.add_repo("acme", "gitops");
    gh.add_app(APP_ID, TEST_APP_PUBLIC_KEY);
    gh.install_app(APP_ID, "acme", "gitops", INSTALLATION);
    gh
}

fn forge(gh: &FakeGithub, app_id: u64, key: &str, installation: Option<u64>) -> GithubForge {
    let config = GithubConfig::app(
        "acme",
        "gitops",
        app_id,
        SecretString::from(key),
        installation,
    )
    .with_base_uri(gh.url())
    .with_retry(RetryPolicy {
        max_retries: 1,
        max_wait: Duration::from_secs(1),
        base_backoff: Duration::from_millis(10),
    });
    GithubForge::new(config).expect("forge")
}

fn pr() -> PullRequest {
    PullRequest {
        head: "autofix/shop-cart-oom".into(),
        base: "main".into(),
        title: "fix(shop/cart): raise memory limit".into(),
        body: "body".into(),
        labels: vec!["autofix".into()],
        ..PullRequest::default()
    }
}

/// The credentials of the requests to `path`, in order.
fn credentials(gh: &FakeGithub, path: &str) -> Vec<String> {
    gh.requests()
        .into_iter()
        .filter(|r| r.path == path)
        .map(|r| r.credential.unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn an_app_finds_its_installation_mints_a_token_and_opens_the_pr_with_it() {
    let gh = github().await;
    let forge = forge(&gh, APP_ID, TEST_APP_PRIVATE_KEY, None);
    let record = forge.open_or_update_pr(&pr()).await.expect("open");
    assert!(record.created);
    assert_eq!(gh.pulls("acme", "gitops").len(), 1);

    let tokens = gh.installation_tokens();
    assert_eq!(tokens.len(), 1);
    let requests = gh.requests();
    assert_eq!(
        (requests[0].path.as_str(), requests[0].status),
        (LOOKUP, 200)
    );
    assert_eq!((requests[1].path.as_str(), requests[1].status), (MINT, 201));
    // The app's JWT went to the app routes only; everything else used the installation token.
    let jwt = requests[0].credential.clone().expect("JWT");
    assert_eq!(jwt.split('.').count(), 3, "{jwt}");
    for request in &requests[2..] {
        assert_eq!(request.credential.as_ref(), Some(&tokens[0]), "{request:?}");
    }

    // The token is cached: git gets it and a second call mints nothing.
    let git = forge.git_token().await.expect("git token");
    assert_eq!(git.expose_secret(), tokens[0]);
    forge.open_or_update_pr(&pr()).await.expect("update");
    assert_eq!(gh.installation_tokens().len(), 1);
    assert_eq!(credentials(&gh, LOOKUP).len(), 1);
}

#[tokio::test]
async fn a_token_close_to_expiry_is_minted_again() {
    let gh = github().await;
    // Each token lives a minute: under the five-minute margin, so every use mints.
    gh.set_token_lifetime(Duration::from_secs(60));
    let forge = forge(&gh, APP_ID, TEST_APP_PRIVATE_KEY, None);
    forge.open_or_update_pr(&pr()).await.expect("open");
    let git = forge.git_token().await.expect("git token");
    forge.open_or_update_pr(&pr()).await.expect("update");

    let tokens = gh.installation_tokens();
    assert_eq!(tokens.len(), 3, "{tokens:?}");
    assert_eq!(git.expose_secret(), tokens[1]);
    let used = credentials(&gh, PULLS);
    assert_eq!(used.first(), Some(&tokens[0]));
    assert_eq!(used.last(), Some(&tokens[2]));
    // The installation is looked up once and remembered.
    assert_eq!(credentials(&gh, LOOKUP).len(), 1);
}

#[tokio::test]
async fn a_configured_installation_is_not_looked_up() {
    let gh = github().await;
    let forge = forge(&gh, APP_ID, TEST_APP_PRIVATE_KEY, Some(INSTALLATION));
    let token = forge.git_token().await.expect("git token");
    assert_eq!(
        gh.installation_tokens(),
        [token.expose_secret().to_string()]
    );
    assert!(credentials(&gh, LOOKUP).is_empty());
    assert_eq!(credentials(&gh, MINT).len(), 1);
}

/// Asserts the forge is refused with 401 naming the app step, and nothing was opened.
async fn assert_refused(gh: &FakeGithub, forge: &GithubForge, message: &str) {
    let error = forge.open_or_update_pr(&pr()).await.expect_err("refused");
    match &error {
        ForgeError::Github {
            status: 401,
            operation,
            message: said,
            ..
        } => {
            assert!(operation.contains("GitHub App"), "{operation}");
            assert_eq!(said, message);
        }
        other => panic!("unexpected {other:?}"),
    }
    let shown = format!("{error} {error:?} {forge:?}");
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    assert!(gh.pulls("acme", "gitops").is_empty());
    assert!(gh.installation_tokens().is_empty());
    assert!(forge.git_token().await.is_err());
}

#[tokio::test]
async fn a_wrong_app_id_is_refused() {
    let gh = github().await;
    let forge = forge(&gh, APP_ID + 1, TEST_APP_PRIVATE_KEY, None);
    assert_refused(&gh, &forge, "Integration not found").await;
}

#[tokio::test]
async fn a_wrong_key_is_refused() {
    let gh = github().await;
    let forge = forge(&gh, APP_ID, UNKNOWN_PRIVATE_KEY, Some(INSTALLATION));
    assert_refused(&gh, &forge, "A JSON web token could not be decoded").await;
}

#[tokio::test]
async fn a_key_that_is_not_pem_fails_at_construction_without_showing_it() {
    let config = GithubConfig::app(
        "acme",
        "gitops",
        APP_ID,
        SecretString::from("not-a-key-secret-material"),
        None,
    );
    assert!(!format!("{config:?}").contains("secret-material"));
    let error = GithubForge::new(config).expect_err("bad key");
    assert!(
        matches!(error, ForgeError::GithubConfig { .. }),
        "{error:?}"
    );
    assert!(!error.to_string().contains("secret-material"), "{error}");
}

#[test]
fn private_key_from_file_reads_pem_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("app.pem");
    std::fs::write(&path, TEST_APP_PRIVATE_KEY).expect("write");
    let key = GithubConfig::private_key_from_file(&path).expect("key");
    assert_eq!(key.expose_secret(), TEST_APP_PRIVATE_KEY.trim());
    std::fs::write(&path, "ghp_not_a_key").expect("write");
    let error = GithubConfig::private_key_from_file(&path).expect_err("not PEM");
    assert!(!error.to_string().contains("ghp_not_a_key"), "{error}");
}
