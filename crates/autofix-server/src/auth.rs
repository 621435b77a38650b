//! Webhook authentication as Alertmanager's `http_config` sends it: a bearer token or basic auth.

use crate::ServeError;
use autofix_pipeline::config::AuthConfig;
use axum::http::HeaderValue;
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::path::Path;
use subtle::ConstantTimeEq;

/// Environment variable holding the bearer token (wins over `bearer_token_file`).
pub const TOKEN_ENV: &str = "AUTOFIX_WEBHOOK_TOKEN";

/// Environment variable holding the basic-auth password (wins over `basic_password_file`).
pub const PASSWORD_ENV: &str = "AUTOFIX_WEBHOOK_PASSWORD";

/// Who may call the authenticated routes.
#[derive(Debug)]
pub enum Auth {
    /// A bearer token, basic credentials, or both are required.
    Required {
        /// The expected bearer token.
        bearer: Option<SecretString>,
        /// The expected basic-auth user and password.
        basic: Option<(String, SecretString)>,
    },
    /// Anyone may call (`insecure_no_auth`).
    Disabled,
}

impl Auth {
    /// Reads the credentials named by the config, `env` first (see [`TOKEN_ENV`],
    /// [`PASSWORD_ENV`]). Without any, only `insecure_no_auth = true` lets the service start.
    pub fn from_config(
        config: &AuthConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Auth, ServeError> {
        let bearer = secret(
            env(TOKEN_ENV),
            config.bearer_token_file.as_deref(),
            TOKEN_ENV,
        )?;
        let basic = match &config.basic_username {
            Some(user) => {
                let password = secret(
                    env(PASSWORD_ENV),
                    config.basic_password_file.as_deref(),
                    PASSWORD_ENV,
                )?
                .ok_or(ServeError::MissingPassword)?;
                Some((user.clone(), password))
            }
            None => None,
        };
        match (bearer, basic) {
            (None, None) if config.insecure_no_auth => Ok(Auth::Disabled),
            (None, None) => Err(ServeError::NoCredentials),
            (bearer, basic) => Ok(Auth::Required { bearer, basic }),
        }
    }

    /// The `WWW-Authenticate` challenges for a 401.
    pub fn challenges(&self) -> Vec<&'static str> {
        match self {
            Auth::Required { bearer, basic } => {
                let mut out = Vec::new();
                if bearer.is_some() {
                    out.push("Bearer realm=\"kube-autofix\"");
                }
                if basic.is_some() {
                    out.push("Basic realm=\"kube-autofix\", charset=\"UTF-8\"");
                }
                out
            }
            Auth::Disabled => Vec::new(),
        }
    }

    /// True when the `Authorization` header carries valid credentials (always when disabled).
    pub fn allows(&self, header: Option<&HeaderValue>) -> bool {
        let Auth::Required { bearer, basic } = self else {
            return true;
        };
        let Some((scheme, value)) = header
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.trim().split_once(' '))
        else {
            return false;
        };
        let value = value.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            bearer
                .as_ref()
                .is_some_and(|token| same(value, token.expose_secret()))
        } else if scheme.eq_ignore_ascii_case("basic") {
            let Some((user, password)) = basic else {
                return false;
            };
            let Some(decoded) = base64::engine::general_purpose::STANDARD
                .decode(value)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
            else {
                return false;
            };
            let Some((given_user, given_password)) = decoded.split_once(':') else {
                return false;
            };
            // Both compared, always, so timing does not tell which one was wrong.
            let user_ok = same(given_user, user);
            let password_ok = same(given_password, password.expose_secret());
            user_ok & password_ok
        } else {
            false
        }
    }
}

/// Compares in constant time; hashing first hides the expected length too.
fn same(given: &str, expected: &str) -> bool {
    let given = Sha256::digest(given.as_bytes());
    let expected = Sha256::digest(expected.as_bytes());
    given.ct_eq(&expected).into()
}

/// A secret from the environment, else from a file (trimmed); empty values are refused.
pub(crate) fn secret(
    from_env: Option<String>,
    file: Option<&Path>,
    env_name: &'static str,
) -> Result<Option<SecretString>, ServeError> {
    let (value, origin) = match (from_env, file) {
        (Some(value), _) => (value, env_name.to_string()),
        (None, Some(path)) => {
            let value = std::fs::read_to_string(path).map_err(|source| ServeError::Secret {
                path: path.display().to_string(),
                source,
            })?;
            (value, path.display().to_string())
        }
        (None, None) => return Ok(None),
    };
    let value = value.trim();
    if value.is_empty() {
        return Err(ServeError::EmptySecret(origin));
    }
    Ok(Some(SecretString::from(value.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn required() -> Auth {
        Auth::Required {
            bearer: Some(SecretString::from("s3cret".to_string())),
            basic: Some(("am".into(), SecretString::from("pw".to_string()))),
        }
    }

    fn header(v: &str) -> HeaderValue {
        HeaderValue::from_str(v).unwrap()
    }

    #[test]
    fn bearer_and_basic_are_checked() {
        let auth = required();
        assert!(auth.allows(Some(&header("Bearer s3cret"))));
        assert!(auth.allows(Some(&header("bearer s3cret"))));
        assert!(!auth.allows(Some(&header("Bearer s3cre"))));
        assert!(!auth.allows(None));
        // "am:pw" and "am:px"
        assert!(auth.allows(Some(&header("Basic YW06cHc="))));
        assert!(!auth.allows(Some(&header("Basic YW06cHg="))));
        assert!(!auth.allows(Some(&header("Basic !!!"))));
        assert!(!auth.allows(Some(&header("Digest s3cret"))));
        assert_eq!(auth.challenges().len(), 2);
    }

    #[test]
    fn no_credentials_refuse_to_start_unless_insecure() {
        let none = |_: &str| None;
        let config = AuthConfig::default();
        assert!(matches!(
            Auth::from_config(&config, none),
            Err(ServeError::NoCredentials)
        ));
        let insecure = AuthConfig {
            insecure_no_auth: true,
            ..AuthConfig::default()
        };
        assert!(matches!(
            Auth::from_config(&insecure, none),
            Ok(Auth::Disabled)
        ));
        let from_env = Auth::from_config(&config, |k| (k == TOKEN_ENV).then(|| "t\n".into()));
        assert!(from_env.unwrap().allows(Some(&header("Bearer t"))));
        let blank = Auth::from_config(&config, |k| (k == TOKEN_ENV).then(|| " ".into()));
        assert!(matches!(blank, Err(ServeError::EmptySecret(_))));
    }
}
