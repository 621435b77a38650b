//! Finding the documents that build a workload for one cluster: entry points (Flux
//! `Kustomization`s under the cluster's folder, Argo CD `Application`s), then kustomize's
//! resources, components, patches and transformers, in kustomize's order.

use crate::error::RemedyError;
use crate::repo::{GitopsRepo, join, parent};
use autofix_core::path::{FieldPath, Segment};
use autofix_core::{WorkloadKind, WorkloadRef};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// One document of a repo file, or of a YAML text embedded in one (an inline patch).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DocRef {
    /// The file, relative to the repo root, with `/` separators.
    pub file: String,
    /// The document's index among the file's non-empty documents.
    pub doc: usize,
    /// For an inline patch: where its text sits in that document.
    pub embedded: Option<Embedded>,
}

/// A YAML text held as a string inside a document, e.g. `patches[0].patch` of a kustomization.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Embedded {
    /// The path of the string in the outer document.
    pub at: FieldPath,
    /// The document's index among the embedded text's non-empty documents.
    pub doc: usize,
}

impl DocRef {
    fn whole(file: &str, doc: usize) -> DocRef {
        DocRef {
            file: file.to_string(),
            doc,
            embedded: None,
        }
    }
}

/// One step that changes the workload after its base document, in the order they apply.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Layer {
    /// A strategic-merge patch document.
    StrategicMerge {
        /// The patch.
        patch: DocRef,
    },
    /// A JSON6902 patch document (a list of operations).
    Json6902 {
        /// The patch.
        patch: DocRef,
    },
    /// A kustomize `images:` entry (or a Flux Kustomization's `spec.images` entry).
    Images {
        /// The kustomization document.
        kustomization: DocRef,
        /// The entry's path in it, e.g. `images[0]`.
        at: FieldPath,
    },
    /// A kustomize `replicas:` entry.
    Replicas {
        /// The kustomization document.
        kustomization: DocRef,
        /// The entry's path in it, e.g. `replicas[0]`.
        at: FieldPath,
    },
    /// A namespace set by a kustomization, a Flux `targetNamespace` or an Argo CD destination.
    Namespace {
        /// The file that sets it.
        file: String,
        /// The namespace.
        namespace: String,
        /// Only fills a missing namespace (Argo CD's `destination.namespace`).
        only_if_unset: bool,
    },
    /// `namePrefix` / `nameSuffix`.
    NameAffix {
        /// The file that sets them.
        file: String,
        /// Prepended to the name.
        prefix: String,
        /// Appended to the name.
        suffix: String,
    },
}

impl Layer {
    /// The file that holds this layer.
    pub fn file(&self) -> &str {
        match self {
            Layer::StrategicMerge { patch } | Layer::Json6902 { patch } => &patch.file,
            Layer::Images { kustomization, .. } | Layer::Replicas { kustomization, .. } => {
                &kustomization.file
            }
            Layer::Namespace { file, .. } | Layer::NameAffix { file, .. } => file,
        }
    }
}

/// Everything in the repo that builds one workload for one cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadSources {
    /// The cluster the sources were located for.
    pub cluster: String,
    /// The workload.
    pub workload: WorkloadRef,
    /// The Flux Kustomization or Argo CD Application file that deploys it; `None` when no entry
    /// point names the cluster and the whole repo was searched.
    pub entry: Option<String>,
    /// The document that declares the workload.
    pub base: DocRef,
    /// Patches, image and replica overrides, namespace and name changes, in the order they apply.
    pub layers: Vec<Layer>,
    /// Every file involved: base, patches, kustomizations, entry point.
    pub files: BTreeSet<String>,
}

impl WorkloadSources {
    /// The `images:` overrides that may apply to the workload's containers.
    pub fn image_overrides(&self) -> impl Iterator<Item = (&DocRef, &FieldPath)> {
        self.layers.iter().filter_map(|layer| match layer {
            Layer::Images { kustomization, at } => Some((kustomization, at)),
            _ => None,
        })
    }
}

impl GitopsRepo {
    /// Finds the documents that build `workload` on `cluster`.
    ///
    /// Entry points are Flux Kustomizations in files below a folder named after the cluster
    /// (`clusters/<cluster>/`), and Argo CD Applications whose destination or folder names the
    /// cluster, or names no cluster at all. Without any, the whole repo is searched, and more
    /// than one way to build the workload is an error rather than a guess.
    ///
    /// A workload that only a Helm chart can deploy is refused (`Unsupported`); see
    /// [`GitopsRepo::locate_any`] to get its Helm values instead.
    pub fn locate(
        &self,
        cluster: &str,
        workload: &WorkloadRef,
    ) -> Result<WorkloadSources, RemedyError> {
        match self.locate_any(cluster, workload)? {
            Located::Manifests(sources) => Ok(sources),
            Located::Helm(helm) => Err(helm.refusal()),
        }
    }

    /// Like [`GitopsRepo::locate`], but a workload not declared as a manifest while Helm charts
    /// are deployed on the way gives [`Located::Helm`]: the releases that may deploy it and
    /// where their values are written in the repo.
    pub fn locate_any(
        &self,
        cluster: &str,
        workload: &WorkloadRef,
    ) -> Result<Located, RemedyError> {
        self.locate_in(cluster, workload, &Scope::default())
    }

