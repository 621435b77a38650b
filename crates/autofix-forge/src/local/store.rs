//! Record files: listing, numbering and atomic writes.

use super::record::{Record, StoredIssue, StoredPull};
use crate::ForgeError;
use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

/// The directory of record `number` of kind `R`.
pub(crate) fn record_dir<R: Record>(root: &Path, number: u64) -> PathBuf {
    root.join(R::DIR).join(number.to_string())
}

/// Every record of kind `R`, by number.
pub(crate) fn list<R: Record>(root: &Path) -> Result<Vec<R>, ForgeError> {
    numbers(&root.join(R::DIR))?
        .into_iter()
        .map(|number| {
            let path = record_dir::<R>(root, number).join(R::FILE);
            let text = fs::read(&path).map_err(|source| ForgeError::Read {
                path: path.clone(),
                source,
            })?;
            serde_json::from_slice(&text).map_err(|source| ForgeError::Malformed { path, source })
        })
        .collect()
}

/// The number after the highest one used by any pull request or issue.
pub(crate) fn next_number(root: &Path) -> Result<u64, ForgeError> {
    let pulls = numbers(&root.join(StoredPull::DIR))?;
    let issues = numbers(&root.join(StoredIssue::DIR))?;
    Ok(pulls.into_iter().chain(issues).max().unwrap_or(0) + 1)
}

/// Writes a new record: assembled in a staging directory, then renamed into place whole.
pub(crate) fn create<R: Record>(root: &Path, record: &R) -> Result<PathBuf, ForgeError> {
    let staging = root.join(format!(".staging-{}-{}", R::DIR, record.number()));
    // A directory left by a crash mid-create holds nothing anyone has seen: start over.
    match fs::remove_dir_all(&staging) {
        Err(e) if e.kind() != ErrorKind::NotFound => return Err(write_err(&staging, e)),
        _ => {}
    }
    fs::create_dir_all(&staging).map_err(|e| write_err(&staging, e))?;
    for (name, bytes) in files(record, &staging)? {
        let path = staging.join(name);
        fs::write(&path, bytes).map_err(|e| write_err(&path, e))?;
    }
    let kind_dir = root.join(R::DIR);
    fs::create_dir_all(&kind_dir).map_err(|e| write_err(&kind_dir, e))?;
    let target = record_dir::<R>(root, record.number());
    fs::rename(&staging, &target).map_err(|e| write_err(&target, e))?;
    Ok(target)
}

/// Rewrites an existing record file by file, each atomically; the JSON record goes last so it
/// never names content the views do not hold yet.
pub(crate) fn update<R: Record>(root: &Path, record: &R) -> Result<PathBuf, ForgeError> {
    let dir = record_dir::<R>(root, record.number());
    for (name, bytes) in files(record, &dir)? {
        write_atomic(&dir.join(name), &bytes)?;
    }
    Ok(dir)
}

/// The files of a record in write order: the views, then the JSON.
fn files<R: Record>(record: &R, dir: &Path) -> Result<Vec<(&'static str, Vec<u8>)>, ForgeError> {
    let (title, body, labels) = record.views();
    let labels: String = labels.iter().map(|label| format!("{label}\n")).collect();
    let mut json = serde_json::to_vec_pretty(record).map_err(|source| ForgeError::Encode {
        path: dir.join(R::FILE),
        source,
    })?;
    json.push(b'\n');
    Ok(vec![
        ("title.txt", format!("{title}\n").into_bytes()),
        ("body.md", body.as_bytes().to_vec()),
        ("labels.txt", labels.into_bytes()),
        (R::FILE, json),
    ])
}

/// Writes `bytes` to a temporary file beside `path`, flushes it and renames it over `path`.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ForgeError> {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let result = fs::File::create(&temp)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .and_then(|()| fs::rename(&temp, path));
    result.map_err(|e| {
        // Best effort: the write already failed, and a stray temporary file is ignored by readers.
        let _ = fs::remove_file(&temp);
        write_err(path, e)
    })
}

/// The numbers of the record directories under `dir`, ascending; none when it does not exist.
fn numbers(dir: &Path) -> Result<Vec<u64>, ForgeError> {
    let read_err = |source| ForgeError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(read_err(e)),
    };
    let mut numbers = Vec::new();
    for entry in entries {
        let entry = entry.map_err(read_err)?;
        // Only canonical decimal names are records (not `.staging-*`, `+1` or `01`).
        let name = entry.file_name();
        let number = name.to_str().and_then(|name| {
            name.parse::<u64>()
                .ok()
                .filter(|number| number.to_string() == name)
        });
        numbers.extend(number);
    }
    numbers.sort_unstable();
    Ok(numbers)
}

fn write_err(path: &Path, source: std::io::Error) -> ForgeError {
    ForgeError::Write {
        path: path.to_path_buf(),
        source,
    }
}
