//! As whom the GitHub forge acts: a token, or a GitHub App through its installation.
//!
//! With a GitHub App, octocrab signs short-lived JWTs (RS256, `iss` = the app ID) with the app's
//! private key. The forge finds the app's installation on the repository when it was not given
//! (`GET /repos/{owner}/{repo}/installation`), mints an installation token
//! (`POST /app/installations/{id}/access_tokens`) and makes every API call with that token. The
//! token is cached, shared by the forge's clones, with its `expires_at`, and minted again when
//! less than [`REFRESH_MARGIN`] remains; concurrent calls wait for a single mint.

use super::{GithubConfig, GithubForge};
use crate::ForgeError;
use octocrab::Octocrab;
use octocrab::auth::EncodingKey;
use octocrab::models::{AppId, InstallationToken};
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::Mutex;

/// How long before its expiry an installation token is replaced: enough for one forge call or
/// git push to finish with the token it was given.
const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// How long connecting to GitHub may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long GitHub may take to answer.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The lifetime assumed when GitHub does not say when a token expires (GitHub documents one
/// hour).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60 * 60);

/// As whom the GitHub forge acts. `Debug` never shows the secrets.
#[derive(Debug, Clone)]
pub enum GithubAuth {
    /// A personal access token, or a token minted elsewhere, used as it is.
    Token(SecretString),
    /// A GitHub App, acting through its installation on the repository's owner.
    App {
        /// The app's ID, from its settings page.
        app_id: u64,
        /// The app's RSA private key in PEM, as GitHub generates it.
        private_key: SecretString,
        /// The installation; looked up from the repository when `None`.
        installation_id: Option<u64>,
    },
}

/// The clients one forge and its clones use.
#[derive(Clone)]
pub(super) enum Credentials {
    /// A fixed token and the client sending it.
    Token {
        /// Sends the token.
        client: Octocrab,
        /// The token itself, for git.
        token: SecretString,
    },
    /// A GitHub App.
    App {
        /// Signs its requests as the app (JWT); only for installation lookups and minting.
        app: Octocrab,
        /// The installation and its current token.
        state: Arc<Mutex<AppState>>,
    },
}

/// What a GitHub App forge has learnt so far.
pub(super) struct AppState {
    /// The installation, once configured or looked up.
    installation_id: Option<u64>,
    /// The newest installation token.
    current: Option<InstallationSession>,
}

/// An installation token and the client sending it.
struct InstallationSession {
    client: Octocrab,
    token: SecretString,
    expires_at: SystemTime,
}

impl Credentials {
    /// Builds the clients for `config`: a base URI, the credentials and timeouts.
    pub(super) fn new(config: &GithubConfig) -> Result<Credentials, ForgeError> {
        let config_error = |reason: String| ForgeError::GithubConfig { reason };
        let builder = Octocrab::builder()
            .base_uri(config.base_uri.as_str())
            .map_err(|e| config_error(format!("invalid base URI {}: {e}", config.base_uri)))?;
        let builder = match &config.auth {
            GithubAuth::Token(token) => builder.personal_token(token.clone()),
            GithubAuth::App {
                app_id,
                private_key,
                ..
            } => {
                // The key's own error text names only what is malformed, never the key.
                let key = EncodingKey::from_rsa_pem(private_key.expose_secret().as_bytes())
                    .map_err(|e| {
                        config_error(format!(
                            "the GitHub App private key is not an RSA PEM key: {e}"
                        ))
                    })?;
                builder.app(AppId(*app_id), key)
            }
        };
        let client = builder
            .set_connect_timeout(Some(CONNECT_TIMEOUT))
            .set_read_timeout(Some(READ_TIMEOUT))
            .build()
            .map_err(|e| config_error(format!("cannot build the GitHub client: {e}")))?;
        Ok(match &config.auth {
            GithubAuth::Token(token) => Credentials::Token {
                client,
                token: token.clone(),
            },
            GithubAuth::App {
                installation_id, ..
            } => Credentials::App {
                app: client,
                state: Arc::new(Mutex::new(AppState {
                    installation_id: *installation_id,
                    current: None,
                })),
            },
        })
    }
}

impl GithubForge {
    /// The client for API calls: the token's, or one sending a current installation token.
    pub(super) async fn api(&self) -> Result<Octocrab, ForgeError> {
        match &self.credentials {
            Credentials::Token { client, .. } => Ok(client.clone()),
            Credentials::App { app, state } => Ok(self.installation(app, state).await?.0),
        }
    }

    /// The password for HTTPS git pushes to the repository, with the user name
    /// `x-access-token`: the configured token, or an installation token with at least five
    /// minutes left.
    pub async fn git_token(&self) -> Result<SecretString, ForgeError> {
        match &self.credentials {
            Credentials::Token { token, .. } => Ok(token.clone()),
            Credentials::App { app, state } => Ok(self.installation(app, state).await?.1),
        }
    }

    /// The cached installation client and token, minted again when close to expiry.
    async fn installation(
        &self,
        app: &Octocrab,
        state: &Mutex<AppState>,
    ) -> Result<(Octocrab, SecretString), ForgeError> {
        let mut state = state.lock().await;
        if let Some(current) = &state.current
            && current.expires_at > SystemTime::now() + REFRESH_MARGIN
        {
            return Ok((current.client.clone(), current.token.clone()));
        }
        let id = match state.installation_id {
            Some(id) => id,
            None => {
                let found = self
                    .call(
                        "find the GitHub App installation on the repository",
                        || async {
                            app.apps()
                                .get_repository_installation(&self.owner, &self.repo)
                                .await
                        },
                    )
                    .await?;
                state.installation_id = Some(found.id.into_inner());
                found.id.into_inner()
            }
        };
        let route = format!("/app/installations/{id}/access_tokens");
        let minted: InstallationToken = self
            .call("create a GitHub App installation token", || {
                app.post(&route, None::<&()>)
            })
            .await?;
        let expires_at = minted
            .expires_at
            .as_deref()
            .and_then(|at| humantime::parse_rfc3339_weak(at).ok())
            .unwrap_or_else(|| SystemTime::now() + DEFAULT_TOKEN_LIFETIME);
        let token = SecretString::from(minted.token);
        let client =
            app.user_access_token(token.clone())
                .map_err(|e| ForgeError::GithubConfig {
                    reason: format!("cannot build the installation client: {e}"),
                })?;
        state.current = Some(InstallationSession {
            client: client.clone(),
            token: token.clone(),
            expires_at,
        });
        Ok((client, token))
    }
}