    /// Like [`GitopsRepo::locate_any`], looking only where `scope` says: entry points and the
    /// whole-repo search below its folder, and only the Argo CD Application or Flux
    /// Kustomization the live object names, when one in scope has that name.
    pub fn locate_in(
        &self,
        cluster: &str,
        workload: &WorkloadRef,
        scope: &Scope,
    ) -> Result<Located, RemedyError> {
        let mut walker = Walker::new(self, workload.kind, cluster);
        let entries = scope.narrow(walker.entry_points());
        if entries.is_empty() && self.files().next().is_some() {
            walker.follow_flux = false;
            walker.skip_units = referenced_units(self);
            match walker.build_dir(".", scope.folder(), true) {
                Ok(found) => walker.found.extend(found),
                Err(e) => walker.problems.push(e),
            }
        }
        for (file, doc, value, argo) in entries {
            let result = if argo {
                walker.argo(file, doc, value)
            } else {
                walker.flux(file, doc, value)
            };
            if let Err(e) = result {
                walker.problems.push(e);
            }
        }
        walker.select(workload)
    }
}

/// Where in the repo to look for a workload: a folder, and the GitOps object that deploys it as
/// the live object's Argo CD or Flux markers name it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Folder (relative to the repo root) holding the entry points; `None` is the whole repo.
    pub path: Option<String>,
    /// The deployer the live object names.
    pub owner: Option<Owner>,
}

/// The GitOps object that deploys a workload, read from the live object's markers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// An Argo CD Application (`argocd.argoproj.io/tracking-id` or `.../instance`).
    ArgoApplication(String),
    /// A Flux Kustomization (`kustomize.toolkit.fluxcd.io/name`).
    FluxKustomization(String),
}

impl Scope {
    /// Reads the Argo CD and Flux markers of a live object (its `metadata`), with `path` as the
    /// folder. Argo's tracking id is `<app>:<group>/<kind>:<namespace>/<name>`; its instance label
    /// may be `<app-namespace>_<app>`.
    pub fn from_markers(path: Option<String>, object: &Value) -> Scope {
        let meta = object.get("metadata").unwrap_or(&Value::Null);
        let annotation = |k: &str| meta.pointer(&format!("/annotations/{}", k.replace('/', "~1")));
        let label = |k: &str| meta.pointer(&format!("/labels/{}", k.replace('/', "~1")));
        let owner = if let Some(id) = non_empty(annotation("argocd.argoproj.io/tracking-id")) {
            id.split(':')
                .next()
                .map(|app| Owner::ArgoApplication(app.to_string()))
        } else if let Some(instance) = non_empty(label("argocd.argoproj.io/instance")) {
            let app = instance.rsplit_once('_').map_or(instance, |(_, app)| app);
            Some(Owner::ArgoApplication(app.to_string()))
        } else {
            non_empty(label("kustomize.toolkit.fluxcd.io/name"))
                .map(|name| Owner::FluxKustomization(name.to_string()))
        };
        Scope {
            path: path
                .map(|p| p.trim_matches('/').to_string())
                .filter(|p| !p.is_empty()),
            owner,
        }
    }

    /// The folder to search, `""` for the whole repo.
    fn folder(&self) -> &str {
        self.path.as_deref().unwrap_or("")
    }

    /// Keeps the entry points in the folder, and of those the one the owner names when any does.
    fn narrow<'a>(
        &self,
        entries: Vec<(&'a str, usize, &'a Value, bool)>,
    ) -> Vec<(&'a str, usize, &'a Value, bool)> {
        let folder = self.folder();
        let in_folder: Vec<_> = entries
            .into_iter()
            .filter(|(file, ..)| folder.is_empty() || file.starts_with(&format!("{folder}/")))
            .collect();
        let Some(owner) = &self.owner else {
            return in_folder;
        };
        let named = |doc: &Value, argo: bool| {
            let name = str_at(doc.get("metadata").unwrap_or(&Value::Null), "name");
            match owner {
                Owner::ArgoApplication(app) => argo && name == Some(app.as_str()),
                Owner::FluxKustomization(ks) => !argo && name == Some(ks.as_str()),
            }
        };
        if in_folder.iter().any(|(_, _, doc, argo)| named(doc, *argo)) {
            in_folder
                .into_iter()
                .filter(|(_, _, doc, argo)| named(doc, *argo))
                .collect()
        } else {
            in_folder
        }
    }
}

/// The text of a string value that is not empty.
fn non_empty(value: Option<&Value>) -> Option<&str> {
    value.and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// Where a workload is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Located {
    /// Manifests (and kustomize layers) that declare it.
    Manifests(WorkloadSources),
    /// No manifest declares it, but Helm charts are deployed on the way.
    Helm(crate::helm::HelmValues),
}

/// A document that deploys a Helm chart, met while walking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HelmFound {
    /// The HelmRelease, Application or kustomization document.
    pub doc: DocRef,
    /// The release name, when the document tells it.
    pub release: Option<String>,
    /// What kind of document it is.
    pub origin: HelmOrigin,
}

