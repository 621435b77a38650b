//! Locating and editing through kustomize layers, on small repos written inline.

use autofix_core::{FieldChange, FieldPath, Remediation, WorkloadKind, WorkloadRef};
use autofix_remedy::{FileEdit, GitopsRepo, Layer, RemedyError, WorkloadSources, plan_edits};
use serde_json::{Value, json};
use std::collections::BTreeMap;

fn repo(files: &[(&str, &str)]) -> GitopsRepo {
    GitopsRepo::from_texts(files.iter().map(|(f, t)| (f.to_string(), t.to_string()))).unwrap()
}

fn deployment(namespace: &str, name: &str) -> WorkloadRef {
    WorkloadRef {
        kind: WorkloadKind::Deployment,
        namespace: namespace.into(),
        name: name.into(),
    }
}

fn change(path: &str, to: Value) -> Remediation {
    Remediation {
        strategy: "test".into(),
        changes: vec![FieldChange {
            path: FieldPath::must(path),
            from: None,
            to,
            reason: "test".into(),
        }],
    }
}

fn locate(repo: &GitopsRepo, cluster: &str, name: &str) -> WorkloadSources {
    repo.locate(cluster, &deployment("shop", name))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Plans the change and checks the rendered result carries it.
fn fix(repo: &GitopsRepo, sources: &WorkloadSources, path: &str, to: Value) -> Vec<FileEdit> {
    let edits =
        plan_edits(repo, sources, &change(path, to.clone())).unwrap_or_else(|e| panic!("{e}"));
    let overrides: BTreeMap<String, String> = edits
        .iter()
        .map(|e| (e.file.clone(), e.after.clone()))
        .collect();
    let rendered = repo.render(sources, &overrides).unwrap();
    assert_eq!(FieldPath::must(path).get(&rendered), Some(&to));
    edits
}

/// The lines of `edit` that differ, as (line number, before, after).
fn changed(edit: &FileEdit) -> Vec<(usize, String, String)> {
    let old: Vec<&str> = edit.before.split('\n').collect();
    let new: Vec<&str> = edit.after.split('\n').collect();
    assert_eq!(old.len(), new.len(), "{}", edit.after);
    (0..old.len())
        .filter(|i| old[*i] != new[*i])
        .map(|i| (i + 1, old[i].to_string(), new[i].to_string()))
        .collect()
}

const FLUX_APPS: &str = "\
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps
spec:
  path: ./apps
";

const CART: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: cart
  namespace: shop
spec:
  replicas: 2
  template:
    spec:
      containers:
        - name: cart
          image: registry.example.com/shop/cart:1.8.2 # Renovate
          resources:
            limits:
              memory: 128Mi
";

const LIMIT: &str = "spec.template.spec.containers[name=cart].resources.limits.memory";
const IMAGE: &str = "spec.template.spec.containers[name=cart].image";

#[test]
fn plain_manifest_in_a_flux_folder() {
    let repo = repo(&[
        ("clusters/prod-eu-1/apps.yaml", FLUX_APPS),
        ("apps/cart/deployment.yaml", CART),
    ]);
    let sources = locate(&repo, "prod-eu-1", "cart");
    assert_eq!(
        sources.entry.as_deref(),
        Some("clusters/prod-eu-1/apps.yaml")
    );
    assert!(sources.layers.is_empty());
    let edits = fix(&repo, &sources, LIMIT, json!("256Mi"));
    assert_eq!(edits.len(), 1);
    assert_eq!(
        changed(&edits[0]),
        [(
            15,
            "              memory: 128Mi".into(),
            "              memory: 256Mi".into()
        )]
    );
    assert_eq!(edits[0].paths, [FieldPath::must(LIMIT)]);
}

#[test]
fn multi_document_file_changes_only_the_workload() {
    let all = format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: cart\n  namespace: shop\n---\n{CART}---\n{}",
        CART.replace("name: cart\n  namespace", "name: cart-canary\n  namespace")
    );
    let repo = repo(&[
        ("clusters/prod-eu-1/apps.yaml", FLUX_APPS),
        ("apps/all.yaml", &all),
    ]);
    let sources = locate(&repo, "prod-eu-1", "cart");
    assert_eq!(
        (sources.base.file.as_str(), sources.base.doc),
        ("apps/all.yaml", 1)
    );
    let edits = fix(&repo, &sources, LIMIT, json!("1Gi"));
    assert_eq!(
        changed(&edits[0]),
        [(
            21,
            "              memory: 128Mi".into(),
            "              memory: 1Gi".into()
        )]
    );
}

