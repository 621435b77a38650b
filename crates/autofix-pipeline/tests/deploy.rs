//! The install manifests under `deploy/` pass the project's own checks: the kustomize base, its
//! optional component, the Helm chart (rendered with `helm template` when a `helm` binary is on
//! `PATH` or in `HELM`) and the Alertmanager snippet.
//!
//! Workloads go through `autofix_policy::validate` (schema via k8s-openapi, privileges, host
//! access) plus the hardening the install promises (non-root, read-only root filesystem, limits,
//! probes, one replica); RBAC must be read-only; the embedded config must parse with
//! [`Config::parse`]. Each check is also run on a broken copy, to show it can fail.

use autofix_core::yaml::parse_documents;
use autofix_core::{Remediation, WorkloadKind, WorkloadRef};
use autofix_pipeline::Config;
use autofix_policy::{PolicyConfig, ValidationInput, validate};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Verbs a kube-autofix role may grant: it only reads the cluster.
const READ_VERBS: [&str; 3] = ["get", "list", "watch"];

/// Where Deployments of kube-autofix keep their state and config.
const DATA_DIR: &str = "/var/lib/autofix";
const CONFIG_FILE: &str = "/etc/autofix/autofix.toml";

fn deploy() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn documents(path: &Path) -> Vec<Value> {
    parse_documents(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

fn kind(doc: &Value) -> &str {
    str_at(doc, "/kind").unwrap_or_default()
}

fn name(doc: &Value) -> &str {
    str_at(doc, "/metadata/name").unwrap_or_default()
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The kustomization of the base.
fn kustomization() -> Value {
    documents(&deploy().join("kustomize/kustomization.yaml")).remove(0)
}

/// Every document of the base's resources, in the kustomization's order.
fn base() -> Vec<Value> {
    let dir = deploy().join("kustomize");
    strings(kustomization().get("resources"))
        .iter()
        .flat_map(|file| documents(&dir.join(file)))
        .collect()
}

fn find<'a>(docs: &'a [Value], wanted: &str) -> &'a Value {
    docs.iter()
        .find(|d| kind(d) == wanted)
        .unwrap_or_else(|| panic!("no {wanted}"))
}

/// Every RBAC rule granting more than reading, as `Role/name: why`.
fn write_grants(docs: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    for doc in docs
        .iter()
        .filter(|d| matches!(kind(d), "ClusterRole" | "Role"))
    {
        let rules = doc.get("rules").and_then(Value::as_array);
        for rule in rules.into_iter().flatten() {
            let verbs = strings(rule.get("verbs"));
            let resources = strings(rule.get("resources"));
            let groups = strings(rule.get("apiGroups"));
            for verb in verbs.iter().filter(|v| !READ_VERBS.contains(&v.as_str())) {
                out.push(format!("{}/{}: verb {verb}", kind(doc), name(doc)));
            }
            if resources.iter().chain(&groups).any(|s| s == "*") {
                out.push(format!("{}/{}: wildcard", kind(doc), name(doc)));
            }
            if rule.get("nonResourceURLs").is_some() || rule.get("resourceNames").is_some() {
                out.push(format!(
                    "{}/{}: unexpected rule shape",
                    kind(doc),
                    name(doc)
                ));
            }
        }
        if doc.get("aggregationRule").is_some() {
            out.push(format!("{}/{}: aggregationRule", kind(doc), name(doc)));
        }
    }
    out
}

/// The verbs granted on Secrets, by any role.
fn secret_verbs(docs: &[Value]) -> BTreeSet<String> {
    docs.iter()
        .filter(|d| matches!(kind(d), "ClusterRole" | "Role"))
        .flat_map(|d| d.get("rules").and_then(Value::as_array).cloned())
        .flatten()
        .filter(|rule| {
            strings(rule.get("resources"))
                .iter()
                .any(|r| r == "secrets")
        })
        .flat_map(|rule| strings(rule.get("verbs")))
        .collect()
}

/// The project's validation of a workload as it would be applied in `namespace`: schema,
/// scope, privileges and host access, resource limits (nothing changes, so no diff rule fires).
fn policy_violations(doc: &Value, namespace: &str) -> Vec<(String, Option<String>)> {
    let workload_kind = match kind(doc) {
        "Deployment" => WorkloadKind::Deployment,
        "StatefulSet" => WorkloadKind::StatefulSet,
        "DaemonSet" => WorkloadKind::DaemonSet,
        other => panic!("not a workload kind: {other}"),
    };
    let mut object = doc.clone();
    object["metadata"]["namespace"] = json!(namespace);
    let workload = WorkloadRef {
        kind: workload_kind,
        namespace: namespace.into(),
        name: name(doc).into(),
    };
    let remediation = Remediation {
        strategy: "install".into(),
        changes: Vec::new(),
    };
    let input = ValidationInput {
        workload: &workload,
        remediation: &remediation,
        rendered_before: &object,
        rendered_after: &object,
        edits: &[],
    };
    validate(&input, &PolicyConfig::default())
        .violations
        .into_iter()
        .map(|v| (v.rule, v.path))
        .collect()
}

/// What the install promises beyond the policy rules: one replica unless the store is the
/// shared PostgreSQL (`AUTOFIX_DATABASE_URL`), a restricted pod, limits, probes, the config and
/// data mounts.
fn hardening_problems(doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut expect = |ok: bool, what: &str| {
        if !ok {
            out.push(what.to_string());
        }
    };
    let shared_database = doc
        .pointer("/spec/template/spec/containers/0/env")
        .and_then(Value::as_array)
        .is_some_and(|env| env.iter().any(|e| e["name"] == "AUTOFIX_DATABASE_URL"));
    expect(
        shared_database || doc.pointer("/spec/replicas") == Some(&json!(1)),
        "replicas 1",
    );
    let pod = doc
        .pointer("/spec/template/spec")
        .cloned()
        .unwrap_or_default();
    expect(
        pod.pointer("/securityContext/runAsNonRoot") == Some(&json!(true)),
        "pod runAsNonRoot",
    );
    expect(
        str_at(&pod, "/securityContext/seccompProfile/type") == Some("RuntimeDefault"),
        "pod seccomp RuntimeDefault",
    );
    let containers = pod.get("containers").and_then(Value::as_array);
    expect(containers.is_some_and(|c| !c.is_empty()), "containers");
    for c in containers.into_iter().flatten() {
        let sc = c.get("securityContext").cloned().unwrap_or_default();
        expect(
            sc.get("readOnlyRootFilesystem") == Some(&json!(true)),
            "readOnlyRootFilesystem",
        );
        expect(
            sc.get("allowPrivilegeEscalation") == Some(&json!(false)),
            "allowPrivilegeEscalation false",
        );
        expect(
            strings(sc.pointer("/capabilities/drop")).contains(&"ALL".to_string()),
            "drop ALL",
        );
        for field in [
            "limits/cpu",
            "limits/memory",
            "requests/cpu",
            "requests/memory",
        ] {
            expect(
                c.pointer(&format!("/resources/{field}")).is_some(),
                &format!("resources.{field}"),
            );
        }
        expect(
            str_at(c, "/livenessProbe/httpGet/path") == Some("/healthz"),
            "liveness /healthz",
        );
        expect(
            str_at(c, "/readinessProbe/httpGet/path") == Some("/readyz"),
            "readiness /readyz",
        );
        let mounts: Vec<&str> = c
            .get("volumeMounts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|m| str_at(m, "/mountPath"))
            .collect();
        for path in [CONFIG_FILE, DATA_DIR, "/tmp"] {
            expect(mounts.contains(&path), &format!("a mount at {path}"));
        }
        let env = c.get("env").and_then(Value::as_array);
        let value_of = |var: &str| {
            env.into_iter()
                .flatten()
                .find(|e| str_at(e, "/name") == Some(var))
                .cloned()
        };
        expect(
            value_of("AUTOFIX_CONFIG").and_then(|e| e.get("value").cloned())
                == Some(json!(CONFIG_FILE)),
            "AUTOFIX_CONFIG",
        );
        expect(
            value_of("AUTOFIX_WEBHOOK_TOKEN")
                .is_some_and(|e| e.pointer("/valueFrom/secretKeyRef").is_some()),
            "AUTOFIX_WEBHOOK_TOKEN from a Secret",
        );
    }
    out
}

/// The ConfigMap's `autofix.toml`, parsed as `autofix serve` parses its config file.
fn embedded_config(docs: &[Value]) -> Result<Config, String> {
    let config = find(docs, "ConfigMap");
    let text = str_at(config, "/data/autofix.toml").ok_or("no autofix.toml in the ConfigMap")?;
    Config::parse(text, "ConfigMap autofix.toml").map_err(|e| e.to_string())
}

/// Every check on a set of rendered or listed objects; `namespace` is where they land.
fn check_objects(docs: &[Value], namespace: &str) {
    assert_eq!(write_grants(docs), Vec::<String>::new());
    let workloads: Vec<&Value> = docs.iter().filter(|d| kind(d) == "Deployment").collect();
    assert_eq!(workloads.len(), 1, "one Deployment");
    for doc in workloads {
        assert_eq!(policy_violations(doc, namespace), vec![], "{}", name(doc));
        assert_eq!(
            hardening_problems(doc),
            Vec::<String>::new(),
            "{}",
            name(doc)
        );
    }
    let parsed = embedded_config(docs).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parsed.server.data_dir, Path::new(DATA_DIR));
    for wanted in [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Service",
        "PodDisruptionBudget",
        "NetworkPolicy",
    ] {
        find(docs, wanted);
    }
    let service = find(docs, "Service");
    assert_eq!(service.pointer("/spec/ports/0/port"), Some(&json!(8080)));
    let policy = find(docs, "NetworkPolicy");
    assert_eq!(
        policy.pointer("/spec/ingress/0/ports"),
        Some(&json!([{"port": 8080, "protocol": "TCP"}])),
        "ingress on 8080 only"
    );
    assert_eq!(policy.pointer("/spec/ingress/1"), None, "one ingress rule");
}

#[test]
fn the_kustomize_base_lists_every_manifest_but_the_secret_example() {
    let dir = deploy().join("kustomize");
    let listed: BTreeSet<String> = strings(kustomization().get("resources"))
        .into_iter()
        .collect();
    let present: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("deploy/kustomize")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|f| f.ends_with(".yaml"))
        .filter(|f| f != "kustomization.yaml" && f != "secret.example.yaml")
        .collect();
    assert_eq!(listed, present);
    // Objects carry no namespace of their own: the kustomization's applies.
    for doc in base() {
        let ns = doc.pointer("/metadata/namespace");
        assert_eq!(ns, None, "{} {} has a namespace", kind(&doc), name(&doc));
    }
    assert!(str_at(&kustomization(), "/namespace").is_some());
}