/// The kind of document that deploys a chart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HelmOrigin {
    /// A Flux `HelmRelease`.
    Flux,
    /// An Argo CD Application source at `source` (`spec.source` or `spec.sources[i]`), with the
    /// chart's folder in the repo when it is local.
    Argo {
        source: FieldPath,
        chart_dir: Option<String>,
    },
    /// Entry `helmCharts[index]` of the kustomization in folder `dir`.
    Kustomize { dir: String, index: usize },
}

/// A document of the workload's kind, with what has been applied to it so far.
#[derive(Debug, Clone)]
struct Candidate {
    base: DocRef,
    api_version: String,
    name: String,
    original_name: String,
    namespace: Option<String>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    layers: Vec<Layer>,
    files: BTreeSet<String>,
    /// The outermost kustomization or entry point reached so far.
    via: Option<String>,
    entry: Option<String>,
    /// A construct on the way that this crate cannot evaluate: (file, reason).
    blocked: Option<(String, String)>,
}

impl Candidate {
    fn new(file: &str, doc: usize, value: &Value) -> Option<Candidate> {
        let meta = value.get("metadata")?;
        let name = meta.get("name")?.as_str()?.to_string();
        let strings = |key: &str| -> BTreeMap<String, String> {
            meta.get(key)
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                        .collect()
                })
                .unwrap_or_default()
        };
        Some(Candidate {
            base: DocRef::whole(file, doc),
            api_version: str_at(value, "apiVersion").unwrap_or_default().to_string(),
            original_name: name.clone(),
            name,
            namespace: meta
                .get("namespace")
                .and_then(Value::as_str)
                .map(String::from),
            labels: strings("labels"),
            annotations: strings("annotations"),
            layers: Vec::new(),
            files: BTreeSet::from([file.to_string()]),
            via: None,
            entry: None,
            blocked: None,
        })
    }

    fn block(&mut self, file: &str, reason: String) {
        self.blocked.get_or_insert((file.to_string(), reason));
    }
}

/// Which field names a kustomization-like mapping uses.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dialect {
    /// A kustomization.yaml.
    Kustomize,
    /// The `spec` of a Flux Kustomization.
    Flux,
}

struct Walker<'a> {
    repo: &'a GitopsRepo,
    kind: WorkloadKind,
    cluster: &'a str,
    /// Follow Flux Kustomizations met on the way (off when searching the whole repo).
    follow_flux: bool,
    /// Kustomization folders that other kustomizations include (skipped by the whole-repo walk).
    skip_units: BTreeSet<String>,
    /// Folders being built, to stop on cycles.
    in_progress: Vec<String>,
    visited_entries: BTreeSet<(String, usize)>,
    found: Vec<Candidate>,
    /// Documents that deploy Helm charts.
    helm: Vec<HelmFound>,
    /// Errors in parts of the repo that may not matter for this workload.
    problems: Vec<RemedyError>,
}

