//! Opt-in server-side dry-run: the cluster's own admission judges a corrected object.
//!
//! [`DryRunner::check`] sends the object as a server-side apply with `dryRun=All`, so schema
//! validation, defaulting, ValidatingAdmissionPolicies, admission webhooks (Kyverno,
//! Gatekeeper) and the LimitRanges and quotas covering its kind all run; nothing is persisted.
//! Kubernetes authorises a dry run like the real write (`patch`), so this runs under its own
//! ServiceAccount token ([`DryRunConfig::token_file`]), never the read-only collector's, and is
//! off by default.

mod verdict;

pub use verdict::DryRunVerdict;

use crate::ClusterError;
use kube::api::{Patch, PatchParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind, Resource, Status};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// Field manager of the dry-run applies, as the apiserver records it in `managedFields`.
pub const FIELD_MANAGER: &str = "kube-autofix";

/// Kinds that can be dry-run, as `(group, kind, plural)`: the workloads a fix edits and the core
/// objects next to them. All are namespaced.
const KINDS: [(&str, &str, &str); 8] = [
    ("apps", "Deployment", "deployments"),
    ("apps", "StatefulSet", "statefulsets"),
    ("apps", "DaemonSet", "daemonsets"),
    ("batch", "Job", "jobs"),
    ("batch", "CronJob", "cronjobs"),
    ("", "ConfigMap", "configmaps"),
    ("", "Service", "services"),
    ("", "Pod", "pods"),
];

/// Status codes with which admission refuses an object: a verdict on the fix, not an outage.
const DENIAL_CODES: [u16; 4] = [400, 403, 409, 422];

/// The `[dry_run]` configuration. Every field has a default (`DryRunConfig::default()`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DryRunConfig {
    /// Dry-run each corrected object against the cluster before the PR is opened; default
    /// false, because it needs a credential allowed to `patch` workloads.
    pub enabled: bool,
    /// The dry-run ServiceAccount's token file (e.g.
    /// `/var/run/secrets/kube-autofix-dry-run/token`); the cluster address and CA still come
    /// from the in-cluster environment or kubeconfig, but no other credential is used. Default
    /// none: the ambient credential, meant for running outside the cluster with your own
    /// kubeconfig.
    pub token_file: Option<PathBuf>,
    /// Seconds one dry run may take, request and answer; default 10.
    pub timeout_secs: u64,
}

impl Default for DryRunConfig {
    fn default() -> Self {
        DryRunConfig {
            enabled: false,
            token_file: None,
            timeout_secs: 10,
        }
    }
}

/// Sends corrected objects to the API server as server-side apply dry runs.
#[derive(Clone)]
pub struct DryRunner {
    client: kube::Client,
    timeout: Duration,
}

impl std::fmt::Debug for DryRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DryRunner")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The API object a dry run targets.
struct Target {
    resource: ApiResource,
    namespace: String,
    name: String,
}

impl Target {
    /// Reads apiVersion, kind, namespace and name from the object; only [`KINDS`] qualify.
    fn of(object: &Value) -> Result<Target, ClusterError> {
        let field = |pointer: &str| {
            object
                .pointer(pointer)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| ClusterError::UnsupportedObject {
                    reason: format!("the object has no {}", &pointer[1..].replace('/', ".")),
                })
        };
        let (api_version, kind) = (field("/apiVersion")?, field("/kind")?);
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let plural = KINDS
            .iter()
            .find(|(g, k, _)| (*g, *k) == (group, kind))
            .map(|(_, _, plural)| *plural)
            .ok_or_else(|| ClusterError::UnsupportedObject {
                reason: format!("{api_version} {kind} is not a kind kube-autofix dry-runs"),
            })?;
        let gvk = GroupVersionKind::gvk(group, version, kind);
        Ok(Target {
            resource: ApiResource::from_gvk_with_plural(&gvk, plural),
            namespace: field("/metadata/namespace")?.to_string(),
            name: field("/metadata/name")?.to_string(),
        })
    }
}

