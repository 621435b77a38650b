//! `autofix validate PATH...`: the pipeline's schema and safety checks as a CI linter.
//!
//! Files and folders are walked (`*.yaml`, `*.yml`, `*.json`; hidden entries, files that are
//! not objects such as `kustomization.yaml`, and Helm charts, whose templates need rendering,
//! are left out). Every document is read with the bounded YAML reader and each object is
//! judged by [`autofix_policy::lint`]. Kustomize patches (files a nearby `kustomization.yaml`
//! lists under `patches`) are partial objects: they are counted as skipped, like custom
//! resources. Exit code 0 when every object passes, 1 when one fails, 2 when a path or file
//! cannot be read (a malformed YAML file is reported, the other files still are checked).

use crate::BadInput;
use autofix_core::Violation;
use autofix_core::yaml::{MAX_YAML_BYTES, parse_documents};
use autofix_policy::{Lint, PolicyConfig, lint};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// File names that hold no Kubernetes object: kustomize and Helm inputs.
const NOT_OBJECTS: [&str; 7] = [
    "kustomization.yaml",
    "kustomization.yml",
    "Kustomization",
    "Chart.yaml",
    "Chart.yml",
    "values.yaml",
    "values.yml",
];

/// File names a kustomization is read from, to find the patches it lists.
const KUSTOMIZATIONS: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// How many folders up from a file a kustomization listing it as a patch is looked for
/// (`overlays/prod/patches/x.yaml` is listed by `overlays/prod/kustomization.yaml`).
const PATCH_SEARCH_DEPTH: usize = 3;

/// Everything `autofix validate` found, as printed with `--json`.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Every file read, in walk order.
    pub files: Vec<FileResult>,
    /// Folders left out because they are Helm charts (their templates need rendering first).
    pub charts_skipped: Vec<String>,
    /// The counts.
    pub summary: Summary,
}

/// One file and its objects.
#[derive(Debug, Serialize)]
pub struct FileResult {
    /// The path, as given or found below a given folder.
    pub path: String,
    /// Why the file could not be read (not UTF-8, malformed YAML, a YAML bomb, too large).
    pub error: Option<String>,
    /// One entry per object, in document order.
    pub objects: Vec<ObjectResult>,
}

/// The verdict on one object.
#[derive(Debug, Serialize)]
pub struct ObjectResult {
    /// The document, counting from 1 (empty documents are not counted).
    pub doc: usize,
    /// The item, counting from 0, when the document is a `List`.
    pub item: Option<usize>,
    /// `kind`, when it has one.
    pub kind: Option<String>,
    /// `metadata.name`, when it has one.
    pub name: Option<String>,
    /// `passed`, `failed` or `skipped`.
    pub status: Status,
    /// Why it was skipped.
    pub reason: Option<String>,
    /// Every broken rule (`file` is the file's path).
    pub violations: Vec<Violation>,
}

impl ObjectResult {
    /// Where the object is inside its file: `doc#2`, or `doc#1.items[3]` in a `List`.
    pub fn location(&self) -> String {
        match self.item {
            Some(item) => format!("doc#{}.items[{item}]", self.doc),
            None => format!("doc#{}", self.doc),
        }
    }

    /// `Kind/name`, with `?` for what is missing.
    pub fn title(&self) -> String {
        format!(
            "{}/{}",
            self.kind.as_deref().unwrap_or("?"),
            self.name.as_deref().unwrap_or("?")
        )
    }
}

/// The verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Checked, no violation.
    Passed,
    /// Checked, at least one violation.
    Failed,
    /// Nothing to check it against (custom resource, kustomize patch, encrypted Secret).
    Skipped,
}

/// The counts of a run.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    /// Files read (unreadable ones included).
    pub files: usize,
    /// Objects found.
    pub objects: usize,
    /// Objects checked without violation.
    pub passed: usize,
    /// Objects with a violation.
    pub failed: usize,
    /// Objects not checked.
    pub skipped: usize,
    /// Files that could not be read or parsed.
    pub unreadable: usize,
    /// Wall-clock time of walking, reading and checking, in milliseconds.
    pub elapsed_ms: f64,
}

/// Validates `paths` against `policy`, prints the report (JSON with `json`), and fails with
/// exit code 2 when a file is unreadable, 1 when an object has a violation.
pub fn run(paths: &[PathBuf], policy: &PolicyConfig, json: bool) -> anyhow::Result<()> {
    let report = validate(paths, policy)?;
    crate::emit(json, &report, crate::render::validation)?;
    let summary = &report.summary;
    if summary.unreadable > 0 {
        let unreadable: Vec<&str> = report
            .files
            .iter()
            .filter(|f| f.error.is_some())
            .map(|f| f.path.as_str())
            .collect();
        return Err(BadInput(anyhow::anyhow!(
            "cannot read {} file(s): {}",
            unreadable.len(),
            unreadable.join(", ")
        ))
        .into());
    }
    anyhow::ensure!(
        summary.failed == 0,
        "{} of {} objects failed validation",
        summary.failed,
        summary.objects
    );
    Ok(())
}