impl<'a> Walker<'a> {
    fn new(repo: &'a GitopsRepo, kind: WorkloadKind, cluster: &'a str) -> Walker<'a> {
        Walker {
            repo,
            kind,
            cluster,
            follow_flux: true,
            skip_units: BTreeSet::new(),
            in_progress: Vec::new(),
            visited_entries: BTreeSet::new(),
            found: Vec::new(),
            helm: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// Flux Kustomizations and Argo CD Applications that deploy to this cluster:
    /// (file, document index, document, is Argo).
    fn entry_points(&self) -> Vec<(&'a str, usize, &'a Value, bool)> {
        let mut out = Vec::new();
        let cluster_dirs: BTreeSet<&str> = self
            .repo
            .files()
            .filter_map(|f| {
                let parts: Vec<&str> = f.split('/').collect();
                parts.windows(3).find(|w| w[0] == "clusters").map(|w| w[1])
            })
            .collect();
        for file in self.repo.files() {
            let Ok(docs) = self.repo.documents(file) else {
                continue;
            };
            let in_cluster_dir = parent(file).split('/').any(|seg| seg == self.cluster);
            let other_cluster_dir = !in_cluster_dir
                && parent(file)
                    .split('/')
                    .any(|seg| cluster_dirs.contains(seg));
            for (i, doc) in docs.iter().enumerate() {
                if is_flux_kustomization(doc) && in_cluster_dir {
                    out.push((file, i, doc, false));
                } else if is_argo_application(doc) && !other_cluster_dir {
                    let destination = doc.pointer("/spec/destination");
                    let name = destination.and_then(|d| str_at(d, "name"));
                    let server = destination.and_then(|d| str_at(d, "server"));
                    let bound_elsewhere = name.is_some_and(|n| n != self.cluster)
                        || server.is_some_and(|s| {
                            cluster_dirs
                                .iter()
                                .any(|c| *c != self.cluster && s.contains(c))
                        });
                    if !bound_elsewhere {
                        out.push((file, i, doc, true));
                    }
                }
            }
        }
        out
    }

    fn flux(&mut self, file: &str, doc: usize, value: &Value) -> Result<(), RemedyError> {
        if !self.visited_entries.insert((file.to_string(), doc)) {
            return Ok(());
        }
        let spec = value.get("spec").unwrap_or(&Value::Null);
        let path = str_at(spec, "path").unwrap_or("./");
        let dir = normalize("", path)
            .ok_or_else(|| kustomization_err(file, "spec.path leaves the repo"))?;
        let mut cands = self.build_dir(file, &dir, true)?;
        let origin = DocRef::whole(file, doc);
        let prefix = [Segment::Key("spec".into())];
        for entry in strings(file, spec, "components")? {
            self.component(&origin, &dir, entry, &mut cands)?;
        }
        self.transforms(&mut cands, &origin, &prefix, spec, Dialect::Flux, &dir)?;
        self.finish(cands, file);
        Ok(())
    }

    fn argo(&mut self, file: &str, doc: usize, value: &Value) -> Result<(), RemedyError> {
        if !self.visited_entries.insert((file.to_string(), doc)) {
            return Ok(());
        }
        let spec = value.get("spec").unwrap_or(&Value::Null);
        let sources: Vec<&Value> = match (spec.get("source"), spec.get("sources")) {
            (Some(source), _) => vec![source],
            (None, Some(Value::Array(sources))) => sources.iter().collect(),
            _ => Vec::new(),
        };
        let app_name = value.pointer("/metadata/name").and_then(Value::as_str);
        let single = spec.get("source").is_some();
        for (i, source) in sources.into_iter().enumerate() {
            let at = if single {
                FieldPath::must("spec.source")
            } else {
                FieldPath(vec![
                    Segment::Key("spec".into()),
                    Segment::Key("sources".into()),
                    Segment::Index(i),
                ])
            };
            let release = source
                .pointer("/helm/releaseName")
                .and_then(Value::as_str)
                .or(app_name)
                .map(String::from);
            let Some(path) = str_at(source, "path") else {
                if source.get("chart").is_some() {
                    self.helm.push(HelmFound {
                        doc: DocRef::whole(file, doc),
                        release,
                        origin: HelmOrigin::Argo {
                            source: at,
                            chart_dir: None,
                        },
                    });
                }
                continue;
            };
            let dir = normalize("", path)
                .ok_or_else(|| kustomization_err(file, "spec.source.path leaves the repo"))?;
            if source.get("helm").is_some() || self.repo.contains(&join(&dir, "Chart.yaml")) {
                self.helm.push(HelmFound {
                    doc: DocRef::whole(file, doc),
                    release,
                    origin: HelmOrigin::Argo {
                        source: at,
                        chart_dir: Some(dir),
                    },
                });
                continue;
            }
            let recurse = source.pointer("/directory/recurse") == Some(&Value::Bool(true));
            let mut cands = self.build_dir(file, &dir, recurse)?;
            if let Some(kustomize) = source.get("kustomize") {
                let unevaluated = kustomize
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, _)| k)
                    .find(|k| *k != "namespace");
                for c in &mut cands {
                    if let Some(ns) = str_at(kustomize, "namespace") {
                        c.namespace = Some(ns.to_string());
                        c.layers.push(Layer::Namespace {
                            file: file.to_string(),
                            namespace: ns.to_string(),
                            only_if_unset: false,
                        });
                    }
                    if let Some(key) = unevaluated {
                        c.block(
                            file,
                            format!(
                                "the Application's spec.source.kustomize.{key} is not evaluated"
                            ),
                        );
                    }
                }
            }
            if let Some(ns) = value
                .pointer("/spec/destination/namespace")
                .and_then(Value::as_str)
            {
                for c in &mut cands {
                    c.namespace.get_or_insert_with(|| ns.to_string());
                    c.layers.push(Layer::Namespace {
                        file: file.to_string(),
                        namespace: ns.to_string(),
                        only_if_unset: true,
                    });
                }
            }
            self.finish(cands, file);
        }
        Ok(())
    }

    fn finish(&mut self, mut cands: Vec<Candidate>, entry: &str) {
        for c in &mut cands {
            c.files.insert(entry.to_string());
            c.entry = Some(entry.to_string());
        }
        self.found.extend(cands);
    }

    /// Candidates built from folder `dir`, which `referrer` names.
    fn build_dir(
        &mut self,
        referrer: &str,
        dir: &str,
        recurse: bool,
    ) -> Result<Vec<Candidate>, RemedyError> {
        if self.in_progress.iter().any(|d| d == dir) {
            return Ok(Vec::new());
        }
        if let Some(kustomization) = self.repo.kustomization_in(dir) {
            self.in_progress.push(dir.to_string());
            let built = self.kustomization(&kustomization, dir);
            self.in_progress.pop();
            built
        } else if self.repo.has_dir(dir) {
            self.in_progress.push(dir.to_string());
            let walked = self.walk(dir, recurse);
            self.in_progress.pop();
            walked
        } else {
            Err(RemedyError::MissingResource {
                file: referrer.to_string(),
                entry: if dir.is_empty() {
                    ".".into()
                } else {
                    dir.to_string()
                },
            })
        }
    }

    /// A folder without a kustomization, as Flux reads it: every YAML file below it, where a
    /// subfolder with a kustomization is a unit of its own.
    fn walk(&mut self, dir: &str, recurse: bool) -> Result<Vec<Candidate>, RemedyError> {
        let files: Vec<&str> = self.repo.files_under(dir).collect();
        let mut units = BTreeSet::new();
        let mut cands = Vec::new();
        for file in files {
            let rel = if dir.is_empty() {
                file
            } else {
                &file[dir.len() + 1..]
            };
            let mut unit = None;
            let mut folder = dir.to_string();
            let segments: Vec<&str> = rel.split('/').collect();
            for segment in &segments[..segments.len() - 1] {
                folder = join(&folder, segment);
                if self.repo.kustomization_in(&folder).is_some() {
                    unit = Some(folder);
                    break;
                }
            }
            let found = match unit {
                Some(unit) if !self.skip_units.contains(&unit) && units.insert(unit.clone()) => {
                    self.build_dir(file, &unit, true)
                }
                None if recurse || segments.len() == 1 => self.file_docs(file),
                _ => continue,
            };
            match found {
                Ok(found) => cands.extend(found),
                Err(e) => self.problems.push(e),
            }
        }
        Ok(cands)
    }

    /// Candidates declared in one file; Flux Kustomizations and HelmReleases met are noted.
    fn file_docs(&mut self, file: &str) -> Result<Vec<Candidate>, RemedyError> {
        let repo = self.repo;
        let mut cands = Vec::new();
        for (i, doc) in repo.documents(file)?.iter().enumerate() {
            if str_at(doc, "kind") == Some(self.kind.as_str()) {
                cands.extend(Candidate::new(file, i, doc));
            } else if self.follow_flux && is_flux_kustomization(doc) {
                if let Err(e) = self.flux(file, i, doc) {
                    self.problems.push(e);
                }
            } else if is_helm_release(doc) {
                let release = str_at(doc.get("spec").unwrap_or(&Value::Null), "releaseName")
                    .or_else(|| doc.pointer("/metadata/name").and_then(Value::as_str));
                self.helm.push(HelmFound {
                    doc: DocRef::whole(file, i),
                    release: release.map(String::from),
                    origin: HelmOrigin::Flux,
                });
            }
        }
        Ok(cands)
    }

    fn kustomization(&mut self, file: &str, dir: &str) -> Result<Vec<Candidate>, RemedyError> {
        let repo = self.repo;
        let doc = repo
            .documents(file)?
            .first()
            .ok_or_else(|| kustomization_err(file, "the kustomization is empty"))?;
        let mut cands = Vec::new();
        let mut entries = strings(file, doc, "resources")?;
        entries.extend(strings(file, doc, "bases")?);
        for entry in entries {
            match self.resource(file, dir, entry) {
                Ok(found) => cands.extend(found),
                Err(e) => self.problems.push(e),
            }
        }
        let origin = DocRef::whole(file, 0);
        for entry in strings(file, doc, "components")? {
            self.component(&origin, dir, entry, &mut cands)?;
        }
        for (i, chart) in list(file, doc, "helmCharts")?.iter().enumerate() {
            self.helm.push(HelmFound {
                doc: DocRef::whole(file, 0),
                release: str_at(chart, "releaseName")
                    .or_else(|| str_at(chart, "name"))
                    .map(String::from),
                origin: HelmOrigin::Kustomize {
                    dir: dir.to_string(),
                    index: i,
                },
            });
        }
        self.transforms(&mut cands, &origin, &[], doc, Dialect::Kustomize, dir)?;
        for c in &mut cands {
            c.files.insert(file.to_string());
            c.via = Some(file.to_string());
        }
        Ok(cands)
    }

    fn resource(
        &mut self,
        file: &str,
        dir: &str,
        entry: &str,
    ) -> Result<Vec<Candidate>, RemedyError> {
        if is_remote(entry) {
            return Ok(Vec::new());
        }
        let path = normalize(dir, entry)
            .ok_or_else(|| kustomization_err(file, &format!("resource {entry} leaves the repo")))?;
        if self.repo.contains(&path) {
            self.file_docs(&path)
        } else {
            self.build_dir(file, &path, true)
        }
    }

    /// A kustomize Component: its resources join `cands`, then its transformers apply to all.
    fn component(
        &mut self,
        referrer: &DocRef,
        dir: &str,
        entry: &str,
        cands: &mut Vec<Candidate>,
    ) -> Result<(), RemedyError> {
        let path = normalize(dir, entry).unwrap_or_else(|| entry.to_string());
        let file =
            self.repo
                .kustomization_in(&path)
                .ok_or_else(|| RemedyError::MissingResource {
                    file: referrer.file.clone(),
                    entry: path.clone(),
                })?;
        if self.in_progress.contains(&path) {
            return Ok(());
        }
        self.in_progress.push(path.clone());
        let result = (|| {
            let doc = self
                .repo
                .documents(&file)?
                .first()
                .ok_or_else(|| kustomization_err(&file, "the component is empty"))?;
            for resource in strings(&file, doc, "resources")? {
                cands.extend(self.resource(&file, &path, resource)?);
            }
            self.transforms(
                cands,
                &DocRef::whole(&file, 0),
                &[],
                doc,
                Dialect::Kustomize,
                &path,
            )
        })();
        self.in_progress.pop();
        for c in cands.iter_mut() {
            c.files.insert(file.clone());
        }
        result
    }

    /// The patches and transformers of one kustomization-like mapping `fields` (a
    /// kustomization, or a Flux Kustomization's `spec`, found at `prefix` in `origin`), in
    /// kustomize's order.
    fn transforms(
        &mut self,
        cands: &mut [Candidate],
        origin: &DocRef,
        prefix: &[Segment],
        fields: &Value,
        dialect: Dialect,
        dir: &str,
    ) -> Result<(), RemedyError> {
        let file = origin.file.as_str();
        let at = |segments: &[Segment]| FieldPath([prefix, segments].concat());
        let key = |k: &str| Segment::Key(k.to_string());

        for (i, item) in list(file, fields, "patchesStrategicMerge")?
            .iter()
            .enumerate()
        {
            let text = item.as_str().ok_or_else(|| {
                kustomization_err(file, "patchesStrategicMerge entries must be strings")
            })?;
            let patches = if text.contains('\n') {
                inline(
                    origin,
                    at(&[key("patchesStrategicMerge"), Segment::Index(i)]),
                    text,
                )?
            } else {
                self.patch_file(file, dir, text)?
            };
            for (patch, value) in patches {
                self.strategic_merge(cands, &patch, &value, None)?;
            }
        }

        for (i, item) in list(file, fields, "patches")?.iter().enumerate() {
            let target = item.get("target");
            let patches = match (str_at(item, "path"), str_at(item, "patch")) {
                (Some(path), _) => self.patch_file(file, dir, path)?,
                (None, Some(text)) => inline(
                    origin,
                    at(&[key("patches"), Segment::Index(i), key("patch")]),
                    text,
                )?,
                (None, None) => {
                    return Err(kustomization_err(file, "a patch needs `path` or `patch`"));
                }
            };
            for (patch, value) in patches {
                if value.is_array() {
                    self.json6902(cands, &patch, target)?;
                } else {
                    self.strategic_merge(cands, &patch, &value, target)?;
                }
            }
        }

        let namespace_field = match dialect {
            Dialect::Kustomize => "namespace",
            Dialect::Flux => "targetNamespace",
        };
        if let Some(ns) = str_at(fields, namespace_field) {
            for c in cands.iter_mut() {
                c.namespace = Some(ns.to_string());
                c.layers.push(Layer::Namespace {
                    file: file.to_string(),
                    namespace: ns.to_string(),
                    only_if_unset: false,
                });
            }
        }

        let prefix_text = str_at(fields, "namePrefix").unwrap_or_default();
        let suffix_text = str_at(fields, "nameSuffix").unwrap_or_default();
        if !prefix_text.is_empty() || !suffix_text.is_empty() {
            for c in cands.iter_mut() {
                c.name = format!("{prefix_text}{}{suffix_text}", c.name);
                c.layers.push(Layer::NameAffix {
                    file: file.to_string(),
                    prefix: prefix_text.to_string(),
                    suffix: suffix_text.to_string(),
                });
            }
        }

        for (i, item) in list(file, fields, "patchesJson6902")?.iter().enumerate() {
            let patches = match (str_at(item, "path"), str_at(item, "patch")) {
                (Some(path), _) => self.patch_file(file, dir, path)?,
                (None, Some(text)) => inline(
                    origin,
                    at(&[key("patchesJson6902"), Segment::Index(i), key("patch")]),
                    text,
                )?,
                (None, None) => {
                    return Err(kustomization_err(file, "a patch needs `path` or `patch`"));
                }
            };
            for (patch, _) in patches {
                self.json6902(cands, &patch, item.get("target"))?;
            }
        }

        for (i, item) in list(file, fields, "replicas")?.iter().enumerate() {
            for c in cands
                .iter_mut()
                .filter(|c| str_at(item, "name") == Some(&c.name))
            {
                c.layers.push(Layer::Replicas {
                    kustomization: origin.clone(),
                    at: at(&[key("replicas"), Segment::Index(i)]),
                });
            }
        }

        for i in 0..list(file, fields, "images")?.len() {
            for c in cands.iter_mut() {
                c.layers.push(Layer::Images {
                    kustomization: origin.clone(),
                    at: at(&[key("images"), Segment::Index(i)]),
                });
            }
        }
        Ok(())
    }

    fn patch_file(
        &self,
        file: &str,
        dir: &str,
        path: &str,
    ) -> Result<Vec<(DocRef, Value)>, RemedyError> {
        let patch = normalize(dir, path).unwrap_or_else(|| path.to_string());
        if !self.repo.contains(&patch) {
            return Err(RemedyError::MissingResource {
                file: file.to_string(),
                entry: patch,
            });
        }
        Ok(self
            .repo
            .documents(&patch)?
            .iter()
            .enumerate()
            .map(|(i, v)| (DocRef::whole(&patch, i), v.clone()))
            .collect())
    }

    fn strategic_merge(
        &self,
        cands: &mut [Candidate],
        patch: &DocRef,
        value: &Value,
        target: Option<&Value>,
    ) -> Result<(), RemedyError> {
        for c in cands.iter_mut() {
            let hit = match target {
                Some(target) => self.target_matches(c, target, &patch.file),
                None => {
                    let meta = value.get("metadata").unwrap_or(&Value::Null);
                    let name = str_at(meta, "name");
                    str_at(value, "kind") == Some(self.kind.as_str())
                        && (name == Some(&c.name) || name == Some(&c.original_name))
                        && str_at(meta, "namespace")
                            .is_none_or(|ns| c.namespace.as_deref().is_none_or(|cn| cn == ns))
                }
            };
            if hit {
                c.layers.push(Layer::StrategicMerge {
                    patch: patch.clone(),
                });
                c.files.insert(patch.file.clone());
            }
        }
        Ok(())
    }

    fn json6902(
        &self,
        cands: &mut [Candidate],
        patch: &DocRef,
        target: Option<&Value>,
    ) -> Result<(), RemedyError> {
        let target = target
            .ok_or_else(|| kustomization_err(&patch.file, "a JSON6902 patch needs a `target`"))?;
        for c in cands.iter_mut() {
            if self.target_matches(c, target, &patch.file) {
                c.layers.push(Layer::Json6902 {
                    patch: patch.clone(),
                });
                c.files.insert(patch.file.clone());
            }
        }
        Ok(())
    }

    /// Whether a patch `target` selects the candidate; a selector this crate cannot evaluate
    /// counts as a match and blocks the candidate.
    fn target_matches(&self, c: &mut Candidate, target: &Value, file: &str) -> bool {
        if str_at(target, "kind").is_some_and(|k| k != self.kind.as_str()) {
            return false;
        }
        let (group, version) = match c.api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", c.api_version.as_str()),
        };
        if str_at(target, "group").is_some_and(|g| g != group)
            || str_at(target, "version").is_some_and(|v| v != version)
            || str_at(target, "namespace")
                .is_some_and(|ns| c.namespace.as_deref().is_some_and(|cn| cn != ns))
        {
            return false;
        }
        let mut checks = Vec::new();
        if let Some(pattern) = str_at(target, "name") {
            checks.push(
                name_matches(pattern, &c.name)
                    .ok_or(format!("target name {pattern:?} is a regular expression")),
            );
        }
        for (field, labels) in [
            ("labelSelector", &c.labels),
            ("annotationSelector", &c.annotations),
        ] {
            if let Some(selector) = str_at(target, field) {
                checks.push(selector_matches(selector, labels).ok_or(format!(
                    "target {field} {selector:?} is not a plain `k=v` list"
                )));
            }
        }
        let mut hit = true;
        for check in checks {
            match check {
                Ok(matched) => hit &= matched,
                Err(reason) => c.block(
                    file,
                    format!("the patch {reason} this tool does not evaluate"),
                ),
            }
        }
        hit
    }

    /// Picks the one candidate that is the workload, or the Helm charts that may deploy it.
    fn select(mut self, workload: &WorkloadRef) -> Result<Located, RemedyError> {
        let mut matches: Vec<Candidate> = Vec::new();
        for c in self.found.drain(..) {
            let ns_ok = c
                .namespace
                .as_deref()
                .is_none_or(|ns| ns == workload.namespace);
            let duplicate = matches
                .iter()
                .any(|m| m.base == c.base && m.layers == c.layers);
            if c.name == workload.name && ns_ok && !duplicate {
                matches.push(c);
            }
        }
        match matches.len() {
            1 => {
                let c = matches.remove(0);
                if let Some((file, reason)) = c.blocked {
                    return Err(RemedyError::Unsupported { file, reason });
                }
                Ok(Located::Manifests(WorkloadSources {
                    cluster: self.cluster.to_string(),
                    workload: workload.clone(),
                    entry: c.entry,
                    base: c.base,
                    layers: c.layers,
                    files: c.files,
                }))
            }
            0 => {
                if !self.helm.is_empty() {
                    let mut found = std::mem::take(&mut self.helm);
                    found.dedup();
                    return Ok(Located::Helm(crate::helm::HelmValues::build(
                        self.repo,
                        self.cluster,
                        workload,
                        &found,
                    )));
                }
                Err(self
                    .problems
                    .into_iter()
                    .next()
                    .unwrap_or(RemedyError::NotFound {
                        workload: workload.clone(),
                        cluster: self.cluster.to_string(),
                    }))
            }
            _ => Err(RemedyError::Ambiguous {
                workload: workload.clone(),
                cluster: self.cluster.to_string(),
                candidates: matches
                    .iter()
                    .map(|c| match c.via.as_ref().or(c.entry.as_ref()) {
                        Some(via) => format!("{} via {via}", c.base.file),
                        None => c.base.file.clone(),
                    })
                    .collect(),
            }),
        }
    }
}