#[test]
fn the_kustomize_base_passes_every_check() {
    let namespace = str_at(&kustomization(), "/namespace").unwrap().to_string();
    let docs = base();
    check_objects(&docs, &namespace);
    assert_eq!(
        secret_verbs(&docs),
        BTreeSet::new(),
        "no secrets in the base"
    );
}

#[test]
fn the_checks_catch_a_write_verb_a_wildcard_and_secrets() {
    let docs = base();
    let with = |rule: Value| {
        let mut docs = docs.clone();
        let role = docs.iter_mut().find(|d| kind(d) == "ClusterRole").unwrap();
        role["rules"].as_array_mut().unwrap().push(rule);
        docs
    };
    let create = with(
        json!({"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "create"]}),
    );
    assert_eq!(
        write_grants(&create),
        ["ClusterRole/kube-autofix-reader: verb create"]
    );
    let star = with(json!({"apiGroups": [""], "resources": ["*"], "verbs": ["get"]}));
    assert_eq!(
        write_grants(&star),
        ["ClusterRole/kube-autofix-reader: wildcard"]
    );
    let all = with(json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}));
    assert_eq!(write_grants(&all).len(), 1);
    let secrets = with(json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}));
    assert_eq!(secret_verbs(&secrets), BTreeSet::from(["list".to_string()]));
}

