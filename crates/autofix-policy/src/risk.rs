//! The risk score of a fix: a weighted geometric mean of four factors in [epsilon, 1].
//!
//! `docs/risk-model.md` explains the model, each factor's values, and a worked example.

use crate::config::RiskConfig;
use autofix_core::path::Segment;
use autofix_core::verdict::{RiskFactors, RiskWeights};
use autofix_core::{
    FieldPath, Remediation, RiskFactor, RiskLevel, RiskScore, WorkloadKind, WorkloadRef,
};
use serde_json::Value;
use std::collections::BTreeMap;

/// Everything the risk model looks at for one fix.
#[derive(Debug, Clone, Copy)]
pub struct RiskInput<'a> {
    /// The workload the fix changes.
    pub workload: &'a WorkloadRef,
    /// The live workload object (replica counts and status are read from it).
    pub live_workload: &'a Value,
    /// The fix as data.
    pub remediation: &'a Remediation,
    /// Labels of the workload's namespace, when the cluster could be read.
    pub namespace_labels: Option<&'a BTreeMap<String, String>>,
}

/// Scores the risk of the fix: each factor with its reason, combined by [`combine`].
pub fn assess_risk(input: &RiskInput, config: &RiskConfig) -> RiskScore {
    let factors = RiskFactors {
        blast_radius: blast_radius(input.workload, input.live_workload),
        resource_sensitivity: resource_sensitivity(input.remediation),
        rollback_complexity: rollback_complexity(input.workload, input.remediation),
        namespace_scope: namespace_scope(&input.workload.namespace, input.namespace_labels, config),
    };
    combine(factors, config)
}

/// Combines factors into a score: `exp(Σ wᵢ·ln fᵢ / Σ wᵢ)`, each `fᵢ` clamped to
/// `[epsilon, 1]`, and bands it (`>= high_at` high, `>= medium_at` medium, else low).
///
/// The config is expected to be validated; should it not be, an epsilon outside (0, 1) falls
/// back to the default, negative or non-finite weights count as 0, all-zero weights as equal
/// weights, and a NaN factor as 1 (the riskiest reading), so the score is always defined.
pub fn combine(mut factors: RiskFactors, config: &RiskConfig) -> RiskScore {
    let epsilon = if config.epsilon > 0.0 && config.epsilon < 1.0 {
        config.epsilon
    } else {
        RiskConfig::default().epsilon
    };
    let usable = |w: f64| if w.is_finite() && w > 0.0 { w } else { 0.0 };
    let given = &config.weights;
    let mut weights = RiskWeights {
        blast_radius: usable(given.blast_radius),
        resource_sensitivity: usable(given.resource_sensitivity),
        rollback_complexity: usable(given.rollback_complexity),
        namespace_scope: usable(given.namespace_scope),
    };
    let total = weights.blast_radius
        + weights.resource_sensitivity
        + weights.rollback_complexity
        + weights.namespace_scope;
    if total <= 0.0 || !total.is_finite() {
        weights = RiskWeights {
            blast_radius: 1.0,
            resource_sensitivity: 1.0,
            rollback_complexity: 1.0,
            namespace_scope: 1.0,
        };
    }
    let pairs = [
        (&mut factors.blast_radius, weights.blast_radius),
        (
            &mut factors.resource_sensitivity,
            weights.resource_sensitivity,
        ),
        (
            &mut factors.rollback_complexity,
            weights.rollback_complexity,
        ),
        (&mut factors.namespace_scope, weights.namespace_scope),
    ];
    let (mut log_sum, mut weight_sum) = (0.0, 0.0);
    for (factor, weight) in pairs {
        factor.value = if factor.value.is_nan() {
            1.0
        } else {
            factor.value.clamp(epsilon, 1.0)
        };
        log_sum += weight * factor.value.ln();
        weight_sum += weight;
    }
    let score = (log_sum / weight_sum).exp().clamp(epsilon, 1.0);
    let level = if score >= config.high_at {
        RiskLevel::High
    } else if score >= config.medium_at {
        RiskLevel::Medium
    } else {
        RiskLevel::Low
    };
    RiskScore {
        score,
        level,
        factors,
        weights,
    }
}

fn factor(value: f64, why: String) -> RiskFactor {
    RiskFactor { value, why }
}

