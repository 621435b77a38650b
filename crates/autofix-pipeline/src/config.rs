//! The configuration file (`config/autofix.example.toml` documents every key).

use autofix_diagnose::RuleConfig;
use autofix_gitops::Author;
use autofix_policy::{PolicyConfig, RiskConfig};
use serde::{Deserialize, Serialize};
use std::path::Path;

mod gitops;
mod server;
mod tracking;

pub use gitops::{ForgeKind, GitAuthConfig, GithubSettings, GitopsConfig, RepoMapping};
pub use server::{AuthConfig, ServerConfig, TlsConfig};
pub use tracking::TrackingConfig;

/// Everything kube-autofix can be told in its config file. Secrets never go here.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// What the bot may touch: namespaces, kinds, resource ceilings.
    pub policy: PolicyConfig,
    /// How risk is scored and banded.
    pub risk: RiskConfig,
    /// How the rule fixes size resources.
    pub rules: RulesConfig,
    /// How fixes are committed.
    pub git: GitConfig,
    /// Remote GitOps repositories, by cluster and namespace.
    pub gitops: GitopsConfig,
    /// GitHub access for pull requests, issues and pushes.
    pub github: GithubSettings,
    /// The long-running service (`autofix serve`).
    pub server: ServerConfig,
    /// MLflow tracking of every run.
    pub tracking: TrackingConfig,
    /// The LLM diagnoser: mode, provider, budget (see `docs/llm.md`).
    pub llm: autofix_llm::LlmConfig,
    /// The opt-in server-side dry run of each fix against the cluster's admission (see
    /// `docs/security.md`).
    pub dry_run: autofix_cluster::DryRunConfig,
    /// Choosing among candidate fixes (see `docs/risk-model.md`).
    pub choose: ChooseConfig,
}

/// How `autofix serve` chooses among candidate fixes once outcomes exist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChooseConfig {
    /// Learn from recorded outcomes which strategy's fixes work per category, and let that
    /// choose among the candidates that pass the safety gate (default true).
    pub learn: bool,
    /// Outcomes a category needs before learning chooses; until then the rank order does
    /// (default 20).
    pub min_outcomes: u32,
}

impl Default for ChooseConfig {
    fn default() -> Self {
        ChooseConfig {
            learn: true,
            min_outcomes: 20,
        }
    }
}

/// Settings of the rule analyzers' fixes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    /// Factor applied to a memory limit after an OOM kill (default 2.0; capped by
    /// `policy.max_memory_limit`).
    pub memory_factor: f64,
    /// Factor applied to a CPU limit under throttling (default 2.0; capped by
    /// `policy.max_cpu_limit`).
    pub cpu_factor: f64,
}

impl Default for RulesConfig {
    fn default() -> Self {
        let rules = RuleConfig::default();
        RulesConfig {
            memory_factor: rules.memory_factor,
            cpu_factor: rules.cpu_factor,
        }
    }
}

/// Commit settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GitConfig {
    /// Commit author name (default `kube-autofix`).
    pub author_name: String,
    /// Commit author email (default `autofix@localhost`).
    pub author_email: String,
}

impl Default for GitConfig {
    fn default() -> Self {
        let author = Author::default();
        GitConfig {
            author_name: author.name,
            author_email: author.email,
        }
    }
}

/// Prefix of the environment variables that override config keys, e.g.
/// `AUTOFIX__SERVER__WORKERS=4`.
pub const ENV_PREFIX: &str = "AUTOFIX__";

/// An override's value: TOML when it reads as a TOML value, else the text itself.
fn env_value(text: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {text}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(text.to_string()))
}

/// Sets `keys` (a path of table keys) to `value`, creating tables on the way.
fn set_key(table: &mut toml::Table, keys: &[String], value: toml::Value) {
    let Some((last, parents)) = keys.split_last() else {
        return;
    };
    let mut node = table;
    for key in parents {
        let entry = node
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        let Some(next) = entry.as_table_mut() else {
            return;
        };
        node = next;
    }
    node.insert(last.clone(), value);
}

