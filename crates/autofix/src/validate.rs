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
use std::sync::{Arc, Mutex, mpsc};
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
    let mut roots = Vec::with_capacity(paths.len());
    for path in paths {
        let meta = std::fs::metadata(path)
            .map_err(|e| BadInput(anyhow::Error::new(e).context(format!("{}", path.display()))))?;
        roots.push((path, meta.is_dir()));
    }
    // This thread walks and hands each file over as it is found; the other cores read and
    // check them meanwhile, and this one joins them when the walk is done. The kustomizations
    // that may list a file as a patch are read once each, by whichever thread needs one first.
    let patches = Patches::default();
    let (found, to_check) = mpsc::channel::<(usize, Result<Found, FileResult>)>();
    let to_check = Mutex::new(to_check);
    let check = || {
        let mut done = Vec::new();
        loop {
            let next = to_check.lock().expect("no panic while held").recv();
            let Ok((index, found)) = next else {
                return done;
            };
            done.push((
                index,
                match found {
                    Ok(found) => check_file(&found.path, policy, &patches.listed_by(&found)),
                    Err(unreadable) => unreadable,
                },
            ));
        }
    };
    let other_cores = std::thread::available_parallelism().map_or(1, usize::from) - 1;
    let (charts, mut done) = std::thread::scope(|scope| {
        let helpers: Vec<_> = (0..other_cores).map(|_| scope.spawn(check)).collect();
        let mut walk = Walk {
            found,
            count: 0,
            charts: Vec::new(),
            patches: &patches,
        };
        for (path, is_dir) in roots {
            if is_dir {
                // Folders below are never symbolic links (the walk does not follow them), so
                // each one's real path is this folder's joined with the names on the way down.
                walk.dir(path, std::fs::canonicalize(path).ok());
            } else {
                walk.file(path.clone(), None);
            }
        }
        let Walk { found, charts, .. } = walk;
        drop(found);
        let mut done = check();
        for helper in helpers {
            done.extend(
                helper
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
        }
        (charts, done)
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

/// A file found by the walk.
struct Found {
    path: PathBuf,
    /// Its real path, when known from its folder's; `None` for a file named on the command
    /// line or a symbolic link found in a folder, which are resolved on their own.
    real: Option<PathBuf>,
}

/// Finds the files below the given folders, in name order, and hands each one over (with the
/// folders that could not be read) numbered in that order.
struct Walk<'a> {
    found: mpsc::Sender<(usize, Result<Found, FileResult>)>,
    /// Files handed over so far.
    count: usize,
    /// Folders left out because they are Helm charts.
    charts: Vec<String>,
    /// Where the kustomization of each folder walked is noted.
    patches: &'a Patches,
}

impl Walk<'_> {
    /// Hands one file over to be checked.
    fn file(&mut self, path: PathBuf, real: Option<PathBuf>) {
        self.hand_over(Ok(Found { path, real }));
    }

    fn hand_over(&mut self, found: Result<Found, FileResult>) {
        // The receiving side lives until the walk is over.
        let _ = self.found.send((self.count, found));
        self.count += 1;
    }

    /// Walks `dir`, whose real path is `real` when it could be resolved.
    fn dir(&mut self, dir: &Path, real: Option<PathBuf>) {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                self.hand_over(Err(FileResult {
                    path: dir.display().to_string(),
                    error: Some(format!("cannot list the folder: {e}")),
                    objects: Vec::new(),
                }));
                return;
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
            self.charts.push(dir.display().to_string());
            return;
        }
        if let Some(real) = &real {
            let kustomization = KUSTOMIZATIONS
                .into_iter()
                .find(|name| named(name).is_some_and(is_file));
            self.patches
                .kustomizations
                .lock()
                .expect("no panic while held")
                .insert(real.clone(), kustomization);
        }
        for entry in &entries {
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
                let real = real.as_ref().map(|real| real.join(entry.file_name()));
                self.dir(&path, real);
            } else if is_manifest_name(&name)
                && !NOT_OBJECTS.contains(&name.as_ref())
                && is_file(entry)
            {
                let real = match &real {
                    Some(real) if kind.is_file() => Some(real.join(entry.file_name())),
                    _ => None,
                };
                self.file(path, real);
            }
        }
    }
}

fn is_manifest_name(name: &str) -> bool {
    [".yaml", ".yml", ".json"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

/// Which files the kustomizations list as patches; shared by the walk and the checking threads.
#[derive(Default)]
struct Patches {
    /// The kustomization file of each folder walked so far, by real path. A file is handed
    /// over after its folders are walked, so theirs are always known by then.
    kustomizations: Mutex<HashMap<PathBuf, Option<&'static str>>>,
    /// The patch files each folder's kustomization lists (real paths), read once per folder.
    listed: Mutex<HashMap<PathBuf, Arc<[PathBuf]>>>,
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
            let Some(name) = self.kustomization_in(dir) else {
                continue;
            };
            if self.listed_in(dir, name).contains(&real) {
                let given = found
                    .path
                    .ancestors()
                    .nth(up + 1)
                    .filter(|d| d.components().count() > 0);
                return Some(given.unwrap_or(dir).join(name));
            }
        }
        None
    }

    /// The kustomization file of `dir`: known from the walk, else looked for (a folder above
    /// the ones given).
    fn kustomization_in(&self, dir: &Path) -> Option<&'static str> {
        let known = self
            .kustomizations
            .lock()
            .expect("no panic while held")
            .get(dir)
            .copied();
        match known {
            Some(known) => known,
            None => KUSTOMIZATIONS
                .into_iter()
                .find(|name| dir.join(name).is_file()),
        }
    }

    /// The patch files `dir/name` lists, read the first time they are asked for.
    fn listed_in(&self, dir: &Path, name: &str) -> Arc<[PathBuf]> {
        let known = self
            .listed
            .lock()
            .expect("no panic while held")
            .get(dir)
            .cloned();
        known.unwrap_or_else(|| {
            let listed: Arc<[PathBuf]> = patches_of(dir, name).into();
            let mut listed_by_dir = self.listed.lock().expect("no panic while held");
            listed_by_dir
                .entry(dir.to_path_buf())
                .or_insert(listed)
                .clone()
        })
    }
}

/// The patch files the kustomization `dir/name` lists (`patches[].path`,
/// `patchesStrategicMerge[]`, `patchesJson6902[].path`), as real paths; none when it cannot be
/// read.
fn patches_of(dir: &Path, name: &str) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(dir.join(name)) else {
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