const BASE_KUSTOMIZATION: &str = "resources:\n  - deployment.yaml\n";

fn overlays(prod_kustomization: &str, extra: &[(&'static str, &'static str)]) -> GitopsRepo {
    let prod_flux = FLUX_APPS.replace("./apps", "./apps/cart/overlays/prod");
    let staging_flux = FLUX_APPS.replace("./apps", "./apps/cart/overlays/staging");
    let mut files = vec![
        ("clusters/prod-eu-1/cart.yaml", prod_flux.as_str()),
        ("clusters/staging-eu-1/cart.yaml", staging_flux.as_str()),
        ("apps/cart/base/kustomization.yaml", BASE_KUSTOMIZATION),
        ("apps/cart/base/deployment.yaml", CART),
        (
            "apps/cart/overlays/prod/kustomization.yaml",
            prod_kustomization,
        ),
        (
            "apps/cart/overlays/staging/kustomization.yaml",
            "resources:\n  - ../../base\npatches:\n  - path: limits.yaml\n",
        ),
        (
            "apps/cart/overlays/staging/limits.yaml",
            "kind: Deployment\nmetadata:\n  name: cart\nspec:\n  template:\n    spec:\n      containers:\n        - name: cart\n          resources:\n            limits:\n              memory: 128Mi\n",
        ),
    ];
    files.extend_from_slice(extra);
    repo(&files)
}

const PROD_PATCH: &str = "\
# FinOps: cap memory
kind: Deployment
metadata:
  name: cart
spec:
  template:
    spec:
      containers:
      - name: cart
        resources:
          limits:
            memory: 96Mi # FIN-1
";

#[test]
fn overlay_patch_beats_base_and_staging_stays() {
    let kustomization = "resources:\n  - ../../base\npatches:\n  - path: patches/memory.yaml\n    target:\n      kind: Deployment\n      name: cart\n";
    let repo = overlays(
        kustomization,
        &[("apps/cart/overlays/prod/patches/memory.yaml", PROD_PATCH)],
    );
    let sources = locate(&repo, "prod-eu-1", "cart");
    assert!(
        matches!(&sources.layers[..], [Layer::StrategicMerge { patch }] if patch.file == "apps/cart/overlays/prod/patches/memory.yaml")
    );
    assert!(!sources.files.iter().any(|f| f.contains("staging")));
    let edits = fix(&repo, &sources, LIMIT, json!("256Mi"));
    assert_eq!(edits.len(), 1);
    assert_eq!(edits[0].file, "apps/cart/overlays/prod/patches/memory.yaml");
    assert_eq!(
        changed(&edits[0]),
        [(
            12,
            "            memory: 96Mi # FIN-1".into(),
            "            memory: 256Mi # FIN-1".into()
        )]
    );

    // A field the patch lacks is added to the patch, which defines its parent.
    let edits = fix(
        &repo,
        &sources,
        "spec.template.spec.containers[name=cart].resources.limits.cpu",
        json!("500m"),
    );
    assert_eq!(edits[0].file, "apps/cart/overlays/prod/patches/memory.yaml");
    assert_eq!(
        edits[0].after,
        format!("{PROD_PATCH}            cpu: 500m\n")
    );
    // The image is only in the base.
    let edits = fix(
        &repo,
        &sources,
        IMAGE,
        json!("registry.example.com/shop/cart:1.8.3"),
    );
    assert_eq!(edits[0].file, "apps/cart/base/deployment.yaml");
    assert!(edits[0].after.contains("cart:1.8.3 # Renovate\n"));
}