/// Walks `paths` and checks every object; a missing path is bad input.
pub fn validate(paths: &[PathBuf], policy: &PolicyConfig) -> anyhow::Result<Report> {
    let started = Instant::now();
    let mut walk = Walk::default();
    for path in paths {
        let meta = std::fs::metadata(path)
            .map_err(|e| BadInput(anyhow::Error::new(e).context(format!("{}", path.display()))))?;
        if meta.is_dir() {
            walk.dir(path);
        } else {
            walk.found.push(Ok(Found {
                path: path.clone(),
                linked: true,
            }));
        }
    }
    // Which files are kustomize patches is settled first, in walk order (it reads and caches
    // the kustomizations); then the files are read and checked on every core.
    let mut patches = Patches::default();
    let jobs: Vec<Job> = walk
        .found
        .into_iter()
        .map(|found| match found {
            Ok(found) => Job::Check {
                patch_of: patches.listed_by(&found),
                path: found.path,
            },
            Err((path, error)) => Job::Unreadable { path, error },
        })
        .collect();
    let files = in_parallel(&jobs, |job| job.run(policy));
    let mut summary = Summary {
        files: files.len(),
        ..Summary::default()
    };
    for file in &files {
        summary.unreadable += usize::from(file.error.is_some());
        for object in &file.objects {
            summary.objects += 1;
            match object.status {
                Status::Passed => summary.passed += 1,
                Status::Failed => summary.failed += 1,
                Status::Skipped => summary.skipped += 1,
            }
        }
    }
    summary.elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok(Report {
        files,
        charts_skipped: walk.charts,
        summary,
    })
}

/// Fewest files worth a thread of their own.
const FILES_PER_THREAD: usize = 32;

/// Runs `work` over `items` on up to one thread per core, the answers in the items' order.
fn in_parallel<T: Sync, R: Send>(items: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(items.len() / FILES_PER_THREAD)
        .max(1);
    if threads == 1 {
        return items.iter().map(work).collect();
    }
    let next = AtomicUsize::new(0);
    let share = || {
        let mut done = Vec::new();
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(index) else {
                return done;
            };
            done.push((index, work(item)));
        }
    };
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(share)).collect();
        let mut done = share();
        for helper in helpers {
            done.extend(
                helper
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
        }
        done
    });
    done.sort_unstable_by_key(|(index, _)| *index);
    done.into_iter().map(|(_, answer)| answer).collect()
}

/// One file to report on.
enum Job {
    /// Read and check it; `patch_of` is the kustomization listing it as a patch.
    Check {
        path: PathBuf,
        patch_of: Option<PathBuf>,
    },
    /// Its folder could not be listed.
    Unreadable { path: PathBuf, error: String },
}

impl Job {
    fn run(&self, policy: &PolicyConfig) -> FileResult {
        match self {
            Job::Check { path, patch_of } => check_file(path, policy, patch_of),
            Job::Unreadable { path, error } => FileResult {
                path: path.display().to_string(),
                error: Some(error.clone()),
                objects: Vec::new(),
            },
        }
    }
}

/// A file found by the walk.
struct Found {
    path: PathBuf,
    /// It may be a symbolic link (named on the command line, or a link in a folder): its real
    /// path is resolved whole instead of from its folder's.
    linked: bool,
}

/// The files below the given folders, in name order, with the folders that could not be read.
#[derive(Default)]
struct Walk {
    found: Vec<Result<Found, (PathBuf, String)>>,
    charts: Vec<String>,
}

impl Walk {
    fn dir(&mut self, dir: &Path) {
        if dir.join("Chart.yaml").is_file() {
            self.charts.push(dir.display().to_string());
            return;
        }
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                self.found.push(Err((
                    dir.to_path_buf(),
                    format!("cannot list the folder: {e}"),
                )));
                return;
            }
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            // Symbolic links to folders are not followed: they can loop.
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                self.dir(&path);
            } else if is_manifest_name(&name)
                && !NOT_OBJECTS.contains(&name.as_ref())
                && (kind.is_file() || path.is_file())
            {
                self.found.push(Ok(Found {
                    path,
                    linked: !kind.is_file(),
                }));
            }
        }
    }
}

