use super::*;
use serde_json::json;

fn edit(text: &str, path: &str, value: Value) -> String {
    set(text, "f.yaml", 0, &FieldPath::must(path), &value).unwrap()
}

fn edit_err(text: &str, path: &str, value: Value) -> RemedyError {
    set(text, "f.yaml", 0, &FieldPath::must(path), &value).unwrap_err()
}

/// (line number, before, after) of each line that differs; lines added show as `None` before.
fn changed_lines(before: &str, after: &str) -> Vec<(usize, Option<String>, Option<String>)> {
    let b: Vec<&str> = before.split('\n').collect();
    let a: Vec<&str> = after.split('\n').collect();
    (0..b.len().max(a.len()))
        .filter(|i| b.get(*i) != a.get(*i))
        .map(|i| {
            (
                i,
                b.get(i).map(|s| s.to_string()),
                a.get(i).map(|s| s.to_string()),
            )
        })
        .collect()
}

const DEPLOYMENT: &str = "\
# cart (team checkout)
apiVersion: apps/v1
kind: Deployment
metadata:
  name: cart
spec:
  template:
    spec:
      containers:
        - name: cart
          image: registry.example.com/shop/cart:1.8.2
          command: [\"pyhton\", '-m', worker]
          resources:
            requests:
              cpu: \"8\"
            limits:
              cpu: 500m
              memory: 128Mi # sized in March for ~40 req/s
          livenessProbe:
            httpGet:
              path: /healthz
              # admin listener
              port: 8081
        - name: sidecar
          image: envoy:1.30
";

#[test]
fn replaces_a_scalar_keeping_its_trailing_comment() {
    let after = edit(
        DEPLOYMENT,
        "spec.template.spec.containers[name=cart].resources.limits.memory",
        json!("256Mi"),
    );
    assert_eq!(
        changed_lines(DEPLOYMENT, &after),
        [(
            17,
            Some("              memory: 128Mi # sized in March for ~40 req/s".into()),
            Some("              memory: 256Mi # sized in March for ~40 req/s".into())
        )]
    );
}

#[test]
fn keeps_quotes_and_quotes_number_like_strings() {
    let quoted = edit(
        DEPLOYMENT,
        "spec.template.spec.containers[name=cart].resources.requests.cpu",
        json!("3500m"),
    );
    assert!(quoted.contains("              cpu: \"3500m\"\n"));
    let plain = edit(
        DEPLOYMENT,
        "spec.template.spec.containers[name=cart].resources.limits.cpu",
        json!("1"),
    );
    assert!(plain.contains("              cpu: \"1\"\n"));
    let number = edit(
        DEPLOYMENT,
        "spec.template.spec.containers[name=cart].livenessProbe.httpGet.port",
        json!(8080),
    );
    assert_eq!(changed_lines(DEPLOYMENT, &number).len(), 1);
    assert!(number.contains("              # admin listener\n              port: 8080\n"));
}

#[test]
fn edits_items_of_flow_lists_in_place() {
    let after = edit(
        DEPLOYMENT,
        "spec.template.spec.containers[name=cart].command[0]",
        json!("python"),
    );
    assert!(after.contains("command: [\"python\", '-m', worker]"));
    let after = edit(
        DEPLOYMENT,
        "spec.template.spec.containers[name=cart].command[2]",
        json!("a,b"),
    );
    assert!(after.contains("command: [\"pyhton\", '-m', \"a,b\"]"));
    let after = edit(
        DEPLOYMENT,
        "spec.template.spec.containers[1].image",
        json!("envoy:1.31"),
    );
    assert!(after.ends_with("          image: envoy:1.31\n"));
}

#[test]
fn edits_only_the_matching_document() {
    let text = "apiVersion: v1\nkind: Service\nmetadata:\n  name: cart\n---\n# the deployment\nkind: Deployment\nspec:\n  replicas: 2\n---\nkind: Deployment\nspec:\n  replicas: 2\n";
    let after = set(
        text,
        "f.yaml",
        1,
        &FieldPath::must("spec.replicas"),
        &json!(3),
    )
    .unwrap();
    assert_eq!(
        changed_lines(text, &after),
        [(
            8,
            Some("  replicas: 2".into()),
            Some("  replicas: 3".into())
        )]
    );
}

#[test]
fn adds_keys_with_the_sibling_indentation_in_both_list_styles() {
    let indented = "spec:\n  containers:\n    - name: x\n      image: y # pinned\n    - name: z\n      image: w\n";
    let after = edit(
        indented,
        "spec.containers[name=x].startupProbe",
        json!({"httpGet": {"path": "/healthz", "port": 8080}}),
    );
    assert_eq!(
        after,
        "spec:\n  containers:\n    - name: x\n      image: y # pinned\n      startupProbe:\n        httpGet:\n          path: /healthz\n          port: 8080\n    - name: z\n      image: w\n"
    );
    let flat = "spec:\n    containers:\n    - name: x\n      image: y\n";
    let after = edit(
        flat,
        "spec.containers[name=x].resources.limits.memory",
        json!("256Mi"),
    );
    assert_eq!(
        after,
        "spec:\n    containers:\n    - name: x\n      image: y\n      resources:\n          limits:\n              memory: 256Mi\n"
    );
}

#[test]
fn adds_missing_leaves_and_list_items() {
    let after = edit(
        DEPLOYMENT,
        "spec.template.spec.containers[name=cart].resources.limits.ephemeral-storage",
        json!("1Gi"),
    );
    assert_eq!(
        changed_lines(DEPLOYMENT, &after)[0],
        (
            18,
            Some("          livenessProbe:".into()),
            Some("              ephemeral-storage: 1Gi".into())
        )
    );
    let env = "containers:\n- name: a\n  env:\n  - name: A\n    value: \"1\"\n";
    let after = edit(env, "containers[name=a].env[name=B].value", json!("2"));
    assert_eq!(after, format!("{env}  - name: B\n    value: \"2\"\n"));
    let after = edit(
        env,
        "containers[name=a].envFrom",
        json!([{"configMapRef": {"name": "c"}}]),
    );
    assert_eq!(
        after,
        format!("{env}  envFrom:\n  - configMapRef:\n      name: c\n")
    );
}

#[test]
fn fills_empty_values_on_their_own_line() {
    let text = "spec:\n  resources: {} # none yet\n  other: 1\n";
    let after = edit(text, "spec.resources.limits.cpu", json!("1"));
    assert_eq!(
        after,
        "spec:\n  resources: # none yet\n    limits:\n      cpu: \"1\"\n  other: 1\n"
    );
    let bare = "spec:\n  memory:\n  other: 1";
    assert_eq!(
        edit(bare, "spec.memory", json!("1Gi")),
        "spec:\n  memory: 1Gi\n  other: 1"
    );
    let tilde = "env: ~\n";
    assert_eq!(
        edit(tilde, "env[name=A].value", json!("x")),
        "env:\n  - name: A\n    value: x\n"
    );
}

#[test]
fn inserts_at_the_end_of_a_file_without_newline() {
    let text = "a:\n  b: 1";
    assert_eq!(edit(text, "a.c", json!(2)), "a:\n  b: 1\n  c: 2\n");
}

#[test]
fn counts_bytes_not_characters() {
    let text = "a: \"é\" # ü\nb: 1 # naïve\n";
    assert_eq!(edit(text, "b", json!(2)), "a: \"é\" # ü\nb: 2 # naïve\n");
    assert_eq!(edit(text, "a", json!("ö")), "a: \"ö\" # ü\nb: 1 # naïve\n");
}

#[test]
fn refuses_aliases_anchors_and_merge_keys() {
    let text = "base: &base\n  cpu: 1\nuse: *base\nmerged:\n  <<: *base\n  memory: 1Gi\nv: &v 3\n";
    for path in ["use.cpu", "base.cpu", "merged.cpu", "v"] {
        assert!(
            matches!(edit_err(text, path, json!(2)), RemedyError::Alias { .. }),
            "{path}"
        );
    }
    assert_eq!(
        edit(text, "merged.memory", json!("2Gi")),
        text.replace("memory: 1Gi", "memory: 2Gi")
    );
}

#[test]
fn refuses_block_scalars_and_non_empty_flow_mappings() {
    let text = "data:\n  conf: |\n    a=1\nres: {cpu: 1}\n";
    assert!(matches!(
        edit_err(text, "data.conf", json!("x")),
        RemedyError::BlockScalar { .. }
    ));
    assert!(matches!(
        edit_err(text, "res.memory", json!("1Gi")),
        RemedyError::FlowCollection { .. }
    ));
    assert_eq!(
        edit(text, "res.cpu", json!(2)),
        text.replace("{cpu: 1}", "{cpu: 2}")
    );
}

#[test]
fn refuses_paths_through_scalars_and_missing_indexes() {
    assert!(matches!(
        edit_err("a: 1\n", "a.b", json!(1)),
        RemedyError::PathNotFound { .. }
    ));
    assert!(matches!(
        edit_err("a:\n- 1\n", "a[3]", json!(1)),
        RemedyError::PathNotFound { .. }
    ));
    assert!(matches!(
        set("a: 1\n", "f.yaml", 2, &FieldPath::must("a"), &json!(1)),
        Err(RemedyError::PathNotFound { .. })
    ));
}

#[test]
fn edits_json6902_operation_values() {
    let text = "# cap it\n- op: replace\n  path: /spec/template/spec/containers/0/resources/limits/cpu\n  value: 250m # FIN-212\n";
    let after = edit(text, "[0].value", json!("1"));
    assert_eq!(after, text.replace("value: 250m", "value: \"1\""));
}

#[test]
fn edits_inside_inline_patches() {
    let text = "\
resources:
  - ../../base
patches:
  - target:
      kind: Deployment
    patch: |-
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
                    cpu: 250m # cap
images: []
";
    let at = FieldPath::must("patches[0].patch");
    let cpu = FieldPath::must("spec.template.spec.containers[name=indexer].resources.limits.cpu");
    let after = set_embedded(text, "k.yaml", (0, &at), 0, &cpu, &json!("1")).unwrap();
    assert_eq!(after, text.replace("cpu: 250m # cap", "cpu: \"1\" # cap"));
    let memory =
        FieldPath::must("spec.template.spec.containers[name=indexer].resources.limits.memory");
    let after = set_embedded(text, "k.yaml", (0, &at), 0, &memory, &json!("1Gi")).unwrap();
    assert_eq!(
        after,
        text.replace(
            "cpu: 250m # cap\n",
            "cpu: 250m # cap\n                    memory: 1Gi\n"
        )
    );
    let folded = "patches:\n  - patch: >\n      kind: Deployment\n";
    let at = FieldPath::must("patches[0].patch");
    let err = set_embedded(
        folded,
        "k.yaml",
        (0, &at),
        0,
        &FieldPath::must("kind"),
        &json!("x"),
    )
    .unwrap_err();
    assert!(matches!(err, RemedyError::Unsupported { .. }));
}