/// Kustomization folders included by other kustomizations.
fn referenced_units(repo: &GitopsRepo) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for file in repo.files() {
        let dir = parent(file);
        if repo.kustomization_in(dir).as_deref() != Some(file) {
            continue;
        }
        let Some(doc) = repo.documents(file).ok().and_then(|d| d.first()) else {
            continue;
        };
        for key in ["resources", "bases", "components"] {
            for entry in strings(file, doc, key).unwrap_or_default() {
                if let Some(path) =
                    normalize(dir, entry).filter(|p| repo.kustomization_in(p).is_some())
                {
                    out.insert(path);
                }
            }
        }
    }
    out
}

/// The documents of an inline patch text.
fn inline(origin: &DocRef, at: FieldPath, text: &str) -> Result<Vec<(DocRef, Value)>, RemedyError> {
    let docs = autofix_core::yaml::parse_documents(text).map_err(|source| RemedyError::Yaml {
        file: origin.file.clone(),
        source,
    })?;
    Ok(docs
        .into_iter()
        .enumerate()
        .map(|(i, value)| {
            let patch = DocRef {
                embedded: Some(Embedded {
                    at: at.clone(),
                    doc: i,
                }),
                ..origin.clone()
            };
            (patch, value)
        })
        .collect())
}

/// kustomize's `target.name` is an anchored regular expression; plain names and `.*` wildcards
/// are evaluated, anything else gives `None`.
fn name_matches(pattern: &str, name: &str) -> Option<bool> {
    const META: &[char] = &[
        '.', '^', '$', '*', '+', '?', '(', ')', '[', ']', '{', '}', '|', '\\',
    ];
    if !pattern.contains(META) {
        return Some(pattern == name);
    }
    let pattern = pattern.strip_prefix('^').unwrap_or(pattern);
    let pattern = pattern.strip_suffix('$').unwrap_or(pattern);
    let pieces: Vec<&str> = pattern.split(".*").collect();
    if pieces.iter().any(|p| p.contains(META)) {
        return None;
    }
    let (first, rest) = pieces.split_first()?;
    let Some(mut remaining) = name.strip_prefix(first) else {
        return Some(false);
    };
    for (i, piece) in rest.iter().enumerate() {
        if i == rest.len() - 1 {
            return Some(remaining.ends_with(piece));
        }
        match remaining.find(piece) {
            Some(at) => remaining = &remaining[at + piece.len()..],
            None => return Some(false),
        }
    }
    Some(remaining.is_empty())
}

