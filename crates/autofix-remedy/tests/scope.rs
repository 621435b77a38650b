//! Narrowing the search with a folder and the live object's Argo CD / Flux markers.

use autofix_core::{WorkloadKind, WorkloadRef};
use autofix_remedy::{GitopsRepo, Located, Owner, RemedyError, Scope};
use serde_json::json;

fn repo(files: &[(&str, &str)]) -> GitopsRepo {
    GitopsRepo::from_texts(files.iter().map(|(f, t)| (f.to_string(), t.to_string()))).unwrap()
}

fn cart() -> WorkloadRef {
    WorkloadRef {
        kind: WorkloadKind::Deployment,
        namespace: "shop".into(),
        name: "cart".into(),
    }
}

fn deployment(image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: cart\n  namespace: shop\nspec:\n  template:\n    spec:\n      containers:\n        - name: cart\n          image: {image}\n"
    )
}

fn argo_app(name: &str, path: &str) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: {name}\nspec:\n  source:\n    path: {path}\n  destination:\n    namespace: shop\n"
    )
}

/// The base file the located sources start from.
fn base_file(located: Located) -> String {
    match located {
        Located::Manifests(sources) => sources.base.file,
        Located::Helm(_) => panic!("expected manifests"),
    }
}

/// Two Argo CD Applications deploy a `cart`: without markers that is ambiguous, with the live
/// object's tracking id only the named Application counts.
#[test]
fn argo_tracking_id_picks_the_application() {
    let blue = deployment("cart:1");
    let green = deployment("cart:2");
    let app_blue = argo_app("cart-blue", "blue");
    let app_green = argo_app("cart-green", "green");
    let repo = repo(&[
        ("apps/blue.yaml", &app_blue),
        ("apps/green.yaml", &app_green),
        ("blue/deployment.yaml", &blue),
        ("green/deployment.yaml", &green),
    ]);
    let err = repo.locate_any("prod", &cart()).unwrap_err();
    assert!(matches!(err, RemedyError::Ambiguous { .. }), "{err}");

    let live = json!({"metadata": {"annotations": {
        "argocd.argoproj.io/tracking-id": "cart-green:apps/Deployment:shop/cart"}}});
    let scope = Scope::from_markers(None, &live);
    assert_eq!(
        scope.owner,
        Some(Owner::ArgoApplication("cart-green".into()))
    );
    let located = repo.locate_in("prod", &cart(), &scope).unwrap();
    assert_eq!(base_file(located), "green/deployment.yaml");

    let live = json!({"metadata": {"labels": {"argocd.argoproj.io/instance": "argocd_cart-blue"}}});
    let located = repo
        .locate_in("prod", &cart(), &Scope::from_markers(None, &live))
        .unwrap();
    assert_eq!(base_file(located), "blue/deployment.yaml");
}

/// A marker naming no Application in the repo does not hide the ones that are there.
#[test]
fn unknown_owner_falls_back_to_every_entry_point() {
    let app = argo_app("cart", "cart");
    let manifest = deployment("cart:1");
    let repo = repo(&[
        ("apps/cart.yaml", &app),
        ("cart/deployment.yaml", &manifest),
    ]);
    let live = json!({"metadata": {"labels": {"kustomize.toolkit.fluxcd.io/name": "other"}}});
    let scope = Scope::from_markers(None, &live);
    assert_eq!(scope.owner, Some(Owner::FluxKustomization("other".into())));
    let located = repo.locate_in("prod", &cart(), &scope).unwrap();
    assert_eq!(base_file(located), "cart/deployment.yaml");
}

/// A repository holding several teams' plain manifests: the mapping's folder picks one.
#[test]
fn folder_narrows_the_whole_repo_search() {
    let a = deployment("cart:1");
    let b = deployment("cart:2");
    let repo = repo(&[("team-a/cart.yaml", &a), ("team-b/cart.yaml", &b)]);
    assert!(matches!(
        repo.locate_any("prod", &cart()),
        Err(RemedyError::Ambiguous { .. })
    ));
    let scope = Scope::from_markers(Some("/team-b/".into()), &json!({}));
    assert_eq!(scope.path.as_deref(), Some("team-b"));
    let located = repo.locate_in("prod", &cart(), &scope).unwrap();
    assert_eq!(base_file(located), "team-b/cart.yaml");
}
