//! `autofix bench storm`: an alert storm for one workload, into the real `autofix serve`.
//!
//! `deliveries` webhook bodies about the example's StatefulSet (both of its crash-looping pods,
//! each re-fired a few times with a new `startsAt`, most bodies re-deliveries) are sent with
//! `concurrency` in flight. The service must make exactly one incident of them; the benchmark
//! reports it, the alerts recorded and recognised as duplicates, and the time until the workers
//! (the default two, running the offline pipeline: snapshot, rules, the local git work tree and
//! the local forge) have drained the queue, read by polling `GET /incidents`.

use crate::alerts::FiringAlert;
use crate::fixture::{Fixture, POLL_EVERY, ServeProcess, TOKEN};
use crate::stats::ms;
use crate::table::{Table, n1};
use crate::{BenchError, Machine};
use autofix_core::alert::WebhookPayload;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// How the storm is made.
#[derive(Debug, Clone)]
pub struct StormOptions {
    /// The `autofix` binary to start as `autofix serve`.
    pub exe: PathBuf,
    /// Webhook deliveries in the storm.
    pub deliveries: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Distinct alert notifications among them (pods × re-firings); the rest are repeats.
    pub distinct: usize,
    /// How long the queue may take to drain.
    pub timeout: Duration,
}

impl Default for StormOptions {
    fn default() -> Self {
        StormOptions {
            exe: PathBuf::from("autofix"),
            deliveries: 1000,
            concurrency: 64,
            distinct: 10,
            timeout: Duration::from_secs(300),
        }
    }
}

/// What the storm made.
#[derive(Debug, Clone, Serialize)]
pub struct StormReport {
    /// Where it ran.
    pub machine: Machine,
    /// Deliveries sent.
    pub deliveries: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Deliveries answered 200.
    pub accepted: u64,
    /// Non-200 answers by status code, and `transport`.
    pub errors: BTreeMap<String, u64>,
    /// Incidents the service holds afterwards; 1 is right.
    pub incidents: usize,
    /// True when that is exactly one.
    pub one_incident: bool,
    /// The incidents' final states.
    pub states: BTreeMap<String, usize>,
    /// Alerts recorded (new), by the service's answers.
    pub alerts_recorded: u64,
    /// Alerts recognised as re-deliveries.
    pub duplicates: u64,
    /// Pipeline runs (from `/metrics`).
    pub runs: f64,
    /// Pull requests the local forge holds.
    pub pull_requests: usize,
    /// From the first request to the last answer, ms.
    pub intake_ms: f64,
    /// From the first request until no incident is queued or running, ms.
    pub drained_ms: f64,
}

impl StormReport {
    /// The printed table.
    pub fn table(&self) -> String {
        let mut t = Table::new(
            "autofix bench storm: one workload, many deliveries, into `autofix serve`",
            &self.machine,
        );
        let incidents = if self.one_incident {
            self.incidents.to_string()
        } else {
            format!("{} (WRONG: expected 1)", self.incidents)
        };
        t.row(
            "deliveries",
            format!("{} ({} in flight)", self.deliveries, self.concurrency),
        )
        .row("accepted (200)", self.accepted)
        .row("errors", errors_line(&self.errors))
        .goal("incidents", incidents, "exactly 1")
        .row("incident states", errors_line_usize(&self.states))
        .row("alerts recorded", self.alerts_recorded)
        .row("duplicates", self.duplicates)
        .row("pipeline runs", self.runs)
        .row("pull requests", self.pull_requests)
        .row("all deliveries answered (ms)", n1(self.intake_ms))
        .row("queue drained (ms)", n1(self.drained_ms));
        t.render()
    }
}

