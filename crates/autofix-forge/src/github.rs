//! The GitHub forge: pull requests and escalation issues through the GitHub REST API (octocrab).
//!
//! Both calls are open-or-update and safe to repeat. A pull request is found by listing the open
//! ones with `head=<owner>:<branch>` and `base`; when GitHub refuses a create with 422 "A pull
//! request already exists" (another replica won the race, or an earlier attempt's response was
//! lost), the open one is listed again and updated. An escalation issue carries the hidden marker
//! `<!-- autofix:incident=<key> -->` in its body and the label [`ESCALATION_LABEL`]; the open issue
//! with that label and marker is updated instead of opening a second.
//!
//! A new pull request is opened as a draft when asked (GitHub's REST API cannot change the draft
//! state later, so updates leave it), and its reviewers are requested once, right after
//! creation; a refused review request (422, e.g. a reviewer who is not a collaborator) is logged
//! and does not fail the pull request. Declined pull requests are the closed ones for the head
//! and base whose `merged_at` is empty.
//!
//! Authentication is a token or a GitHub App ([`GithubAuth`], module `auth`).
//!
//! Rate limits: 403/429 answers with `Retry-After` or `x-ratelimit-reset` (or a "secondary rate
//! limit" message) are retried after the given wait; 5xx and transport failures are retried with
//! exponential backoff and jitter; other 4xx fail at once. Retries and waits are bounded by
//! [`RetryPolicy`].

mod auth;

pub use auth::GithubAuth;

use crate::{DeclinedPr, Escalation, EscalationRecord, Forge, ForgeError, PrRecord, PullRequest};
use async_trait::async_trait;
use auth::Credentials;
use octocrab::Octocrab;
use octocrab::params::State;
use secrecy::SecretString;
use std::fmt;
use std::future::Future;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The label every escalation issue carries; escalations are found by it.
pub const ESCALATION_LABEL: &str = "autofix/escalation";

/// How failed GitHub calls are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (rate limits, 5xx and transport failures together).
    pub max_retries: u32,
    /// The longest single wait; a rate limit asking for longer fails instead of sleeping.
    pub max_wait: Duration,
    /// The first backoff for 5xx and transport failures; doubles on each retry.
    pub base_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 2,
            max_wait: Duration::from_secs(60),
            base_backoff: Duration::from_millis(500),
        }
    }
}

/// Where and as whom the GitHub forge publishes.
#[derive(Debug, Clone)]
pub struct GithubConfig {
    /// Repository owner (user or organisation).
    pub owner: String,
    /// Repository name.
    pub repo: String,
    /// A token or a GitHub App; never logged (its `Debug` is redacted).
    pub auth: GithubAuth,
    /// API root: `https://api.github.com`, `https://<host>/api/v3` for GitHub Enterprise, or a
    /// test server.
    pub base_uri: String,
    /// Retries and waits.
    pub retry: RetryPolicy,
}

impl GithubConfig {
    /// A configuration for github.com acting with a token, with the default retry policy.
    pub fn new(owner: impl Into<String>, repo: impl Into<String>, token: SecretString) -> Self {
        GithubConfig {
            owner: owner.into(),
            repo: repo.into(),
            auth: GithubAuth::Token(token),
            base_uri: "https://api.github.com".into(),
            retry: RetryPolicy::default(),
        }
    }

    /// A configuration for github.com acting as a GitHub App (RSA private key in PEM), with the
    /// default retry policy; the installation is looked up from the repository when `None`.
    pub fn app(
        owner: impl Into<String>,
        repo: impl Into<String>,
        app_id: u64,
        private_key: SecretString,
        installation_id: Option<u64>,
    ) -> Self {
        GithubConfig {
            owner: owner.into(),
            repo: repo.into(),
            auth: GithubAuth::App {
                app_id,
                private_key,
                installation_id,
            },
            base_uri: "https://api.github.com".into(),
            retry: RetryPolicy::default(),
        }
    }

    /// Sets the API root.
    pub fn with_base_uri(mut self, base_uri: impl Into<String>) -> Self {
        self.base_uri = base_uri.into();
        self
    }

    /// Sets the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Reads a token from the environment variable `var` (surrounding whitespace trimmed).
    pub fn token_from_env(var: &str) -> Result<SecretString, ForgeError> {
        match std::env::var(var) {
            Ok(value) if !value.trim().is_empty() => Ok(SecretString::from(value.trim())),
            _ => Err(ForgeError::GithubConfig {
                reason: format!("environment variable {var} is not set or empty"),
            }),
        }
    }