/// A `k=v,k2=v2` selector against labels; `None` for other selector syntax.
fn selector_matches(selector: &str, labels: &BTreeMap<String, String>) -> Option<bool> {
    let mut all = true;
    for term in selector.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let (k, v) = term.split_once("==").or_else(|| term.split_once('='))?;
        if k.ends_with('!') || [k, v].iter().any(|s| s.contains(['(', ')', ' ', '!'])) {
            return None;
        }
        all &= labels.get(k.trim()).map(String::as_str) == Some(v.trim());
    }
    Some(all)
}

/// `rel` resolved against folder `dir`; `None` when it leaves the repo.
pub(crate) fn normalize(dir: &str, rel: &str) -> Option<String> {
    let mut parts: Vec<&str> = if rel.starts_with('/') {
        Vec::new()
    } else {
        dir.split('/').filter(|s| !s.is_empty()).collect()
    };
    for segment in rel.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            s => parts.push(s),
        }
    }
    Some(parts.join("/"))
}

fn is_remote(entry: &str) -> bool {
    entry.contains("://") || entry.starts_with("git@") || entry.starts_with("github.com/")
}

pub(crate) fn str_at<'v>(value: &'v Value, key: &str) -> Option<&'v str> {
    value.get(key)?.as_str()
}

fn list<'v>(file: &str, value: &'v Value, key: &str) -> Result<&'v [Value], RemedyError> {
    match value.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(kustomization_err(file, &format!("`{key}` must be a list"))),
    }
}

