//! Locates where a live workload value is defined in the GitOps repo and edits that file
//! losslessly.
//!
//! The remedy stage gets a [`Remediation`](autofix_core::Remediation): field changes on the live
//! workload object. [`GitopsRepo::load`] reads every YAML file of the repo once;
//! [`GitopsRepo::locate`] follows the cluster's entry points (Flux Kustomizations under
//! `clusters/<cluster>/`, Argo CD Applications) through kustomizations to the base document and
//! the [`Layer`]s (patches, `images:` overrides...) applied on top, giving [`WorkloadSources`];
//! [`plan_edits`] writes each value in the outermost layer that defines it and returns
//! [`FileEdit`]s, checked with [`GitopsRepo::render`], which layers the documents the way
//! kustomize does.
//!
//! A workload deployed by a Helm chart ([`GitopsRepo::locate_any`] gives [`Located::Helm`]) is
//! fixed in the chart's values written in the repo: [`plan_helm_edits`] maps each changed live
//! field to the one values key that holds its value under the same key names, and refuses
//! when there is none or more than one.
//!
//! Edits never re-serialize YAML: `tree` builds a small tree of byte spans from saphyr-parser
//! events, and `splice` replaces exactly a scalar's bytes, or inserts new lines in the file's
//! own indentation, so every other byte (comments, quoting, key order, `---`) stays identical.
//!
//! Layout: `repo` (loading), `locate` (entry points and kustomize traversal), `render`
//! (strategic merge, `jsonpatch`, `image` overrides, and which layer defines a field), `plan`
//! (remediation to edits), `tree` + `splice` + `format` (lossless editing), `error`.

mod error;
mod format;
mod helm;
mod image;
mod jsonpatch;
mod locate;
mod plan;
mod render;
mod repo;
mod splice;
mod tree;

pub use error::RemedyError;
pub use helm::{ChartRelease, HelmValues, ValuesSource, plan_helm_edits};
pub use locate::{DocRef, Embedded, Layer, Located, Owner, Scope, WorkloadSources};
pub use plan::{FileEdit, plan_edits};
pub use repo::GitopsRepo;

use autofix_core::FieldPath;
use serde_json::Value;
use std::ops::Range;

/// Sets `path` of document `doc` (counting non-empty documents) of a YAML `text` to `value` the
/// way [`plan_edits`] writes each value (adding missing keys), returning the new text and the
/// byte range of `text` the new bytes replace; every other byte is kept.
///
/// The pipeline goes through [`plan_edits`]; this single edit is public so that the fuzz target
/// `fuzz/fuzz_targets/yaml_edit.rs` can check it on arbitrary YAML texts.
pub fn set_field(
    text: &str,
    doc: usize,
    path: &FieldPath,
    value: &Value,
) -> Result<(String, Range<usize>), RemedyError> {
    splice::set_spanned(text, "<text>", doc, path, value)
}
