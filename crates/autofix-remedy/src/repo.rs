//! Loading a GitOps repo: every YAML file's text and documents, read once.

use crate::error::RemedyError;
use autofix_core::yaml::{self, MAX_YAML_BYTES};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// A GitOps repository held in memory: every `*.yaml`, `*.yml` and `*.json` file (and files
/// named `Kustomization`), by path relative to the root with `/` separators.
///
/// `.git` is skipped, and so are the `templates/` and `charts/` folders of Helm charts (folders
/// with a `Chart.yaml`): those are Go templates, not YAML. Symbolic links are not followed.
#[derive(Debug, Clone)]
pub struct GitopsRepo {
    root: PathBuf,
    files: BTreeMap<String, RepoFile>,
}

#[derive(Debug, Clone)]
struct RepoFile {
    text: String,
    /// The non-empty documents; for `.json` files an error is kept until the file is used, so
    /// that an unrelated broken JSON file (a dashboard, say) does not stop the whole stage.
    docs: Result<Vec<Value>, String>,
}

impl GitopsRepo {
    /// Reads every YAML file below `root`; fails naming the first file that cannot be read or
    /// is not valid YAML (including files over the size limit and alias bombs).
    pub fn load(root: &Path) -> Result<GitopsRepo, RemedyError> {
        let mut texts = BTreeMap::new();
        collect(root, "", &mut texts)?;
        let mut repo = GitopsRepo::from_texts(texts)?;
        repo.root = root.to_path_buf();
        Ok(repo)
    }

    /// Builds a repo from `(relative path, text)` pairs, e.g. blobs of a git tree; the root
    /// path is empty. Files with other extensions than YAML/JSON are ignored.
    pub fn from_texts(
        texts: impl IntoIterator<Item = (String, String)>,
    ) -> Result<GitopsRepo, RemedyError> {
        let mut files = BTreeMap::new();
        for (file, text) in texts {
            if !is_manifest(&file) {
                continue;
            }
            let docs = match yaml::parse_documents(&text) {
                Ok(docs) => Ok(docs),
                Err(e) if file.ends_with(".json") => Err(e.to_string()),
                Err(source) => return Err(RemedyError::Yaml { file, source }),
            };
            files.insert(file, RepoFile { text, docs });
        }
        Ok(GitopsRepo {
            root: PathBuf::new(),
            files,
        })
    }

    /// The folder the repo was loaded from (empty for [`GitopsRepo::from_texts`]).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The relative paths of all files held, sorted.
    pub fn files(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// The text of one file, if held.
    pub fn text(&self, file: &str) -> Option<&str> {
        self.files.get(file).map(|f| f.text.as_str())
    }

    /// True when `file` is held.
    pub(crate) fn contains(&self, file: &str) -> bool {
        self.files.contains_key(file)
    }

    /// True when some held file lies below folder `dir` (`""` is the root).
    pub(crate) fn has_dir(&self, dir: &str) -> bool {
        self.files_under(dir).next().is_some()
    }

    /// Held files below folder `dir`, at any depth, sorted.
    pub(crate) fn files_under<'a>(&'a self, dir: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        self.files
            .range(prefix.clone()..)
            .map(|(k, _)| k.as_str())
            .take_while(move |k| k.starts_with(&prefix))
    }

    /// The kustomization file of folder `dir`, if it has one.
    pub(crate) fn kustomization_in(&self, dir: &str) -> Option<String> {
        ["kustomization.yaml", "kustomization.yml", "Kustomization"]
            .iter()
            .map(|name| join(dir, name))
            .find(|f| self.files.contains_key(f))
    }

    /// The documents of a held file.
    pub(crate) fn documents(&self, file: &str) -> Result<&[Value], RemedyError> {
        let held = self.files.get(file).ok_or_else(|| RemedyError::Read {
            file: file.to_string(),
            source: io::Error::new(io::ErrorKind::NotFound, "not in the GitOps repo"),
        })?;
        held.docs.as_deref().map_err(|reason| RemedyError::Yaml {
            file: file.to_string(),
            source: yaml::YamlError::Syntax(reason.clone()),
        })
    }
}

