//! The spool: runs that could not be logged, one JSON file each, replayed in order later.
//!
//! Files are named `<record id>.json`; ids start with the run's start time, so the sorted
//! directory listing is the replay order. Writes go to a hidden temporary file that is synced
//! and renamed into place, so a crash leaves either the whole file or none. Files that MLflow
//! refuses for good are moved to `rejected/` so they do not block the queue.

use crate::record::RunRecord;
use crate::tracker::RunRef;
use serde::{Deserialize, Serialize};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Version of the spool file format.
const FORMAT_VERSION: u32 = 1;
/// Subdirectory of files MLflow refused.
const REJECTED_DIR: &str = "rejected";

/// A spool directory problem.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// A file or the directory cannot be read or written.
    #[error("tracking spool {path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A spool file is not a spooled run.
    #[error("tracking spool file {path} is unreadable: {source}")]
    Corrupt {
        /// The file.
        path: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

/// One spooled run: the record, and the parent run when it was already created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpooledRun {
    /// Format version ([`FORMAT_VERSION`]).
    pub version: u32,
    /// The parent run, when `begin` created it.
    pub run: Option<RunRef>,
    /// Everything to log (already redacted).
    pub record: RunRecord,
    /// Why it was spooled (last error).
    pub error: String,
}

impl SpooledRun {
    /// A spooled run in the current format.
    pub fn new(run: Option<RunRef>, record: RunRecord, error: String) -> Self {
        SpooledRun {
            version: FORMAT_VERSION,
            run,
            record,
            error,
        }
    }
}

/// A spool directory.
#[derive(Debug, Clone)]
pub struct Spool {
    dir: PathBuf,
}

impl Spool {
    /// The spool in `dir`, created if missing.
    pub fn open(dir: &Path) -> Result<Self, SpoolError> {
        std::fs::create_dir_all(dir).map_err(|source| io(dir, source))?;
        Ok(Spool {
            dir: dir.to_path_buf(),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes a spooled run atomically; returns its file.
    pub fn write(&self, entry: &SpooledRun) -> Result<PathBuf, SpoolError> {
        let name = format!("{}.json", file_stem(&entry.record.id));
        let path = self.dir.join(&name);
        let temp = self.dir.join(format!(".{name}.tmp"));
        let bytes = serde_json::to_vec_pretty(entry).map_err(|source| SpoolError::Corrupt {
            path: path.display().to_string(),
            source,
        })?;
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&temp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&temp, &path)?;
            // The rename is durable once the directory is synced (best effort off Unix).
            if let Ok(dir) = std::fs::File::open(&self.dir) {
                let _ = dir.sync_all();
            }
            Ok(())
        };
        write().map_err(|source| {
            let _ = std::fs::remove_file(&temp);
            io(&path, source)
        })?;
        Ok(path)
    }

    /// Spooled files in replay order.
    pub fn entries(&self) -> Result<Vec<PathBuf>, SpoolError> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(|source| io(&self.dir, source))? {
            let entry = entry.map_err(|source| io(&self.dir, source))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if !name.starts_with('.') && name.ends_with(".json") && entry.path().is_file() {
                files.push(entry.path());
            }
        }
        files.sort();
        Ok(files)
    }

    /// Reads a spooled file.
    pub fn read(&self, path: &Path) -> Result<SpooledRun, SpoolError> {
        let bytes = std::fs::read(path).map_err(|source| io(path, source))?;
        serde_json::from_slice(&bytes).map_err(|source| SpoolError::Corrupt {
            path: path.display().to_string(),
            source,
        })
    }

    /// Deletes a replayed file.
    pub fn remove(&self, path: &Path) -> Result<(), SpoolError> {
        std::fs::remove_file(path).map_err(|source| io(path, source))
    }

    /// Moves a file MLflow refuses (or that cannot be parsed) to `rejected/`, out of the queue.
    pub fn reject(&self, path: &Path) -> Result<PathBuf, SpoolError> {
        let dir = self.dir.join(REJECTED_DIR);
        std::fs::create_dir_all(&dir).map_err(|source| io(&dir, source))?;
        let target = dir.join(path.file_name().unwrap_or_default());
        std::fs::rename(path, &target).map_err(|source| io(path, source))?;
        Ok(target)
    }
}

/// Keeps only characters safe in a file name.
fn file_stem(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn io(path: &Path, source: std::io::Error) -> SpoolError {
    SpoolError::Io {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::RunStatus;
    use std::collections::BTreeMap;

    fn record(id: &str) -> RunRecord {
        RunRecord {
            id: id.into(),
            run_name: "shop/cart x".into(),
            status: RunStatus::Finished,
            start_time: 1,
            end_time: 2,
            params: BTreeMap::new(),
            metrics: Vec::new(),
            tags: BTreeMap::new(),
            note: String::new(),
            artifacts: Vec::new(),
            prompts: Vec::new(),
            attempts: Vec::new(),
        }
    }

    #[test]
    fn writes_lists_in_order_and_removes() -> Result<(), Box<dyn std::error::Error>> {
        let temp = tempfile::tempdir()?;
        let spool = Spool::open(&temp.path().join("spool"))?;
        for id in [
            "0000000000002-a-1",
            "0000000000001-a-2",
            "0000000000003-a-0",
        ] {
            spool.write(&SpooledRun::new(None, record(id), "down".into()))?;
        }
        std::fs::write(spool.dir().join(".partial.json.tmp"), b"{")?;
        let entries = spool.entries()?;
        let ids: Vec<String> = entries
            .iter()
            .map(|p| spool.read(p).map(|s| s.record.id))
            .collect::<Result<_, _>>()?;
        assert_eq!(
            ids,
            [
                "0000000000001-a-2",
                "0000000000002-a-1",
                "0000000000003-a-0"
            ]
        );
        spool.remove(&entries[0])?;
        let rejected = spool.reject(&entries[1])?;
        assert!(rejected.is_file());
        assert_eq!(spool.entries()?.len(), 1);
        Ok(())
    }

    #[test]
    fn corrupt_files_are_reported() -> Result<(), Box<dyn std::error::Error>> {
        let temp = tempfile::tempdir()?;
        let spool = Spool::open(temp.path())?;
        let path = temp.path().join("x.json");
        std::fs::write(&path, b"not json")?;
        assert!(matches!(spool.read(&path), Err(SpoolError::Corrupt { .. })));
        Ok(())
    }
}