#[test]
fn images_override_gets_the_new_tag() {
    let kustomization = "\
resources:
  - ../../base
images:
  - name: registry.example.com/shop/cart
    newTag: \"1.9.00\" # typo
";
    let repo = overlays(kustomization, &[]);
    let sources = locate(&repo, "prod-eu-1", "cart");
    assert_eq!(sources.image_overrides().count(), 1);
    assert_eq!(
        repo.render(&sources, &BTreeMap::new()).unwrap()["spec"]["template"]["spec"]["containers"]
            [0]["image"],
        "registry.example.com/shop/cart:1.9.00"
    );
    let edits = fix(
        &repo,
        &sources,
        IMAGE,
        json!("registry.example.com/shop/cart:1.9.0"),
    );
    assert_eq!(edits[0].file, "apps/cart/overlays/prod/kustomization.yaml");
    assert_eq!(
        changed(&edits[0]),
        [(
            5,
            "    newTag: \"1.9.00\" # typo".into(),
            "    newTag: \"1.9.0\" # typo".into()
        )]
    );

    // A new registry adds `newName` next to `newTag`.
    let edits = fix(
        &repo,
        &sources,
        IMAGE,
        json!("mirror.example.com/cart:1.9.00"),
    );
    assert!(
        edits[0]
            .after
            .ends_with("    newTag: \"1.9.00\" # typo\n    newName: mirror.example.com/cart\n"),
        "{}",
        edits[0].after
    );
}

#[test]
fn json6902_patches_get_their_value_edited() {
    let kustomization = "\
resources:
  - ../../base
patchesJson6902:
  - target:
      group: apps
      version: v1
      kind: Deployment
      name: cart
    path: memory.yaml
patches:
  - target:
      kind: Deployment
      name: car.*
    patch: |-
      - op: replace
        path: /spec/replicas
        value: 5 # peak
";
    let ops = "- op: add\n  path: /spec/template/spec/containers/0/resources/limits\n  value:\n    memory: 64Mi\n";
    let repo = overlays(
        kustomization,
        &[("apps/cart/overlays/prod/memory.yaml", ops)],
    );
    let sources = locate(&repo, "prod-eu-1", "cart");
    assert_eq!(sources.layers.len(), 2);
    let rendered = repo.render(&sources, &BTreeMap::new()).unwrap();
    assert_eq!(rendered["spec"]["replicas"], 5);
    let edits = fix(&repo, &sources, LIMIT, json!("192Mi"));
    assert_eq!(edits[0].file, "apps/cart/overlays/prod/memory.yaml");
    assert_eq!(
        changed(&edits[0]),
        [(4, "    memory: 64Mi".into(), "    memory: 192Mi".into())]
    );

    let edits = fix(&repo, &sources, "spec.replicas", json!(3));
    assert_eq!(edits[0].file, "apps/cart/overlays/prod/kustomization.yaml");
    assert_eq!(
        changed(&edits[0]),
        [(
            17,
            "        value: 5 # peak".into(),
            "        value: 3 # peak".into()
        )]
    );
}

#[test]
fn inline_strategic_merge_patch_in_the_kustomization() {
    let kustomization = "\
namespace: shop
resources:
  - ../../base
patches:
  - patch: |
      kind: Deployment
      metadata:
        name: cart
      spec:
        template:
          spec:
            containers:
              - name: cart
                resources:
                  limits:
                    memory: 96Mi
";
    let repo = overlays(kustomization, &[]);
    let sources = locate(&repo, "prod-eu-1", "cart");
    let edits = fix(&repo, &sources, LIMIT, json!("256Mi"));
    assert_eq!(edits[0].file, "apps/cart/overlays/prod/kustomization.yaml");
    assert_eq!(
        changed(&edits[0]),
        [(
            16,
            "                    memory: 96Mi".into(),
            "                    memory: 256Mi".into()
        )]
    );
}

