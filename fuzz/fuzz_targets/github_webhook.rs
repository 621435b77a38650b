//! GitHub webhook deliveries, as `POST /webhooks/github` handles them: the signature check, the
//! event parsing ([`GithubEvent::parse`]) and, for pushes, the revert detection on every commit
//! message. Nothing may panic.
//!
//! Input: the `X-GitHub-Event` value on the first line, the `X-Hub-Signature-256` value on the
//! second, the body after that.
#![no_main]

use autofix_server::WebhookSecret;
use autofix_server::github::{GithubEvent, Reverted, reverts};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static SECRET: LazyLock<WebhookSecret> = LazyLock::new(|| {
    WebhookSecret::load(None, |_| Some("fuzz-secret".to_string()))
        .expect("the secret loads")
        .expect("the secret is set")
});

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&b| b == b'\n');
    let event = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let signature = parts.next().map(String::from_utf8_lossy);
    let body = parts.next().unwrap_or_default();

    let _ = SECRET.verifies(signature.as_deref(), body);
    let Ok(event) = GithubEvent::parse(&event, body) else {
        return;
    };
    if let GithubEvent::Push { commits } = event {
        for commit in &commits {
            for reverted in reverts(&commit.message) {
                match reverted {
                    Reverted::Incident(hash) => assert!(!hash.is_empty()),
                    Reverted::Commit(sha) => {
                        assert!(sha.len() >= 7 && sha.bytes().all(|b| b.is_ascii_hexdigit()))
                    }
                }
            }
        }
    }
});
