//! An incident run as an OpenTelemetry trace, for MLflow's OTLP endpoint (`POST /v1/traces`,
//! MLflow >= 3.6 with a SQL backend).
//!
//! One trace per run: a root span covering the run and one child span per pipeline stage
//! (`evidence`, `diagnose`, `remedy`, `validate`, `publish`), laid out back to back from the
//! run's start with the durations of the run report's `stage_ms` (the record's
//! `latency_<stage>_ms` metrics). Every span carries the run's attributes (category, action,
//! namespace, workload, incident, risk score, confidence and the MLflow run id). Ids derive from
//! the record id, so a replay of a spooled run sends the same trace again rather than a second
//! one. Built from the [`RunRecord`], which is already redacted.

use crate::client::RunStatus;
use crate::record::RunRecord;
use crate::tracker::RunRef;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, InstrumentationScope, KeyValue, any_value::Value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, span::SpanKind, status::StatusCode,
};
use prost::Message as _;

/// The pipeline's stages, in order, as named in the run report's `stage_ms`.
pub const STAGES: [&str; 5] = ["evidence", "diagnose", "remedy", "validate", "publish"];

/// Name of the root span.
pub const ROOT_SPAN_NAME: &str = "incident_run";

/// The OTLP trace id of a record (16 bytes, derived from its id).
pub fn trace_id(record_id: &str) -> [u8; 16] {
    let a = fnv1a(0xcbf2_9ce4_8422_2325, record_id.as_bytes());
    let b = fnv1a(0x8422_2325_cbf2_9ce4, record_id.as_bytes());
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&a.to_be_bytes());
    id[8..].copy_from_slice(&b.to_be_bytes());
    id
}

/// The trace id as MLflow shows it: `tr-<32 hex digits>`.
pub fn mlflow_trace_id(record_id: &str) -> String {
    let hex: String = trace_id(record_id)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("tr-{hex}")
}

/// The OTLP export request of one run: the root span and a span per stage that has a latency.
pub fn export_request(record: &RunRecord, run: &RunRef) -> ExportTraceServiceRequest {
    let trace = trace_id(&record.id).to_vec();
    let root_id = span_id(&record.id, "");
    let start = ms_to_ns(record.start_time);
    let attributes = run_attributes(record, run);

    let mut spans = Vec::new();
    let mut cursor = start;
    for stage in STAGES {
        let Some(ms) = metric(record, &format!("latency_{stage}_ms")) else {
            continue;
        };
        let end = cursor.saturating_add(ms_f64_to_ns(ms));
        let mut attrs = attributes.clone();
        attrs.push(kv("stage", Value::StringValue(stage.into())));
        attrs.push(kv("latency_ms", Value::DoubleValue(ms)));
        spans.push(Span {
            trace_id: trace.clone(),
            span_id: span_id(&record.id, stage).to_vec(),
            parent_span_id: root_id.to_vec(),
            name: stage.into(),
            kind: SpanKind::Internal as i32,
            start_time_unix_nano: cursor,
            end_time_unix_nano: end,
            attributes: attrs,
            status: Some(ok()),
            ..Span::default()
        });
        cursor = end;
    }
    let end = ms_to_ns(record.end_time).max(cursor);
    let mut root_attrs = attributes;
    root_attrs.push(kv("run_name", Value::StringValue(record.run_name.clone())));
    if let Some(outcome) = record.tags.get("outcome") {
        root_attrs.push(kv("outcome", Value::StringValue(outcome.clone())));
    }
    let status = match record.status {
        RunStatus::Failed => Status {
            code: StatusCode::Error as i32,
            message: "the run failed".into(),
        },
        _ => ok(),
    };
    spans.insert(
        0,
        Span {
            trace_id: trace,
            span_id: root_id.to_vec(),
            name: ROOT_SPAN_NAME.into(),
            kind: SpanKind::Internal as i32,
            start_time_unix_nano: start,
            end_time_unix_nano: end,
            attributes: root_attrs,
            status: Some(status),
            ..Span::default()
        },
    );
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv(
                    "service.name",
                    Value::StringValue("kube-autofix".into()),
                )],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "kube-autofix".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..InstrumentationScope::default()
                }),
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

/// [`export_request`] encoded as protobuf, the body of `POST /v1/traces`.
pub fn encode(record: &RunRecord, run: &RunRef) -> Vec<u8> {
    export_request(record, run).encode_to_vec()
}

/// The attributes every span of the run carries.
fn run_attributes(record: &RunRecord, run: &RunRef) -> Vec<KeyValue> {
    let mut attrs = Vec::new();
    for key in ["category", "action", "namespace", "workload", "incident"] {
        if let Some(value) = record.tags.get(key) {
            attrs.push(kv(key, Value::StringValue(value.clone())));
        }
    }
    for key in ["risk_score", "confidence"] {
        if let Some(value) = metric(record, key) {
            attrs.push(kv(key, Value::DoubleValue(value)));
        }
    }
    attrs.push(kv("mlflow_run_id", Value::StringValue(run.run_id.clone())));
    attrs
}

fn metric(record: &RunRecord, key: &str) -> Option<f64> {
    record
        .metrics
        .iter()
        .rev()
        .find(|m| m.key == key)
        .map(|m| m.value)
        .filter(|v| v.is_finite())
}

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