/// Pod count at which the blast radius is 63% of the way from its kind's floor to its ceiling
/// (the scale of `1 - exp(-pods / scale)`): a dozen pods is close to "all of a large service".
const PODS_SCALE: f64 = 6.0;

fn count(live: &Value, pointer: &str) -> Option<f64> {
    live.pointer(pointer)
        .and_then(Value::as_f64)
        .map(|n| n.max(0.0))
}

fn plural(n: f64, one: &str, many: &str) -> String {
    if n == 1.0 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// How much of the service a bad fix would hit, from the kind and the number of pods.
fn blast_radius(workload: &WorkloadRef, live: &Value) -> RiskFactor {
    let (pods, floor, ceiling, why) = match workload.kind {
        WorkloadKind::Deployment => {
            let n = count(live, "/spec/replicas").unwrap_or(1.0);
            let why = format!(
                "{} of {workload}: a rolling update replaces a few pods at a time and stops when \
                 new pods fail readiness (maxUnavailable), so a bad fix reaches part of the \
                 service before it stalls.",
                plural(n, "replica", "replicas")
            );
            (n, 0.2, 0.8, why)
        }
        WorkloadKind::StatefulSet => {
            let n = count(live, "/spec/replicas").unwrap_or(1.0);
            let why = format!(
                "{} of {workload}: pods are replaced one at a time from the highest ordinal, but \
                 each has its own identity and volume that clients address directly.",
                plural(n, "replica", "replicas")
            );
            (n, 0.35, 0.9, why)
        }
        WorkloadKind::DaemonSet => {
            let nodes = count(live, "/status/desiredNumberScheduled");
            let why = match nodes {
                Some(n) => format!(
                    "{workload} runs on {}: a bad fix reaches every node's copy, and the \
                     node-level service it provides fails for every pod there.",
                    plural(n, "node", "nodes")
                ),
                None => format!(
                    "{workload} runs on every node its selector matches (the live status gives \
                     no count): a bad fix reaches each node's copy."
                ),
            };
            (nodes.unwrap_or(0.0), 0.75, 1.0, why)
        }
        WorkloadKind::Job => {
            let n = count(live, "/spec/parallelism").unwrap_or(1.0);
            let why = format!(
                "{workload} runs {} at a time to completion: a bad fix fails a batch run, not a \
                 serving path.",
                plural(n, "pod", "pods")
            );
            (n, 0.15, 0.5, why)
        }
        WorkloadKind::CronJob => {
            let n = count(live, "/spec/jobTemplate/spec/parallelism").unwrap_or(1.0);
            let why = format!(
                "{workload} starts Jobs of {} on a schedule: a bad fix fails the next runs, not \
                 a serving path.",
                plural(n, "pod", "pods")
            );
            (n, 0.15, 0.5, why)
        }
        WorkloadKind::Pod => {
            let why = format!("{workload} is a single pod with no controller.");
            (1.0, 0.2, 0.8, why)
        }
    };
    let share = 1.0 - (-pods / PODS_SCALE).exp();
    factor(floor + (ceiling - floor) * share, why)
}

/// Classes of fields, most sensitive first: (value, class, reason, keys). A change is in the
/// first class one of whose keys appears anywhere in its path. Probes are classed before these
/// (see [`PROBES`]): a probe's `exec.command` is a probe endpoint, not the container's command.
const FIELD_CLASSES: [(f64, &str, &str, &[&str]); 7] = [
    (
        1.0,
        "immutable selectors and volume claim templates",
        "Kubernetes refuses the change in place",
        &["volumeClaimTemplates", "selector"],
    ),
    (
        0.9,
        "security settings, volumes and service account",
        "they decide what the pod may reach and which identity it acts as",
        &[
            "securityContext",
            "volumes",
            "volumeMounts",
            "serviceAccountName",
            "serviceAccount",
            "automountServiceAccountToken",
            "hostNetwork",
            "hostPID",
            "hostIPC",
        ],
    ),
    (
        0.6,
        "image, command, environment and config references",
        "they change what code runs and with which configuration",
        &[
            "image",
            "imagePullPolicy",
            "imagePullSecrets",
            "command",
            "args",
            "workingDir",
            "env",
            "envFrom",
        ],
    ),
    (
        0.5,
        "scheduling constraints",
        "they decide where, and whether, the pods can run",
        &[
            "nodeSelector",
            "affinity",
            "tolerations",
            "topologySpreadConstraints",
            "priorityClassName",
            "nodeName",
        ],
    ),
    (
        0.4,
        "ports",
        "Services and probes address them by number or name",
        &["ports"],
    ),
    (
        0.3,
        "replica counts, rollout settings and pod metadata",
        "they change how many pods run and how they are replaced",
        &[
            "replicas",
            "parallelism",
            "completions",
            "backoffLimit",
            "activeDeadlineSeconds",
            "terminationGracePeriodSeconds",
            "progressDeadlineSeconds",
            "minReadySeconds",
            "strategy",
            "updateStrategy",
            "labels",
            "annotations",
        ],
    ),
    (
        0.2,
        "resource quantities",
        "a wrong value shows at once and is corrected by the next fix",
        &["resources"],
    ),
];

/// The probes of a container.
const PROBES: [&str; 3] = ["livenessProbe", "readinessProbe", "startupProbe"];

/// Probe fields that only tune timing: as safe as resource quantities.
const PROBE_TIMING: [&str; 5] = [
    "initialDelaySeconds",
    "periodSeconds",
    "timeoutSeconds",
    "failureThreshold",
    "successThreshold",
];

/// Value of a field no class names: kube-autofix does not know it, so it counts as sensitive.
const UNCLASSIFIED: f64 = 0.7;

/// Value when the remediation declares no change at all.
const NO_CHANGE: f64 = 0.1;

fn keys(path: &FieldPath) -> impl Iterator<Item = &str> {
    path.0.iter().filter_map(|segment| match segment {
        Segment::Key(key) => Some(key.as_str()),
        _ => None,
    })
}

/// The sensitivity of one changed path: (value, class, reason).
fn classify(path: &FieldPath) -> (f64, &'static str, &'static str) {
    if keys(path).any(|k| PROBES.contains(&k)) {
        return if keys(path).last().is_some_and(|k| PROBE_TIMING.contains(&k)) {
            (
                0.2,
                "probe timing",
                "a slower or more tolerant probe only delays detection",
            )
        } else {
            (
                0.4,
                "probe endpoints",
                "a wrong port or path makes healthy pods look dead",
            )
        };
    }
    FIELD_CLASSES
        .into_iter()
        .find(|(.., names)| keys(path).any(|k| names.contains(&k)))
        .map_or(
            (
                UNCLASSIFIED,
                "fields kube-autofix has no class for",
                "their effect is unknown, so they count as sensitive",
            ),
            |(value, class, reason, _)| (value, class, reason),
        )
}

/// How sensitive the changed fields are: the most sensitive change decides.
fn resource_sensitivity(remediation: &Remediation) -> RiskFactor {
    let most = remediation
        .changes
        .iter()
        .map(|change| (classify(&change.path), &change.path))
        .max_by(|a, b| a.0.0.total_cmp(&b.0.0));
    match most {
        None => factor(NO_CHANGE, "The fix declares no field change.".to_string()),
        Some(((value, class, reason), path)) => {
            let n = remediation.changes.len();
            let why = format!(
                "The fix changes {}; the most sensitive is `{path}` ({class}: {reason}).",
                plural(n as f64, "field", "fields")
            );
            factor(value, why)
        }
    }
}

/// How hard the fix is to undo once merged.
fn rollback_complexity(workload: &WorkloadRef, remediation: &Remediation) -> RiskFactor {
    let immutable = remediation.changes.iter().find(|change| {
        keys(&change.path).any(|k| k == "volumeClaimTemplates")
            || change.path.starts_with(&FieldPath::must("spec.selector"))
    });
    if let Some(change) = immutable {
        let why = format!(
            "The fix changes `{}` of {workload}, which Kubernetes cannot change in place: undoing \
             it means deleting and recreating the object (orphaning its pods) and moving any \
             volumes by hand.",
            change.path
        );
        return factor(1.0, why);
    }
    let (value, how) = match workload.kind {
        WorkloadKind::Deployment => (
            0.2,
            "undoing the fix is one git revert, rolled out like any update, with no state to \
             restore",
        ),
        WorkloadKind::CronJob => (
            0.3,
            "undoing the fix is one git revert; Jobs already started keep the fixed template \
             until they finish",
        ),
        WorkloadKind::DaemonSet => (
            0.35,
            "undoing the fix is one git revert, but it rolls node by node across the whole \
             fleet, as slowly as the fix did",
        ),
        WorkloadKind::StatefulSet => (
            0.5,
            "pods roll back one at a time in ordinal order, and a pod the fix broke can block \
             the rollback until someone deletes it by hand",
        ),
        WorkloadKind::Pod => (
            0.6,
            "most pod fields are immutable, so the pod must be deleted and created again",
        ),
        WorkloadKind::Job => (
            0.7,
            "a Job's pod template is immutable: undoing means deleting and recreating the Job, \
             and a run may already have had side effects",
        ),
    };
    factor(value, format!("{workload}: {how}."))
}

/// Namespace labels (key, values) that mark production or critical workloads.
const CRITICAL_LABELS: [(&str, &[&str]); 5] = [
    ("environment", &["production", "prod"]),
    ("env", &["production", "prod"]),
    ("tier", &["critical"]),
    ("criticality", &["critical", "high"]),
    ("pci-scope", &["true"]),
];

/// Namespace labels (key, values) that mark non-production namespaces.
const NON_PRODUCTION_LABELS: [(&str, &[&str]); 2] = [
    (
        "environment",
        &[
            "dev",
            "development",
            "test",
            "testing",
            "qa",
            "staging",
            "sandbox",
            "preview",
        ],
    ),
    (
        "env",
        &[
            "dev",
            "development",
            "test",
            "testing",
            "qa",
            "staging",
            "sandbox",
            "preview",
        ],
    ),
];

/// Value for a critical namespace.
const CRITICAL: f64 = 0.9;
/// Value for a namespace with no sign either way.
const ORDINARY: f64 = 0.5;
/// Value for a namespace labelled non-production.
const NON_PRODUCTION: f64 = 0.2;

fn find_label<'a>(
    labels: Option<&'a BTreeMap<String, String>>,
    table: &[(&str, &[&str])],
) -> Option<(&'a str, &'a str)> {
    let labels = labels?;
    table.iter().find_map(|(key, values)| {
        let (key, value) = labels.get_key_value(*key)?;
        values
            .contains(&value.as_str())
            .then_some((key.as_str(), value.as_str()))
    })
}

