//! Helm charts whose values are written in the GitOps repo: each changed field of the live
//! workload is mapped to a values key *by value* and edited there, losslessly.
//!
//! Helm templates are not evaluated, so the mapping from a live field to a values key is
//! inferred: a values scalar maps to a live field when it holds the live value and its key path
//! ends with the same key names as the live path (at least two, ignoring `[name=X]` selectors
//! and the pod-template prefix); `resources.limits.memory` or `cart.resources.limits.memory` for
//! `spec.template.spec.containers[name=cart].resources.limits.memory`. A container `image` maps
//! to the `tag` of a values mapping whose `repository` (with `registry`, or `name`) spells the
//! live image's repository and whose `tag` is the live tag. Exactly one match per change is
//! edited; none or several is [`RemedyError::Unsupported`], never a guess.
//!
//! Values are read from, lowest precedence first: a local chart's `values.yaml`; Flux
//! `spec.chart.spec.valuesFiles` of a local chart, `valuesFrom` ConfigMaps made by a kustomize
//! `configMapGenerator`, `spec.values`; Argo CD `helm.valueFiles` (relative to the chart),
//! `helm.values` (a literal block), `helm.valuesObject`; kustomize `helmCharts[]` `valuesFile`,
//! `additionalValuesFiles`, `valuesInline`. A match that a higher-precedence source overrides
//! is not a match.

use crate::error::RemedyError;
use crate::image::ImageRef;
use crate::locate::{DocRef, Embedded, HelmFound, HelmOrigin, normalize, str_at};
use crate::plan::{FileEdit, Write};
use crate::repo::{GitopsRepo, join, parent};
use autofix_core::path::{FieldPath, Segment};
use autofix_core::quantity::Quantity;
use autofix_core::{Remediation, WorkloadRef};
use serde_json::Value;
use std::collections::BTreeMap;

/// The Helm releases that may deploy a workload, and where their values are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelmValues {
    /// The cluster the releases were located for.
    pub cluster: String,
    /// The workload looked for.
    pub workload: WorkloadRef,
    /// Every release met on the way to the cluster.
    pub releases: Vec<ChartRelease>,
}

/// One Helm release: a Flux HelmRelease, an Argo CD Application source, or a kustomize
/// `helmCharts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartRelease {
    /// The file that declares the release.
    pub file: String,
    /// The release name, when known.
    pub name: Option<String>,
    /// The namespace the release installs into, when the repo tells it.
    pub namespace: Option<String>,
    /// Where its values are written in the repo, lowest precedence first.
    pub values: Vec<ValuesSource>,
    /// Dotted values keys set outside the values sources (Argo CD `helm.parameters`): a match
    /// there cannot be edited.
    pub overrides: Vec<String>,
    /// Why values of this release cannot be trusted to map to the workload (e.g. post-renderers).
    pub blocked: Option<String>,
}

/// A mapping of Helm values inside a repo document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValuesSource {
    /// The document (or YAML block embedded in one) holding the values.
    pub doc: DocRef,
    /// The values mapping's path in that document (empty: the whole document).
    pub at: FieldPath,
}

impl ValuesSource {
    fn file_doc(file: &str, doc: usize, at: FieldPath) -> ValuesSource {
        ValuesSource {
            doc: DocRef {
                file: file.to_string(),
                doc,
                embedded: None,
            },
            at,
        }
    }

    /// `file` as shown to people, with the values path when it is not the whole document.
    fn describe(&self, rel: &FieldPath) -> String {
        let mut path = self.at.0.clone();
        if let Some(inline) = &self.doc.embedded {
            path = inline.at.0.clone();
        }
        path.extend(rel.0.iter().cloned());
        format!("{} {}", self.doc.file, FieldPath(path))
    }

    /// The values mapping, if the document holds one there.
    fn read(&self, repo: &GitopsRepo) -> Option<Value> {
        let doc = repo.documents(&self.doc.file).ok()?.get(self.doc.doc)?;
        let root = match &self.doc.embedded {
            None => doc.clone(),
            Some(inline) => {
                let text = inline.at.get(doc)?.as_str()?;
                autofix_core::yaml::parse_documents(text)
                    .ok()?
                    .into_iter()
                    .nth(inline.doc)?
            }
        };
        self.at.get(&root).cloned()
    }
}

/// A scalar as text (`1` and `"1"` read the same).
fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn key_path(keys: &[&str]) -> FieldPath {
    FieldPath(keys.iter().map(|k| Segment::Key(k.to_string())).collect())
}

fn concat(a: &FieldPath, b: &FieldPath) -> FieldPath {
    FieldPath([a.0.clone(), b.0.clone()].concat())
}

