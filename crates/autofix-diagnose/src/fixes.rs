//! Deterministic fixes. Each returns the strategy and its field changes, or the reason no safe
//! fix follows from the evidence.

use crate::RuleConfig;
use crate::diff::diff_leaves;
use crate::facts::Facts;
use autofix_core::quantity::{Quantity, format_cpu, format_memory};
use autofix_core::{FieldChange, FieldPath, Finding};
use serde_json::{Value, json};

type FixResult = Result<(String, Vec<FieldChange>), String>;

/// Largest edit distance that counts as a typo of an existing name.
const NEAR_MISS_DISTANCE: usize = 2;

fn change(facts: &Facts, path: FieldPath, to: Value, reason: String) -> FieldChange {
    FieldChange {
        from: facts.live(&path).cloned(),
        path,
        to,
        reason,
    }
}

fn show(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => "(unset)".into(),
    }
}

fn container_path(facts: &Facts) -> Result<FieldPath, String> {
    facts
        .container_path()
        .ok_or_else(|| "The failing container is not known.".to_string())
}

/// Reverts the container `fields` that differ between the current revision and the last good
/// one: the classic remedy when a rollout broke the workload.
pub fn revert(facts: &Facts, fields: &[&str], findings: &mut Vec<Finding>) -> FixResult {
    let (Some(current), Some(good)) = (facts.current(), facts.last_good_revision()) else {
        return Err("There is no earlier revision that ran healthy to compare against, so no change can be derived safely.".into());
    };
    let name = facts
        .container
        .as_deref()
        .ok_or("The failing container is not known.")?;
    let base = container_path(facts)?;
    let find = |template: &Value| -> Option<Value> {
        ["containers", "initContainers"].iter().find_map(|kind| {
            template
                .pointer(&format!("/spec/{kind}"))?
                .as_array()?
                .iter()
                .find(|c| c.get("name").and_then(Value::as_str) == Some(name))
                .cloned()
        })
    };
    let (now, before) = (find(&current.template), find(&good.template));
    let mut diffs = Vec::new();
    for field in fields {
        diff_leaves(
            now.as_ref().and_then(|c| c.get(*field)),
            before.as_ref().and_then(|c| c.get(*field)),
            &base.key(field),
            &mut diffs,
        );
    }
    if diffs.is_empty() {
        return Err(format!(
            "Revision {} ({}) and the last good revision {} ({}) do not differ in {}: the rollout did not introduce the failure.",
            current.number,
            current.name,
            good.number,
            good.name,
            fields.join("/")
        ));
    }
    let mut changes = Vec::new();
    for (path, now_value, good_value) in diffs {
        let Some(good_value) = good_value else {
            return Err(format!(
                "Reverting to revision {} would remove `{path}`, which kube-autofix does not do automatically.",
                good.number
            ));
        };
        findings.push(Finding::new(
            format!("revision {} vs {}", current.number, good.number),
            format!(
                "`{path}` changed from {} (revision {}, {} ready) to {} (revision {})",
                show(Some(&good_value)),
                good.number,
                good.ready,
                show(now_value.as_ref()),
                current.number
            ),
        ));
        let reason = format!(
            "revert to the value of revision {}, the last that ran healthy",
            good.number
        );
        changes.push(change(facts, path, good_value, reason));
    }
    Ok((format!("revert to revision {}", good.number), changes))
}

/// The unique existing name within [`NEAR_MISS_DISTANCE`] edits of `wanted`.
fn near_miss<'a>(wanted: &str, existing: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Vec<(usize, &str)> = existing
        .into_iter()
        .filter(|e| *e != wanted)
        .map(|e| (strsim::levenshtein(wanted, e), e))
        .filter(|(d, _)| *d <= NEAR_MISS_DISTANCE)
        .collect();
    best.sort();
    best.dedup();
    match best.as_slice() {
        [(_, name)] => Some(*name),
        [(d1, name), (d2, _), ..] if d1 < d2 => Some(*name),
        _ => None,
    }
}

