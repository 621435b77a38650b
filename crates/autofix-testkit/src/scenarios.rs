//! Where the scenario folders are: the repository's own examples and the outside set.

use std::path::{Path, PathBuf};

/// Every scenario folder (one with an `expected.json`), sorted: `examples/scenarios/*`, plus the
/// folder `AUTOFIX_SCENARIOS` names (CI points it at `../shared/scenarios`), or, when the
/// variable is unset, `../shared/scenarios` beside the checkout if it exists.
pub fn scenario_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let outside = std::env::var_os("AUTOFIX_SCENARIOS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/scenarios"));
    let mut out = Vec::new();
    for folder in [root.join("examples/scenarios"), outside] {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.path().join("expected.json").is_file() {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    out
}
