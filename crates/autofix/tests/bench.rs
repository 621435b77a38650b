//! `autofix bench`, with the real binary and tiny parameters: every benchmark runs to the end,
//! prints its table (naming the machine) or JSON with the expected keys, and the storm makes
//! exactly one incident. Speed is printed, never asserted.

mod support;

use serde_json::Value;
use support::{assert_success, autofix};

/// Runs `autofix bench ARGS --json` and parses its output.
fn bench_json(args: &[&str]) -> Value {
    let mut all = vec!["bench"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = autofix(&all);
    assert_success(&format!("autofix {all:?}"), &out);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "autofix {all:?} printed no JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Runs `autofix bench ARGS` and answers its table.
fn bench_table(args: &[&str]) -> String {
    let mut all = vec!["bench"];
    all.extend_from_slice(args);
    let out = autofix(&all);
    assert_success(&format!("autofix {all:?}"), &out);
    String::from_utf8(out.stdout).unwrap()
}

fn assert_keys(report: &Value, keys: &[&str]) {
    for key in keys {
        assert!(report.get(key).is_some(), "no `{key}` in {report:#}");
    }
    assert!(
        report["machine"]["nproc"].as_u64().unwrap() >= 1,
        "{report:#}"
    );
}

#[test]
fn intake_reports_rates_latency_errors_and_server_memory() {
    let args = [
        "intake",
        "--duration",
        "1s",
        "--concurrency",
        "4",
        "--workloads",
        "3",
    ];
    let report = bench_json(&args);
    assert_keys(
        &report,
        &[
            "alerts_per_sec",
            "deliveries_per_sec",
            "latency",
            "errors",
            "idle",
            "loaded",
            "worker_runs",
            "server_pid",
            "server_cpu_secs",
            "generator_cpu_secs",
        ],
    );
    // A second of load keeps both the server and the load generator busy.
    for key in ["server_cpu_secs", "generator_cpu_secs"] {
        assert!(report[key].as_f64().unwrap() > 0.0, "{report:#}");
    }
    assert_eq!(report["backend"], "sqlite");
    assert!(report["deliveries_ok"].as_u64().unwrap() > 0, "{report:#}");
    // Group commit: every delivery went through the writer, never more commits than deliveries.
    let commits = report["commits"].as_f64().unwrap();
    assert!(
        commits >= 1.0 && commits <= report["deliveries_ok"].as_f64().unwrap(),
        "{report:#}"
    );
    assert_eq!(report["errors"], serde_json::json!({}), "{report:#}");
    assert!(
        report["idle"]["rss_mib"].as_f64().unwrap() > 0.0,
        "{report:#}"
    );
    for key in ["p50_ms", "p99_ms", "max_ms"] {
        assert!(report["latency"][key].is_number(), "{report:#}");
    }

    let batched = bench_json(&[
        "intake",
        "--duration",
        "1s",
        "--concurrency",
        "2",
        "--batch",
        "5",
        "--distinct",
        "50",
    ]);
    assert_eq!(batched["batch"], 5);
    let (new, repeated) = (
        batched["alerts_new"].as_u64().unwrap(),
        batched["alerts_duplicate"].as_u64().unwrap(),
    );
    assert_eq!(new + repeated, batched["alerts_ok"].as_u64().unwrap());
    assert!(repeated > 0, "half the deliveries re-deliver: {batched:#}");

    let table = bench_table(&args);
    for row in [
        "machine: ",
        "alerts/s",
        "deliveries/s",
        "latency p99 (ms)",
        "CPU during load (cores)",
        "server RSS idle (MiB)",
    ] {
        assert!(table.contains(row), "no {row:?} in:\n{table}");
    }
}

#[test]
fn storm_makes_exactly_one_incident() {
    let report = bench_json(&["storm", "--deliveries", "40", "--concurrency", "8"]);
    assert_keys(
        &report,
        &[
            "incidents",
            "alerts_recorded",
            "duplicates",
            "drained_ms",
            "runs",
        ],
    );
    assert_eq!(report["incidents"], 1, "{report:#}");
    assert_eq!(report["one_incident"], true);
    assert_eq!(report["accepted"], 40, "{report:#}");
    assert_eq!(
        report["alerts_recorded"], 10,
        "10 distinct notifications: {report:#}"
    );
    assert_eq!(report["duplicates"], 30, "{report:#}");
    assert_eq!(report["pull_requests"], 1, "{report:#}");

    let table = bench_table(&["storm", "--deliveries", "10", "--concurrency", "4"]);
    assert!(table.contains("queue drained (ms)"), "{table}");
    assert!(!table.contains("WRONG"), "{table}");
}

#[test]
fn pr_reports_total_and_stage_percentiles() {
    let report = bench_json(&["pr", "--runs", "2"]);
    assert_keys(&report, &["total", "stages", "cold_ms", "prs_created"]);
    assert_eq!(report["runs"], 2);
    assert_eq!(
        report["prs_created"], 2,
        "every measured run opens a new PR: {report:#}"
    );
    for stage in ["evidence", "diagnose", "remedy", "validate", "publish"] {
        assert!(
            report["stages"][stage]["p50_ms"].is_number(),
            "no {stage}: {report:#}"
        );
    }
    let table = bench_table(&["pr", "--runs", "1"]);
    assert!(table.contains("total p50 (ms)"), "{table}");
    assert!(table.contains("publish p50 / p99 (ms)"), "{table}");
}

#[test]
fn yaml_reports_throughput_of_lossless_edits() {
    let report = bench_json(&["yaml", "--documents", "50", "--edits", "10"]);
    assert_keys(
        &report,
        &[
            "edits_per_sec",
            "edit_mb_per_sec",
            "load_mb_per_sec",
            "file_bytes",
        ],
    );
    assert_eq!(report["edits"], 10);
    assert_eq!(report["not_one_line"], 0, "{report:#}");
    let table = bench_table(&["yaml", "--documents", "20"]);
    assert!(table.contains("edits/s"), "{table}");
}

#[test]
fn bad_options_are_refused() {
    let out = autofix(&["bench", "yaml", "--documents", "5", "--edits", "6"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--edits"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