#[test]
fn replicas_and_name_prefix_overrides() {
    let kustomization =
        "resources:\n  - ../../base\nnamePrefix: eu-\nreplicas:\n  - name: eu-cart\n    count: 4\n";
    let repo = overlays(kustomization, &[]);
    assert!(matches!(
        repo.locate("prod-eu-1", &deployment("shop", "cart")),
        Err(RemedyError::NotFound { .. })
    ));
    let sources = locate(&repo, "prod-eu-1", "eu-cart");
    let edits = fix(&repo, &sources, "spec.replicas", json!(6));
    assert_eq!(
        changed(&edits[0]),
        [(6, "    count: 4".into(), "    count: 6".into())]
    );
}

#[test]
fn argo_applications_bound_to_other_clusters_are_ignored() {
    let app = |name: &str, path: &str, dest: &str| {
        format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: {name}\nspec:\n  source:\n    path: {path}\n  destination:\n    name: {dest}\n    namespace: shop\n"
        )
    };
    let eu = app("cart-eu", "eu/cart", "prod-eu-1");
    let us = app("cart-us", "us/cart", "prod-us-1");
    let us_cart = CART
        .replace("memory: 128Mi", "memory: 1Gi")
        .replace("  namespace: shop\n", "");
    let repo = repo(&[
        ("argocd/eu.yaml", &eu),
        ("argocd/us.yaml", &us),
        ("eu/cart/deployment.yaml", CART),
        ("us/cart/deployment.yaml", &us_cart),
    ]);
    let sources = locate(&repo, "prod-us-1", "cart");
    assert_eq!(sources.base.file, "us/cart/deployment.yaml");
    assert_eq!(
        repo.render(&sources, &BTreeMap::new()).unwrap()["metadata"]["namespace"],
        "shop"
    );
    let edits = fix(&repo, &sources, LIMIT, json!("2Gi"));
    assert_eq!(edits[0].file, "us/cart/deployment.yaml");
}

