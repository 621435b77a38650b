//! Validates edited manifests (Kubernetes schema, safety policy) and scores the risk of a change.
//!
//! [`validate`] answers "may this fix ship?": it checks the effective (rendered) workload
//! object before and after the fix, and the edited GitOps files, and returns every broken rule
//! as a [`Violation`](autofix_core::Violation). [`assess_risk`] answers "how careful must the
//! review be?" with a [`RiskScore`](autofix_core::RiskScore) of four explained factors.
//!
//! Layout:
//! - [`config`]: [`PolicyConfig`] and [`RiskConfig`], as read from the config file, and their
//!   validation;
//! - `validate`: the validation entry point, running the rule modules in order:
//!   `scope` (kind and namespace), `schema` (k8s-openapi types, unknown fields),
//!   `files` (the edited files, document by document), `safety` (privileges and host
//!   access), `limits` (resource limits), `diff` (only declared paths change);
//! - [`lint`]: the checks of one standalone manifest object (`autofix validate`), reusing
//!   `validate` and `schema`;
//! - [`risk`]: the risk factors and their weighted geometric mean (see `docs/risk-model.md`);
//! - `paths` and `pod`: shared helpers to address fields and containers.

pub mod config;
mod diff;
mod files;
mod limits;
pub mod lint;
mod paths;
mod pod;
pub mod risk;
mod safety;
mod schema;
mod scope;
mod validate;

pub use config::{ConfigError, PolicyConfig, RiskConfig, glob_match};
pub use files::EditedFile;
pub use lint::{Lint, lint};
pub use risk::{RiskInput, assess_risk, combine};
pub use validate::{ValidationInput, validate};