impl DryRunner {
    /// A runner sending through `client`, with the default timeout.
    pub fn new(client: kube::Client) -> Self {
        DryRunner {
            client,
            timeout: Duration::from_secs(DryRunConfig::default().timeout_secs),
        }
    }

    /// The same runner with another timeout per dry run.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The runner `config` asks for, or `None` when dry-run is disabled (no client is built and
    /// nothing is read). The cluster comes from the in-cluster environment or the kubeconfig.
    pub async fn from_config(config: &DryRunConfig) -> Result<Option<Self>, ClusterError> {
        if !config.enabled {
            return Ok(None);
        }
        crate::install_crypto_provider();
        let kube_config = kube::Config::infer().await.map_err(|e| ClusterError::Api {
            what: "configure the dry-run client (in-cluster or kubeconfig)".to_string(),
            source: kube::Error::InferConfig(e),
        })?;
        Self::from_kube_config(kube_config, config).map(Some)
    }

    /// A runner for the cluster `kube_config` names, authenticated with the token in
    /// [`DryRunConfig::token_file`] alone when it is set: the config's own credentials (client
    /// certificate, token, exec plugin, impersonation) are dropped, so a dry run never borrows
    /// the collector's identity. The file is read once, here (surrounding whitespace ignored):
    /// restart after rotating the token.
    pub fn from_kube_config(
        mut kube_config: kube::Config,
        config: &DryRunConfig,
    ) -> Result<Self, ClusterError> {
        if let Some(path) = &config.token_file {
            let token = std::fs::read_to_string(path).map_err(|source| ClusterError::Io {
                path: path.clone(),
                source,
            })?;
            kube_config.auth_info = kube::config::AuthInfo {
                token: Some(token.trim().into()),
                ..kube::config::AuthInfo::default()
            };
        }
        let client = kube::Client::try_from(kube_config).map_err(|source| ClusterError::Api {
            what: "build the dry-run client".to_string(),
            source,
        })?;
        Ok(DryRunner::new(client).with_timeout(Duration::from_secs(config.timeout_secs)))
    }

    /// Asks the API server whether it would accept `object` (a full manifest with apiVersion,
    /// kind, metadata.namespace and metadata.name). Admission refusals (400, 403, 409, 422) are
    /// [`DryRunVerdict::Denied`]; a missing permission, 401, other codes, transport failures
    /// and timeouts are errors, meaning the dry run could not be made.
    pub async fn check(&self, object: &Value) -> Result<DryRunVerdict, ClusterError> {
        let target = Target::of(object)?;
        let what = format!(
            "dry-run {} {}/{}",
            target.resource.kind, target.namespace, target.name
        );
        tokio::time::timeout(self.timeout, self.send(&target, object))
            .await
            .map_err(|_| ClusterError::Timeout {
                what: what.clone(),
                after: self.timeout,
            })?
            .map_err(|source| ClusterError::Api { what, source })
    }

    /// The request itself, through kube's request builder but read raw so the `Warning`
    /// headers (which `Api::patch` drops) reach the verdict.
    async fn send(&self, target: &Target, object: &Value) -> Result<DryRunVerdict, kube::Error> {
        let url = DynamicObject::url_path(&target.resource, Some(&target.namespace));
        // Force: the fields a fix changes are normally owned by another manager (Argo CD,
        // Flux, kubectl). Without force the apiserver answers 409 Conflict about field
        // ownership, which says nothing about whether the object is admissible; with dryRun=All
        // the ownership taken is never persisted, so forcing costs nothing.
        let params = PatchParams::apply(FIELD_MANAGER).dry_run().force();
        let request = kube::core::Request::new(url)
            .patch(&target.name, &params, &Patch::Apply(object))
            .map_err(kube::Error::BuildRequest)?;
        let response = self
            .client
            .send(request.map(kube::client::Body::from))
            .await?;
        let code = response.status().as_u16();
        let warnings = response
            .headers()
            .get_all("warning")
            .iter()
            .map(|v| warning_text(&String::from_utf8_lossy(v.as_bytes())))
            .collect();
        let body = response.into_body().collect_bytes().await?;
        verdict(code, warnings, &body)
    }
}