/// `dir/name`, or `name` at the root.
pub(crate) fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// The folder part of a relative path (`""` at the root).
pub(crate) fn parent(file: &str) -> &str {
    file.rsplit_once('/').map_or("", |(dir, _)| dir)
}

fn is_manifest(file: &str) -> bool {
    let name = file.rsplit('/').next().unwrap_or(file);
    name == "Kustomization"
        || [".yaml", ".yml", ".json"]
            .iter()
            .any(|ext| name.ends_with(ext))
}

fn collect(dir: &Path, rel: &str, texts: &mut BTreeMap<String, String>) -> Result<(), RemedyError> {
    let read_err = |file: &str, source| RemedyError::Read {
        file: if file.is_empty() {
            ".".into()
        } else {
            file.into()
        },
        source,
    };
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| read_err(rel, e))? {
        let entry = entry.map_err(|e| read_err(rel, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry
            .file_type()
            .map_err(|e| read_err(&join(rel, &name), e))?;
        entries.push((name, kind));
    }
    let is_chart = entries.iter().any(|(name, _)| name == "Chart.yaml");
    for (name, kind) in entries {
        let child = join(rel, &name);
        if kind.is_dir() {
            let templated = is_chart && (name == "templates" || name == "charts");
            if name != ".git" && !templated {
                collect(&dir.join(&name), &child, texts)?;
            }
        } else if kind.is_file() && is_manifest(&child) {
            let path = dir.join(&name);
            let len = fs::metadata(&path).map_err(|e| read_err(&child, e))?.len();
            if len > MAX_YAML_BYTES as u64 {
                return Err(RemedyError::Yaml {
                    file: child,
                    source: yaml::YamlError::TooLarge(len.try_into().unwrap_or(usize::MAX)),
                });
            }
            let text = fs::read_to_string(&path).map_err(|e| read_err(&child, e))?;
            texts.insert(child, text);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_yaml_skips_git_and_chart_templates() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join(".git")).unwrap();
        fs::write(root.join(".git/config.yaml"), "{{ not yaml").unwrap();
        fs::create_dir_all(root.join("apps/chart/templates")).unwrap();
        fs::write(root.join("apps/chart/Chart.yaml"), "name: x\n").unwrap();
        fs::write(root.join("apps/chart/templates/d.yaml"), "a: {{ .x }}\n").unwrap();
        fs::write(root.join("apps/d.yaml"), "kind: Deployment\n").unwrap();
        fs::write(root.join("README.md"), "# hi").unwrap();
        let repo = GitopsRepo::load(root).unwrap();
        assert_eq!(
            repo.files().collect::<Vec<_>>(),
            ["apps/chart/Chart.yaml", "apps/d.yaml"]
        );
        assert_eq!(repo.text("apps/d.yaml"), Some("kind: Deployment\n"));
    }

    #[test]
    fn names_the_broken_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("apps")).unwrap();
        fs::write(dir.path().join("apps/ok.yaml"), "a: 1\n").unwrap();
        fs::write(dir.path().join("apps/bad.yaml"), "a: [1,\n b: }").unwrap();
        let err = GitopsRepo::load(dir.path()).unwrap_err();
        assert!(matches!(&err, RemedyError::Yaml { file, .. } if file == "apps/bad.yaml"));
        assert_eq!(err.to_string(), "apps/bad.yaml is not valid YAML");
    }

    #[test]
    fn refuses_alias_bombs_without_panicking() {
        let mut bomb = String::from("a: &a [x,x,x,x,x,x,x,x,x,x]\n");
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
        for pair in names.windows(2) {
            let refs = vec![format!("*{}", pair[0]); 10].join(",");
            bomb.push_str(&format!("{}: &{} [{refs}]\n", pair[1], pair[1]));
        }
        let err = GitopsRepo::from_texts([("bomb.yaml".to_string(), bomb)]).unwrap_err();
        assert!(matches!(err, RemedyError::Yaml { file, .. } if file == "bomb.yaml"));
    }

    #[test]
    fn broken_json_fails_only_when_used() {
        let repo =
            GitopsRepo::from_texts([("d.json".to_string(), "{\"a\": ".to_string())]).unwrap();
        assert!(matches!(
            repo.documents("d.json"),
            Err(RemedyError::Yaml { .. })
        ));
    }
}
