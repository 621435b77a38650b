//! The shared oom-cart scenario as a realistic case: Deployment shop/cart, 2 replicas, its
//! memory limit raised from 128Mi to 256Mi in `apps/cart/deployment.yaml`.

use autofix_core::yaml::{parse_documents, parse_objects};
use autofix_core::{FieldChange, FieldPath, Remediation, RiskLevel, WorkloadKind, WorkloadRef};
use autofix_policy::{
    EditedFile, PolicyConfig, RiskConfig, RiskInput, ValidationInput, assess_risk, validate,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;

const FILE: &str = "apps/cart/deployment.yaml";
const CART: &str = "spec.template.spec.containers[name=cart]";

/// The oom-cart folder, from `AUTOFIX_SCENARIOS` or the shared checkout next to the workspace.
fn scenario() -> Option<PathBuf> {
    let root = std::env::var_os("AUTOFIX_SCENARIOS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/scenarios")
        });
    let dir = root.join("oom-cart");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "skipping: scenario oom-cart not found at {} (set AUTOFIX_SCENARIOS)",
            dir.display()
        );
        None
    }
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn cart() -> WorkloadRef {
    WorkloadRef {
        kind: WorkloadKind::Deployment,
        namespace: "shop".into(),
        name: "cart".into(),
    }
}

/// The committed file and its only document, which is also the rendered object (the cart
/// kustomization has no overlay).
fn committed(dir: &std::path::Path) -> (String, Value) {
    let text = read(dir.join("gitops").join(FILE));
    let mut docs = parse_documents(&text).expect("deployment.yaml parses");
    assert_eq!(docs.len(), 1);
    (text, docs.remove(0))
}

/// A fix: `edits` applied to both the rendered object and the text, `declared` as remediation.
struct Fix {
    text: String,
    rendered: Value,
    changes: Vec<FieldChange>,
}

impl Fix {
    fn new(text: &str, rendered: &Value) -> Self {
        Fix {
            text: text.to_string(),
            rendered: rendered.clone(),
            changes: Vec::new(),
        }
    }

    fn memory_256(mut self) -> Self {
        let path = FieldPath::must(&format!("{CART}.resources.limits.memory"));
        assert!(path.set(&mut self.rendered, json!("256Mi")));
        self.text = self.text.replace("memory: 128Mi #", "memory: 256Mi #");
        self.changes.push(FieldChange {
            path,
            from: Some(json!("128Mi")),
            to: json!("256Mi"),
            reason: "both pods were OOMKilled at 128Mi".into(),
        });
        self
    }

    fn undeclared(mut self, path: &str, value: Value, from: &str, to: &str) -> Self {
        assert!(FieldPath::must(path).set(&mut self.rendered, value));
        assert!(self.text.contains(from), "{from}");
        self.text = self.text.replacen(from, to, 1);
        self
    }

    fn validate(&self, before_text: &str, before: &Value) -> Vec<(String, Option<String>)> {
        let remediation = Remediation {
            strategy: "raise memory limit".into(),
            changes: self.changes.clone(),
        };
        let edits = [EditedFile {
            file: FILE.into(),
            before: before_text.into(),
            after: self.text.clone(),
            helm_values: false,
        }];
        let input = ValidationInput {
            workload: &cart(),
            remediation: &remediation,
            rendered_before: before,
            rendered_after: &self.rendered,
            edits: &edits,
        };
        let validation = validate(&input, &PolicyConfig::default());
        assert_eq!(validation.passed, validation.violations.is_empty());
        validation
            .violations
            .into_iter()
            .map(|v| (v.rule, v.path))
            .collect()
    }
}

#[test]
fn the_memory_fix_passes() {
    let Some(dir) = scenario() else { return };
    let (text, before) = committed(&dir);
    let fix = Fix::new(&text, &before).memory_256();
    assert_ne!(fix.text, text);
    assert_eq!(fix.validate(&text, &before), vec![]);
}