#[test]
fn the_checks_catch_an_unsafe_deployment() {
    let deployment = find(&base(), "Deployment").clone();
    let broken = |edit: &dyn Fn(&mut Value)| {
        let mut doc = deployment.clone();
        edit(&mut doc);
        doc
    };
    let rules = |doc: &Value| -> Vec<String> {
        policy_violations(doc, "kube-autofix")
            .into_iter()
            .map(|(rule, _)| rule)
            .collect()
    };
    let container = "/spec/template/spec/containers/0";
    let privileged = broken(&|d| {
        d.pointer_mut(&format!("{container}/securityContext"))
            .unwrap()["privileged"] = json!(true)
    });
    assert_eq!(rules(&privileged), ["privileged"]);
    let host_path = broken(&|d| {
        d.pointer_mut("/spec/template/spec/volumes")
            .unwrap()
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "root", "hostPath": {"path": "/"}}))
    });
    assert_eq!(rules(&host_path), ["host-path"]);
    let host_network = broken(&|d| d["spec"]["template"]["spec"]["hostNetwork"] = json!(true));
    assert_eq!(rules(&host_network), ["host-network"]);
    let capability = broken(&|d| {
        d.pointer_mut(&format!("{container}/securityContext/capabilities"))
            .unwrap()["add"] = json!(["NET_ADMIN"])
    });
    assert_eq!(rules(&capability), ["capabilities-add"]);
    let typo = broken(&|d| {
        d.pointer_mut(container).unwrap()["resource"] = json!({});
    });
    assert_eq!(rules(&typo), ["schema"]);
    assert_eq!(rules(&deployment), Vec::<String>::new());

    let no_limits = broken(&|d| {
        d.pointer_mut(&format!("{container}/resources"))
            .unwrap()
            .as_object_mut()
            .unwrap()
            .remove("limits");
    });
    assert_eq!(
        hardening_problems(&no_limits),
        ["resources.limits/cpu", "resources.limits/memory"]
    );
    let writable = broken(&|d| {
        d.pointer_mut(&format!("{container}/securityContext"))
            .unwrap()["readOnlyRootFilesystem"] = json!(false)
    });
    assert_eq!(hardening_problems(&writable), ["readOnlyRootFilesystem"]);
    let two = broken(&|d| d["spec"]["replicas"] = json!(2));
    assert_eq!(hardening_problems(&two), ["replicas 1"]);
}

