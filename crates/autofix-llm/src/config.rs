//! The `[llm]` configuration section: which diagnosis mode, which provider, and the bounds of
//! every call (timeout, retries, iterations, prompt budget).

use crate::LlmError;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// When the LLM is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiagnosisMode {
    /// Rules only; no key needed (the default).
    #[default]
    Rules,
    /// Rules first; the LLM only where the rules escalate (no known fix) or answer `unknown`.
    RulesThenLlm,
    /// The LLM always, with the rules' findings given to it as evidence.
    Llm,
}

/// Azure OpenAI: the deployment and API version (the base URL is the resource endpoint,
/// e.g. `https://NAME.openai.azure.com`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureSettings {
    /// The deployment name (Azure routes by deployment, not by model).
    pub deployment: String,
    /// The `api-version` query parameter, e.g. `2024-10-21`.
    pub api_version: String,
}

/// The `[llm]` section of the config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LlmConfig {
    /// When the LLM is asked (default `rules`: never).
    pub mode: DiagnosisMode,
    /// The OpenAI-compatible API base, ending in `/v1` (default `https://api.openai.com/v1`;
    /// vLLM `http://HOST:8000/v1`, Ollama `http://HOST:11434/v1`, LiteLLM `http://HOST:4000/v1`).
    pub base_url: String,
    /// The model asked first (default `gpt-4.1-mini`).
    pub model: String,
    /// A cheaper or smaller model tried when the first runs out of iterations or fails
    /// (default: none, the chain goes straight to the narrow scope).
    pub fallback_model: Option<String>,
    /// The environment variable holding the API key (default `OPENAI_API_KEY`).
    pub api_key_env: String,
    /// A file holding the API key; wins over the environment variable (default: none).
    pub api_key_file: Option<PathBuf>,
    /// Azure OpenAI deployment and API version; set to talk to Azure (default: none).
    pub azure: Option<AzureSettings>,
    /// Timeout of one HTTP request, milliseconds (default 60000).
    pub timeout_ms: u64,
    /// Sampling temperature (default 0.0, for repeatable answers).
    pub temperature: f32,
    /// Replies asked per step of the chain, each refused reply fed back (default 3).
    pub max_iterations: u32,
    /// Budget of the prompt, tokens, estimated as characters / 4 (default 12000).
    pub max_prompt_tokens: usize,
    /// Retries of one request after a 429, a 5xx, a timeout or a connection error (default 2).
    pub max_retries: u32,
    /// Longest wait before a retry, milliseconds; caps `Retry-After` (default 30000).
    pub max_retry_wait_ms: u64,
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            mode: DiagnosisMode::Rules,
            base_url: "https://api.openai.com/v1".to_string(),
            model: "gpt-4.1-mini".to_string(),
            fallback_model: None,
            api_key_env: "OPENAI_API_KEY".to_string(),
            api_key_file: None,
            azure: None,
            timeout_ms: 60_000,
            temperature: 0.0,
            max_iterations: 3,
            max_prompt_tokens: 12_000,
            max_retries: 2,
            max_retry_wait_ms: 30_000,
        }
    }
}

/// The smallest prompt budget that still holds the instructions and a pod template, tokens.
const MIN_PROMPT_TOKENS: usize = 1_000;