fn is_manifest_name(name: &str) -> bool {
    [".yaml", ".yml", ".json"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

/// The kustomize patch files listed by the kustomizations met so far, per folder, and the real
/// path of each folder met.
#[derive(Default)]
struct Patches {
    by_dir: HashMap<PathBuf, Vec<PathBuf>>,
    real_dirs: HashMap<PathBuf, Option<PathBuf>>,
}

impl Patches {
    /// The kustomization listing `found` as a patch, if one within [`PATCH_SEARCH_DEPTH`]
    /// folders up does; shown relative to the file as given.
    fn listed_by(&mut self, found: &Found) -> Option<PathBuf> {
        let file = found.path.as_path();
        let canonical = self.real_path(found)?;
        let levels = canonical.ancestors().skip(1).take(PATCH_SEARCH_DEPTH);
        for (up, dir) in levels.enumerate() {
            let listed = self
                .by_dir
                .entry(dir.to_path_buf())
                .or_insert_with(|| patches_of(dir));
            if listed.contains(&canonical) {
                let name = KUSTOMIZATIONS.iter().find(|k| dir.join(k).is_file())?;
                let given = file
                    .ancestors()
                    .nth(up + 1)
                    .filter(|d| d.components().count() > 0);
                return Some(given.unwrap_or(dir).join(name));
            }
        }
        None
    }

    /// The file's real path: its folder's (resolved once per folder) joined with its name.
    fn real_path(&mut self, found: &Found) -> Option<PathBuf> {
        if found.linked {
            return std::fs::canonicalize(&found.path).ok();
        }
        let dir = match found.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let real = self
            .real_dirs
            .entry(dir.to_path_buf())
            .or_insert_with(|| std::fs::canonicalize(dir).ok());
        Some(real.as_ref()?.join(found.path.file_name()?))
    }
}

/// The patch files `dir`'s kustomization lists (`patches[].path`, `patchesStrategicMerge[]`,
/// `patchesJson6902[].path`), as canonical paths; none when there is no readable one.
fn patches_of(dir: &Path) -> Vec<PathBuf> {
    let Some(text) = KUSTOMIZATIONS
        .iter()
        .find_map(|name| std::fs::read_to_string(dir.join(name)).ok())
    else {
        return Vec::new();
    };
    let Ok(docs) = parse_documents(&text) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for doc in &docs {
        for key in ["patches", "patchesStrategicMerge", "patchesJson6902"] {
            for entry in doc.get(key).and_then(Value::as_array).into_iter().flatten() {
                let path = match entry {
                    Value::String(path) => Some(path.as_str()),
                    other => other.get("path").and_then(Value::as_str),
                };
                // An inline patch (a multi-line string) is not a path.
                if let Some(path) = path.filter(|p| !p.contains('\n'))
                    && let Ok(canonical) = std::fs::canonicalize(dir.join(path))
                {
                    out.push(canonical);
                }
            }
        }
    }
    out
}

/// Reads one file and checks its objects; `patch_of` is the kustomization listing it as a patch.
fn check_file(path: &Path, policy: &PolicyConfig, patch_of: &Option<PathBuf>) -> FileResult {
    let shown = path.display().to_string();
    let unreadable = |error: String| FileResult {
        path: shown.clone(),
        error: Some(error),
        objects: Vec::new(),
    };
    let text = match read_bounded(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(_) => return unreadable("not UTF-8 text".to_string()),
        },
        Err(why) => return unreadable(why),
    };
    let docs = match parse_documents(&text) {
        Ok(docs) => docs,
        Err(e) => return unreadable(format!("not valid YAML: {e}")),
    };
    let mut objects = Vec::new();
    for (index, doc) in docs.iter().enumerate() {
        let number = index + 1;
        let items = doc
            .get("items")
            .and_then(Value::as_array)
            .filter(|_| is_list(doc));
        match items {
            Some(items) => {
                for (item, object) in items.iter().enumerate() {
                    objects.push(check_object(
                        object,
                        number,
                        Some(item),
                        &shown,
                        policy,
                        patch_of,
                    ));
                }
            }
            None => objects.push(check_object(doc, number, None, &shown, policy, patch_of)),
        }
    }
    FileResult {
        path: shown,
        error: None,
        objects,
    }
}

/// The file's bytes; a file over [`MAX_YAML_BYTES`] is refused before it is read into memory.
fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let cannot = |e: std::io::Error| format!("cannot read: {e}");
    let file = std::fs::File::open(path).map_err(cannot)?;
    let len = file.metadata().map_err(cannot)?.len();
    if len > MAX_YAML_BYTES as u64 {
        return Err(format!(
            "the file is {len} bytes, more than the {MAX_YAML_BYTES}-byte limit"
        ));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    // A file that grew since is cut one byte over the limit, which the parser refuses.
    file.take(MAX_YAML_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    Ok(bytes)
}

/// True for `kind: List` and the typed lists (`DeploymentList`, ...).
fn is_list(doc: &Value) -> bool {
    doc.get("kind")
        .and_then(Value::as_str)
        .is_some_and(|kind| kind.ends_with("List"))
}

fn check_object(
    object: &Value,
    doc: usize,
    item: Option<usize>,
    file: &str,
    policy: &PolicyConfig,
    patch_of: &Option<PathBuf>,
) -> ObjectResult {
    let text = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let mut result = ObjectResult {
        doc,
        item,
        kind: text("/kind"),
        name: text("/metadata/name"),
        status: Status::Skipped,
        reason: None,
        violations: Vec::new(),
    };
    let lint = match patch_of {
        Some(kustomization) => Lint::Skipped(format!(
            "a kustomize patch (listed in {}): a partial object",
            kustomization.display()
        )),
        None => lint(object, policy),
    };
    match lint {
        Lint::Checked(violations) => {
            result.status = if violations.is_empty() {
                Status::Passed
            } else {
                Status::Failed
            };
            result.violations = violations
                .into_iter()
                .map(|v| Violation {
                    file: Some(file.to_string()),
                    ..v
                })
                .collect();
        }
        Lint::Skipped(reason) => result.reason = Some(reason),
    }
    result
}