impl HelmValues {
    /// Reads the values sources of every release met while walking.
    pub(crate) fn build(
        repo: &GitopsRepo,
        cluster: &str,
        workload: &WorkloadRef,
        found: &[HelmFound],
    ) -> HelmValues {
        let mut releases: Vec<ChartRelease> = Vec::new();
        for f in found {
            if let Some(release) = release_of(repo, f)
                && !releases.contains(&release)
            {
                releases.push(release);
            }
        }
        HelmValues {
            cluster: cluster.to_string(),
            workload: workload.clone(),
            releases,
        }
    }

    /// The error [`GitopsRepo::locate`] gives for a workload that comes from a Helm chart.
    pub fn refusal(&self) -> RemedyError {
        let release = self
            .releases
            .iter()
            .find(|r| r.name.as_deref() == Some(&self.workload.name))
            .or_else(|| self.releases.first());
        RemedyError::Unsupported {
            file: release.map(|r| r.file.clone()).unwrap_or_default(),
            reason: format!(
                "{} is not declared as a manifest and may come from this Helm chart; \
                 Helm values are not edited automatically",
                self.workload
            ),
        }
    }

    /// Every file that holds values of a candidate release, for error messages.
    fn files(releases: &[&ChartRelease]) -> String {
        let mut files: Vec<&str> = releases
            .iter()
            .flat_map(|r| {
                std::iter::once(r.file.as_str()).chain(r.values.iter().map(|v| v.doc.file.as_str()))
            })
            .collect();
        files.sort();
        files.dedup();
        files.join(", ")
    }

    /// The releases that deploy the workload: those installing into its namespace (or an
    /// unknown one) whose name is the live `app.kubernetes.io/instance` label, the workload's
    /// name, or a `<release>-` prefix of it; else the only release there is.
    fn candidates(&self, live: &Value) -> Result<Vec<&ChartRelease>, RemedyError> {
        let w = &self.workload;
        let in_ns: Vec<&ChartRelease> = self
            .releases
            .iter()
            .filter(|r| r.namespace.as_deref().is_none_or(|ns| ns == w.namespace))
            .collect();
        let labels = live.pointer("/metadata/labels");
        let instance = labels
            .and_then(|l| {
                l.get("app.kubernetes.io/instance")
                    .or_else(|| l.get("release"))
            })
            .and_then(Value::as_str);
        let named: Vec<&ChartRelease> = in_ns
            .iter()
            .copied()
            .filter(|r| {
                r.name.as_deref().is_some_and(|n| {
                    Some(n) == instance || n == w.name || w.name.starts_with(&format!("{n}-"))
                })
            })
            .collect();
        let chosen = match (named.is_empty(), in_ns.len()) {
            (false, _) => named,
            (true, 1) => in_ns,
            _ => {
                let all: Vec<&ChartRelease> = self.releases.iter().collect();
                return Err(RemedyError::Unsupported {
                    file: Self::files(&all),
                    reason: format!(
                        "{w} is not declared as a manifest, and none of these Helm releases is \
                         recognisably the one that deploys it; edit its values by hand"
                    ),
                });
            }
        };
        if let Some(blocked) = chosen
            .iter()
            .find_map(|r| r.blocked.as_ref().map(|why| (r.file.clone(), why.clone())))
        {
            return Err(RemedyError::Unsupported {
                file: blocked.0,
                reason: blocked.1,
            });
        }
        Ok(chosen)
    }
}

/// One value to write: where, and what.
struct Hit<'a> {
    release: &'a ChartRelease,
    source: &'a ValuesSource,
    rel: FieldPath,
    value: Value,
}

/// Edits of the Helm values that give the workload every change of `remediation`: each change
/// goes to the one values key that holds the live value under matching key names. `live` is
/// the live workload object (for values the changes do not carry, and the release labels).
///
/// The edits cannot be checked by rendering (templates are not evaluated); validate the live
/// object with the changes applied instead.
pub fn plan_helm_edits(
    repo: &GitopsRepo,
    helm: &HelmValues,
    remediation: &Remediation,
    live: &Value,
) -> Result<Vec<FileEdit>, RemedyError> {
    let releases = helm.candidates(live)?;
    let trees: Vec<Vec<Option<Value>>> = releases
        .iter()
        .map(|r| r.values.iter().map(|v| v.read(repo)).collect())
        .collect();
    let mut texts: BTreeMap<String, String> = BTreeMap::new();
    let mut carried: BTreeMap<String, Vec<FieldPath>> = BTreeMap::new();
    for change in &remediation.changes {
        let from = change
            .from
            .clone()
            .or_else(|| change.path.get(live).cloned())
            .ok_or_else(|| unsupported(&releases, format!(
                "{} is not set on the live workload; adding a field through Helm values is not supported",
                change.path
            )))?;
        for (path, from, to) in leaves(&change.path, &from, &change.to, &releases)? {
            let hits = find(&releases, &trees, &path, &from, &to)?;
            let hit = match hits.len() {
                1 => hits.into_iter().next().expect("one hit"),
                0 => {
                    return Err(unsupported(
                        &releases,
                        format!(
                            "no Helm values key for {path} (live value {}) is written in the repo; \
                             it may be a chart default or be set by the chart's templates",
                            show(&from)
                        ),
                    ));
                }
                _ => {
                    let places: Vec<String> =
                        hits.iter().map(|h| h.source.describe(&h.rel)).collect();
                    return Err(unsupported(
                        &releases,
                        format!(
                            "{path} (live value {}) may come from several Helm values keys ({}); \
                             nothing tells which one the chart uses",
                            show(&from),
                            places.join(", ")
                        ),
                    ));
                }
            };
            let dotted = dotted(&hit.rel);
            if hit.release.overrides.contains(&dotted) {
                return Err(RemedyError::Unsupported {
                    file: hit.release.file.clone(),
                    reason: format!(
                        "the Helm value {dotted} is also set as a parameter of the release; \
                         edit it by hand"
                    ),
                });
            }
            let write = match &hit.source.doc.embedded {
                None => Write {
                    doc: hit.source.doc.clone(),
                    path: concat(&hit.source.at, &hit.rel),
                    value: hit.value.clone(),
                },
                Some(_) => Write {
                    doc: hit.source.doc.clone(),
                    path: hit.rel.clone(),
                    value: hit.value.clone(),
                },
            };
            write.record(
                repo,
                &hit.release.file,
                &change.path,
                &mut texts,
                &mut carried,
            )?;
        }
    }
    Ok(crate::plan::file_edits(repo, texts, carried))
}