    /// Reads a token from a file (surrounding whitespace trimmed).
    pub fn token_from_file(path: &Path) -> Result<SecretString, ForgeError> {
        let text = std::fs::read_to_string(path).map_err(|source| ForgeError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        if text.trim().is_empty() {
            return Err(ForgeError::GithubConfig {
                reason: format!("token file {} is empty", path.display()),
            });
        }
        Ok(SecretString::from(text.trim()))
    }

    /// Reads a GitHub App private key (PEM) from a file.
    pub fn private_key_from_file(path: &Path) -> Result<SecretString, ForgeError> {
        let text = std::fs::read_to_string(path).map_err(|source| ForgeError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        if !text.contains("-----BEGIN") || !text.contains("PRIVATE KEY-----") {
            return Err(ForgeError::GithubConfig {
                reason: format!("{} does not hold a PEM private key", path.display()),
            });
        }
        Ok(SecretString::from(text.trim()))
    }
}

/// Publishes pull requests and escalation issues to one GitHub repository.
#[derive(Clone)]
pub struct GithubForge {
    credentials: Credentials,
    owner: String,
    repo: String,
    base_uri: String,
    retry: RetryPolicy,
    escalations: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl fmt::Debug for GithubForge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GithubForge")
            .field("owner", &self.owner)
            .field("repo", &self.repo)
            .field("base_uri", &self.base_uri)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// What one attempt of a call gave.
enum Failure {
    /// An HTTP error answer.
    Status {
        status: u16,
        message: String,
        /// Messages of the `errors` array.
        details: Vec<String>,
        /// How long GitHub asked to wait, when it said.
        wait: Option<Duration>,
    },
    /// No usable answer (connection, timeout, unreadable body).
    Transport(octocrab::Error),
}

fn classify(error: octocrab::Error) -> Failure {
    match error {
        octocrab::Error::GitHub { source, .. } => {
            let details = source
                .errors
                .iter()
                .flatten()
                .filter_map(|e| e.get("message").and_then(|m| m.as_str()))
                .map(str::to_string)
                .collect();
            let header = |name: &str| {
                source
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(name))
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let retry_after = header("retry-after")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let reset = header("x-ratelimit-reset")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|reset| {
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs());
                    Duration::from_secs(reset.saturating_sub(now))
                });
            let exhausted = header("x-ratelimit-remaining").as_deref() == Some("0");
            let wait = retry_after.or(if exhausted || source.status_code.as_u16() == 429 {
                reset
            } else {
                None
            });
            Failure::Status {
                status: source.status_code.as_u16(),
                message: source.message.clone(),
                details,
                wait,
            }
        }
        other => Failure::Transport(other),
    }
}

/// A small pseudo-random jitter in `0..max`, from the clock (no RNG dependency).
fn jitter(max: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let max_ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX).max(1);
    Duration::from_millis(u64::from(nanos) % max_ms)
}

fn is_already_exists(failure: &Failure) -> bool {
    matches!(failure, Failure::Status { status: 422, details, message, .. }
        if details.iter().chain(std::iter::once(message))
            .any(|m| m.contains("A pull request already exists")))
}

fn marker(key: &str) -> String {
    format!("<!-- autofix:incident={key} -->")
}

