//! Domain types and pure logic of kube-autofix, with no IO.
//!
//! Every other crate speaks these types: an [`alert::WebhookPayload`] from Alertmanager becomes an
//! [`incident::Incident`]; the cluster crate gathers [`evidence::Evidence`] for it; the diagnose
//! crate turns evidence into a [`diagnosis::Diagnosis`] carrying a [`remediation::Remediation`]
//! (field changes on the live workload, addressed by [`path::FieldPath`]); the policy crate answers
//! with a [`verdict::Verdict`]. Small helpers that several stages share live here too:
//! [`quantity`] arithmetic, the label-only [`hint`] of an alert's workload (used to group alerts),
//! [`redact`]ion of secrets and safe [`yaml`] reading.

pub mod alert;
pub mod category;
pub mod diagnosis;
pub mod error;
pub mod evidence;
pub mod hint;
pub mod incident;
pub mod path;
pub mod quantity;
pub mod redact;
pub mod remediation;
pub mod verdict;
pub mod workload;
pub mod yaml;

pub use category::{Action, Category};
pub use diagnosis::{Alternative, Attempt, Diagnosis, Finding};
pub use evidence::Evidence;
pub use hint::{WorkloadHint, workload_hint};
pub use incident::{Incident, IncidentKey, short_digest};
pub use path::FieldPath;
pub use remediation::{FieldChange, Remediation};
pub use verdict::{RiskFactor, RiskLevel, RiskScore, Validation, Verdict, Violation};
pub use workload::{WorkloadKind, WorkloadRef};
