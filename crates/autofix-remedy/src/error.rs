//! Errors of the remedy stage; each names the file (and field path) a human must look at.

use autofix_core::yaml::YamlError;
use autofix_core::{FieldPath, WorkloadRef};

/// Why a remediation cannot be located in, or written to, the GitOps repo.
#[derive(Debug, thiserror::Error)]
pub enum RemedyError {
    /// A file or folder of the repo cannot be read (missing, unreadable, not UTF-8).
    #[error("cannot read {file}")]
    Read {
        /// The file or folder, relative to the repo root ('.' for the root itself).
        file: String,
        /// The underlying IO error.
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid YAML, is too large, or breaks the reader's budget (e.g. an alias bomb).
    #[error("{file} is not valid YAML")]
    Yaml {
        /// The file, relative to the repo root.
        file: String,
        /// What the safe reader rejected.
        #[source]
        source: YamlError,
    },
    /// The span-keeping parser rejected a text the safe reader accepted.
    #[error("{file} cannot be parsed for editing")]
    Scan {
        /// The file, relative to the repo root.
        file: String,
        /// The parser's error, with its position.
        #[source]
        source: saphyr_parser::ScanError,
    },
    /// A kustomization, Flux Kustomization or Argo CD Application is malformed.
    #[error("{file}: {reason}")]
    Kustomization {
        /// The file holding the object.
        file: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A kustomization lists a resource, component or patch that does not exist in the repo.
    #[error("{file} refers to {entry}, which is not in the GitOps repo")]
    MissingResource {
        /// The kustomization file.
        file: String,
        /// The missing file or folder, relative to the repo root.
        entry: String,
    },
    /// No document of the repo builds the workload for the cluster.
    #[error("no manifest in the GitOps repo defines {workload} for cluster {cluster}")]
    NotFound {
        /// The workload looked for.
        workload: WorkloadRef,
        /// The cluster it runs in.
        cluster: String,
    },
    /// Several documents could build the workload and nothing tells which one the cluster uses.
    #[error(
        "{workload} for cluster {cluster} is defined in several places ({}); \
         no Flux Kustomization or Argo CD Application tells which one the cluster uses",
        candidates.join(", ")
    )]
    Ambiguous {
        /// The workload looked for.
        workload: WorkloadRef,
        /// The cluster it runs in.
        cluster: String,
        /// One line per candidate: the base file and the overlay that includes it.
        candidates: Vec<String>,
    },
    /// The workload, or the value to change, comes from something this crate cannot edit
    /// (a Helm chart, a regex patch target, a digest pin, an inline patch in flow style...).
    #[error("{file}: {reason}")]
    Unsupported {
        /// The file that holds the construct.
        file: String,
        /// What the construct is and what to do instead.
        reason: String,
    },
    /// No layer defines the field, nor a mapping or list it could be added to.
    #[error("{file}: cannot find or add {path}: {reason}")]
    PathNotFound {
        /// The file searched last.
        file: String,
        /// The path, relative to the document searched.
        path: FieldPath,
        /// Why the path cannot be added.
        reason: String,
    },
    /// The path crosses an alias or an anchored node: editing it would change other fields too.
    #[error("{file}: {path} goes through a YAML alias or anchor; edit it by hand")]
    Alias {
        /// The file.
        file: String,
        /// The path, relative to the document edited.
        path: FieldPath,
    },
    /// The value to change is a block scalar (`|` or `>`), which is not edited automatically.
    #[error("{file}: {path} is a block scalar; edit it by hand")]
    BlockScalar {
        /// The file.
        file: String,
        /// The path, relative to the document edited.
        path: FieldPath,
    },
    /// The value to change, or the mapping to add it to, is written in flow style (`{...}`).
    #[error("{file}: {path} is written in flow style ({{...}} or [...]); edit it by hand")]
    FlowCollection {
        /// The file.
        file: String,
        /// The path, relative to the document edited.
        path: FieldPath,
    },
    /// A JSON6902 patch cannot be applied.
    #[error("{file}: JSON patch {op} cannot be applied: {reason}")]
    JsonPatch {
        /// The file holding the patch.
        file: String,
        /// The operation, e.g. `replace /spec/replicas`.
        op: String,
        /// Why.
        reason: String,
    },
    /// After the edit, the rendered workload is not what the remediation asked for: the value
    /// did not change, or something else changed too.
    #[error("editing {file} does not give the expected workload: {path} differs after the edit")]
    NotEffective {
        /// The file edited.
        file: String,
        /// The first field of the rendered workload that differs from the expectation.
        path: String,
    },
}

impl RemedyError {
    /// True when the GitOps repo itself is broken (unreadable, invalid YAML, a malformed or
    /// dangling kustomization, a JSON patch that does not apply): a human must repair the repo.
    /// False when the repo is fine but this fix cannot be placed automatically (workload not
    /// found, ambiguous, unsupported construct, alias, block scalar...): an escalation.
    pub fn is_bad_input(&self) -> bool {
        match self {
            RemedyError::Read { .. }
            | RemedyError::Yaml { .. }
            | RemedyError::Scan { .. }
            | RemedyError::Kustomization { .. }
            | RemedyError::MissingResource { .. }
            | RemedyError::JsonPatch { .. } => true,
            RemedyError::NotFound { .. }
            | RemedyError::Ambiguous { .. }
            | RemedyError::Unsupported { .. }
            | RemedyError::PathNotFound { .. }
            | RemedyError::Alias { .. }
            | RemedyError::BlockScalar { .. }
            | RemedyError::FlowCollection { .. }
            | RemedyError::NotEffective { .. } => false,
        }
    }
}