fn ok() -> Status {
    Status {
        code: StatusCode::Ok as i32,
        message: String::new(),
    }
}

fn span_id(record_id: &str, stage: &str) -> [u8; 8] {
    let mut seed = fnv1a(0xcbf2_9ce4_8422_2325, record_id.as_bytes());
    seed = fnv1a(seed, b"/");
    let id = fnv1a(seed, stage.as_bytes());
    // An all-zero span id is invalid.
    id.max(1).to_be_bytes()
}

/// FNV-1a, 64 bits, from `seed`.
fn fnv1a(seed: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(seed, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn ms_to_ns(ms: i64) -> u64 {
    u64::try_from(ms).unwrap_or(0).saturating_mul(1_000_000)
}

fn ms_f64_to_ns(ms: f64) -> u64 {
    if ms.is_finite() && ms > 0.0 {
        // Stage latencies are far below u64::MAX nanoseconds.
        (ms * 1_000_000.0).round() as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Metric;
    use std::collections::BTreeMap;

    fn record() -> RunRecord {
        let metric = |key: &str, value: f64| Metric {
            key: key.into(),
            value,
            timestamp: 0,
            step: 1,
        };
        let tags: BTreeMap<String, String> = [
            ("category", "config"),
            ("action", "set_env"),
            ("namespace", "shop"),
            ("workload", "cart"),
            ("incident", "abc123"),
            ("outcome", "pull_request"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        RunRecord {
            id: "1700000000000-0001".into(),
            run_name: "shop/cart KubePodCrashLooping".into(),
            status: RunStatus::Finished,
            start_time: 1_700_000_000_000,
            end_time: 1_700_000_000_100,
            params: BTreeMap::new(),
            metrics: vec![
                metric("latency_evidence_ms", 10.0),
                metric("latency_diagnose_ms", 20.5),
                metric("latency_remedy_ms", 5.0),
                metric("latency_validate_ms", 1.0),
                metric("latency_publish_ms", 30.0),
                metric("confidence", 0.9),
                metric("risk_score", 0.25),
            ],
            tags,
            note: String::new(),
            artifacts: Vec::new(),
            prompts: Vec::new(),
            attempts: Vec::new(),
        }
    }

    fn run() -> RunRef {
        RunRef {
            run_id: "r1".into(),
            experiment_id: "1".into(),
            url: String::new(),
            artifact_uri: String::new(),
        }
    }

    fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a Value> {
        span.attributes
            .iter()
            .find(|a| a.key == key)
            .and_then(|a| a.value.as_ref())
            .and_then(|v| v.value.as_ref())
    }

    #[test]
    fn a_root_span_and_stage_spans_back_to_back() {
        let request = export_request(&record(), &run());
        let spans = &request.resource_spans[0].scope_spans[0].spans;
        assert_eq!(spans.len(), 6);
        let root = &spans[0];
        assert_eq!(root.name, ROOT_SPAN_NAME);
        assert!(root.parent_span_id.is_empty());
        assert_eq!(root.start_time_unix_nano, 1_700_000_000_000_000_000);
        assert_eq!(root.end_time_unix_nano, 1_700_000_000_100_000_000);
        let names: Vec<&str> = spans[1..].iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, STAGES);
        let mut cursor = root.start_time_unix_nano;
        for span in &spans[1..] {
            assert_eq!(span.parent_span_id, root.span_id);
            assert_eq!(span.trace_id, root.trace_id);
            assert_eq!(span.start_time_unix_nano, cursor);
            cursor = span.end_time_unix_nano;
        }
        assert_eq!(cursor - root.start_time_unix_nano, 66_500_000);
        for span in spans {
            assert_eq!(
                attr(span, "category"),
                Some(&Value::StringValue("config".into()))
            );
            assert_eq!(
                attr(span, "mlflow_run_id"),
                Some(&Value::StringValue("r1".into()))
            );
            assert_eq!(attr(span, "risk_score"), Some(&Value::DoubleValue(0.25)));
            assert_eq!(attr(span, "confidence"), Some(&Value::DoubleValue(0.9)));
        }
        let ids: std::collections::BTreeSet<_> = spans.iter().map(|s| s.span_id.clone()).collect();
        assert_eq!(ids.len(), 6);
        // Same record, same trace: a replay does not make a second one.
        assert_eq!(encode(&record(), &run()), encode(&record(), &run()));
        assert!(mlflow_trace_id(&record().id).starts_with("tr-"));
        assert_eq!(mlflow_trace_id(&record().id).len(), 35);
    }

    #[test]
    fn missing_stages_are_skipped_and_failures_are_errors() {
        let mut r = record();
        r.status = RunStatus::Failed;
        r.metrics.retain(|m| m.key != "latency_remedy_ms");
        let request = export_request(&r, &run());
        let spans = &request.resource_spans[0].scope_spans[0].spans;
        assert_eq!(spans.len(), 5);
        assert!(spans.iter().all(|s| s.name != "remedy"));
        assert_eq!(
            spans[0].status.as_ref().map(|s| s.code),
            Some(StatusCode::Error as i32)
        );
    }
}