impl GithubForge {
    /// Builds the client; with a GitHub App, checks the key (no request is made yet). Installs
    /// rustls' ring provider as the process default if none is.
    pub fn new(config: GithubConfig) -> Result<GithubForge, ForgeError> {
        // Several rustls providers may be compiled into the binary; rustls then needs one chosen.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Ok(GithubForge {
            credentials: Credentials::new(&config)?,
            owner: config.owner,
            repo: config.repo,
            base_uri: config.base_uri,
            retry: config.retry,
            escalations: Default::default(),
        })
    }

    /// How long to wait before retry number `retries + 1` after `failure`, or `None` when the
    /// failure is final (a 4xx other than rate limiting, retries used up, or a wait too long).
    fn retry_wait(&self, failure: &Failure, retries: u32) -> Option<Duration> {
        let backoff = self.retry.base_backoff * 2u32.saturating_pow(retries);
        let wait = match failure {
            Failure::Status {
                status,
                message,
                wait,
                ..
            } => {
                let rate_limited = *status == 429
                    || (*status == 403
                        && (wait.is_some() || message.to_ascii_lowercase().contains("rate limit")));
                if rate_limited {
                    wait.unwrap_or(backoff)
                } else if *status >= 500 {
                    backoff + jitter(self.retry.base_backoff)
                } else {
                    return None;
                }
            }
            Failure::Transport(_) => backoff + jitter(self.retry.base_backoff),
        };
        (retries < self.retry.max_retries && wait <= self.retry.max_wait).then_some(wait)
    }

    /// Runs `attempt` until it succeeds or fails for good (see [`GithubForge::retry_wait`]).
    async fn call<T, F, Fut>(&self, operation: &'static str, attempt: F) -> Result<T, CallError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, octocrab::Error>>,
    {
        let mut retries = 0;
        loop {
            let failure = match attempt().await {
                Ok(value) => return Ok(value),
                Err(error) => classify(error),
            };
            match self.retry_wait(&failure, retries) {
                Some(wait) => {
                    retries += 1;
                    tokio::time::sleep(wait).await;
                }
                None => return Err(CallError { operation, failure }),
            }
        }
    }

    async fn find_open_pr(
        &self,
        client: &Octocrab,
        pr: &PullRequest,
    ) -> Result<Option<(u64, String)>, ForgeError> {
        let found = self
            .list_pulls(
                client,
                "list pull requests",
                State::Open,
                &pr.head,
                &pr.base,
            )
            .await?;
        Ok(found
            .into_iter()
            .next()
            .map(|p| (p.number, url_of(p.html_url.as_ref(), &p.url))))
    }

    /// The pull requests in `state` from `head` into `base`, newest first.
    async fn list_pulls(
        &self,
        client: &Octocrab,
        operation: &'static str,
        state: State,
        head: &str,
        base: &str,
    ) -> Result<Vec<octocrab::models::pulls::PullRequest>, ForgeError> {
        let head_filter = format!("{}:{head}", self.owner);
        let mut found = self
            .call(operation, || async {
                let page = client
                    .pulls(&self.owner, &self.repo)
                    .list()
                    .state(state)
                    .head(head_filter.clone())
                    .base(base)
                    .per_page(100u8)
                    .send()
                    .await?;
                client.all_pages(page).await
            })
            .await?;
        found.retain(|p| p.head.ref_field == head && p.base.ref_field == base);
        found.sort_by_key(|p| std::cmp::Reverse(p.number));
        Ok(found)
    }

    async fn update_pr(
        &self,
        client: &Octocrab,
        number: u64,
        pr: &PullRequest,
    ) -> Result<(), ForgeError> {
        self.call("update pull request", || async {
            client
                .pulls(&self.owner, &self.repo)
                .update(number)
                .title(pr.title.clone())
                .body(pr.body.clone())
                .send()
                .await
        })
        .await?;
        self.set_labels(client, number, &pr.labels).await
    }

    async fn set_labels(
        &self,
        client: &Octocrab,
        number: u64,
        labels: &[String],
    ) -> Result<(), ForgeError> {
        self.call("set labels", || async {
            client
                .issues(&self.owner, &self.repo)
                .replace_all_labels(number, labels)
                .await
        })
        .await?;
        Ok(())
    }

    /// Asks for the reviews of a new pull request. A failure only loses the request, so it is
    /// logged rather than failing a pull request that exists (a retry would update it, not
    /// request again).
    async fn request_reviewers(&self, client: &Octocrab, number: u64, pr: &PullRequest) {
        if pr.reviewers.is_empty() && pr.team_reviewers.is_empty() {
            return;
        }
        let route = format!(
            "/repos/{}/{}/pulls/{number}/requested_reviewers",
            self.owner, self.repo
        );
        let body = serde_json::json!({
            "reviewers": pr.reviewers,
            "team_reviewers": pr.team_reviewers,
        });
        let requested = self
            .call("request reviewers", || {
                client.post::<_, octocrab::models::pulls::PullRequest>(&route, Some(&body))
            })
            .await;
        if let Err(error) = requested {
            let error = ForgeError::from(error);
            tracing::warn!(
                number,
                reviewers = ?pr.reviewers,
                team_reviewers = ?pr.team_reviewers,
                %error,
                "GitHub refused the review request; the pull request stays open without it"
            );
        }
    }
}

fn url_of(html_url: Option<&impl ToString>, api_url: &str) -> String {
    html_url.map_or_else(|| api_url.to_string(), ToString::to_string)
}

/// A call that failed after its retries.
struct CallError {
    operation: &'static str,
    failure: Failure,
}