/// How critical the namespace is, from its name and its labels.
fn namespace_scope(
    namespace: &str,
    labels: Option<&BTreeMap<String, String>>,
    config: &RiskConfig,
) -> RiskFactor {
    if let Some(pattern) = config.critical_pattern(namespace) {
        let why = format!("Namespace {namespace} matches the critical pattern `{pattern}`.");
        return factor(CRITICAL, why);
    }
    if let Some((key, value)) = find_label(labels, &CRITICAL_LABELS) {
        let why = format!("Namespace {namespace} is labelled `{key}: {value}`.");
        return factor(CRITICAL, why);
    }
    if let Some((key, value)) = find_label(labels, &NON_PRODUCTION_LABELS) {
        let why = format!("Namespace {namespace} is labelled `{key}: {value}`, not production.");
        return factor(NON_PRODUCTION, why);
    }
    let labels_read = if labels.is_some() {
        "carries no environment or criticality label"
    } else {
        "has unknown labels (the cluster was not read)"
    };
    let why = format!(
        "Namespace {namespace} matches no critical pattern and {labels_read}, so it counts as \
         ordinary."
    );
    factor(ORDINARY, why)
}

#[cfg(test)]
mod tests {
    use super::*;
    use autofix_core::FieldChange;
    use proptest::prelude::*;
    use serde_json::json;