/// Corrects a ConfigMap/Secret name or key that is a near miss of an existing one.
pub fn config_ref_near_miss(
    facts: &Facts,
    message: &str,
    findings: &mut Vec<Finding>,
) -> FixResult {
    let container = facts
        .container_spec()
        .ok_or("The failing container is not known.")?;
    let base = container_path(facts)?;
    let evidence = facts.evidence;
    // "couldn't find key databse_url in ConfigMap payments/api-config"
    if let Some(rest) = message.strip_prefix("couldn't find key ") {
        let (key, object) = rest
            .split_once(" in ")
            .ok_or("Unrecognised kubelet message.")?;
        let (kind, qualified) = object
            .split_once(' ')
            .ok_or("Unrecognised kubelet message.")?;
        let name = qualified.rsplit('/').next().unwrap_or(qualified);
        let (objects, ref_field) = match kind {
            "ConfigMap" => (&evidence.config_maps, "configMapKeyRef"),
            "Secret" => (&evidence.secrets, "secretKeyRef"),
            _ => {
                return Err(format!(
                    "Unrecognised object kind {kind} in kubelet message."
                ));
            }
        };
        let keys = &objects
            .iter()
            .find(|o| o.name == name)
            .ok_or_else(|| format!("{kind} {name} is not in the evidence."))?
            .keys;
        let fixed = near_miss(key, keys.iter().map(String::as_str)).ok_or_else(|| {
            format!(
                "Key `{key}` is not in {kind} {name} and no existing key ({}) is a near miss.",
                keys.join(", ")
            )
        })?;
        let mut changes = Vec::new();
        for env in container
            .get("env")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(r) = env.pointer(&format!("/valueFrom/{ref_field}")) else {
                continue;
            };
            if r.get("name").and_then(Value::as_str) == Some(name)
                && r.get("key").and_then(Value::as_str) == Some(key)
            {
                let env_name = env.get("name").and_then(Value::as_str).unwrap_or("");
                let path = base
                    .key("env")
                    .select("name", env_name)
                    .key("valueFrom")
                    .key(ref_field)
                    .key("key");
                changes.push(change(
                    facts,
                    path,
                    json!(fixed),
                    format!("{kind} {name} has key `{fixed}`, not `{key}`"),
                ));
            }
        }
        findings.push(Finding::new(
            format!("{} {name}", kind.to_ascii_lowercase()),
            format!(
                "has keys {}; `{key}` is a near miss of `{fixed}`",
                keys.join(", ")
            ),
        ));
        return non_empty("correct the key name", changes, || {
            format!("No env entry of the container reads key `{key}` from {kind} {name}.")
        });
    }
    // 'configmap "X" not found' / 'secret "X" not found'
    for (kind, objects) in [
        ("configmap", &evidence.config_maps),
        ("secret", &evidence.secrets),
    ] {
        let Some(missing) = message
            .strip_prefix(&format!("{kind} \""))
            .and_then(|r| r.strip_suffix("\" not found"))
        else {
            continue;
        };
        let fixed =
            near_miss(missing, objects.iter().map(|o| o.name.as_str())).ok_or_else(|| {
                format!(
                    "{kind} `{missing}` does not exist and no existing {kind} name is a near miss."
                )
            })?;
        let (key_ref, env_from, volume_field) = if kind == "configmap" {
            ("configMapKeyRef", "configMapRef", "configMap.name")
        } else {
            ("secretKeyRef", "secretRef", "secret.secretName")
        };
        let mut changes = Vec::new();
        let reason = format!("{kind} `{fixed}` exists; `{missing}` does not");
        for env in container
            .get("env")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if env
                .pointer(&format!("/valueFrom/{key_ref}/name"))
                .and_then(Value::as_str)
                == Some(missing)
            {
                let env_name = env.get("name").and_then(Value::as_str).unwrap_or("");
                let path = base
                    .key("env")
                    .select("name", env_name)
                    .key("valueFrom")
                    .key(key_ref)
                    .key("name");
                changes.push(change(facts, path, json!(fixed), reason.clone()));
            }
        }
        for (i, source) in container
            .get("envFrom")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if source
                .pointer(&format!("/{env_from}/name"))
                .and_then(Value::as_str)
                == Some(missing)
            {
                let mut path = base.key("envFrom");
                path.0.push(autofix_core::path::Segment::Index(i));
                changes.push(change(
                    facts,
                    path.key(env_from).key("name"),
                    json!(fixed),
                    reason.clone(),
                ));
            }
        }
        let volumes = facts
            .template
            .pointer("/spec/volumes")
            .and_then(Value::as_array);
        let (vkey, vname) = volume_field
            .split_once('.')
            .unwrap_or((volume_field, "name"));
        for volume in volumes.into_iter().flatten() {
            if volume
                .pointer(&format!("/{vkey}/{vname}"))
                .and_then(Value::as_str)
                == Some(missing)
            {
                let vol = volume.get("name").and_then(Value::as_str).unwrap_or("");
                let path = facts
                    .template_path
                    .key("spec")
                    .key("volumes")
                    .select("name", vol)
                    .key(vkey)
                    .key(vname);
                changes.push(change(facts, path, json!(fixed), reason.clone()));
            }
        }
        findings.push(Finding::new(
            format!("namespace {}", evidence.workload.namespace),
            format!("{kind} `{fixed}` exists; the pod references `{missing}`"),
        ));
        return non_empty("correct the object name", changes, || {
            format!("No reference to {kind} `{missing}` found in the pod template.")
        });
    }
    Err(format!(
        "The kubelet message is not one kube-autofix can act on: {message}"
    ))
}

