//! LLM diagnosis for the long tail the rules cannot explain, over any OpenAI-compatible
//! endpoint (OpenAI, Azure OpenAI, vLLM, Ollama, a LiteLLM proxy), and never allowed more than
//! the rules: the model answers a patch (field changes inside the workload's pod template),
//! which is parsed, checked here, and then goes through the pipeline's validation, safety
//! policy and risk gate like any rule fix. See `docs/llm.md`.
//!
//! Layout: `config.rs` (the `[llm]` section and the API key), `prompt.rs` (redacted evidence
//! within a token budget, delimited as untrusted data), `patch.rs` (the reply type, its strict
//! JSON schema and the semantic check), `transport.rs` (bounded retries and `Retry-After`
//! under async-openai), `engine.rs` ([`LlmDiagnoser`]: iterations and the fallback chain) and
//! `chain.rs` ([`ChainDiagnoser`]: rules, then the LLM per the mode).

mod chain;
mod config;
mod engine;
mod patch;
mod prompt;
mod transport;

pub use chain::ChainDiagnoser;
pub use config::{AzureSettings, DiagnosisMode, LlmConfig};
pub use engine::LlmDiagnoser;
pub use patch::{MAX_CHANGES, PatchReply, ProposedChange, patch_schema};
pub use prompt::{EVIDENCE_BEGIN, EVIDENCE_END, estimate_tokens};

use std::path::PathBuf;

/// Why the LLM engine cannot be set up, or a request failed.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// A config value is invalid.
    #[error("invalid [llm] config: {field}: {reason}")]
    Config {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The API key variable is unset or empty.
    #[error("no LLM API key: environment variable {var} is unset or empty (or set api_key_file)")]
    MissingKey {
        /// The variable's name.
        var: String,
    },
    /// The API key file cannot be read.
    #[error("cannot read the LLM API key file {}: {source}", path.display())]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The API key file is empty.
    #[error("the LLM API key file {} is empty", path.display())]
    EmptyKeyFile {
        /// The file.
        path: PathBuf,
    },
    /// The HTTP client cannot be built.
    #[error("cannot build the HTTP client for the LLM provider: {source}")]
    HttpClient {
        /// reqwest's error.
        #[source]
        source: reqwest::Error,
    },
    /// The provider failed (after the bounded retries) or answered something unreadable.
    #[error("LLM provider error: {source}")]
    Provider {
        /// async-openai's error.
        #[source]
        source: async_openai::error::OpenAIError,
    },
}