fn errors_line(errors: &BTreeMap<String, u64>) -> String {
    if errors.is_empty() {
        return "none".into();
    }
    errors
        .iter()
        .map(|(k, n)| format!("{k}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn errors_line_usize(counts: &BTreeMap<String, usize>) -> String {
    counts
        .iter()
        .map(|(k, n)| format!("{k}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The storm's bodies: delivery `i` carries notification `i % distinct`, which is pod
/// `n % pods` of the scenario's alert, re-fired `n / pods` minutes after its `startsAt`.
pub fn storm_bodies(alert_json: &[u8], deliveries: usize, distinct: usize) -> Vec<Vec<u8>> {
    let Ok(payload) = WebhookPayload::from_json(alert_json) else {
        return Vec::new();
    };
    let pods: Vec<FiringAlert> = payload
        .alerts
        .iter()
        .map(|a| FiringAlert {
            name: a.name().to_string(),
            labels: a
                .labels
                .iter()
                .filter(|(k, _)| k.as_str() != "alertname")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            starts_at: a.starts_at.clone(),
            fingerprint: a.fingerprint.clone(),
        })
        .collect();
    if pods.is_empty() {
        return Vec::new();
    }
    let distinct = distinct.max(1);
    (0..deliveries)
        .map(|i| {
            let n = i % distinct;
            let mut alert = pods[n % pods.len()].clone();
            alert.starts_at = later(&alert.starts_at, (n / pods.len()) as u64);
            crate::alerts::body(&[alert])
        })
        .collect()
}

/// An RFC 3339 time `minutes` later (only the minutes field changes, which is all a storm
/// needs: distinct, well-formed `startsAt` values).
fn later(starts_at: &str, minutes: u64) -> String {
    let Ok(time) = humantime::parse_rfc3339_weak(starts_at) else {
        return starts_at.to_string();
    };
    humantime::format_rfc3339_millis(time + Duration::from_secs(60 * minutes)).to_string()
}

/// Runs the storm benchmark.
pub async fn run(options: &StormOptions) -> Result<StormReport, BenchError> {
    if options.deliveries == 0 || options.concurrency == 0 {
        return Err(BenchError::Option(
            "--deliveries and --concurrency must be at least 1".into(),
        ));
    }
    let machine = Machine::detect();
    let fixture = Fixture::new(None)?;
    let config = fixture.serve_config("")?;
    let mut server = ServeProcess::start(&options.exe, &fixture, &config, None).await?;
    let bodies = storm_bodies(&fixture.alert()?, options.deliveries, options.distinct);
    let url: Arc<str> = format!("{}/webhooks/alertmanager", server.base).into();
    let client = reqwest::Client::new();
    let gate = Arc::new(Semaphore::new(options.concurrency));
    let started = Instant::now();
    let tasks: Vec<_> = bodies
        .into_iter()
        .map(|payload| {
            let (client, url, gate) = (client.clone(), url.clone(), gate.clone());
            tokio::spawn(async move {
                let _permit = gate.acquire_owned().await;
                let response = client
                    .post(&*url)
                    .bearer_auth(TOKEN)
                    .header("content-type", "application/json")
                    .body(payload)
                    .send()
                    .await;
                match response {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let value: serde_json::Value = r.json().await.unwrap_or_default();
                        Ok((status, value))
                    }
                    Err(_) => Err(()),
                }
            })
        })
        .collect();
    let (mut accepted, mut recorded, mut duplicates) = (0, 0, 0);
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for task in tasks {
        match task.await {
            Ok(Ok((200, value))) => {
                accepted += 1;
                recorded += value["new_alerts"].as_u64().unwrap_or(0);
                duplicates += value["duplicates"].as_u64().unwrap_or(0);
            }
            Ok(Ok((status, _))) => *errors.entry(status.to_string()).or_default() += 1,
            _ => *errors.entry("transport".into()).or_default() += 1,
        }
    }
    let intake_ms = ms(started.elapsed());
    let incidents = loop {
        server.check_running()?;
        let list = server.get_json("/incidents").await?;
        let list = list.as_array().cloned().unwrap_or_default();
        let busy = list
            .iter()
            .any(|i| matches!(i["state"].as_str(), Some("queued" | "running")));
        if !busy {
            break list;
        }
        if started.elapsed() > options.timeout {
            return Err(BenchError::Timeout {
                what: "the workers to drain the queue".into(),
                after: options.timeout,
            });
        }
        tokio::time::sleep(POLL_EVERY).await;
    };
    let drained_ms = ms(started.elapsed());
    let mut states: BTreeMap<String, usize> = BTreeMap::new();
    for incident in &incidents {
        let state = incident["state"].as_str().unwrap_or("?").to_string();
        *states.entry(state).or_default() += 1;
    }
    Ok(StormReport {
        machine,
        deliveries: options.deliveries,
        concurrency: options.concurrency,
        accepted,
        errors,
        incidents: incidents.len(),
        one_incident: incidents.len() == 1,
        states,
        alerts_recorded: recorded,
        duplicates,
        runs: server.metric("autofix_runs_total").await?,
        pull_requests: fixture.local_pulls(),
        intake_ms,
        drained_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::SCENARIO;

    #[test]
    fn a_storm_repeats_few_distinct_notifications() {
        let alert = SCENARIO.get_file("alert.json").unwrap().contents();
        let bodies = storm_bodies(alert, 40, 6);
        assert_eq!(bodies.len(), 40);
        let mut seen = std::collections::BTreeSet::new();
        for body in &bodies {
            let payload = WebhookPayload::from_json(body).unwrap();
            let a = &payload.alerts[0];
            seen.insert((a.fingerprint.clone(), a.starts_at.clone()));
        }
        assert_eq!(seen.len(), 6, "{seen:?}");
    }
}
