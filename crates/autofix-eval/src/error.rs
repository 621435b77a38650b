//! Why an evaluation cannot go on.

use std::path::PathBuf;

/// An evaluation error: bad input (a folder, an `expected.json`, an alert) or a failure of the
/// harness itself. A scenario the pipeline gets wrong is not an error but a failed score.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A folder given to the eval does not exist or cannot be listed.
    #[error("cannot read the folder {path}")]
    Folder {
        /// The folder.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// A folder holds neither `expected.json` nor scenario folders.
    #[error("{0}: no expected.json and no scenario folders in it")]
    NoScenario(PathBuf),
    /// A scenario file cannot be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// `expected.json` is not valid JSON of the scenario format.
    #[error("{path}: {source}")]
    Expected {
        /// The file.
        path: PathBuf,
        /// The failing JSON path and why.
        #[source]
        source: serde_path_to_error::Error<serde_json::Error>,
    },
    /// `alert.json` is not an Alertmanager webhook body naming one workload.
    #[error("{path}: {reason}")]
    Alert {
        /// The file.
        path: PathBuf,
        /// Why it is refused.
        reason: String,
    },
    /// The scenario's snapshot (`cluster/`, `logs/`) cannot be opened.
    #[error("{path}: snapshot")]
    Snapshot {
        /// The scenario folder.
        path: PathBuf,
        /// The snapshot error.
        #[source]
        source: Box<autofix_cluster::ClusterError>,
    },
    /// Copying a scenario's files into the scratch folder failed.
    #[error("cannot copy {path}")]
    Copy {
        /// The file or folder being copied.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// A git operation on the scratch repository failed.
    #[error("git, scenario {scenario}")]
    Git {
        /// The scenario.
        scenario: String,
        /// The git error.
        #[source]
        source: git2::Error,
    },
    /// The scratch repository is not usable by the pipeline.
    #[error("scratch repository of scenario {scenario}")]
    Gitops {
        /// The scenario.
        scenario: String,
        /// The gitops error.
        #[source]
        source: autofix_gitops::GitopsError,
    },
    /// The results cannot be turned into JSON.
    #[error("cannot serialize the results")]
    Json(#[source] serde_json::Error),
    /// MLflow refused or did not answer.
    #[error("MLflow")]
    Mlflow(#[source] autofix_tracking::ClientError),
}
