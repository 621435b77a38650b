//! Checks of the edited GitOps files themselves, document by document.
//!
//! Each file's `after` text must parse (`yaml`); its documents, identified by kind and name,
//! must be the same set as before (`kind`), keep their namespace (`namespace`), and only the
//! workload's own documents may change (`undeclared-document`). Every document of a kind
//! kube-autofix knows is schema-checked (`schema`), reporting the problems the fix introduces:
//! a kustomize patch lacks required fields before and after the fix, and the rendered object
//! is where completeness is checked.

use crate::schema::{Problem, problems};
use crate::scope::namespace_of;
use autofix_core::yaml::parse_documents;
use autofix_core::{Violation, WorkloadRef};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The text of one GitOps file before and after the fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditedFile {
    /// Path relative to the GitOps repository root, e.g. `apps/cart/deployment.yaml`.
    pub file: String,
    /// The file as committed before the fix.
    pub before: String,
    /// The file as the fix leaves it.
    pub after: String,
    /// True when the file holds a Helm release's values (a HelmRelease, an Argo CD Application
    /// or a values file) rather than the workload's manifest: its documents are not the
    /// workload's own, yet the fix must change them.
    pub helm_values: bool,
}

/// True for a kustomize `Kustomization` whose only change is its `images:` list: that is where
/// an overlay defines the workload's image, and the rendered workload's diff still has to stay
/// within the declared paths.
fn only_images_changed(previous: &Value, doc: &Value) -> bool {
    let strip = |d: &Value| {
        let mut d = d.clone();
        if let Some(map) = d.as_object_mut() {
            map.remove("images");
        }
        d
    };
    doc.get("kind").and_then(Value::as_str) == Some("Kustomization")
        && strip(previous) == strip(doc)
}

/// A document's identity inside a file: its kind and `metadata.name`.
type DocKey<'a> = (Option<&'a str>, Option<&'a str>);

fn key(doc: &Value) -> DocKey<'_> {
    (
        doc.get("kind").and_then(Value::as_str),
        doc.pointer("/metadata/name").and_then(Value::as_str),
    )
}

fn describe((kind, name): DocKey<'_>) -> String {
    format!(
        "{}/{}",
        kind.unwrap_or("(no kind)"),
        name.unwrap_or("(no name)")
    )
}

fn violation(rule: &str, file: &str, path: Option<String>, message: String) -> Violation {
    Violation {
        rule: rule.to_string(),
        file: Some(file.to_string()),
        path,
        message,
    }
}

/// Violations of every edited file.
pub(crate) fn check(workload: &WorkloadRef, edits: &[EditedFile]) -> Vec<Violation> {
    edits
        .iter()
        .flat_map(|edit| check_file(workload, edit))
        .collect()
}

