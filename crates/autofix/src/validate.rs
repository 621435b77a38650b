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
use std::sync::{Arc, Condvar, Mutex};
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
#[derive(Debug, Clone, Serialize)]
pub struct FileResult {
    /// The path, as given or found below a given folder.
    pub path: String,
    /// Why the file could not be read (not UTF-8, malformed YAML, a YAML bomb, too large).
    pub error: Option<String>,
    /// One entry per object, in document order.
    pub objects: Vec<ObjectResult>,
}

/// The verdict on one object.
#[derive(Debug, Clone, Serialize)]
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
    let mut roots = Vec::with_capacity(paths.len());
    for path in paths {
        let meta = std::fs::metadata(path)
            .map_err(|e| BadInput(anyhow::Error::new(e).context(format!("{}", path.display()))))?;
        roots.push((path, meta.is_dir()));
    }
    // Every core walks, then every core checks. Work is claimed without waiting on another
    // thread: a thread woken from a wait loses tens of microseconds, more than a small file
    // takes to check.
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let Walked {
        found,
        charts,
        kustomizations,
    } = walk(&roots, threads);
    let patches = Patches {
        walked: kustomizations,
        above: Mutex::default(),
    };
    let next = AtomicUsize::new(0);
    let mut done = on_every_core(threads, || {
        let mut done = Vec::new();
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            let Some((_, found)) = found.get(index) else {
                return done;
            };
            done.push((
                index,
                match found {
                    Ok(found) => check_file(&found.path, policy, &patches.listed_by(found)),
                    Err(unlisted) => unlisted.clone(),
                },
            ));
        }
    });
    done.sort_unstable_by_key(|(index, _)| *index);
    let files: Vec<FileResult> = done.into_iter().map(|(_, file)| file).collect();
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
        charts_skipped: charts,
        summary,
    })
}

/// Runs `work` on `threads` threads (this one included) and gathers what each returns.
fn on_every_core<T: Send>(threads: usize, work: impl Fn() -> Vec<T> + Sync) -> Vec<T> {
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(&work)).collect();
        let mut all = work();
        for helper in helpers {
            all.extend(
                helper
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
        }
        all
    })
}

/// A file found by the walk.
struct Found {
    path: PathBuf,
    /// Its real path, when known from its folder's; `None` for a file named on the command
    /// line or a symbolic link found in a folder, which are resolved on their own.
    real: Option<PathBuf>,
}

/// Where an entry comes in the walk order: its position among its folder's entries (in name
/// order), after its folder's own place. Sorting by it gives the order of a depth-first walk.
type Place = Vec<u32>;

/// What the walk found.
struct Walked {
    /// The files to check, and the folders that could not be listed (reported in their place
    /// among the files), in walk order.
    found: Vec<(Place, Result<Found, FileResult>)>,
    /// Folders left out because they are Helm charts, in walk order.
    charts: Vec<String>,
    /// The kustomization of every folder walked whose real path is known, by that path.
    kustomizations: HashMap<PathBuf, Option<Kustomization>>,
}

/// A folder waiting to be listed.
struct Folder {
    place: Place,
    path: PathBuf,
    /// Its real path, when it could be resolved: the given folder's, joined with the names on
    /// the way down (the walk never follows folder links).
    real: Option<PathBuf>,
}

/// The folders still to list, shared by the walking threads.
struct Pending {
    folders: Vec<Folder>,
    /// Folders being listed right now: each may add more.
    listing: usize,
}

/// Finds the files below the given folders on `threads` threads, each listing whichever
/// folder is next, and puts everything in walk order.
fn walk(roots: &[(&PathBuf, bool)], threads: usize) -> Walked {
    let mut walked = Walked {
        found: Vec::new(),
        charts: Vec::new(),
        kustomizations: HashMap::new(),
    };
    let mut folders = Vec::new();
    for (root, (path, is_dir)) in (0u32..).zip(roots) {
        let place = vec![root];
        if *is_dir {
            let real = std::fs::canonicalize(path).ok();
            folders.push(Folder {
                place,
                path: path.to_path_buf(),
                real,
            });
        } else {
            let found = Found {
                path: path.to_path_buf(),
                real: None,
            };
            walked.found.push((place, Ok(found)));
        }
    }
    // The first folder given on top: it is listed first.
    folders.reverse();
    let pending = Mutex::new(Pending {
        folders,
        listing: 0,
    });
    let more = Condvar::new();
    let parts = on_every_core(threads, || vec![walk_part(&pending, &more)]);
    let mut charts = Vec::new();
    for part in parts {
        walked.found.extend(part.found);
        charts.extend(part.charts);
        walked.kustomizations.extend(part.kustomizations);
    }
    walked.found.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    charts.sort_unstable();
    walked.charts = charts.into_iter().map(|(_, chart)| chart).collect();
    walked
}

/// What one walking thread found.
#[derive(Default)]
struct WalkPart {
    found: Vec<(Place, Result<Found, FileResult>)>,
    charts: Vec<(Place, String)>,
    kustomizations: Vec<(PathBuf, Option<Kustomization>)>,
}

/// Lists folders until none is left and no other thread can add one.
fn walk_part(pending: &Mutex<Pending>, more: &Condvar) -> WalkPart {
    let mut part = WalkPart::default();
    loop {
        let folder = {
            let mut queue = pending.lock().expect("no panic while held");
            loop {
                if let Some(folder) = queue.folders.pop() {
                    queue.listing += 1;
                    break folder;
                }
                if queue.listing == 0 {
                    return part;
                }
                queue = more.wait(queue).expect("no panic while held");
            }
        };
        let below = list(folder, &mut part);
        let mut queue = pending.lock().expect("no panic while held");
        queue.listing -= 1;
        // First in name order on top: a thread keeps walking down one branch.
        queue.folders.extend(below.into_iter().rev());
        let done = queue.listing == 0 && queue.folders.is_empty();
        if done || queue.folders.len() > 1 {
            more.notify_all();
        }
    }
}

