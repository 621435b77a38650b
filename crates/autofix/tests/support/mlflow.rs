//! MLflow read through its REST API, as the end-to-end tests check what a run logged.

use super::{assert_success, autofix, http};
use serde_json::{Value, json};
use std::path::Path;

/// The tracking server, or `None` (with a note) when the tests must skip.
pub fn tracking_uri(test: &str) -> Option<String> {
    match std::env::var("MLFLOW_TRACKING_URI") {
        Ok(uri) if !uri.is_empty() => Some(uri.trim_end_matches('/').to_string()),
        _ => {
            eprintln!(
                "note: skipping {test}: MLFLOW_TRACKING_URI is not set \
                 (eval \"$(scripts/mlflow-server.sh start /tmp/mlflow)\" && export MLFLOW_TRACKING_URI)"
            );
            None
        }
    }
}

/// MLflow's REST API, authenticated the way the MLflow clients are.
pub struct Mlflow {
    uri: String,
    client: reqwest::blocking::Client,
}

impl Mlflow {
    pub fn new(uri: &str) -> Mlflow {
        Mlflow {
            uri: uri.to_string(),
            client: http(),
        }
    }

    fn auth(
        &self,
        request: reqwest::blocking::RequestBuilder,
    ) -> reqwest::blocking::RequestBuilder {
        if let Ok(token) = std::env::var("MLFLOW_TRACKING_TOKEN") {
            request.bearer_auth(token)
        } else if let Ok(user) = std::env::var("MLFLOW_TRACKING_USERNAME") {
            request.basic_auth(user, std::env::var("MLFLOW_TRACKING_PASSWORD").ok())
        } else {
            request
        }
    }

    pub fn get(&self, path: &str) -> Value {
        let response = self
            .auth(self.client.get(format!("{}{path}", self.uri)))
            .send()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = response.status();
        let text = response.text().unwrap();
        assert!(status.is_success(), "GET {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }

    pub fn post(&self, path: &str, body: &Value) -> Value {
        let response = self
            .auth(self.client.post(format!("{}{path}", self.uri)))
            .json(body)
            .send()
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = response.status();
        let text = response.text().unwrap();
        assert!(status.is_success(), "POST {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }

    pub fn get_text(&self, path: &str) -> String {
        let response = self
            .auth(self.client.get(format!("{}{path}", self.uri)))
            .send()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        response.text().unwrap()
    }

    /// `runs/get`: the run (`info`, `data`).
    pub fn run(&self, run_id: &str) -> Value {
        self.get(&format!("/api/2.0/mlflow/runs/get?run_id={run_id}"))["run"].clone()
    }

    /// `runs/search` in one experiment.
    pub fn search(&self, experiment_id: &str, filter: &str) -> Vec<Value> {
        let response = self
            .auth(
                self.client
                    .post(format!("{}/api/2.0/mlflow/runs/search", self.uri)),
            )
            .json(&json!({
                "experiment_ids": [experiment_id],
                "filter": filter,
                "max_results": 1000,
            }))
            .send()
            .expect("runs/search answers");
        let status = response.status();
        let body: Value = response.json().unwrap();
        assert!(status.is_success(), "runs/search {filter}: {status} {body}");
        body["runs"].as_array().cloned().unwrap_or_default()
    }

    pub fn experiment_id(&self, name: &str) -> String {
        self.get(&format!(
            "/api/2.0/mlflow/experiments/get-by-name?experiment_name={name}"
        ))["experiment"]["experiment_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The parent runs (no `mlflow.parentRunId`) matching `filter`.
    pub fn parents(&self, experiment_id: &str, filter: &str) -> Vec<Value> {
        self.search(experiment_id, filter)
            .into_iter()
            .filter(|r| value(r, "tags", "mlflow.parentRunId").is_none())
            .collect()
    }

    /// The artifact paths of a run (`mlflow-artifacts:/<exp>/<run>/artifacts`), top level.
    pub fn artifacts(&self, run: &Value) -> (String, Vec<String>) {
        let uri = run["info"]["artifact_uri"].as_str().unwrap();
        let root = uri
            .strip_prefix("mlflow-artifacts:/")
            .unwrap_or_else(|| panic!("artifacts are not served by MLflow: {uri}"))
            .trim_start_matches('/')
            .to_string();
        let listing = self.get(&format!("/api/2.0/mlflow-artifacts/artifacts?path={root}"));
        let files = listing["files"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|f| f["path"].as_str().unwrap().to_string())
            .collect();
        (root, files)
    }
}

/// A tag's or param's value (`section` is `tags` or `params`).
pub fn value<'a>(run: &'a Value, section: &str, key: &str) -> Option<&'a str> {
    run["data"][section]
        .as_array()?
        .iter()
        .find(|t| t["key"] == key)?["value"]
        .as_str()
}

/// A metric's latest value.
pub fn metric(run: &Value, key: &str) -> Option<f64> {
    run["data"]["metrics"]
        .as_array()?
        .iter()
        .find(|m| m["key"] == key)?["value"]
        .as_f64()
}

/// `autofix tracking flush` against `mlflow` for the spool under `data_dir`; its stdout.
pub fn flush_spool(config: &Path, mlflow: &str, data_dir: &Path) -> String {
    let out = autofix(&[
        "tracking",
        "flush",
        "--config",
        config.to_str().unwrap(),
        "--mlflow",
        mlflow,
        "--data-dir",
        data_dir.to_str().unwrap(),
    ]);
    assert_success("autofix tracking flush", &out);
    String::from_utf8_lossy(&out.stdout).into_owned()
}