fn check_file(workload: &WorkloadRef, edit: &EditedFile) -> Vec<Violation> {
    let file = edit.file.as_str();
    let after = match parse_documents(&edit.after) {
        Ok(docs) => docs,
        Err(err) => {
            let message = format!("the file is not valid YAML after the fix: {err}");
            return vec![violation("yaml", file, None, message)];
        }
    };
    let before = match parse_documents(&edit.before) {
        Ok(docs) => docs,
        Err(err) => {
            let message = format!("the file as it was before the fix cannot be read: {err}");
            return vec![violation("yaml", file, None, message)];
        }
    };
    let mut out = Vec::new();
    let mut earlier: BTreeMap<DocKey<'_>, Vec<&Value>> = BTreeMap::new();
    for doc in &before {
        earlier.entry(key(doc)).or_default().push(doc);
    }
    let mut seen: BTreeMap<DocKey<'_>, usize> = BTreeMap::new();
    for doc in &after {
        let id = key(doc);
        let occurrence = seen.entry(id).or_default();
        let previous = earlier
            .get(&id)
            .and_then(|docs| docs.get(*occurrence))
            .copied();
        *occurrence += 1;
        match previous {
            None => out.push(violation(
                "kind",
                file,
                None,
                format!(
                    "the fix adds document {}; it may only edit existing ones",
                    describe(id)
                ),
            )),
            Some(previous) => {
                let (was, is) = (namespace_of(previous), namespace_of(doc));
                if was != is {
                    out.push(violation(
                        "namespace",
                        file,
                        Some("metadata.namespace".to_string()),
                        format!(
                            "the fix moves {} from namespace {} to {}",
                            describe(id),
                            was.unwrap_or("(unset)"),
                            is.unwrap_or("(unset)")
                        ),
                    ));
                }
                let own = edit.helm_values
                    || id == (Some(workload.kind.as_str()), Some(workload.name.as_str()));
                if !own && previous != doc && !only_images_changed(previous, doc) {
                    out.push(violation(
                        "undeclared-document",
                        file,
                        None,
                        format!(
                            "the fix changes {}, but the remediation is about {workload}; \
                             only the workload's own document may change",
                            describe(id)
                        ),
                    ));
                }
            }
        }
        let old: Vec<Problem> = previous.and_then(problems).unwrap_or_default();
        for problem in problems(doc).unwrap_or_default() {
            if !old.iter().any(|o| o.same_as(&problem)) {
                out.push(violation(
                    "schema",
                    file,
                    crate::paths::shown(&problem.path),
                    format!("{}: {problem}", describe(id)),
                ));
            }
        }
    }
    for (id, docs) in &earlier {
        let kept = seen.get(id).copied().unwrap_or_default();
        for _ in kept..docs.len() {
            out.push(violation(
                "kind",
                file,
                None,
                format!("the fix removes document {}", describe(*id)),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use autofix_core::WorkloadKind;

    const BASE: &str = "\
# indexer
apiVersion: apps/v1
kind: Deployment
metadata:
  name: indexer
spec:
  template:
    spec:
      containers:
        - name: indexer
          resources:
            limits:
              cpu: 250m
---
apiVersion: v1
kind: Service
metadata:
  name: indexer
spec:
  ports:
    - port: 8080
";

    fn indexer() -> WorkloadRef {
        WorkloadRef {
            kind: WorkloadKind::Deployment,
            namespace: "search".into(),
            name: "indexer".into(),
        }
    }

    fn rules(after: &str) -> Vec<(String, Option<String>)> {
        let edit = EditedFile {
            file: "overlays/prod/patches/resources.yaml".into(),
            before: BASE.into(),
            after: after.into(),
            helm_values: false,
        };
        let found = check(&indexer(), &[edit]);
        assert!(
            found
                .iter()
                .all(|v| v.file.as_deref() == Some("overlays/prod/patches/resources.yaml"))
        );
        found.into_iter().map(|v| (v.rule, v.path)).collect()
    }

    #[test]
    fn a_helm_values_file_may_change_but_must_still_parse() {
        let before = "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: cart\nspec:\n  values:\n    resources:\n      limits:\n        memory: 256Mi\n";
        let check_after = |after: &str, helm_values: bool| {
            let edit = EditedFile {
                file: "apps/cart/release.yaml".into(),
                before: before.into(),
                after: after.into(),
                helm_values,
            };
            check(&indexer(), &[edit])
                .into_iter()
                .map(|v| v.rule)
                .collect::<Vec<_>>()
        };
        let raised = before.replace("256Mi", "512Mi");
        assert!(check_after(&raised, true).is_empty());
        assert_eq!(check_after(&raised, false), ["undeclared-document"]);
        assert_eq!(check_after("spec: [", true), ["yaml"]);
    }

    #[test]
    fn a_kustomization_may_change_only_its_images() {
        let before = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: search\nimages:\n  - name: indexer\n    newTag: v2\n";
        let check_after = |after: &str| {
            let edit = EditedFile {
                file: "kustomization.yaml".into(),
                before: before.into(),
                after: after.into(),
                helm_values: false,
            };
            check(&indexer(), &[edit])
                .into_iter()
                .map(|v| v.rule)
                .collect::<Vec<_>>()
        };
        assert!(check_after(&before.replace("v2", "v1")).is_empty());
        assert_eq!(
            check_after(&before.replace("search", "other")),
            ["undeclared-document"]
        );
    }

    #[test]
    fn an_edited_patch_passes_though_it_lacks_required_fields() {
        assert_eq!(rules(&BASE.replace("250m", "1")), vec![]);
    }

    #[test]
    fn unreadable_yaml_is_refused() {
        assert_eq!(
            rules(&BASE.replace("cpu: 250m", "cpu: [1")),
            [("yaml".to_string(), None)]
        );
    }

    #[test]
    fn schema_problems_introduced_in_a_patch_are_refused() {
        let misspelled = BASE.replace("limits:", "limit:");
        let path = "spec.template.spec.containers[name=indexer].resources.limit";
        assert_eq!(
            rules(&misspelled),
            [("schema".to_string(), Some(path.to_string()))]
        );
        let wrong_type = BASE.replace("port: 8080", "port: http");
        assert_eq!(
            rules(&wrong_type),
            [
                ("undeclared-document".to_string(), None),
                ("schema".to_string(), Some("spec.ports[0].port".to_string()))
            ]
        );
    }

    #[test]
    fn added_removed_and_moved_documents_are_refused() {
        let added = format!("{BASE}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n");
        assert_eq!(rules(&added), [("kind".to_string(), None)]);
        let removed = BASE.split("---").next().unwrap_or_default().to_string();
        assert_eq!(rules(&removed), [("kind".to_string(), None)]);
        let moved = BASE.replace(
            "  name: indexer\nspec:\n  template",
            "  name: indexer\n  namespace: other\nspec:\n  template",
        );
        assert_eq!(
            rules(&moved),
            [(
                "namespace".to_string(),
                Some("metadata.namespace".to_string())
            )]
        );
    }
}