#[test]
fn a_config_the_service_would_refuse_is_caught() {
    let mut docs = base();
    let config = docs.iter_mut().find(|d| kind(d) == "ConfigMap").unwrap();
    let text = str_at(config, "/data/autofix.toml").unwrap().to_string();
    config["data"]["autofix.toml"] = json!(format!("{text}\n[server.typo]\nx = 1\n"));
    let error = embedded_config(&docs).expect_err("an unknown config key must fail the check");
    assert!(error.contains("typo"), "{error}");
}

#[test]
fn the_read_secret_keys_component_adds_only_get_and_list_on_secrets() {
    let path = deploy().join("kustomize/components/read-secret-keys/kustomization.yaml");
    let component = documents(&path).remove(0);
    assert_eq!(kind(&component), "Component");
    let patches = component["patches"].as_array().expect("patches");
    assert_eq!(patches.len(), 1);
    assert_eq!(str_at(&patches[0], "/target/kind"), Some("ClusterRole"));
    let ops = parse_documents(str_at(&patches[0], "/patch").unwrap())
        .unwrap()
        .remove(0);
    let ops = ops.as_array().expect("a JSON patch");
    let mut docs = base();
    let role = docs.iter_mut().find(|d| kind(d) == "ClusterRole").unwrap();
    assert_eq!(str_at(&patches[0], "/target/name"), Some(name(role)));
    for op in ops {
        assert_eq!(str_at(op, "/op"), Some("add"));
        assert_eq!(str_at(op, "/path"), Some("/rules/-"));
        assert_eq!(strings(op.pointer("/value/resources")), ["secrets"]);
        role["rules"]
            .as_array_mut()
            .unwrap()
            .push(op["value"].clone());
    }
    assert_eq!(write_grants(&docs), Vec::<String>::new());
    assert_eq!(
        secret_verbs(&docs),
        BTreeSet::from(["get".to_string(), "list".to_string()])
    );
}

