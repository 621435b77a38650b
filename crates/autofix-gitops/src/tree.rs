//! Builds the fix's tree from the base tree without a work tree or an index.
//!
//! The listed files are arranged into a nested map of directories; each directory on a listed
//! path is rebuilt with a `TreeBuilder` seeded from the base's tree at that directory, so every
//! entry off those paths keeps its object and mode.

use crate::{GitopsError, repo_path};
use git2::{FileMode, ObjectType, Oid, Repository, Tree, TreeEntry};
use std::collections::BTreeMap;

/// One directory level of the listed files.
#[derive(Default)]
struct Dir<'a> {
    entries: BTreeMap<&'a str, Node<'a>>,
}

enum Node<'a> {
    File { path: &'a str, blob: Oid },
    Dir(Dir<'a>),
}

/// The new root tree and the listed paths whose content differs from the base, in listed order.
pub(crate) struct Built {
    /// The root tree of the fix.
    pub tree: Oid,
    /// Paths whose content (or existence) changed.
    pub changed: Vec<String>,
}

/// Writes the blobs for `files` and the trees above them on top of `base`.
pub(crate) fn build(
    repo: &Repository,
    base: &Tree<'_>,
    files: &[(String, String)],
) -> Result<Built, GitopsError> {
    let mut root = Dir::default();
    for (path, content) in files {
        let parts = repo_path::components(path)?;
        let blob = repo
            .blob(content.as_bytes())
            .map_err(|source| GitopsError::WriteObject {
                path: path.clone(),
                source,
            })?;
        root.insert(&parts, path, blob)?;
    }
    let mut changed = Vec::new();
    let tree = write_dir(repo, Some(base), &root, "", &mut changed)?;
    let changed = files
        .iter()
        .map(|(path, _)| path)
        .filter(|path| changed.contains(path))
        .cloned()
        .collect();
    Ok(Built { tree, changed })
}

impl<'a> Dir<'a> {
    fn insert(&mut self, parts: &[&'a str], path: &'a str, blob: Oid) -> Result<(), GitopsError> {
        let duplicate = || GitopsError::DuplicatePath {
            path: path.to_string(),
        };
        match parts {
            [] => Err(duplicate()),
            [name] => match self.entries.insert(name, Node::File { path, blob }) {
                Some(_) => Err(duplicate()),
                None => Ok(()),
            },
            [name, rest @ ..] => match self
                .entries
                .entry(name)
                .or_insert_with(|| Node::Dir(Dir::default()))
            {
                Node::Dir(dir) => dir.insert(rest, path, blob),
                Node::File { .. } => Err(duplicate()),
            },
        }
    }
}

/// Writes one directory: the base's entries with the listed ones replaced or added.
fn write_dir(
    repo: &Repository,
    base: Option<&Tree<'_>>,
    dir: &Dir<'_>,
    prefix: &str,
    changed: &mut Vec<String>,
) -> Result<Oid, GitopsError> {
    let write_err = |source| GitopsError::WriteObject {
        path: prefix.to_string(),
        source,
    };
    let mut builder = repo.treebuilder(base).map_err(write_err)?;
    for (name, node) in &dir.entries {
        let existing = base.and_then(|tree| tree.get_name(name));
        match node {
            Node::File { path, blob } => {
                let mode = match &existing {
                    Some(entry) if entry.id() == *blob => {
                        regular_file_mode(entry, path)?;
                        continue;
                    }
                    Some(entry) => regular_file_mode(entry, path)?,
                    None => FileMode::Blob.into(),
                };
                builder.insert(name, *blob, mode).map_err(write_err)?;
                changed.push(path.to_string());
            }
            Node::Dir(children) => {
                let path = if prefix.is_empty() {
                    name.to_string()
                } else {
                    format!("{prefix}/{name}")
                };
                let subtree = match &existing {
                    None => None,
                    Some(entry) if entry.kind() == Some(ObjectType::Tree) => {
                        Some(repo.find_tree(entry.id()).map_err(|source| {
                            GitopsError::WriteObject {
                                path: path.clone(),
                                source,
                            }
                        })?)
                    }
                    Some(_) => return Err(GitopsError::NotADirectory { path }),
                };
                let oid = write_dir(repo, subtree.as_ref(), children, &path, changed)?;
                builder
                    .insert(name, oid, FileMode::Tree.into())
                    .map_err(write_err)?;
            }
        }
    }
    builder.write().map_err(write_err)
}

/// The mode of a regular file entry (plain, executable or the legacy group-writable), or an
/// error naming what the base has at `path` instead.
pub(crate) fn regular_file_mode(entry: &TreeEntry<'_>, path: &str) -> Result<i32, GitopsError> {
    let mode = entry.filemode();
    let found = if mode == i32::from(FileMode::Tree) {
        "a directory"
    } else if mode == i32::from(FileMode::Link) {
        "a symbolic link"
    } else if mode == i32::from(FileMode::Commit) {
        "a submodule"
    } else {
        return Ok(mode);
    };
    Err(GitopsError::NotAFile {
        path: path.to_string(),
        found,
    })
}
