//! The policy and risk settings, as they appear in the config file, and their validation.

use autofix_core::quantity::Quantity;
use autofix_core::verdict::RiskWeights;
use serde::{Deserialize, Serialize};

/// A config value that cannot be used; `Display` names the field and the reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid `{field}`: {reason}")]
pub struct ConfigError {
    /// The field, relative to its section, e.g. `weights.blast_radius` or `max_memory_limit`.
    pub field: &'static str,
    /// What is wrong with its value.
    pub reason: String,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        field,
        reason: reason.into(),
    }
}

/// What the bot may touch and the largest resources it may ask for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Namespaces whose workloads may be fixed (default empty: every namespace not denied).
    pub allowed_namespaces: Vec<String>,
    /// Namespaces that are never fixed, even when allowed (default `kube-system`, `kube-public`,
    /// `kube-node-lease`: the control plane is not the bot's to change).
    pub denied_namespaces: Vec<String>,
    /// Workload kinds that may be fixed (default `Deployment`, `StatefulSet`, `DaemonSet`, `Job`,
    /// `CronJob`; bare Pods are not managed through GitOps).
    pub allowed_kinds: Vec<String>,
    /// Largest memory limit a fixed container may have (default `8Gi`; a Kubernetes quantity).
    pub max_memory_limit: String,
    /// Largest CPU limit a fixed container may have (default `8`; a Kubernetes quantity in cores).
    pub max_cpu_limit: String,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            allowed_namespaces: Vec::new(),
            denied_namespaces: ["kube-system", "kube-public", "kube-node-lease"]
                .map(String::from)
                .to_vec(),
            allowed_kinds: ["Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"]
                .map(String::from)
                .to_vec(),
            max_memory_limit: "8Gi".to_string(),
            max_cpu_limit: "8".to_string(),
        }
    }
}

impl PolicyConfig {
    /// True when workloads in `ns` may be fixed: not denied, and allowed (or no allow-list).
    pub fn namespace_allowed(&self, ns: &str) -> bool {
        !self.denied_namespaces.iter().any(|d| d == ns)
            && (self.allowed_namespaces.is_empty()
                || self.allowed_namespaces.iter().any(|a| a == ns))
    }

    /// True when workloads of this `kind` may be fixed.
    pub fn kind_allowed(&self, kind: &str) -> bool {
        self.allowed_kinds.iter().any(|k| k == kind)
    }

    /// The memory ceiling in bytes; 0 when `max_memory_limit` does not parse, so that every
    /// limit is refused rather than none ([`PolicyConfig::validate`] reports it).
    pub fn max_memory_bytes(&self) -> f64 {
        Quantity::parse(&self.max_memory_limit).map_or(0.0, |q| q.0)
    }

    /// The CPU ceiling in cores; 0 when `max_cpu_limit` does not parse (fails closed, like
    /// [`PolicyConfig::max_memory_bytes`]).
    pub fn max_cpu_cores(&self) -> f64 {
        Quantity::parse(&self.max_cpu_limit).map_or(0.0, |q| q.0)
    }

    /// Checks that both ceilings are positive quantities.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_memory_bytes() <= 0.0 {
            return Err(invalid(
                "max_memory_limit",
                format!("{:?} is not a positive quantity", self.max_memory_limit),
            ));
        }
        if self.max_cpu_cores() <= 0.0 {
            return Err(invalid(
                "max_cpu_limit",
                format!("{:?} is not a positive quantity", self.max_cpu_limit),
            ));
        }
        Ok(())
    }
}

/// How the risk score is combined and banded; see `docs/risk-model.md`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RiskConfig {
    /// Weights of the geometric mean (default 0.35 / 0.25 / 0.2 / 0.2; unitless, only their
    /// ratios matter; when given, all four must be).
    pub weights: RiskWeights,
    /// Floor of every factor (default 0.05; unitless, in (0, 1)): keeps `ln` finite and lets no
    /// single factor drive the score to zero.
    pub epsilon: f64,
    /// Scores at or above this are `medium` (default 0.3; unitless, in (0, 1]).
    pub medium_at: f64,
    /// Scores at or above this are `high` (default 0.6; unitless, above `medium_at`).
    pub high_at: f64,
    /// Pull requests with a score at or above this open as drafts, asking for a closer review
    /// (default 0.6; unitless, in (0, 1]; calibrated from outcomes later).
    pub review_at: f64,
    /// Scores at or above this are not proposed at all: the incident is escalated to a human
    /// (default 0.9; unitless, in (0, 1], at least `review_at`).
    pub block_at: f64,
    /// Namespaces treated as production-critical: names, or patterns where `*` matches any run
    /// of characters (default `production`, `prod`, `prod-*`, `*-prod`, `payments`, `billing`,
    /// `db`, `kube-*`, `flux-system`, `argocd`, `cert-manager`, `istio-system`: money, data, and
    /// the machinery every other workload depends on).
    pub critical_namespaces: Vec<String>,
}