#[test]
fn the_secret_example_holds_every_key_the_deployment_reads() {
    let dir = deploy().join("kustomize");
    let secret = documents(&dir.join("secret.example.yaml")).remove(0);
    assert_eq!(kind(&secret), "Secret");
    let keys: BTreeSet<&str> = secret["stringData"]
        .as_object()
        .expect("stringData")
        .keys()
        .map(String::as_str)
        .collect();
    let deployment = find(&base(), "Deployment").clone();
    let mut wanted = BTreeSet::new();
    collect_secret_keys(&deployment, name(&secret), &mut wanted);
    assert!(!wanted.is_empty());
    for key in &wanted {
        assert!(
            keys.contains(key.as_str()),
            "secret.example.yaml lacks {key}"
        );
    }
}

/// Keys of Secret `secret` read by `secretKeyRef`s and secret volumes anywhere in `value`.
fn collect_secret_keys(value: &Value, secret: &str, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            if let Some(r) = map.get("secretKeyRef")
                && str_at(r, "/name") == Some(secret)
            {
                out.extend(str_at(r, "/key").map(str::to_string));
            }
            if let Some(s) = map.get("secret")
                && str_at(s, "/secretName") == Some(secret)
            {
                let items = s.get("items").and_then(Value::as_array).into_iter();
                out.extend(
                    items
                        .flatten()
                        .filter_map(|i| str_at(i, "/key").map(str::to_string)),
                );
            }
            map.values()
                .for_each(|v| collect_secret_keys(v, secret, out));
        }
        Value::Array(items) => items
            .iter()
            .for_each(|v| collect_secret_keys(v, secret, out)),
        _ => {}
    }
}

#[test]
fn the_alertmanager_snippets_point_at_the_service_with_a_token() {
    let docs = documents(&deploy().join("alertmanager/receiver.yaml"));
    assert_eq!(docs.len(), 2);
    let plain = docs[0].pointer("/receivers/0/webhook_configs/0").unwrap();
    let operator = docs[1]
        .pointer("/spec/receivers/0/webhookConfigs/0")
        .unwrap();
    assert_eq!(kind(&docs[1]), "AlertmanagerConfig");
    for (hook, resolved, auth) in [
        (plain, "send_resolved", "/http_config/authorization"),
        (operator, "sendResolved", "/httpConfig/authorization"),
    ] {
        let url = str_at(hook, "/url").unwrap();
        assert!(url.ends_with(".svc:8080/webhooks/alertmanager"), "{url}");
        assert!(url.starts_with("http://kube-autofix."), "{url}");
        assert_eq!(hook.get(resolved), Some(&json!(true)));
        assert_eq!(str_at(hook, &format!("{auth}/type")), Some("Bearer"));
    }
    assert!(str_at(plain, "/http_config/authorization/credentials_file").is_some());
    assert!(plain.get("max_alerts").is_some() && operator.get("maxAlerts").is_some());
}

/// Output of a tool run in `deploy/`, or `None` (with a note) when the tool is not installed.
fn run(program: &str, args: &[&str]) -> Option<Result<String, String>> {
    let output = match Command::new(program)
        .args(args)
        .current_dir(deploy())
        .output()
    {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("skipping: {program} not found");
            return None;
        }
        Err(e) => panic!("cannot run {program}: {e}"),
    };
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).expect("UTF-8 output");
    Some(if output.status.success() {
        Ok(text(output.stdout))
    } else {
        Err(text(output.stderr))
    })
}

#[test]
fn the_kustomize_build_passes_every_check() {
    let kubectl = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let Some(built) = run(&kubectl, &["kustomize", "kustomize"]) else {
        return;
    };
    let docs = parse_documents(&built.unwrap_or_else(|e| panic!("{e}"))).unwrap();
    check_objects(&docs, "kube-autofix");
    assert_eq!(secret_verbs(&docs), BTreeSet::new());
    let binding = find(&docs, "ClusterRoleBinding");
    assert_eq!(
        str_at(binding, "/subjects/0/namespace"),
        Some("kube-autofix")
    );
}