    fn workload(kind: WorkloadKind, namespace: &str) -> WorkloadRef {
        WorkloadRef {
            kind,
            namespace: namespace.into(),
            name: "cart".into(),
        }
    }

    fn remediation(paths: &[&str]) -> Remediation {
        Remediation {
            strategy: "test".into(),
            changes: paths
                .iter()
                .map(|path| FieldChange {
                    path: FieldPath::must(path),
                    from: None,
                    to: json!("x"),
                    reason: "test".into(),
                })
                .collect(),
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const MEMORY: &str = "spec.template.spec.containers[name=cart].resources.limits.memory";

    #[test]
    fn oom_cart_is_low_risk() {
        let cart = workload(WorkloadKind::Deployment, "shop");
        let live = json!({"spec": {"replicas": 2}});
        let fix = remediation(&[MEMORY]);
        let shop = labels(&[
            ("team", "checkout"),
            ("kubernetes.io/metadata.name", "shop"),
        ]);
        let input = RiskInput {
            workload: &cart,
            live_workload: &live,
            remediation: &fix,
            namespace_labels: Some(&shop),
        };
        let risk = assess_risk(&input, &RiskConfig::default());
        let f = &risk.factors;
        assert!((f.blast_radius.value - 0.3701).abs() < 1e-4, "{f:?}");
        assert_eq!(f.resource_sensitivity.value, 0.2);
        assert_eq!(f.rollback_complexity.value, 0.2);
        assert_eq!(f.namespace_scope.value, 0.5);
        assert!((risk.score - 0.2979).abs() < 1e-4, "{}", risk.score);
        assert_eq!(risk.level, RiskLevel::Low);
        assert!(
            f.blast_radius
                .why
                .starts_with("2 replicas of Deployment shop/cart")
        );
        assert!(f.resource_sensitivity.why.contains(MEMORY));
        assert!(
            f.namespace_scope
                .why
                .contains("no environment or criticality label")
        );
    }

    #[test]
    fn blast_radius_grows_with_pods_and_kind() {
        let live = |n: u64| json!({"spec": {"replicas": n}});
        let deployment = workload(WorkloadKind::Deployment, "shop");
        let one = blast_radius(&deployment, &live(1)).value;
        let twelve = blast_radius(&deployment, &live(12)).value;
        assert!(one < twelve && twelve < 0.8, "{one} {twelve}");
        let stateful = workload(WorkloadKind::StatefulSet, "shop");
        assert!(
            blast_radius(&stateful, &live(3)).value > blast_radius(&deployment, &live(3)).value
        );
        let daemon = workload(WorkloadKind::DaemonSet, "shop");
        let nodes = json!({"status": {"desiredNumberScheduled": 3}});
        assert!(blast_radius(&daemon, &nodes).value > 0.75);
        assert!(blast_radius(&daemon, &json!({})).why.contains("no count"));
        let job = workload(WorkloadKind::Job, "shop");
        assert!(blast_radius(&job, &json!({})).value < one);
    }

    #[test]
    fn sensitivity_follows_the_most_sensitive_field() {
        let c = "spec.template.spec.containers[name=cart]";
        let value = |paths: &[&str]| resource_sensitivity(&remediation(paths)).value;
        assert_eq!(value(&[MEMORY]), 0.2);
        assert_eq!(value(&[&format!("{c}.livenessProbe.periodSeconds")]), 0.2);
        assert_eq!(value(&[&format!("{c}.livenessProbe.httpGet.port")]), 0.4);
        assert_eq!(value(&[&format!("{c}.livenessProbe.exec.command")]), 0.4);
        assert_eq!(value(&[&format!("{c}.image")]), 0.6);
        assert_eq!(
            value(&[&format!("{c}.env[name=A].valueFrom.configMapKeyRef.key")]),
            0.6
        );
        assert_eq!(
            value(&[MEMORY, &format!("{c}.securityContext.runAsUser")]),
            0.9
        );
        assert_eq!(value(&["spec.volumeClaimTemplates[name=data].spec"]), 1.0);
        assert_eq!(value(&["spec.somethingNew"]), UNCLASSIFIED);
        assert_eq!(value(&[]), NO_CHANGE);
    }

    #[test]
    fn rollback_is_hardest_for_jobs_and_immutable_fields() {
        let fix = remediation(&[MEMORY]);
        let value = |kind| rollback_complexity(&workload(kind, "shop"), &fix).value;
        assert!(value(WorkloadKind::Deployment) < value(WorkloadKind::StatefulSet));
        assert!(value(WorkloadKind::StatefulSet) < value(WorkloadKind::Job));
        let claims = remediation(&["spec.volumeClaimTemplates[name=data].spec.storageClassName"]);
        let sts = workload(WorkloadKind::StatefulSet, "db");
        assert_eq!(rollback_complexity(&sts, &claims).value, 1.0);
    }

    #[test]
    fn namespace_scope_reads_names_and_labels() {
        let config = RiskConfig::default();
        let value = |ns, l: Option<&BTreeMap<String, String>>| namespace_scope(ns, l, &config);
        let payments = value("payments", None);
        assert_eq!(payments.value, CRITICAL);
        assert!(payments.why.contains("`payments`"));
        let prod = labels(&[("environment", "production")]);
        assert_eq!(value("shop", Some(&prod)).value, CRITICAL);
        let pci = labels(&[("pci-scope", "true")]);
        assert_eq!(value("cards", Some(&pci)).value, CRITICAL);
        let staging = labels(&[("env", "staging")]);
        assert_eq!(value("shop", Some(&staging)).value, NON_PRODUCTION);
        assert_eq!(value("shop", None).value, ORDINARY);
    }

    fn with_values(values: [f64; 4]) -> RiskFactors {
        let f = |value| RiskFactor {
            value,
            why: String::new(),
        };
        RiskFactors {
            blast_radius: f(values[0]),
            resource_sensitivity: f(values[1]),
            rollback_complexity: f(values[2]),
            namespace_scope: f(values[3]),
        }
    }

    fn score(values: [f64; 4], weights: [f64; 4]) -> f64 {
        let config = RiskConfig {
            weights: RiskWeights {
                blast_radius: weights[0],
                resource_sensitivity: weights[1],
                rollback_complexity: weights[2],
                namespace_scope: weights[3],
            },
            ..RiskConfig::default()
        };
        combine(with_values(values), &config).score
    }

    #[test]
    fn levels_follow_the_thresholds() {
        let config = RiskConfig::default();
        let level = |v: f64| combine(with_values([v; 4]), &config).level;
        assert_eq!(level(0.29), RiskLevel::Low);
        assert_eq!(level(0.31), RiskLevel::Medium);
        assert_eq!(level(0.61), RiskLevel::High);
        let clamped = combine(with_values([0.0, 2.0, f64::NAN, 0.5]), &config);
        let values = [
            clamped.factors.blast_radius.value,
            clamped.factors.resource_sensitivity.value,
            clamped.factors.rollback_complexity.value,
        ];
        assert_eq!(values, [0.05, 1.0, 1.0]);
    }

    fn weights() -> impl Strategy<Value = [f64; 4]> {
        prop::array::uniform4(0.0..10.0f64)
            .prop_filter("not all zero", |w| w.iter().sum::<f64>() > 1e-6)
    }

    proptest! {
        #[test]
        fn raising_a_factor_never_lowers_the_score(
            values in prop::array::uniform4(0.0..=1.0f64),
            weights in weights(),
            which in 0usize..4,
            raise in 0.0..=1.0f64,
        ) {
            let mut higher = values;
            higher[which] = (values[which] + raise).min(1.0);
            prop_assert!(score(higher, weights) >= score(values, weights) - 1e-12);
        }

        #[test]
        fn all_ones_score_one(weights in weights()) {
            prop_assert!((score([1.0; 4], weights) - 1.0).abs() < 1e-12);
        }

        #[test]
        fn one_factor_at_epsilon_keeps_the_score_positive(weights in weights(), which in 0usize..4) {
            let mut values = [1.0; 4];
            values[which] = 0.05;
            let s = score(values, weights);
            // At or above epsilon, hence positive.
            prop_assert!(s >= 0.05 - 1e-12, "{}", s);
        }

        #[test]
        fn the_score_stays_within_epsilon_and_one(
            values in prop::array::uniform4(-1.0..=2.0f64),
            weights in weights(),
        ) {
            let s = score(values, weights);
            prop_assert!((0.05..=1.0).contains(&s), "{}", s);
        }

        #[test]
        fn scaling_the_weights_changes_nothing(
            values in prop::array::uniform4(0.0..=1.0f64),
            weights in weights(),
            factor in 0.01..100.0f64,
        ) {
            let scaled = weights.map(|w| w * factor);
            prop_assert!((score(values, weights) - score(values, scaled)).abs() < 1e-9);
        }
    }
}