/// A config file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("config file {path}: {source}")]
    Toml {
        /// The file.
        path: String,
        /// The parser's complaint, naming the key.
        #[source]
        source: toml::de::Error,
    },
    /// A value is out of range.
    #[error("config file {path}: [{section}] {source}")]
    Invalid {
        /// The file.
        path: String,
        /// The section.
        section: &'static str,
        /// The field and reason.
        #[source]
        source: autofix_policy::ConfigError,
    },
    /// A rules factor is not a usable number.
    #[error("config file {path}: [rules] `{field}` must be a finite number >= 1, got {value}")]
    Factor {
        /// The file.
        path: String,
        /// The field.
        field: &'static str,
        /// The value given.
        value: f64,
    },
    /// A `[[gitops.repos]]` entry cannot be used.
    #[error("config file {path}: [[gitops.repos]] entry {index} (url {url:?}): `{field}` {reason}")]
    Gitops {
        /// The file.
        path: String,
        /// The entry's position, from 1.
        index: usize,
        /// Its URL.
        url: String,
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// An `[llm]` value cannot be used.
    #[error("config file {path}: [llm] `{field}` {reason}")]
    Llm {
        /// The file.
        path: String,
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A `[github]` value cannot be used.
    #[error("config file {path}: [github] `{field}` {reason}")]
    Github {
        /// The file.
        path: String,
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A `[server]` value is out of range.
    #[error("config file {path}: [server] `{field}` {reason}")]
    Server {
        /// The file.
        path: String,
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
}

impl Config {
    /// Reads the config file (built-in defaults without one), then applies environment
    /// overrides: `AUTOFIX__<SECTION>__<KEY>=<value>` sets `[section] key` (deeper keys take
    /// more `__`), the value read as TOML (`4`, `true`, `["shop"]`) or else as a string.
    /// Errors name the file and the overriding variables.
    pub fn load_with_env(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let (text, mut origin) = match path {
            Some(path) => {
                let shown = path.display().to_string();
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
                    path: shown.clone(),
                    source,
                })?;
                (text, shown)
            }
            None => (String::new(), "built-in defaults".to_string()),
        };
        let mut table: toml::Table = toml::from_str(&text).map_err(|source| ConfigError::Toml {
            path: origin.clone(),
            source,
        })?;
        let mut overrides: Vec<String> = Vec::new();
        for (name, value) in env {
            let Some(key) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let keys: Vec<String> = key.split("__").map(str::to_ascii_lowercase).collect();
            set_key(&mut table, &keys, env_value(&value));
            overrides.push(name);
        }
        if !overrides.is_empty() {
            overrides.sort();
            origin = format!("{origin} with {}", overrides.join(", "));
        }
        Config::from_table(table, &origin)
    }

    /// Parses and checks config text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let table: toml::Table = toml::from_str(text).map_err(|source| ConfigError::Toml {
            path: origin.to_string(),
            source,
        })?;
        Config::from_table(table, origin)
    }

    /// Turns a TOML table into a checked config.
    fn from_table(table: toml::Table, origin: &str) -> Result<Config, ConfigError> {
        let config: Config =
            toml::Value::Table(table)
                .try_into()
                .map_err(|source| ConfigError::Toml {
                    path: origin.to_string(),
                    source,
                })?;
        let invalid = |section, source| ConfigError::Invalid {
            path: origin.to_string(),
            section,
            source,
        };
        config.policy.validate().map_err(|e| invalid("policy", e))?;
        config.risk.validate().map_err(|e| invalid("risk", e))?;
        for (field, value) in [
            ("memory_factor", config.rules.memory_factor),
            ("cpu_factor", config.rules.cpu_factor),
        ] {
            if !value.is_finite() || value < 1.0 {
                return Err(ConfigError::Factor {
                    path: origin.to_string(),
                    field,
                    value,
                });
            }
        }
        config
            .server
            .check()
            .map_err(|(field, reason)| ConfigError::Server {
                path: origin.to_string(),
                field,
                reason,
            })?;
        config
            .github
            .check()
            .map_err(|(field, reason)| ConfigError::Github {
                path: origin.to_string(),
                field,
                reason,
            })?;
        config
            .llm
            .check()
            .map_err(|(field, reason)| ConfigError::Llm {
                path: origin.to_string(),
                field,
                reason,
            })?;
        let github = config.github.has_credentials();
        for (i, repo) in config.gitops.repos.iter().enumerate() {
            repo.check(github)
                .map_err(|(field, reason)| ConfigError::Gitops {
                    path: origin.to_string(),
                    index: i + 1,
                    url: repo.url.clone(),
                    field,
                    reason,
                })?;
        }
        Ok(config)
    }

    /// The rule analyzers' bounds, from the policy ceilings and the rules factors.
    pub fn rule_config(&self) -> RuleConfig {
        RuleConfig {
            max_memory_bytes: self.policy.max_memory_bytes(),
            max_cpu_cores: self.policy.max_cpu_cores(),
            memory_factor: self.rules.memory_factor,
            cpu_factor: self.rules.cpu_factor,
        }
    }

    /// The commit author.
    pub fn author(&self) -> Author {
        Author {
            name: self.git.author_name.clone(),
            email: self.git.author_email.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses_and_matches_defaults() {
        let text = include_str!("../../../config/autofix.example.toml");
        let config = Config::parse(text, "autofix.example.toml").unwrap();
        assert_eq!(config, Config::default());
    }

    #[test]
    fn environment_overrides_keys_and_is_named_in_errors() {
        let env = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        };
        let config = Config::load_with_env(
            None,
            env(&[
                ("AUTOFIX__SERVER__WORKERS", "7"),
                ("AUTOFIX__POLICY__ALLOWED_NAMESPACES", r#"["shop", "web"]"#),
                ("AUTOFIX__GIT__AUTHOR_NAME", "platform bot"),
                ("AUTOFIX_CONFIG", "ignored.toml"),
            ]),
        )
        .unwrap();
        assert_eq!(config.server.workers, 7);
        assert_eq!(config.policy.allowed_namespaces, ["shop", "web"]);
        assert_eq!(config.git.author_name, "platform bot");
        let err =
            Config::load_with_env(None, env(&[("AUTOFIX__SERVER__WORKERZ", "2")])).unwrap_err();
        assert!(
            err.to_string().contains("AUTOFIX__SERVER__WORKERZ"),
            "{err}"
        );
        assert!(err.to_string().contains("workerz"), "{err}");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let err = Config::parse("[policy]\nmax_memory_limitt = \"1Gi\"\n", "x.toml").unwrap_err();
        assert!(err.to_string().contains("max_memory_limitt"), "{err}");
        let err = Config::parse("[risk]\nepsilon = 0\n", "x.toml").unwrap_err();
        assert!(err.to_string().contains("epsilon"), "{err}");
        let err = Config::parse("[rules]\nmemory_factor = 0.5\n", "x.toml").unwrap_err();
        assert!(err.to_string().contains("memory_factor"), "{err}");
        let err = Config::parse("[server]\nworkers = 0\n", "x.toml").unwrap_err();
        assert!(err.to_string().contains("workers"), "{err}");
        let err = Config::parse("[server.auth]\ntoken = \"x\"\n", "x.toml").unwrap_err();
        assert!(err.to_string().contains("token"), "{err}");
        let err = Config::parse(
            "[[gitops.repos]]\nurl = \"https://github.com/acme/gitops\"\nforge = \"github\"\n",
            "x.toml",
        )
        .unwrap_err();
        assert!(err.to_string().contains("entry 1"), "{err}");
        assert!(err.to_string().contains("[github]"), "{err}");
        let err = Config::parse("[github]\napp_id = 7\n", "x.toml").unwrap_err();
        assert!(err.to_string().contains("private_key_file"), "{err}");
    }
}