fn unsupported(releases: &[&ChartRelease], reason: String) -> RemedyError {
    RemedyError::Unsupported {
        file: HelmValues::files(releases),
        reason: format!("{reason}; Helm values are only edited when the mapping is unambiguous"),
    }
}

fn show(value: &Value) -> String {
    text_of(value).unwrap_or_else(|| value.to_string())
}

/// `a.b[0].c` without selectors, as Helm's `--set` spells keys.
fn dotted(path: &FieldPath) -> String {
    path.to_string()
}

/// The scalar changes a change amounts to: a mapping given for a mapping is split into its
/// fields; fields already at their value are dropped; new fields are refused.
fn leaves(
    path: &FieldPath,
    from: &Value,
    to: &Value,
    releases: &[&ChartRelease],
) -> Result<Vec<(FieldPath, Value, Value)>, RemedyError> {
    match (from, to) {
        (a, b) if a == b => Ok(Vec::new()),
        (Value::Object(a), Value::Object(b)) => {
            let mut out = Vec::new();
            for (k, want) in b {
                let Some(now) = a.get(k) else {
                    return Err(unsupported(
                        releases,
                        format!(
                            "{path}.{k} is not set on the live workload; adding a field through Helm values is not supported"
                        ),
                    ));
                };
                out.extend(leaves(&path.key(k), now, want, releases)?);
            }
            if let Some(k) = a.keys().find(|k| !b.contains_key(*k)) {
                return Err(unsupported(
                    releases,
                    format!(
                        "the new value of {path} leaves out {k}; removing fields is not supported"
                    ),
                ));
            }
            Ok(out)
        }
        (Value::Object(_) | Value::Array(_), _) | (_, Value::Object(_) | Value::Array(_)) => {
            Err(unsupported(
                releases,
                format!("{path} is not a single value; only scalars are mapped to Helm values"),
            ))
        }
        _ => Ok(vec![(path.clone(), from.clone(), to.clone())]),
    }
}

/// The key names at the end of a live path that a values key must share: those after the last
/// list selector, or after the pod-template / `spec` prefix.
fn trailing_keys(path: &FieldPath) -> Vec<&str> {
    let start = path
        .0
        .iter()
        .rposition(|s| !matches!(s, Segment::Key(_)))
        .map_or(0, |i| i + 1);
    let mut keys: Vec<&str> = path.0[start..]
        .iter()
        .filter_map(|s| match s {
            Segment::Key(k) => Some(k.as_str()),
            _ => None,
        })
        .collect();
    if start == 0 {
        for prefix in [
            &["spec", "jobTemplate", "spec", "template", "spec"][..],
            &["spec", "template", "spec"],
            &["spec"],
        ] {
            if keys.starts_with(prefix) {
                keys.drain(..prefix.len());
                break;
            }
        }
    }
    keys
}