/// `helm template` of the chart with these extra arguments.
fn helm(extra: &[&str]) -> Option<Result<Vec<Value>, String>> {
    let helm = std::env::var("HELM").unwrap_or_else(|_| "helm".into());
    let mut args = vec![
        "template",
        "autofix",
        "helm/kube-autofix",
        "--namespace",
        "monitoring",
        // The chart needs >= 1.25; older helm binaries default to an older version.
        "--kube-version",
        "1.30.0",
    ];
    args.extend(extra);
    Some(run(&helm, &args)?.map(|text| parse_documents(&text).unwrap()))
}

#[test]
fn the_helm_chart_renders_what_the_base_does() {
    let Some(rendered) = helm(&[]) else { return };
    let docs = rendered.unwrap_or_else(|e| panic!("{e}"));
    check_objects(&docs, "monitoring");
    assert_eq!(secret_verbs(&docs), BTreeSet::new());
    assert!(docs.iter().all(|d| kind(d) != "ServiceMonitor"));
    let binding = find(&docs, "ClusterRoleBinding");
    assert_eq!(str_at(binding, "/subjects/0/namespace"), Some("monitoring"));

    let docs = helm(&[
        "--set",
        "rbac.readSecretKeys=true",
        "--set",
        "serviceMonitor.enabled=true",
    ])
    .unwrap()
    .unwrap_or_else(|e| panic!("{e}"));
    check_objects(&docs, "monitoring");
    assert_eq!(
        secret_verbs(&docs),
        BTreeSet::from(["get".to_string(), "list".to_string()])
    );
    assert_eq!(
        str_at(find(&docs, "ServiceMonitor"), "/spec/endpoints/0/path"),
        Some("/metrics")
    );
}

#[test]
fn the_helm_chart_renders_structured_config_and_refuses_replicas() {
    let values = Path::new(env!("CARGO_TARGET_TMPDIR")).join("deploy-test-values.yaml");
    std::fs::write(
        &values,
        "config:\n  toml: \"\"\n  settings:\n    llm: {mode: rules, max_iterations: 3, temperature: 0.5}\n    policy: {allowed_namespaces: [shop]}\n    server: {workers: 4, auth: {insecure_no_auth: false}}\n",
    )
    .unwrap();
    let Some(rendered) = helm(&["--values", values.to_str().unwrap()]) else {
        return;
    };
    let docs = rendered.unwrap_or_else(|e| panic!("{e}"));
    let text = str_at(find(&docs, "ConfigMap"), "/data/autofix.toml").unwrap();
    let config = Config::parse(text, "rendered settings").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.server.workers, 4);
    assert_eq!(config.policy.allowed_namespaces, ["shop"]);

    let refused = helm(&["--set", "replicaCount=2"]).unwrap();
    let error = refused.expect_err("two replicas on SQLite must be refused");
    assert!(error.contains("needs the PostgreSQL backend"), "{error}");
}

#[test]
fn the_helm_chart_runs_several_replicas_on_postgres() {
    let Some(rendered) = helm(&[
        "--set",
        "replicaCount=3",
        "--set",
        "database.existingSecret=kube-autofix-db",
    ]) else {
        return;
    };
    let docs = rendered.unwrap_or_else(|e| panic!("{e}"));
    check_objects(&docs, "postgres");
    let deployment = find(&docs, "Deployment");
    assert_eq!(deployment.pointer("/spec/replicas"), Some(&json!(3)));
    assert_eq!(
        str_at(deployment, "/spec/strategy/type"),
        Some("RollingUpdate")
    );
    let env = deployment
        .pointer("/spec/template/spec/containers/0/env")
        .and_then(|e| e.as_array())
        .unwrap();
    let database = env
        .iter()
        .find(|e| e["name"] == "AUTOFIX_DATABASE_URL")
        .expect("the database URL comes from the Secret");
    assert_eq!(
        database["valueFrom"]["secretKeyRef"]["name"],
        json!("kube-autofix-db")
    );
    let data = deployment
        .pointer("/spec/template/spec/volumes")
        .and_then(|v| v.as_array())
        .unwrap()
        .iter()
        .find(|v| v["name"] == "data")
        .unwrap();
    assert!(data.get("emptyDir").is_some(), "clones only: {data}");
    assert!(
        docs.iter().all(|d| d["kind"] != "PersistentVolumeClaim"),
        "no volume to share between replicas"
    );
}