impl From<CallError> for ForgeError {
    fn from(error: CallError) -> Self {
        match error.failure {
            Failure::Status {
                status,
                message,
                details,
                wait,
            } => ForgeError::Github {
                operation: error.operation,
                status,
                message: if details.is_empty() {
                    message
                } else {
                    format!("{message}: {}", details.join("; "))
                },
                retry_after: wait,
            },
            Failure::Transport(source) => ForgeError::GithubTransport {
                operation: error.operation,
                source: Box::new(source),
            },
        }
    }
}

#[async_trait]
impl Forge for GithubForge {
    async fn open_or_update_pr(&self, pr: &PullRequest) -> Result<PrRecord, ForgeError> {
        let client = self.api().await?;
        if let Some((number, url)) = self.find_open_pr(&client, pr).await? {
            self.update_pr(&client, number, pr).await?;
            return Ok(PrRecord {
                number,
                url,
                created: false,
            });
        }
        let created = self
            .call("create pull request", || async {
                client
                    .pulls(&self.owner, &self.repo)
                    .create(pr.title.clone(), pr.head.clone(), pr.base.clone())
                    .body(pr.body.clone())
                    .draft(pr.draft)
                    .send()
                    .await
            })
            .await;
        match created {
            Ok(created) => {
                let number = created.number;
                self.set_labels(&client, number, &pr.labels).await?;
                self.request_reviewers(&client, number, pr).await;
                Ok(PrRecord {
                    number,
                    url: url_of(created.html_url.as_ref(), &created.url),
                    created: true,
                })
            }
            Err(error) if is_already_exists(&error.failure) => {
                // Another replica or an earlier attempt whose answer was lost opened it.
                let Some((number, url)) = self.find_open_pr(&client, pr).await? else {
                    return Err(error.into());
                };
                self.update_pr(&client, number, pr).await?;
                Ok(PrRecord {
                    number,
                    url,
                    created: false,
                })
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn declined(&self, head: &str, base: &str) -> Result<Vec<DeclinedPr>, ForgeError> {
        let client = self.api().await?;
        let closed = self
            .list_pulls(
                &client,
                "list closed pull requests",
                State::Closed,
                head,
                base,
            )
            .await?;
        Ok(closed
            .into_iter()
            .filter(|p| p.merged_at.is_none())
            .map(|p| DeclinedPr {
                number: p.number,
                url: url_of(p.html_url.as_ref(), &p.url),
                body: p.body.unwrap_or_default(),
            })
            .collect())
    }

    async fn escalate(&self, escalation: &Escalation) -> Result<EscalationRecord, ForgeError> {
        // Issues have no server-side uniqueness: serialise this process's escalations.
        let _guard = self.escalations.lock().await;
        let client = self.api().await?;
        let marker = marker(&escalation.key);
        let body = format!("{}\n\n{marker}\n", escalation.body.trim_end());
        let mut labels = escalation.labels.clone();
        if !labels.iter().any(|l| l == ESCALATION_LABEL) {
            labels.push(ESCALATION_LABEL.to_string());
        }
        let filter = vec![ESCALATION_LABEL.to_string()];
        let mut retries = 0;
        loop {
            let open = self
                .call("list issues", || async {
                    let page = client
                        .issues(&self.owner, &self.repo)
                        .list()
                        .state(State::Open)
                        .labels(&filter)
                        .per_page(100u8)
                        .send()
                        .await?;
                    client.all_pages(page).await
                })
                .await?;
            let existing = open.into_iter().find(|i| {
                i.pull_request.is_none() && i.body.as_deref().is_some_and(|b| b.contains(&marker))
            });
            if let Some(issue) = existing {
                let number = issue.number;
                self.call("update issue", || async {
                    client
                        .issues(&self.owner, &self.repo)
                        .update(number)
                        .title(&escalation.title)
                        .body(&body)
                        .labels(&labels)
                        .send()
                        .await
                })
                .await?;
                return Ok(EscalationRecord {
                    number,
                    url: issue.html_url.to_string(),
                    created: false,
                });
            }
            // Creating is not idempotent: after a failed attempt (whose issue may exist all the
            // same), look again before creating again.
            let created = client
                .issues(&self.owner, &self.repo)
                .create(escalation.title.clone())
                .body(body.clone())
                .labels(labels.clone())
                .send()
                .await;
            match created {
                Ok(issue) => {
                    return Ok(EscalationRecord {
                        number: issue.number,
                        url: issue.html_url.to_string(),
                        created: true,
                    });
                }
                Err(error) => {
                    let failure = classify(error);
                    let Some(wait) = self.retry_wait(&failure, retries) else {
                        return Err(CallError {
                            operation: "create issue",
                            failure,
                        }
                        .into());
                    };
                    retries += 1;
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}