/// Lists one folder: its files go to `part`, its subfolders are returned in name order.
fn list(folder: Folder, part: &mut WalkPart) -> Vec<Folder> {
    let Folder { place, path, real } = folder;
    let entries = match std::fs::read_dir(&path) {
        Ok(entries) => entries,
        Err(e) => {
            let unlisted = FileResult {
                path: path.display().to_string(),
                error: Some(format!("cannot list the folder: {e}")),
                objects: Vec::new(),
            };
            part.found.push((place, Err(unlisted)));
            return Vec::new();
        }
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    let is_file = |entry: &std::fs::DirEntry| {
        entry
            .file_type()
            .is_ok_and(|kind| kind.is_file() || (kind.is_symlink() && entry.path().is_file()))
    };
    let named = |name: &str| entries.iter().find(|e| e.file_name() == name);
    if named("Chart.yaml").is_some_and(is_file) {
        part.charts.push((place, path.display().to_string()));
        return Vec::new();
    }
    if let Some(real) = &real {
        let kustomization = KUSTOMIZATIONS
            .into_iter()
            .find(|name| named(name).is_some_and(is_file))
            .map(|name| Kustomization::read(real, name));
        part.kustomizations.push((real.clone(), kustomization));
    }
    let mut below = Vec::new();
    for (position, entry) in (0u32..).zip(&entries) {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        // Symbolic links to folders are not followed: they can loop.
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let mut at = place.clone();
        at.push(position);
        if kind.is_dir() {
            below.push(Folder {
                place: at,
                path: entry.path(),
                real: real.as_ref().map(|real| real.join(entry.file_name())),
            });
        } else if is_manifest_name(&name) && !NOT_OBJECTS.contains(&name.as_ref()) && is_file(entry)
        {
            let real = match &real {
                Some(real) if kind.is_file() => Some(real.join(entry.file_name())),
                _ => None,
            };
            let found = Found {
                path: entry.path(),
                real,
            };
            part.found.push((at, Ok(found)));
        }
    }
    below
}

fn is_manifest_name(name: &str) -> bool {
    [".yaml", ".yml", ".json"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

/// A folder's kustomization file and the patch files it lists (real paths).
#[derive(Clone)]
struct Kustomization {
    name: &'static str,
    patches: Arc<[PathBuf]>,
}

impl Kustomization {
    /// Reads `dir/name`; one that cannot be read lists no patches.
    fn read(dir: &Path, name: &'static str) -> Self {
        Kustomization {
            name,
            patches: patches_of(dir, name).into(),
        }
    }
}

/// Which files the kustomizations list as patches.
struct Patches {
    /// The kustomization of every folder walked, by real path.
    walked: HashMap<PathBuf, Option<Kustomization>>,
    /// The same for folders above the ones given, looked for when first needed.
    above: Mutex<HashMap<PathBuf, Option<Kustomization>>>,
}

impl Patches {
    /// The kustomization listing `found` as a patch, if one within [`PATCH_SEARCH_DEPTH`]
    /// folders up does; shown relative to the file as given.
    fn listed_by(&self, found: &Found) -> Option<PathBuf> {
        let real = match &found.real {
            Some(real) => real.clone(),
            None => std::fs::canonicalize(&found.path).ok()?,
        };
        let levels = real.ancestors().skip(1).take(PATCH_SEARCH_DEPTH);
        for (up, dir) in levels.enumerate() {
            let Some(kustomization) = self.kustomization_in(dir) else {
                continue;
            };
            if kustomization.patches.contains(&real) {
                let given = found
                    .path
                    .ancestors()
                    .nth(up + 1)
                    .filter(|d| d.components().count() > 0);
                return Some(given.unwrap_or(dir).join(kustomization.name));
            }
        }
        None
    }

    /// The kustomization of `dir`: known from the walk, else looked for once.
    fn kustomization_in(&self, dir: &Path) -> Option<Kustomization> {
        if let Some(known) = self.walked.get(dir) {
            return known.clone();
        }
        let mut above = self.above.lock().expect("no panic while held");
        above
            .entry(dir.to_path_buf())
            .or_insert_with(|| {
                KUSTOMIZATIONS
                    .into_iter()
                    .find(|name| dir.join(name).is_file())
                    .map(|name| Kustomization::read(dir, name))
            })
            .clone()
    }
}

/// The patch files the kustomization `dir/name` lists (`patches[].path`,
/// `patchesStrategicMerge[]`, `patchesJson6902[].path`), as real paths; none when it cannot be
/// read.
fn patches_of(dir: &Path, name: &str) -> Vec<PathBuf> {
    let Some(text) = read_bounded(&dir.join(name))
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
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

/// The file's bytes; no more than one byte over [`MAX_YAML_BYTES`] is read of a larger one,
/// which is refused.
fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let cannot = |e: std::io::Error| format!("cannot read: {e}");
    let file = std::fs::File::open(path).map_err(cannot)?;
    // Room for a typical manifest, so the first read takes all of it; no `stat` for the size.
    let mut bytes = Vec::with_capacity(16 * 1024);
    file.take(MAX_YAML_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() > MAX_YAML_BYTES {
        return Err(format!(
            "the file is larger than the {MAX_YAML_BYTES}-byte limit"
        ));
    }
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