fn non_empty(strategy: &str, changes: Vec<FieldChange>, why: impl FnOnce() -> String) -> FixResult {
    if changes.is_empty() {
        Err(why())
    } else {
        Ok((strategy.to_string(), changes))
    }
}

/// How one resource's limit is raised.
struct Raise {
    /// `memory` or `cpu`.
    resource: &'static str,
    /// Multiplier of the current limit.
    factor: f64,
    /// Ceiling in base units.
    max: f64,
    /// Formats base units as a quantity.
    format: fn(f64) -> String,
    /// Strategy name.
    strategy: &'static str,
    /// Why there is no fix when the container has no such limit.
    no_limit: &'static str,
    /// The reason given for the change, with `{}` for the old limit.
    reason: fn(&str) -> String,
}

/// Multiplies a container limit by the configured factor, never above the configured maximum.
fn raise_limit(facts: &Facts, raise: Raise, findings: &mut Vec<Finding>) -> FixResult {
    let path = container_path(facts)?
        .key("resources")
        .key("limits")
        .key(raise.resource);
    let current = facts
        .live(&path)
        .and_then(Quantity::from_value)
        .ok_or(raise.no_limit)?;
    let (old, max) = ((raise.format)(current.0), (raise.format)(raise.max));
    if current.0 >= raise.max {
        return Err(format!(
            "The {} limit {old} is already at the policy maximum {max}; the application's use needs attention.",
            raise.resource
        ));
    }
    let to = (raise.format)((current.0 * raise.factor).min(raise.max));
    findings.push(Finding::new(
        "manifest",
        format!(
            "{} limit {old} -> {to} (x{}, policy maximum {max})",
            raise.resource, raise.factor
        ),
    ));
    let reason = (raise.reason)(&show(facts.live(&path)));
    Ok((
        raise.strategy.into(),
        vec![change(facts, path, json!(to), reason)],
    ))
}

/// Doubles the memory limit (rounded up to Mi/Gi) after an OOM kill.
pub fn raise_memory_limit(
    facts: &Facts,
    config: &RuleConfig,
    findings: &mut Vec<Finding>,
) -> FixResult {
    let raise = Raise {
        resource: "memory",
        factor: config.memory_factor,
        max: config.max_memory_bytes,
        format: format_memory,
        strategy: "raise the memory limit",
        no_limit: "The container has no memory limit: the OOM kill comes from node pressure, not a limit to raise.",
        reason: |old| format!("the container was OOMKilled at its {old} limit"),
    };
    raise_limit(facts, raise, findings)
}

/// Doubles the CPU limit of a throttled container.
pub fn raise_cpu_limit(
    facts: &Facts,
    config: &RuleConfig,
    findings: &mut Vec<Finding>,
) -> FixResult {
    let raise = Raise {
        resource: "cpu",
        factor: config.cpu_factor,
        max: config.max_cpu_cores,
        format: format_cpu,
        strategy: "raise the CPU limit",
        no_limit: "The container has no CPU limit to raise.",
        reason: |old| format!("CPUThrottlingHigh fires: the {old} limit is too low for the load"),
    };
    raise_limit(facts, raise, findings)
}