fn strings<'v>(file: &str, value: &'v Value, key: &str) -> Result<Vec<&'v str>, RemedyError> {
    list(file, value, key)?
        .iter()
        .map(|v| {
            v.as_str()
                .ok_or_else(|| kustomization_err(file, &format!("`{key}` entries must be strings")))
        })
        .collect()
}

fn kustomization_err(file: &str, reason: &str) -> RemedyError {
    RemedyError::Kustomization {
        file: file.to_string(),
        reason: reason.to_string(),
    }
}

fn is_flux_kustomization(doc: &Value) -> bool {
    str_at(doc, "kind") == Some("Kustomization")
        && str_at(doc, "apiVersion").is_some_and(|v| v.starts_with("kustomize.toolkit.fluxcd.io/"))
}

fn is_argo_application(doc: &Value) -> bool {
    str_at(doc, "kind") == Some("Application")
        && str_at(doc, "apiVersion").is_some_and(|v| v.starts_with("argoproj.io/"))
}

fn is_helm_release(doc: &Value) -> bool {
    str_at(doc, "kind") == Some("HelmRelease")
        && str_at(doc, "apiVersion").is_some_and(|v| v.starts_with("helm.toolkit.fluxcd.io/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_relative_paths() {
        assert_eq!(normalize("a/b", "../../base").as_deref(), Some("base"));
        assert_eq!(normalize("a/b", "../..").as_deref(), Some(""));
        assert_eq!(normalize("", "./apps/").as_deref(), Some("apps"));
        assert_eq!(normalize("a", "../.."), None);
    }

    #[test]
    fn evaluates_simple_target_names() {
        assert_eq!(name_matches("indexer", "indexer"), Some(true));
        assert_eq!(name_matches("index.*", "indexer"), Some(true));
        assert_eq!(name_matches("^.*er$", "indexer"), Some(true));
        assert_eq!(name_matches("a.*b.*c", "axxbyyc"), Some(true));
        assert_eq!(name_matches("a.*b", "axxc"), Some(false));
        assert_eq!(name_matches("(a|b)", "a"), None);
    }

    #[test]
    fn evaluates_equality_selectors() {
        let labels = BTreeMap::from([("app".to_string(), "x".to_string())]);
        assert_eq!(selector_matches("app=x", &labels), Some(true));
        assert_eq!(selector_matches("app==y", &labels), Some(false));
        assert_eq!(selector_matches("app in (x)", &labels), None);
        assert_eq!(selector_matches("app!=x", &labels), None);
    }
}