impl LlmConfig {
    /// Checks the values; on error answers the field name and why.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let url = self.base_url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(("base_url", format!("{url:?} is not an http(s) URL")));
        }
        if self.model.trim().is_empty() {
            return Err(("model", "must not be empty".into()));
        }
        if self
            .fallback_model
            .as_deref()
            .is_some_and(|m| m.trim().is_empty())
        {
            return Err(("fallback_model", "must not be empty when set".into()));
        }
        if self.api_key_env.trim().is_empty() && self.api_key_file.is_none() {
            return Err((
                "api_key_env",
                "must name a variable (or set api_key_file)".into(),
            ));
        }
        if let Some(azure) = &self.azure {
            if azure.deployment.trim().is_empty() {
                return Err(("azure.deployment", "must not be empty".into()));
            }
            if azure.api_version.trim().is_empty() {
                return Err(("azure.api_version", "must not be empty".into()));
            }
        }
        if self.timeout_ms == 0 {
            return Err(("timeout_ms", "must be at least 1".into()));
        }
        if !(0.0..=2.0).contains(&self.temperature) {
            return Err((
                "temperature",
                format!("{} is outside [0, 2]", self.temperature),
            ));
        }
        if self.max_iterations == 0 {
            return Err(("max_iterations", "must be at least 1".into()));
        }
        if self.max_prompt_tokens < MIN_PROMPT_TOKENS {
            return Err((
                "max_prompt_tokens",
                format!("must be at least {MIN_PROMPT_TOKENS}"),
            ));
        }
        Ok(())
    }

    /// The API key: from `api_key_file` when set, else from the `api_key_env` variable. Errors
    /// name the file or variable, never the key.
    pub fn api_key(&self) -> Result<SecretString, LlmError> {
        if let Some(path) = &self.api_key_file {
            let text = std::fs::read_to_string(path).map_err(|source| LlmError::KeyFile {
                path: path.clone(),
                source,
            })?;
            let key = text.trim();
            if key.is_empty() {
                return Err(LlmError::EmptyKeyFile { path: path.clone() });
            }
            return Ok(SecretString::from(key.to_string()));
        }
        match std::env::var(&self.api_key_env) {
            Ok(key) if !key.trim().is_empty() => Ok(SecretString::from(key.trim().to_string())),
            _ => Err(LlmError::MissingKey {
                var: self.api_key_env.clone(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_read_kebab_case() {
        let config: LlmConfig = toml_like(r#"{"mode": "rules-then-llm"}"#);
        assert_eq!(config.mode, DiagnosisMode::RulesThenLlm);
        assert_eq!(config.max_iterations, 3);
        let config: LlmConfig = toml_like(r#"{"mode": "llm"}"#);
        assert_eq!(config.mode, DiagnosisMode::Llm);
        assert!(serde_json::from_str::<LlmConfig>(r#"{"mdoe": "llm"}"#).is_err());
    }

    fn toml_like(json: &str) -> LlmConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn check_names_the_field() {
        assert!(LlmConfig::default().check().is_ok());
        let bad = LlmConfig {
            max_iterations: 0,
            ..LlmConfig::default()
        };
        assert_eq!(bad.check().unwrap_err().0, "max_iterations");
        let bad = LlmConfig {
            base_url: "api.openai.com".into(),
            ..LlmConfig::default()
        };
        assert_eq!(bad.check().unwrap_err().0, "base_url");
        let bad = LlmConfig {
            azure: Some(AzureSettings {
                deployment: String::new(),
                api_version: "2024-10-21".into(),
            }),
            ..LlmConfig::default()
        };
        assert_eq!(bad.check().unwrap_err().0, "azure.deployment");
    }

    #[test]
    fn the_key_file_wins_and_errors_never_show_the_key() {
        use secrecy::ExposeSecret;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key");
        std::fs::write(&file, "sk-test-123\n").unwrap();
        let config = LlmConfig {
            api_key_file: Some(file.clone()),
            api_key_env: "AUTOFIX_LLM_TEST_UNSET_VAR".into(),
            ..LlmConfig::default()
        };
        assert_eq!(config.api_key().unwrap().expose_secret(), "sk-test-123");
        let missing = LlmConfig {
            api_key_env: "AUTOFIX_LLM_TEST_UNSET_VAR".into(),
            ..LlmConfig::default()
        };
        let err = missing.api_key().unwrap_err().to_string();
        assert!(err.contains("AUTOFIX_LLM_TEST_UNSET_VAR"), "{err}");
        std::fs::write(&file, "  \n").unwrap();
        assert!(config.api_key().unwrap_err().to_string().contains("key"));
    }
}