/// Fixes a failing probe: revert a regression, point it at a declared port, or give a slow
/// starter enough initial delay.
pub fn fix_probe(facts: &Facts, probe: &str, findings: &mut Vec<Finding>) -> FixResult {
    let mut probes = vec![probe];
    if probe == "livenessProbe" {
        probes.push("startupProbe");
    }
    let mut revert_findings = Vec::new();
    let reverted = revert(facts, &probes, &mut revert_findings);
    if reverted.is_ok() {
        findings.extend(revert_findings);
        return reverted;
    }
    let container = facts
        .container_spec()
        .ok_or("The failing container is not known.")?;
    let spec = container
        .get(probe)
        .ok_or_else(|| format!("The container has no {probe}."))?;
    let base = container_path(facts)?.key(probe);
    let ports: Vec<&Value> = container
        .get("ports")
        .and_then(Value::as_array)
        .map(|p| p.iter().collect())
        .unwrap_or_default();
    for handler in ["httpGet", "tcpSocket", "grpc"] {
        let Some(port) = spec.pointer(&format!("/{handler}/port")) else {
            continue;
        };
        let exposed = ports.iter().any(|p| match port {
            Value::Number(n) => p.get("containerPort") == Some(&Value::Number(n.clone())),
            Value::String(name) => p.get("name").and_then(Value::as_str) == Some(name),
            _ => false,
        });
        if exposed {
            continue;
        }
        let [declared] = ports.as_slice() else {
            return Err(format!(
                "The {probe} port {} is not declared by the container, and the container declares {} ports: which one is right is not clear.",
                show(Some(port)),
                ports.len()
            ));
        };
        let to = declared
            .get("containerPort")
            .cloned()
            .ok_or("Declared port has no containerPort.")?;
        findings.push(Finding::new(
            "manifest",
            format!(
                "{probe} probes port {}, but the container only declares {}",
                show(Some(port)),
                show(Some(&to))
            ),
        ));
        let reason = format!(
            "port {} is not exposed by the container; it listens on {}",
            show(Some(port)),
            show(Some(&to))
        );
        return Ok((
            "point the probe at the declared port".into(),
            vec![change(facts, base.key(handler).key("port"), to, reason)],
        ));
    }
    if probe == "livenessProbe"
        && let Some(startup) = startup_seconds(&facts.log_lines())
    {
        let num = |k: &str, d: f64| spec.get(k).and_then(Value::as_f64).unwrap_or(d);
        let budget = num("initialDelaySeconds", 0.0)
            + num("failureThreshold", 3.0) * num("periodSeconds", 10.0);
        if startup > budget {
            let delay = ((startup * 1.25) / 5.0).ceil() * 5.0;
            findings.push(Finding::new(
                "logs",
                format!("the application needs {startup:.1}s to start; the probe gives it {budget:.0}s (initialDelaySeconds + failureThreshold x periodSeconds)"),
            ));
            let reason = format!(
                "startup takes {startup:.1}s, longer than the {budget:.0}s the probe allows"
            );
            return Ok((
                "give the application time to start".into(),
                vec![change(
                    facts,
                    base.key("initialDelaySeconds"),
                    json!(delay as u64),
                    reason,
                )],
            ));
        }
    }
    Err(format!(
        "The {probe} fails, but neither a regression against a healthy revision, an undeclared port nor a slow start explains it. {}",
        reverted.err().unwrap_or_default()
    ))
}

/// Reads an application's startup duration from its logs (`Started X in 94.2 seconds`,
/// `startup took 12s`, `ready in 3500ms`).
fn startup_seconds(lines: &[&str]) -> Option<f64> {
    lines.iter().find_map(|line| {
        let lower = line.to_ascii_lowercase();
        if !(lower.contains("started") || lower.contains("startup") || lower.contains("ready in")) {
            return None;
        }
        let words: Vec<&str> = lower
            .split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ',')
            .collect();
        words.iter().enumerate().find_map(|(i, number)| {
            let unit = words.get(i + 1).map_or("", |u| u.trim_end_matches('.'));
            if let Ok(n) = number.parse::<f64>() {
                return match unit {
                    "seconds" | "second" | "s" | "secs" => Some(n),
                    "ms" | "milliseconds" => Some(n / 1000.0),
                    _ => None,
                };
            }
            let millis = number
                .strip_suffix("ms")
                .and_then(|n| n.parse::<f64>().ok());
            millis
                .map(|n| n / 1000.0)
                .or_else(|| number.strip_suffix('s').and_then(|n| n.parse::<f64>().ok()))
        })
    })
}