/// Whether a values key path lines up with the live trailing keys: they share at least the
/// last two key names, and one of the two ends there.
fn keys_match(values_path: &FieldPath, live: &[&str]) -> bool {
    let mine: Vec<&str> = values_path
        .0
        .iter()
        .filter_map(|s| match s {
            Segment::Key(k) => Some(k.as_str()),
            _ => None,
        })
        .collect();
    let common = mine
        .iter()
        .rev()
        .zip(live.iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    common >= 2 && (common == mine.len() || common == live.len())
}

/// Whether a values scalar holds the live value: equal, equal as text (`1` and `"1"`), or,
/// under `resources`, the same quantity (`0.5` and `500m`).
fn same_value(values: &Value, live: &Value, quantities: bool) -> bool {
    if values == live {
        return true;
    }
    match (text_of(values), text_of(live)) {
        (Some(a), Some(b)) if a == b => true,
        (Some(_), Some(_)) if quantities => {
            match (Quantity::from_value(values), Quantity::from_value(live)) {
                (Some(a), Some(b)) => (a.0 - b.0).abs() <= f64::EPSILON * a.0.abs().max(1.0),
                _ => false,
            }
        }
        _ => false,
    }
}

/// Every scalar of a values tree with its path.
fn scalars<'v>(node: &'v Value, at: FieldPath, out: &mut Vec<(FieldPath, &'v Value)>) {
    match node {
        Value::Object(map) => {
            for (k, v) in map {
                scalars(v, at.key(k), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let mut path = at.clone();
                path.0.push(Segment::Index(i));
                scalars(v, path, out);
            }
        }
        Value::Null => {}
        _ => out.push((at, node)),
    }
}

/// Every mapping of a values tree with its path.
fn mappings<'v>(node: &'v Value, at: FieldPath, out: &mut Vec<(FieldPath, &'v Value)>) {
    match node {
        Value::Object(map) => {
            out.push((at.clone(), node));
            for (k, v) in map {
                mappings(v, at.key(k), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let mut path = at.clone();
                path.0.push(Segment::Index(i));
                mappings(v, path, out);
            }
        }
        _ => {}
    }
}

/// The values keys that carry one scalar change, in every candidate release, leaving out those
/// a higher-precedence source of the same release overrides.
fn find<'a>(
    releases: &[&'a ChartRelease],
    trees: &[Vec<Option<Value>>],
    path: &FieldPath,
    from: &Value,
    to: &Value,
) -> Result<Vec<Hit<'a>>, RemedyError> {
    let image = path.0.last() == Some(&Segment::Key("image".into()));
    let mut hits = Vec::new();
    for (r, release) in releases.iter().enumerate() {
        for (s, source) in release.values.iter().enumerate() {
            let Some(tree) = &trees[r][s] else { continue };
            let mut found: Vec<(FieldPath, Value)> = Vec::new();
            if image {
                let (old, new) = image_change(path, from, to, releases)?;
                let mut maps = Vec::new();
                mappings(tree, FieldPath::default(), &mut maps);
                for (at, map) in maps {
                    if image_matches(map, &old) {
                        found.push((at.key("tag"), Value::String(new.clone())));
                    }
                }
            } else {
                let live_keys = trailing_keys(path);
                let quantities = live_keys.contains(&"resources");
                let mut leaves = Vec::new();
                scalars(tree, FieldPath::default(), &mut leaves);
                for (at, value) in leaves {
                    if keys_match(&at, &live_keys) && same_value(value, from, quantities) {
                        found.push((at, to.clone()));
                    }
                }
            }
            for (rel, value) in found {
                let overridden = trees[r][s + 1..]
                    .iter()
                    .flatten()
                    .any(|later| rel.get(later).is_some());
                if !overridden {
                    hits.push(Hit {
                        release,
                        source,
                        rel,
                        value,
                    });
                }
            }
        }
    }
    Ok(hits)
}

/// The live image and the new tag of an image change; only tag changes are mapped.
fn image_change(
    path: &FieldPath,
    from: &Value,
    to: &Value,
    releases: &[&ChartRelease],
) -> Result<(ImageRef, String), RemedyError> {
    let refuse = |why: &str| unsupported(releases, format!("{path}: {why}"));
    let (Some(from), Some(to)) = (from.as_str(), to.as_str()) else {
        return Err(refuse("the image is not a string"));
    };
    let (old, new) = (ImageRef::parse(from), ImageRef::parse(to));
    if old.digest.is_some() || new.digest.is_some() {
        return Err(refuse(
            "images pinned by digest are not mapped to Helm values",
        ));
    }
    if old.name != new.name {
        return Err(refuse(
            "the fix changes the image repository; only tag changes are mapped to Helm values",
        ));
    }
    match (old.tag.is_some(), new.tag.clone()) {
        (true, Some(tag)) => Ok((old, tag)),
        _ => Err(refuse(
            "the image has no tag to map to a Helm `image.tag` value",
        )),
    }
}

/// Whether a values mapping spells the live image: its `tag` is the live tag, and its
/// `repository` (after `registry/`) or `name` is the live repository.
fn image_matches(map: &Value, live: &ImageRef) -> bool {
    let tag = map.get("tag").and_then(text_of);
    if tag.is_none() || tag != live.tag {
        return false;
    }
    let registry = map.get("registry").and_then(Value::as_str);
    ["repository", "name"].iter().any(|key| {
        let Some(repository) = map.get(*key).and_then(Value::as_str) else {
            return false;
        };
        let full = match registry {
            Some(registry) if !registry.is_empty() => {
                format!("{}/{repository}", registry.trim_end_matches('/'))
            }
            _ => repository.to_string(),
        };
        full == live.name || repository == live.name
    })
}

/// The release a walked document declares, with its values sources.
fn release_of(repo: &GitopsRepo, found: &HelmFound) -> Option<ChartRelease> {
    let file = found.doc.file.as_str();
    let doc = repo.documents(file).ok()?.get(found.doc.doc)?;
    let key = |k: &str| Segment::Key(k.to_string());
    let mut release = ChartRelease {
        file: file.to_string(),
        name: found.release.clone(),
        namespace: None,
        values: Vec::new(),
        overrides: Vec::new(),
        blocked: None,
    };
    let local_values = |dir: &str, release: &mut ChartRelease| {
        let values = join(dir, "values.yaml");
        if repo.contains(&values) {
            release
                .values
                .push(ValuesSource::file_doc(&values, 0, FieldPath::default()));
        }
    };
    match &found.origin {
        HelmOrigin::Flux => {
            let spec = doc.get("spec").unwrap_or(&Value::Null);
            let target = str_at(spec, "targetNamespace");
            release.namespace = target
                .or_else(|| doc.pointer("/metadata/namespace").and_then(Value::as_str))
                .map(String::from);
            if str_at(spec, "releaseName").is_none()
                && let (Some(ns), Some(name)) = (target, doc.pointer("/metadata/name"))
            {
                release.name = name.as_str().map(|n| format!("{ns}-{n}"));
            }
            let chart = spec.pointer("/chart/spec").unwrap_or(&Value::Null);
            let from_git =
                chart.pointer("/sourceRef/kind").and_then(Value::as_str) == Some("GitRepository");
            if from_git && let Some(dir) = str_at(chart, "chart").and_then(|c| normalize("", c)) {
                match chart.get("valuesFiles").and_then(Value::as_array) {
                    Some(files) => {
                        for f in files.iter().filter_map(Value::as_str) {
                            if let Some(f) = normalize("", f).filter(|f| repo.contains(f)) {
                                release.values.push(ValuesSource::file_doc(
                                    &f,
                                    0,
                                    FieldPath::default(),
                                ));
                            }
                        }
                    }
                    None => local_values(&dir, &mut release),
                }
            }
            for entry in spec
                .get("valuesFrom")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if str_at(entry, "kind") != Some("ConfigMap") || entry.get("targetPath").is_some() {
                    continue;
                }
                let (Some(name), key) = (
                    str_at(entry, "name"),
                    str_at(entry, "valuesKey").unwrap_or("values.yaml"),
                ) else {
                    continue;
                };
                for f in generated_config_map(repo, parent(file), name, key) {
                    release
                        .values
                        .push(ValuesSource::file_doc(&f, 0, FieldPath::default()));
                }
            }
            if spec.get("values").is_some() {
                release.values.push(ValuesSource::file_doc(
                    file,
                    found.doc.doc,
                    key_path(&["spec", "values"]),
                ));
            }
            if spec
                .get("postRenderers")
                .and_then(Value::as_array)
                .is_some_and(|p| !p.is_empty())
            {
                release.blocked = Some(
                    "the HelmRelease has post-renderers, which may change the workload after the \
                     chart; edit it by hand"
                        .into(),
                );
            }
        }
        HelmOrigin::Argo { source, chart_dir } => {
            release.namespace = doc
                .pointer("/spec/destination/namespace")
                .and_then(Value::as_str)
                .map(String::from);
            let src = source.get(doc)?;
            let helm_at = source.key("helm");
            let helm = src.get("helm").unwrap_or(&Value::Null);
            if let Some(dir) = chart_dir {
                local_values(dir, &mut release);
                for f in helm
                    .get("valueFiles")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    match normalize(dir, f).filter(|f| repo.contains(f) && !f.starts_with('$')) {
                        Some(f) => {
                            release
                                .values
                                .push(ValuesSource::file_doc(&f, 0, FieldPath::default()))
                        }
                        None => {
                            release.blocked.get_or_insert(format!(
                                "the values file {f} is not in the GitOps repo, so the \
                                 effective values are unknown; edit them by hand"
                            ));
                        }
                    }
                }
            }
            if helm.get("values").and_then(Value::as_str).is_some() {
                release.values.push(ValuesSource {
                    doc: DocRef {
                        file: file.to_string(),
                        doc: found.doc.doc,
                        embedded: Some(Embedded {
                            at: helm_at.key("values"),
                            doc: 0,
                        }),
                    },
                    at: FieldPath::default(),
                });
            }
            if helm.get("valuesObject").is_some() {
                release.values.push(ValuesSource::file_doc(
                    file,
                    found.doc.doc,
                    helm_at.key("valuesObject"),
                ));
            }
            release.overrides = helm
                .get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|p| str_at(p, "name").map(String::from))
                .collect();
        }
        HelmOrigin::Kustomize { dir, index } => {
            let chart = doc.get("helmCharts")?.get(*index)?;
            release.namespace = str_at(chart, "namespace")
                .or_else(|| str_at(doc, "namespace"))
                .map(String::from);
            let home = doc
                .pointer("/helmGlobals/chartHome")
                .and_then(Value::as_str)
                .unwrap_or("charts");
            if let (Some(name), Some(home)) = (str_at(chart, "name"), normalize(dir, home)) {
                local_values(&join(&home, name), &mut release);
            }
            let mut files: Vec<&str> = str_at(chart, "valuesFile").into_iter().collect();
            files.extend(
                chart
                    .get("additionalValuesFiles")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str),
            );
            for f in files {
                if let Some(f) = normalize(dir, f).filter(|f| repo.contains(f)) {
                    release
                        .values
                        .push(ValuesSource::file_doc(&f, 0, FieldPath::default()));
                }
            }
            if chart.get("valuesInline").is_some() {
                release.values.push(ValuesSource::file_doc(
                    file,
                    found.doc.doc,
                    FieldPath(vec![
                        key("helmCharts"),
                        Segment::Index(*index),
                        key("valuesInline"),
                    ]),
                ));
            }
        }
    }
    Some(release)
}

