//! How the bot authenticates to a remote, and the libgit2 callbacks that offer those credentials
//! exactly once.
//!
//! libgit2 calls the credentials callback again every time the remote refuses what it got, so a
//! wrong token would loop forever; [`callbacks`] counts the offers and answers an authentication
//! error on the second request instead.

use git2::{Cred, CredentialType, Error, ErrorClass, ErrorCode, RemoteCallbacks};
use secrecy::{ExposeSecret, SecretString};
use std::cell::Cell;
use std::path::PathBuf;
use std::rc::Rc;

/// How to authenticate to a remote. `Debug` never shows secrets.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// No credentials (file paths, anonymous HTTP).
    None,
    /// HTTPS user and token (GitHub: user `x-access-token`, a PAT or an App installation token).
    Token {
        /// The HTTP basic-auth user.
        username: String,
        /// The token sent as the password.
        token: SecretString,
    },
    /// SSH private key file with an optional passphrase.
    SshKey {
        /// The SSH user (`git` for GitHub); a user in the URL takes precedence.
        username: String,
        /// Path of the private key file.
        private_key: PathBuf,
        /// The key's passphrase, if it has one.
        passphrase: Option<SecretString>,
    },
}

/// Whether the remote refused the credentials (or asked for some when there were none).
#[derive(Debug, Clone, Default)]
pub(crate) struct AuthState(Rc<Cell<bool>>);

impl AuthState {
    /// True once the callback has refused to answer a credential request.
    pub(crate) fn failed(&self) -> bool {
        self.0.get()
    }
}

/// Callbacks offering `credentials` once; `state` records a refused request.
pub(crate) fn callbacks<'a>(
    credentials: &'a Credentials,
    state: &AuthState,
) -> RemoteCallbacks<'a> {
    let mut callbacks = RemoteCallbacks::new();
    let failed = state.0.clone();
    let mut offered = false;
    let mut named_user = false;
    callbacks.credentials(move |url, username_from_url, allowed| {
        let give_up = |message: String| {
            failed.set(true);
            Err(Error::new(ErrorCode::Auth, ErrorClass::Callback, message))
        };
        let url = redact_url(url);
        // SSH first asks for the user alone when the URL has none; that is not an attempt.
        if allowed == CredentialType::USERNAME && !named_user {
            named_user = true;
            let username = match credentials {
                Credentials::Token { username, .. } | Credentials::SshKey { username, .. } => {
                    username.as_str()
                }
                Credentials::None => "git",
            };
            return Cred::username(username);
        }
        if offered {
            return give_up(format!("{url} refused the configured credentials"));
        }
        offered = true;
        match credentials {
            Credentials::Token { username, token }
                if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) =>
            {
                Cred::userpass_plaintext(username, token.expose_secret())
            }
            Credentials::SshKey {
                username,
                private_key,
                passphrase,
            } if allowed.contains(CredentialType::SSH_KEY) => Cred::ssh_key(
                username_from_url.unwrap_or(username),
                None,
                private_key,
                passphrase.as_ref().map(ExposeSecret::expose_secret),
            ),
            Credentials::None => give_up(format!(
                "{url} asks for credentials but none are configured"
            )),
            _ => give_up(format!(
                "{url} asks for credentials of another kind ({allowed:?}) than configured"
            )),
        }
    });
    callbacks
}

/// `url` without any `user:password@` part, fit for errors and logs.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_user_info() {
        assert_eq!(
            redact_url("https://x-access-token:ghs_secret@github.com/org/repo.git"),
            "https://github.com/org/repo.git"
        );
        assert_eq!(
            redact_url("https://github.com/org/a@b.git"),
            "https://github.com/org/a@b.git"
        );
        assert_eq!(
            redact_url("git@github.com:org/repo.git"),
            "git@github.com:org/repo.git"
        );
        assert_eq!(redact_url("/srv/git/repo.git"), "/srv/git/repo.git");
    }

    #[test]
    fn debug_hides_secrets() {
        let credentials = Credentials::Token {
            username: "x-access-token".to_string(),
            token: SecretString::from("ghs_secret"),
        };
        let shown = format!("{credentials:?}");
        assert!(shown.contains("x-access-token"), "{shown}");
        assert!(!shown.contains("ghs_secret"), "{shown}");
    }
}