#[test]
fn nothing_to_do_gives_no_edit() {
    let repo = repo(&[
        ("clusters/prod-eu-1/apps.yaml", FLUX_APPS),
        ("apps/cart.yaml", CART),
    ]);
    let sources = locate(&repo, "prod-eu-1", "cart");
    assert!(
        plan_edits(&repo, &sources, &change(LIMIT, json!("128Mi")))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn unknown_workload_names_workload_and_cluster() {
    let repo = repo(&[
        ("clusters/prod-eu-1/apps.yaml", FLUX_APPS),
        ("apps/cart.yaml", CART),
    ]);
    let err = repo
        .locate("prod-eu-1", &deployment("shop", "basket"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no manifest in the GitOps repo defines Deployment shop/basket for cluster prod-eu-1"
    );
    let err = repo
        .locate("prod-eu-1", &deployment("payments", "cart"))
        .unwrap_err();
    assert!(matches!(err, RemedyError::NotFound { .. }));
}

#[test]
fn missing_resources_are_reported_when_nothing_is_found() {
    let repo = repo(&[
        ("clusters/prod-eu-1/apps.yaml", FLUX_APPS),
        (
            "apps/kustomization.yaml",
            "resources:\n  - cart\n  - gone.yaml\n",
        ),
        (
            "apps/cart/kustomization.yaml",
            "resources:\n  - deployment.yaml\n",
        ),
        ("apps/cart/deployment.yaml", CART),
    ]);
    assert_eq!(
        locate(&repo, "prod-eu-1", "cart").base.file,
        "apps/cart/deployment.yaml"
    );
    let err = repo
        .locate("prod-eu-1", &deployment("shop", "basket"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "apps/kustomization.yaml refers to apps/gone.yaml, which is not in the GitOps repo"
    );
}

#[test]
fn helm_releases_are_unsupported_with_the_file_named() {
    let release = "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: cart\n  namespace: shop\nspec:\n  values:\n    resources:\n      limits:\n        memory: 128Mi\n";
    let repo = repo(&[
        ("clusters/prod-eu-1/apps.yaml", FLUX_APPS),
        ("apps/cart/release.yaml", release),
    ]);
    let err = repo
        .locate("prod-eu-1", &deployment("shop", "cart"))
        .unwrap_err();
    assert!(
        matches!(&err, RemedyError::Unsupported { file, .. } if file == "apps/cart/release.yaml"),
        "{err}"
    );
}

#[test]
fn aliases_and_block_scalars_are_refused_with_file_and_path() {
    let anchored = "\
kind: Deployment
metadata:
  name: cart
  namespace: shop
x-resources: &res
  limits:
    memory: 128Mi
spec:
  template:
    spec:
      containers:
        - name: cart
          resources: *res
          args:
            - |
              --cache=on
";
    let repo = repo(&[
        ("clusters/prod-eu-1/apps.yaml", FLUX_APPS),
        ("apps/cart.yaml", anchored),
    ]);
    let sources = locate(&repo, "prod-eu-1", "cart");
    let err = plan_edits(&repo, &sources, &change(LIMIT, json!("256Mi"))).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("apps/cart.yaml: {LIMIT} goes through a YAML alias or anchor; edit it by hand")
    );
    let args = "spec.template.spec.containers[name=cart].args[0]";
    let err = plan_edits(&repo, &sources, &change(args, json!("--cache=off"))).unwrap_err();
    assert!(
        matches!(err, RemedyError::BlockScalar { ref file, .. } if file == "apps/cart.yaml"),
        "{err}"
    );
}

#[test]
fn malformed_and_bomb_files_fail_the_load_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("apps")).unwrap();
    std::fs::write(dir.path().join("apps/cart.yaml"), CART).unwrap();
    std::fs::write(
        dir.path().join("apps/broken.yaml"),
        "spec:\n  replicas: [1,\n",
    )
    .unwrap();
    let err = GitopsRepo::load(dir.path()).unwrap_err();
    assert_eq!(err.to_string(), "apps/broken.yaml is not valid YAML");
    assert!(err.is_bad_input());

    let mut bomb = String::from("a: &a [x,x,x,x,x,x,x,x,x,x]\n");
    for (prev, next) in ["a", "b", "c", "d", "e", "f", "g", "h"]
        .iter()
        .zip(["b", "c", "d", "e", "f", "g", "h", "i"])
    {
        bomb.push_str(&format!(
            "{next}: &{next} [{}]\n",
            vec![format!("*{prev}"); 10].join(",")
        ));
    }
    std::fs::write(dir.path().join("apps/broken.yaml"), bomb).unwrap();
    let err = GitopsRepo::load(dir.path()).unwrap_err();
    assert!(
        matches!(err, RemedyError::Yaml { ref file, .. } if file == "apps/broken.yaml"),
        "{err}"
    );
}

#[test]
fn without_entry_points_the_whole_repo_is_searched() {
    let repo = repo(&[
        (
            "kustomization.yaml",
            "namespace: shop\nresources:\n  - apps\n",
        ),
        ("apps/cart.yaml", &CART.replace("  namespace: shop\n", "")),
    ]);
    let sources = locate(&repo, "anywhere", "cart");
    assert_eq!(sources.entry, None);
    assert_eq!(
        repo.render(&sources, &BTreeMap::new()).unwrap()["metadata"]["namespace"],
        "shop"
    );
    let empty = GitopsRepo::from_texts([]).unwrap();
    assert!(matches!(
        empty.locate("x", &deployment("shop", "cart")),
        Err(RemedyError::NotFound { .. })
    ));
}
