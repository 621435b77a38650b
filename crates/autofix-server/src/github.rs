//! The GitHub webhook at the edge: signature check (`X-Hub-Signature-256`) and the events that
//! tell what became of a fix, converted from GitHub's payloads into [`GithubEvent`].

use crate::ServeError;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::Sha256;
use std::path::Path;

/// Environment variable holding the webhook secret (wins over `secret_file`).
pub const SECRET_ENV: &str = "AUTOFIX_GITHUB_WEBHOOK_SECRET";

/// Prefix of fix branches; pull requests from other branches are not ours.
pub const FIX_BRANCH_PREFIX: &str = "autofix/";

/// The secret GitHub signs deliveries with.
pub struct WebhookSecret(SecretString);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

impl WebhookSecret {
    /// The secret from `env` ([`SECRET_ENV`]) or `secret_file` (trimmed); `None` when neither
    /// is given, which leaves the route disabled.
    pub fn load(
        secret_file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<WebhookSecret>, ServeError> {
        Ok(crate::auth::secret(env(SECRET_ENV), secret_file, SECRET_ENV)?.map(WebhookSecret))
    }

    /// True when `header` is `sha256=<hex>` of the HMAC-SHA256 of `body` (compared in
    /// constant time).
    pub fn verifies(&self, header: Option<&str>, body: &[u8]) -> bool {
        let Some(given) = header
            .and_then(|h| h.trim().strip_prefix("sha256="))
            .and_then(decode_hex)
        else {
            return false;
        };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.0.expose_secret().as_bytes()) else {
            return false;
        };
        mac.update(body);
        mac.verify_slice(&given).is_ok()
    }
}

/// Decodes lowercase or uppercase hex; `None` for anything else.
fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    // `from_str_radix` alone would also take a sign (`"+f"` is 15).
    if !hex.len().is_multiple_of(2) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// What a delivery says, in the project's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GithubEvent {
    /// GitHub checking the hook.
    Ping,
    /// A pull request was closed, merged or not.
    PullClosed {
        /// Its number.
        number: u64,
        /// Its head branch.
        branch: String,
        /// True when merged.
        merged: bool,
        /// The merge commit, when merged.
        merge_commit: Option<String>,
    },
    /// Commits pushed to a branch.
    Push {
        /// The commits, oldest first.
        commits: Vec<Commit>,
    },
    /// Anything else (other events, other pull request actions).
    Other,
}

/// A pushed commit.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Commit {
    /// Its SHA.
    pub id: String,
    /// Its full message.
    pub message: String,
}

/// What a revert commit names as reverted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reverted {
    /// `Autofix-Incident: <hash8>`: the incident whose fix is reverted.
    Incident(String),
    /// `This reverts commit <sha>`: the commit reverted.
    Commit(String),
}

/// Why a payload cannot be read: the JSON path and the complaint.
#[derive(Debug, thiserror::Error)]
#[error("invalid GitHub {event} payload: {source}")]
pub struct GithubPayloadError {
    /// The `X-GitHub-Event`.
    pub event: String,
    /// The decoder's complaint, naming the JSON path.
    #[source]
    pub source: serde_path_to_error::Error<serde_json::Error>,
}

#[derive(Deserialize)]
struct PullRequestPayload {
    action: String,
    number: u64,
    pull_request: PullRequestBody,
}

#[derive(Deserialize)]
struct PullRequestBody {
    #[serde(default)]
    merged: bool,
    merge_commit_sha: Option<String>,
    head: HeadRef,
}

#[derive(Deserialize)]
struct HeadRef {
    #[serde(rename = "ref")]
    name: String,
}

#[derive(Deserialize)]
struct PushPayload {
    #[serde(default)]
    commits: Vec<Commit>,
}

impl GithubEvent {
    /// Reads a delivery of `event` (the `X-GitHub-Event` header).
    pub fn parse(event: &str, body: &[u8]) -> Result<GithubEvent, GithubPayloadError> {
        let error = |source| GithubPayloadError {
            event: event.to_string(),
            source,
        };
        match event {
            "ping" => Ok(GithubEvent::Ping),
            "pull_request" => {
                let payload: PullRequestPayload = decode(body).map_err(error)?;
                if payload.action != "closed" {
                    return Ok(GithubEvent::Other);
                }
                let pull = payload.pull_request;
                Ok(GithubEvent::PullClosed {
                    number: payload.number,
                    branch: pull.head.name,
                    merged: pull.merged,
                    merge_commit: pull.merge_commit_sha.filter(|_| pull.merged),
                })
            }
            "push" => {
                let payload: PushPayload = decode(body).map_err(error)?;
                Ok(GithubEvent::Push {
                    commits: payload.commits,
                })
            }
            _ => Ok(GithubEvent::Other),
        }
    }
}

/// Deserializes JSON, naming the failing path.
fn decode<T: for<'de> Deserialize<'de>>(
    body: &[u8],
) -> Result<T, serde_path_to_error::Error<serde_json::Error>> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de)
}

/// What a commit message reverts: nothing unless it starts with `Revert "` (as `git revert`
/// and GitHub's revert button write it).
pub fn reverts(message: &str) -> Vec<Reverted> {
    if !message.starts_with("Revert \"") {
        return Vec::new();
    }
    message
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            if let Some(hash) = line.strip_prefix("Autofix-Incident:") {
                let hash = hash.trim();
                return (!hash.is_empty()).then(|| Reverted::Incident(hash.to_string()));
            }
            let sha: String = line
                .strip_prefix("This reverts commit ")?
                .chars()
                .take_while(char::is_ascii_hexdigit)
                .collect();
            (sha.len() >= 7).then_some(Reverted::Commit(sha))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> WebhookSecret {
        WebhookSecret(SecretString::from(s.to_string()))
    }

    #[test]
    fn githubs_documented_example_signature_verifies() {
        // From GitHub's "Validating webhook deliveries" docs.
        let s = secret("It's a Secret to Everybody");
        let good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert!(s.verifies(Some(good), b"Hello, World!"));
        assert!(!s.verifies(Some(good), b"Hello, World?"));
        assert!(!s.verifies(Some(&good.replace("sha256=", "sha1=")), b"Hello, World!"));
        assert!(!s.verifies(Some("sha256=zz"), b"Hello, World!"));
        assert!(!s.verifies(None, b"Hello, World!"));
        // The same bytes spelled with a sign (`+7` for `07`) are not hex.
        let signed = good.replacen("07", "+7", 1);
        assert_ne!(signed, good);
        assert!(!s.verifies(Some(&signed), b"Hello, World!"));
    }

    #[test]
    fn revert_messages_name_the_incident_or_the_commit() {
        let git = "Revert \"fix(shop/cart): raise memory\"\n\nThis reverts commit 0123456789abcdef0123456789abcdef01234567.\n";
        assert_eq!(
            reverts(git),
            [Reverted::Commit(
                "0123456789abcdef0123456789abcdef01234567".into()
            )]
        );
        let trailer = "Revert \"fix\"\n\nAutofix-Incident: 1a2b3c4d\n";
        assert_eq!(reverts(trailer), [Reverted::Incident("1a2b3c4d".into())]);
        assert!(reverts("fix: This reverts commit 0123456789").is_empty());
    }

    #[test]
    fn payload_errors_name_the_json_path() {
        let err = GithubEvent::parse(
            "pull_request",
            br#"{"action":"closed","number":1,"pull_request":{"head":{}}}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("pull_request.head"), "{err}");
    }
}
