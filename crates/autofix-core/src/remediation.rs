//! Remediations are data: field changes on the live workload, each with its reason.
//!
//! Rules and the LLM both produce them; the remedy stage turns them into file edits and the
//! policy stage checks both the data (declared paths only) and the edited files.

use crate::path::FieldPath;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One field to change on the workload object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    /// Path on the live workload object.
    pub path: FieldPath,
    /// The live value now (`None` when the field is absent).
    pub from: Option<Value>,
    /// The value it must take.
    pub to: Value,
    /// Why, in one sentence.
    pub reason: String,
}

/// A fix: what to change and the strategy behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Remediation {
    /// Short name of the strategy, e.g. `revert to revision 3` or `raise memory limit`.
    pub strategy: String,
    /// The field changes, in order.
    pub changes: Vec<FieldChange>,
}
