//! A scenario folder (see `shared/scenarios/FORMAT.md`) and its expected answer, and finding
//! the scenarios below the folders an eval is given.

use crate::EvalError;
use autofix_core::Incident;
use autofix_core::alert::WebhookPayload;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The file holding a scenario's answer.
pub const EXPECTED_FILE: &str = "expected.json";

/// The workload `expected.json` names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpectedWorkload {
    /// Kind, e.g. `Deployment`.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

/// One `fix_checks[]` entry: a field of a GitOps file on the fix branch and what it must be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FixCheck {
    /// File relative to `gitops/`.
    pub file: String,
    /// Dotted field path, `[name=X]` and `[N]` selecting list items.
    pub path: String,
    /// `equals`, `not_equals`, `quantity_gt`, `quantity_lt`, `absent` or `present`.
    pub op: String,
    /// The value compared with (unused by `absent` and `present`).
    #[serde(default)]
    pub value: Value,
}

/// The contents of `expected.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expected {
    /// Root-cause class, e.g. `oom_killed`.
    pub category: String,
    /// The workload at fault.
    pub workload: ExpectedWorkload,
    /// The container at fault.
    #[serde(default)]
    pub container: Option<String>,
    /// `pr`, `escalate` or `none`.
    pub action: String,
    /// False where no safe fix can be derived.
    #[serde(default)]
    pub fixable: bool,
    /// Checks on the fix branch (action `pr`).
    #[serde(default)]
    pub fix_checks: Vec<FixCheck>,
    /// Every line not needed by the fix must stay byte-identical (default true).
    #[serde(default = "yes")]
    pub unchanged_lines_outside_fix: bool,
    /// Strings that must never appear in any output.
    #[serde(default)]
    pub must_not_contain: Vec<String>,
    /// Why this is the answer.
    #[serde(default)]
    pub notes: String,
}

fn yes() -> bool {
    true
}

/// A scenario folder, read and checked: its answer and the incident its alert raises.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The folder's name.
    pub name: String,
    /// The folder.
    pub dir: PathBuf,
    /// The expected answer.
    pub expected: Expected,
    /// The incident of `alert.json`.
    pub incident: Incident,
}

impl Scenario {
    /// Reads `expected.json` and `alert.json` of a scenario folder; a malformed file is named
    /// with the failing JSON path.
    pub fn load(dir: &Path) -> Result<Scenario, EvalError> {
        let path = dir.join(EXPECTED_FILE);
        let bytes = read(&path)?;
        let expected =
            serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(&bytes))
                .map_err(|source| EvalError::Expected {
                    path: path.clone(),
                    source,
                })?;
        let alert = dir.join("alert.json");
        let refused = |reason: String| EvalError::Alert {
            path: alert.clone(),
            reason,
        };
        let payload =
            WebhookPayload::from_json(&read(&alert)?).map_err(|e| refused(e.to_string()))?;
        let incident = Incident::from_payload(&payload).map_err(|e| refused(e.to_string()))?;
        let name = dir.file_name().map_or_else(
            || dir.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        Ok(Scenario {
            name,
            dir: dir.to_path_buf(),
            expected,
            incident,
        })
    }
}

fn read(path: &Path) -> Result<Vec<u8>, EvalError> {
    std::fs::read(path).map_err(|source| EvalError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The scenarios of the given folders, in order: a folder holding `expected.json` is one
/// scenario, any other folder contributes its sub-folders that hold one (sorted by name). A
/// missing folder, or one with no scenario at all, is an error.
pub fn discover(dirs: &[PathBuf]) -> Result<Vec<Scenario>, EvalError> {
    let mut scenarios = Vec::new();
    for dir in dirs {
        if dir.join(EXPECTED_FILE).is_file() {
            scenarios.push(Scenario::load(dir)?);
            continue;
        }
        let entries = std::fs::read_dir(dir).map_err(|source| EvalError::Folder {
            path: dir.clone(),
            source,
        })?;
        let mut found: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join(EXPECTED_FILE).is_file())
            .collect();
        if found.is_empty() {
            return Err(EvalError::NoScenario(dir.clone()));
        }
        found.sort();
        for path in found {
            scenarios.push(Scenario::load(&path)?);
        }
    }
    Ok(scenarios)
}