/// Lowers requests that no node can satisfy: to the last good revision's value when it fits,
/// otherwise to 80% of the largest node's allocatable.
pub fn lower_requests(facts: &Facts, message: &str, findings: &mut Vec<Finding>) -> FixResult {
    let base = container_path(facts)?.key("resources").key("requests");
    let good_container = facts.last_good_revision().and_then(|good| {
        let name = facts.container.as_deref()?;
        good.template
            .pointer("/spec/containers")?
            .as_array()?
            .iter()
            .find(|c| c.get("name").and_then(Value::as_str) == Some(name))
            .map(|c| (good.number, c.clone()))
    });
    let mut changes = Vec::new();
    for resource in ["cpu", "memory"] {
        if !message.contains(&format!("Insufficient {resource}")) {
            continue;
        }
        let path = base.key(resource);
        let requested = facts
            .live(&path)
            .and_then(Quantity::from_value)
            .ok_or_else(|| format!("No {resource} request found on the container."))?;
        let largest = facts
            .evidence
            .nodes
            .iter()
            .filter_map(|n| n.status.as_ref()?.allocatable.as_ref()?.get(resource))
            .filter_map(|q| Quantity::parse(&q.0))
            .fold(None::<f64>, |m, q| Some(m.map_or(q.0, |m| m.max(q.0))))
            .ok_or(
                "No node allocatable is in the evidence, so a fitting request cannot be computed.",
            )?;
        if requested.0 <= largest {
            return Err(format!(
                "The {resource} request fits the largest node ({}); other pods' requests block scheduling, which needs a human.",
                show(facts.live(&path))
            ));
        }
        let fmt = |q: f64| {
            if resource == "cpu" {
                format_cpu(q)
            } else {
                format_memory(q)
            }
        };
        findings.push(Finding::new(
            "nodes",
            format!(
                "{resource} request {} exceeds the largest node allocatable {}",
                show(facts.live(&path)),
                fmt(largest)
            ),
        ));
        let previous = good_container
            .as_ref()
            .and_then(|(n, c)| {
                Some((
                    *n,
                    c.pointer(&format!("/resources/requests/{resource}"))?
                        .clone(),
                ))
            })
            .filter(|(_, v)| Quantity::from_value(v).is_some_and(|q| q.0 <= largest));
        let (to, reason) = match previous {
            Some((number, value)) => (
                value,
                format!(
                    "revision {number} requested this and ran; no node offers the current request"
                ),
            ),
            None => {
                let fitted = if resource == "cpu" {
                    ((largest * 0.8) * 10.0).floor() / 10.0
                } else {
                    ((largest * 0.8) / 1048576.0).floor() * 1048576.0
                };
                (
                    json!(fmt(fitted)),
                    format!(
                        "80% of the largest node allocatable ({}), so the pod fits",
                        fmt(largest)
                    ),
                )
            }
        };
        changes.push(change(facts, path, to, reason));
    }
    non_empty("lower the requests to fit a node", changes, || {
        "The scheduler message names no resource.".into()
    })
}

/// Corrects a nodeSelector value that no node has but a node label value nearly matches.
pub fn node_selector_near_miss(
    facts: &Facts,
    message: &str,
    findings: &mut Vec<Finding>,
) -> FixResult {
    if message.contains("untolerated taint") && !message.contains("affinity/selector") {
        return Err("Nodes carry taints the pod does not tolerate; adding tolerations is a placement decision for humans.".into());
    }
    let selector = facts
        .template
        .pointer("/spec/nodeSelector")
        .and_then(Value::as_object)
        .ok_or("The pod has no nodeSelector; affinity rules need a human.")?;
    let labels: Vec<&std::collections::BTreeMap<String, String>> = facts
        .evidence
        .nodes
        .iter()
        .filter_map(|n| n.metadata.labels.as_ref())
        .collect();
    let mut changes = Vec::new();
    for (key, value) in selector {
        let Some(value) = value.as_str() else {
            continue;
        };
        if labels
            .iter()
            .any(|l| l.get(key).map(String::as_str) == Some(value))
        {
            continue;
        }
        let values: Vec<&str> = labels
            .iter()
            .filter_map(|l| l.get(key).map(String::as_str))
            .collect();
        let fixed = near_miss(value, values.iter().copied()).ok_or_else(|| {
            format!("No node has label {key}={value} and no node label value is a near miss.")
        })?;
        findings.push(Finding::new(
            "nodes",
            format!(
                "no node has {key}={value}; {} node(s) have {key}={fixed}",
                values.iter().filter(|v| **v == fixed).count()
            ),
        ));
        let path = facts.template_path.key("spec").key("nodeSelector").key(key);
        changes.push(change(
            facts,
            path,
            json!(fixed),
            format!("node label value `{fixed}` exists; `{value}` does not"),
        ));
    }
    non_empty("correct the node selector", changes, || {
        "Every nodeSelector label exists on some node; affinity or taints need a human.".into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_miss_needs_a_unique_close_name() {
        assert_eq!(
            near_miss("databse_url", ["database_url", "log_level"]),
            Some("database_url")
        );
        assert_eq!(near_miss("abc", ["abd", "abe"]), None);
        assert_eq!(near_miss("zzz", ["database_url"]), None);
    }

    #[test]
    fn reads_startup_durations() {
        assert_eq!(
            startup_seconds(&[
                "Started ReportsApplication in 94.2 seconds (process running for 95.1)"
            ]),
            Some(94.2)
        );
        assert_eq!(startup_seconds(&["server ready in 3500ms"]), Some(3.5));
        assert_eq!(startup_seconds(&["nothing here"]), None);
    }
}