/// Files a kustomize `configMapGenerator` turns into key `key` of ConfigMap `name`: from the
/// kustomization beside the HelmRelease, else from any kustomization of the repo.
fn generated_config_map(repo: &GitopsRepo, dir: &str, name: &str, key: &str) -> Vec<String> {
    let from = |kustomization: &str| -> Vec<String> {
        let kdir = parent(kustomization);
        let Some(doc) = repo.documents(kustomization).ok().and_then(|d| d.first()) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for generator in doc
            .get("configMapGenerator")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|g| str_at(g, "name") == Some(name))
        {
            for entry in generator
                .get("files")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                let (k, path) = match entry.split_once('=') {
                    Some((k, path)) => (k, path),
                    None => (entry.rsplit('/').next().unwrap_or(entry), entry),
                };
                if k == key
                    && let Some(f) = normalize(kdir, path).filter(|f| repo.contains(f))
                {
                    out.push(f);
                }
            }
        }
        out
    };
    if let Some(k) = repo.kustomization_in(dir) {
        let here = from(&k);
        if !here.is_empty() {
            return here;
        }
    }
    let kustomizations: Vec<String> = repo
        .files()
        .filter(|f| repo.kustomization_in(parent(f)).as_deref() == Some(*f))
        .map(String::from)
        .collect();
    kustomizations.iter().flat_map(|k| from(k)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use autofix_core::{FieldChange, WorkloadKind};
    use serde_json::json;

    const RELEASE: &str = "\
# The cart service, deployed from the shared chart.
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: cart
  namespace: shop
spec:
  interval: 10m
  chart:
    spec:
      chart: web-service
      version: \"1.4.x\"
      sourceRef:
        kind: HelmRepository
        name: internal
  values:
    replicaCount: 2   # scaled by the HPA
    image:
      repository: registry.example.com/shop/cart
      tag: \"2.3.1\"
    resources:
      requests:
        memory: 256Mi  # measured p95
      limits:
        cpu: 500m
        memory: 256Mi  # keep in sync with JAVA_OPTS
";

    fn repo(files: &[(&str, &str)]) -> GitopsRepo {
        GitopsRepo::from_texts(files.iter().map(|(f, t)| (f.to_string(), t.to_string()))).unwrap()
    }

    fn cart() -> WorkloadRef {
        WorkloadRef {
            kind: WorkloadKind::Deployment,
            namespace: "shop".into(),
            name: "cart".into(),
        }
    }

    fn live() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "cart", "namespace": "shop", "labels": {
                "app.kubernetes.io/instance": "cart",
                "app.kubernetes.io/managed-by": "Helm"}},
            "spec": {"template": {"spec": {"containers": [{
                "name": "cart",
                "image": "registry.example.com/shop/cart:2.3.1",
                "resources": {"requests": {"memory": "256Mi"},
                              "limits": {"cpu": "500m", "memory": "256Mi"}}
            }]}}}
        })
    }

    fn fix(path: &str, from: &str, to: &str) -> Remediation {
        Remediation {
            strategy: "test".into(),
            changes: vec![FieldChange {
                path: FieldPath::must(path),
                from: Some(json!(from)),
                to: json!(to),
                reason: "test".into(),
            }],
        }
    }

    fn plan(repo: &GitopsRepo, remediation: &Remediation) -> Result<Vec<FileEdit>, RemedyError> {
        let located = repo.locate_any("prod", &cart())?;
        let crate::Located::Helm(helm) = located else {
            panic!("not located as Helm: {located:?}")
        };
        plan_helm_edits(repo, &helm, remediation, &live())
    }

    const MEMORY: &str = "spec.template.spec.containers[name=cart].resources.limits.memory";

    fn changed_lines(before: &str, after: &str) -> Vec<(String, String)> {
        assert_eq!(before.lines().count(), after.lines().count());
        before
            .lines()
            .zip(after.lines())
            .filter(|(a, b)| a != b)
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn a_unique_match_is_edited_in_place() {
        let repo = repo(&[("apps/cart/release.yaml", RELEASE)]);
        let edits = plan(&repo, &fix(MEMORY, "256Mi", "512Mi")).unwrap();
        assert_eq!(edits.len(), 1);
        assert_eq!(edits[0].file, "apps/cart/release.yaml");
        assert_eq!(
            changed_lines(&edits[0].before, &edits[0].after),
            [(
                "        memory: 256Mi  # keep in sync with JAVA_OPTS".to_string(),
                "        memory: 512Mi  # keep in sync with JAVA_OPTS".to_string()
            )]
        );
        assert_eq!(edits[0].paths, [FieldPath::must(MEMORY)]);
    }

    #[test]
    fn prefixed_keys_and_quantities_in_another_spelling_match() {
        let text = RELEASE
            .replace("    resources:\n", "    cart:\n      resources:\n")
            .replace("      requests:", "        requests:")
            .replace(
                "        memory: 256Mi  # measured",
                "          memory: 256Mi  # measured",
            )
            .replace("      limits:", "        limits:")
            .replace("        cpu: 500m", "          cpu: 0.5")
            .replace(
                "        memory: 256Mi  # keep",
                "          memory: 256Mi  # keep",
            );
        let repo = repo(&[("apps/cart/release.yaml", &text)]);
        let cpu = "spec.template.spec.containers[name=cart].resources.limits.cpu";
        let edits = plan(&repo, &fix(cpu, "500m", "1")).unwrap();
        assert_eq!(
            changed_lines(&edits[0].before, &edits[0].after),
            [(
                "          cpu: 0.5".to_string(),
                "          cpu: \"1\"".to_string()
            )]
        );
    }

    #[test]
    fn two_equal_values_under_matching_keys_are_ambiguous() {
        let text = format!(
            "{RELEASE}    worker:\n      resources:\n        limits:\n          memory: 256Mi\n"
        );
        let repo = repo(&[("apps/cart/release.yaml", &text)]);
        let err = plan(&repo, &fix(MEMORY, "256Mi", "512Mi")).unwrap_err();
        assert!(matches!(err, RemedyError::Unsupported { .. }), "{err}");
        let shown = err.to_string();
        assert!(shown.contains("apps/cart/release.yaml"), "{shown}");
        assert!(
            shown.contains("spec.values.resources.limits.memory"),
            "{shown}"
        );
        assert!(
            shown.contains("spec.values.worker.resources.limits.memory"),
            "{shown}"
        );
    }

    #[test]
    fn no_matching_value_is_refused() {
        let repo = repo(&[("apps/cart/release.yaml", RELEASE)]);
        let err = plan(&repo, &fix(MEMORY, "300Mi", "600Mi")).unwrap_err();
        assert!(
            matches!(&err, RemedyError::Unsupported { file, .. } if file == "apps/cart/release.yaml")
        );
        assert!(err.to_string().contains("chart default"), "{err}");
        // The same value under other keys (requests) is not a match either.
        let only_requests =
            RELEASE.replace("        memory: 256Mi  # keep in sync with JAVA_OPTS\n", "");
        let repo2 = self::repo(&[("apps/cart/release.yaml", &only_requests)]);
        assert!(matches!(
            plan(&repo2, &fix(MEMORY, "256Mi", "512Mi")),
            Err(RemedyError::Unsupported { .. })
        ));
    }

    #[test]
    fn an_image_tag_is_mapped_through_the_repository() {
        let repo = repo(&[("apps/cart/release.yaml", RELEASE)]);
        let image = "spec.template.spec.containers[name=cart].image";
        let edits = plan(
            &repo,
            &fix(
                image,
                "registry.example.com/shop/cart:2.3.1",
                "registry.example.com/shop/cart:2.3.0",
            ),
        )
        .unwrap();
        assert_eq!(
            changed_lines(&edits[0].before, &edits[0].after),
            [(
                "      tag: \"2.3.1\"".to_string(),
                "      tag: \"2.3.0\"".to_string()
            )]
        );
        // With registry and repository split.
        let split = RELEASE.replace(
            "      repository: registry.example.com/shop/cart\n",
            "      registry: registry.example.com\n      repository: shop/cart\n",
        );
        let repo = self::repo(&[("apps/cart/release.yaml", &split)]);
        let fixed = fix(
            image,
            "registry.example.com/shop/cart:2.3.1",
            "registry.example.com/shop/cart:2.3.0",
        );
        assert_eq!(plan(&repo, &fixed).unwrap().len(), 1);
        // Another repository: no match; a repository change: refused.
        let other = fix(image, "docker.io/cart:2.3.1", "docker.io/cart:2.3.0");
        assert!(matches!(
            plan(&repo, &other),
            Err(RemedyError::Unsupported { .. })
        ));
        let moved = fix(
            image,
            "registry.example.com/shop/cart:2.3.1",
            "registry.example.com/shop/cart-v2:2.3.1",
        );
        assert!(matches!(
            plan(&repo, &moved),
            Err(RemedyError::Unsupported { .. })
        ));
    }

    #[test]
    fn values_overridden_by_the_release_are_not_matches() {
        let chart_values = "resources:\n  limits:\n    memory: 256Mi\n";
        let kustomization = "\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - release.yaml
configMapGenerator:
  - name: cart-values
    files:
      - values.yaml=cart-values.yaml
";
        let text = RELEASE.replace(
            "  values:\n",
            "  valuesFrom:\n    - kind: ConfigMap\n      name: cart-values\n  values:\n",
        );
        let repo = repo(&[
            ("apps/cart/kustomization.yaml", kustomization),
            ("apps/cart/cart-values.yaml", chart_values),
            ("apps/cart/release.yaml", &text),
        ]);
        // Both define resources.limits.memory: the HelmRelease's inline value wins.
        let edits = plan(&repo, &fix(MEMORY, "256Mi", "512Mi")).unwrap();
        assert_eq!(edits.len(), 1);
        assert_eq!(edits[0].file, "apps/cart/release.yaml");
        // Only the generated file defines the value: it is edited.
        let text = text.replace("        memory: 256Mi  # keep in sync with JAVA_OPTS\n", "");
        let repo = self::repo(&[
            ("apps/cart/kustomization.yaml", kustomization),
            ("apps/cart/cart-values.yaml", chart_values),
            ("apps/cart/release.yaml", &text),
        ]);
        let edits = plan(&repo, &fix(MEMORY, "256Mi", "512Mi")).unwrap();
        assert_eq!(edits[0].file, "apps/cart/cart-values.yaml");
        assert_eq!(edits[0].after, "resources:\n  limits:\n    memory: 512Mi\n");
    }

    #[test]
    fn argo_value_files_and_values_objects_are_read() {
        let app = "\
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: cart
spec:
  destination:
    name: prod
    namespace: shop
  source:
    path: charts/web
    helm:
      valueFiles:
        - values-prod.yaml
      valuesObject:
        image:
          tag: \"2.3.1\"
";
        let repo = repo(&[
            ("apps/cart.yaml", app),
            ("charts/web/Chart.yaml", "name: web\nversion: 1.0.0\n"),
            (
                "charts/web/values.yaml",
                "image:\n  repository: registry.example.com/shop/cart\n  tag: latest\n",
            ),
            (
                "charts/web/values-prod.yaml",
                "# prod\nresources:\n  limits:\n    memory: 256Mi # prod\n",
            ),
        ]);
        let edits = plan(&repo, &fix(MEMORY, "256Mi", "512Mi")).unwrap();
        assert_eq!(edits[0].file, "charts/web/values-prod.yaml");
        assert_eq!(
            edits[0].after,
            "# prod\nresources:\n  limits:\n    memory: 512Mi # prod\n"
        );
        // The tag is in valuesObject, the repository in the chart's values.yaml: the mapping
        // needs both in one mapping, so it is refused rather than guessed.
        let image = "spec.template.spec.containers[name=cart].image";
        let err = plan(
            &repo,
            &fix(
                image,
                "registry.example.com/shop/cart:2.3.1",
                "registry.example.com/shop/cart:2.3.0",
            ),
        )
        .unwrap_err();
        assert!(matches!(err, RemedyError::Unsupported { .. }), "{err}");
    }

    #[test]
    fn locate_still_refuses_helm_workloads() {
        let repo = repo(&[("apps/cart/release.yaml", RELEASE)]);
        let err = repo.locate("prod", &cart()).unwrap_err();
        assert!(
            err.to_string()
                .contains("Helm values are not edited automatically")
        );
    }

    #[test]
    fn trailing_keys_skip_selectors_and_the_pod_template() {
        assert_eq!(
            trailing_keys(&FieldPath::must(MEMORY)),
            ["resources", "limits", "memory"]
        );
        assert_eq!(
            trailing_keys(&FieldPath::must("spec.replicas")),
            ["replicas"]
        );
        let live = ["resources", "limits", "memory"];
        assert!(keys_match(
            &FieldPath::must("resources.limits.memory"),
            &live
        ));
        assert!(keys_match(
            &FieldPath::must("a.resources.limits.memory"),
            &live
        ));
        assert!(keys_match(&FieldPath::must("limits.memory"), &live));
        assert!(!keys_match(
            &FieldPath::must("sidecar.limits.memory"),
            &live
        ));
        assert!(!keys_match(&FieldPath::must("memory"), &live));
    }
}