/// The verdict an answer carries, or the error when it carries none.
fn verdict(code: u16, warnings: Vec<String>, body: &[u8]) -> Result<DryRunVerdict, kube::Error> {
    if (200..300).contains(&code) {
        return Ok(DryRunVerdict::Accepted { warnings });
    }
    let parsed = serde_json::from_slice::<Status>(body).ok();
    // RBAC also answers 403, but "User ... cannot patch resource ..." means the dry-run
    // account lacks the grant: the dry run did not happen, the object was not judged.
    let judged = parsed.as_ref().is_some_and(|s| {
        DENIAL_CODES.contains(&code)
            && !(code == 403 && s.message.contains(" cannot patch resource "))
    });
    match parsed {
        Some(status) if judged => Ok(DryRunVerdict::Denied {
            code,
            reason: status.reason,
            message: status.message,
        }),
        Some(status) => Err(kube::Error::Api(status.with_code(code).boxed())),
        None => {
            let text = String::from_utf8_lossy(body);
            let status = Status::failure(text.trim(), "").with_code(code);
            Err(kube::Error::Api(status.boxed()))
        }
    }
}

/// The text of a `Warning` header: `299 - "text"` (RFC 7234) becomes `text`, unescaped;
/// anything else is kept as it is.
fn warning_text(header: &str) -> String {
    let quoted = header
        .splitn(3, ' ')
        .nth(2)
        .and_then(|rest| rest.strip_prefix('"'))
        .and_then(|rest| rest.strip_suffix('"'));
    let Some(quoted) = quoted else {
        return header.to_string();
    };
    let mut text = String::with_capacity(quoted.len());
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        text.push(if c == '\\' {
            chars.next().unwrap_or(c)
        } else {
            c
        });
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn warning_headers_lose_their_code_and_quotes() {
        assert_eq!(
            warning_text(r#"299 - "spec.replicas: \"0\" is odd""#),
            r#"spec.replicas: "0" is odd"#
        );
        assert_eq!(warning_text("not rfc 7234"), "not rfc 7234");
    }

    #[test]
    fn a_missing_patch_grant_is_an_error_not_a_denial() {
        let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
            "reason": "Forbidden", "code": 403, "message": "deployments.apps \"cart\" is \
            forbidden: User \"system:serviceaccount:kube-autofix:kube-autofix\" cannot patch \
            resource \"deployments\" in API group \"apps\" in the namespace \"shop\""});
        let err = verdict(403, vec![], body.to_string().as_bytes()).unwrap_err();
        assert!(err.to_string().contains("cannot patch"), "{err}");
        let quota = json!({"kind": "Status", "reason": "Forbidden", "code": 403,
            "message": "exceeded quota: compute, requested: limits.memory=2Gi"});
        let denied = verdict(403, vec![], quota.to_string().as_bytes()).unwrap();
        assert!(
            matches!(denied, DryRunVerdict::Denied { code: 403, .. }),
            "{denied}"
        );
    }

    #[test]
    fn a_non_status_answer_is_an_error() {
        let err = verdict(400, vec![], b"<html>bad gateway</html>").unwrap_err();
        assert!(err.to_string().contains("bad gateway"), "{err}");
    }

    #[test]
    fn only_known_namespaced_kinds_with_names_are_targets() {
        let target = Target::of(&json!({"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "report", "namespace": "shop"}}))
        .unwrap();
        assert_eq!(
            DynamicObject::url_path(&target.resource, Some(&target.namespace)),
            "/apis/batch/v1/namespaces/shop/cronjobs"
        );
        let no_namespace = Target::of(&json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "cart"}}));
        assert!(
            matches!(no_namespace, Err(ClusterError::UnsupportedObject { reason })
                if reason == "the object has no metadata.namespace")
        );
        let node = Target::of(&json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "n", "namespace": "x"}}));
        assert!(matches!(node, Err(ClusterError::UnsupportedObject { .. })));
    }
}