impl Default for RiskConfig {
    fn default() -> Self {
        RiskConfig {
            weights: RiskWeights::default(),
            epsilon: 0.05,
            medium_at: 0.3,
            high_at: 0.6,
            review_at: 0.6,
            block_at: 0.9,
            critical_namespaces: [
                "production",
                "prod",
                "prod-*",
                "*-prod",
                "payments",
                "billing",
                "db",
                "kube-*",
                "flux-system",
                "argocd",
                "cert-manager",
                "istio-system",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

impl RiskConfig {
    /// Checks weights (finite, >= 0, not all 0), `0 < epsilon < 1` and
    /// `0 < medium_at < high_at <= 1`, `0 < review_at <= block_at <= 1`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let w = &self.weights;
        let weights = [
            ("weights.blast_radius", w.blast_radius),
            ("weights.resource_sensitivity", w.resource_sensitivity),
            ("weights.rollback_complexity", w.rollback_complexity),
            ("weights.namespace_scope", w.namespace_scope),
        ];
        for (field, value) in weights {
            if !value.is_finite() || value < 0.0 {
                return Err(invalid(
                    field,
                    format!("{value} is not a finite weight >= 0"),
                ));
            }
        }
        if weights.iter().all(|(_, value)| *value == 0.0) {
            return Err(invalid("weights", "all four weights are 0"));
        }
        if !(self.epsilon > 0.0 && self.epsilon < 1.0) {
            return Err(invalid(
                "epsilon",
                format!("{} is not strictly between 0 and 1", self.epsilon),
            ));
        }
        if !(self.medium_at > 0.0 && self.medium_at <= 1.0) {
            return Err(invalid(
                "medium_at",
                format!("{} is not in (0, 1]", self.medium_at),
            ));
        }
        if !(self.high_at > self.medium_at && self.high_at <= 1.0) {
            return Err(invalid(
                "high_at",
                format!(
                    "{} is not above medium_at ({}) and at most 1",
                    self.high_at, self.medium_at
                ),
            ));
        }
        if !(self.review_at > 0.0 && self.review_at <= 1.0) {
            return Err(invalid(
                "review_at",
                format!("{} is not in (0, 1]", self.review_at),
            ));
        }
        if !(self.block_at >= self.review_at && self.block_at <= 1.0) {
            return Err(invalid(
                "block_at",
                format!(
                    "{} is not at least review_at ({}) and at most 1",
                    self.block_at, self.review_at
                ),
            ));
        }
        Ok(())
    }

    /// The first of [`RiskConfig::critical_namespaces`] that `namespace` matches, if any.
    pub fn critical_pattern(&self, namespace: &str) -> Option<&str> {
        self.critical_namespaces
            .iter()
            .find(|pattern| glob_match(pattern, namespace))
            .map(String::as_str)
    }
}

/// Matches `text` against `pattern`, where `*` stands for any run of characters.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(tail) = text.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len())
                .filter(|&i| tail.is_char_boundary(i))
                .any(|i| glob_match(rest, &tail[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_deny_the_control_plane() {
        let config = PolicyConfig::default();
        assert!(config.namespace_allowed("shop"));
        assert!(!config.namespace_allowed("kube-system"));
        let only_shop = PolicyConfig {
            allowed_namespaces: vec!["shop".into()],
            ..PolicyConfig::default()
        };
        assert!(only_shop.namespace_allowed("shop"));
        assert!(!only_shop.namespace_allowed("web"));
        assert_eq!(config.max_memory_bytes(), 8.0 * 1024.0 * 1024.0 * 1024.0);
        assert_eq!(config.max_cpu_cores(), 8.0);
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn reads_partial_config_and_refuses_unknown_keys() {
        let config: PolicyConfig =
            serde_json::from_str(r#"{"max_memory_limit": "4Gi"}"#).expect("valid config");
        assert_eq!(config.max_memory_limit, "4Gi");
        assert_eq!(config.allowed_kinds.len(), 5);
        let typo = serde_json::from_str::<PolicyConfig>(r#"{"max_memory": "4Gi"}"#);
        assert!(typo.is_err());
        let risk: RiskConfig = serde_json::from_str(r#"{"high_at": 0.7}"#).expect("valid config");
        assert_eq!((risk.medium_at, risk.high_at), (0.3, 0.7));
    }

    #[test]
    fn validation_names_the_field() {
        let bad_memory = PolicyConfig {
            max_memory_limit: "lots".into(),
            ..PolicyConfig::default()
        };
        assert_eq!(bad_memory.max_memory_bytes(), 0.0);
        assert_eq!(
            bad_memory.validate().map_err(|e| e.field),
            Err("max_memory_limit")
        );

        let mut risk = RiskConfig::default();
        assert_eq!(risk.validate(), Ok(()));
        risk.weights.rollback_complexity = -1.0;
        assert_eq!(
            risk.validate().map_err(|e| e.field),
            Err("weights.rollback_complexity")
        );
        risk.weights = RiskWeights {
            blast_radius: 0.0,
            resource_sensitivity: 0.0,
            rollback_complexity: 0.0,
            namespace_scope: 0.0,
        };
        assert_eq!(risk.validate().map_err(|e| e.field), Err("weights"));
        risk.weights = RiskWeights::default();
        risk.epsilon = 1.0;
        assert_eq!(risk.validate().map_err(|e| e.field), Err("epsilon"));
        risk.epsilon = 0.05;
        risk.high_at = 0.3;
        let err = risk.validate().expect_err("high_at equal to medium_at");
        assert_eq!(err.field, "high_at");
        assert!(err.to_string().starts_with("invalid `high_at`"), "{err}");
    }

    #[test]
    fn critical_namespaces_match_patterns() {
        let risk = RiskConfig::default();
        for ns in [
            "payments",
            "prod",
            "prod-eu",
            "shop-prod",
            "kube-system",
            "db",
        ] {
            assert!(risk.critical_pattern(ns).is_some(), "{ns}");
        }
        assert_eq!(risk.critical_pattern("prod-eu"), Some("prod-*"));
        for ns in ["shop", "production-like", "dbx", "preprod-x"] {
            assert_eq!(risk.critical_pattern(ns), None, "{ns}");
        }
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXbYc"));
        assert!(!glob_match("a*b", "ab-"));
    }
}