#[test]
fn an_undeclared_image_change_is_refused() {
    let Some(dir) = scenario() else { return };
    let (text, before) = committed(&dir);
    let fix = Fix::new(&text, &before).memory_256().undeclared(
        &format!("{CART}.image"),
        json!("registry.example.com/shop/cart:1.9.0"),
        "cart:1.8.2",
        "cart:1.9.0",
    );
    assert_eq!(
        fix.validate(&text, &before),
        [("undeclared-path".to_string(), Some(format!("{CART}.image")))]
    );
}

#[test]
fn host_network_is_refused() {
    let Some(dir) = scenario() else { return };
    let (text, before) = committed(&dir);
    let fix = Fix::new(&text, &before).memory_256().undeclared(
        "spec.template.spec.hostNetwork",
        json!(true),
        "      terminationGracePeriodSeconds: 20\n",
        "      terminationGracePeriodSeconds: 20\n      hostNetwork: true\n",
    );
    let path = Some("spec.template.spec.hostNetwork".to_string());
    assert_eq!(
        fix.validate(&text, &before),
        [
            ("host-network".to_string(), path.clone()),
            ("undeclared-path".to_string(), path),
        ]
    );
}

#[test]
fn a_misspelled_field_in_the_file_is_refused() {
    let Some(dir) = scenario() else { return };
    let (text, before) = committed(&dir);
    let mut fix = Fix::new(&text, &before).memory_256();
    fix.text = fix
        .text
        .replace("          limits:\n", "          limit:\n");
    let found = fix.validate(&text, &before);
    assert_eq!(
        found,
        [(
            "schema".to_string(),
            Some(format!("{CART}.resources.limit"))
        )]
    );
}

/// The live Deployment and Namespace, as `kubectl get -o yaml` printed them.
fn live(dir: &std::path::Path) -> (Value, BTreeMap<String, String>) {
    let objects = parse_objects(&read(dir.join("cluster/all.yaml"))).expect("all.yaml parses");
    let find = |kind: &str, name: &str| {
        objects
            .iter()
            .find(|o| {
                o.get("kind").and_then(Value::as_str) == Some(kind)
                    && o.pointer("/metadata/name").and_then(Value::as_str) == Some(name)
            })
            .cloned()
            .unwrap_or_else(|| panic!("no {kind} {name} in all.yaml"))
    };
    let labels = find("Namespace", "shop")
        .pointer("/metadata/labels")
        .cloned()
        .map(serde_json::from_value)
        .and_then(Result::ok)
        .unwrap_or_default();
    (find("Deployment", "cart"), labels)
}

#[test]
fn the_live_object_passes_the_schema_and_safety_rules() {
    let Some(dir) = scenario() else { return };
    let (deployment, _) = live(&dir);
    let remediation = Remediation {
        strategy: "nothing".into(),
        changes: vec![],
    };
    let input = ValidationInput {
        workload: &cart(),
        remediation: &remediation,
        rendered_before: &deployment,
        rendered_after: &deployment,
        edits: &[],
    };
    let validation = validate(&input, &PolicyConfig::default());
    assert!(validation.passed, "{:#?}", validation.violations);
}

#[test]
fn the_memory_fix_is_low_risk() {
    let Some(dir) = scenario() else { return };
    let (deployment, labels) = live(&dir);
    let (text, before) = committed(&dir);
    let fix = Fix::new(&text, &before).memory_256();
    let remediation = Remediation {
        strategy: "raise memory limit".into(),
        changes: fix.changes,
    };
    let input = RiskInput {
        workload: &cart(),
        live_workload: &deployment,
        remediation: &remediation,
        namespace_labels: Some(&labels),
    };
    let risk = assess_risk(&input, &RiskConfig::default());
    assert_eq!(risk.level, RiskLevel::Low, "{risk:#?}");
    assert!((risk.score - 0.298).abs() < 0.001, "{}", risk.score);
    assert!(risk.factors.blast_radius.why.starts_with("2 replicas"));
}
