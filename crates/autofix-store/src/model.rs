//! What the store hands out: incident states and records, claims, delivery outcomes, retry policy.

use crate::OutcomeRecord;
use autofix_calibrate::Outcome;
use autofix_core::alert::Alert;
use serde::Serialize;
use std::time::Duration;

/// Row id of an incident.
pub type IncidentId = i64;

/// Where an incident is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentState {
    /// Waiting for a worker (possibly until its retry backoff has passed).
    Queued,
    /// Held by a worker under a lease.
    Running,
    /// The last run finished (a pull request, an escalation or nothing to do).
    Done,
    /// Given up on: bad input or too many failed attempts; `last_error` says why.
    Parked,
    /// Recorded but never acted on: the alerts name a namespace but no workload or pod.
    Ignored,
}

impl IncidentState {
    /// Every state, in life order.
    pub const ALL: [IncidentState; 5] = [
        IncidentState::Queued,
        IncidentState::Running,
        IncidentState::Done,
        IncidentState::Parked,
        IncidentState::Ignored,
    ];

    /// The name stored in the database and shown in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentState::Queued => "queued",
            IncidentState::Running => "running",
            IncidentState::Done => "done",
            IncidentState::Parked => "parked",
            IncidentState::Ignored => "ignored",
        }
    }

    /// Parses a stored state name.
    pub fn parse(s: &str) -> Option<Self> {
        IncidentState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
    }
}

/// What one webhook delivery changed, committed in one transaction.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DeliveryOutcome {
    /// Alerts (fingerprint, startsAt, status) seen for the first time.
    pub new_alerts: u64,
    /// Alerts already recorded: Alertmanager re-sent them; they create no work.
    pub duplicates: u64,
    /// New alerts that are recorded but not acted on: cluster-wide (no namespace) or naming no
    /// workload or pod.
    pub ignored: u64,
    /// Incidents the new alerts were attached to, ascending.
    pub incidents_touched: Vec<IncidentId>,
    /// Incidents this delivery created or put back in the queue: new work.
    pub incidents_queued: u64,
    /// Outcomes of merged fixes this delivery told: `resolved` or `recurred`.
    pub outcomes: Vec<OutcomeRecord>,
}

/// Proof that a worker holds an incident: only the holder of the latest claim may finish it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The incident.
    pub incident_id: IncidentId,
    /// Bumped by every claim of the incident; a stale claim is refused.
    pub token: i64,
}

/// An incident claimed for a run, with the alerts to rebuild it from.
#[derive(Debug, Clone)]
pub struct ClaimedIncident {
    /// The claim to complete, fail, renew or release.
    pub claim: Claim,
    /// `cluster/namespace/kind/name` of the workload.
    pub key: String,
    /// Runs started for this round of work, this one included.
    pub attempts: u32,
    /// The latest notification of each alert of the incident, firing ones first, then in
    /// arrival order; at most [`RUN_ALERT_LIMIT`](crate::RUN_ALERT_LIMIT).
    pub alerts: Vec<Alert>,
    /// The incident's alerts beyond the limit, not read.
    pub alerts_left_out: usize,
}

/// What `fail` decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    /// Queued again; not claimed before this backoff has passed.
    Retry {
        /// The backoff before the next attempt.
        after: Duration,
    },
    /// Parked for a human: bad input, or the last allowed attempt failed.
    Parked,
}

/// An incident as listed by `GET /incidents`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentRecord {
    /// Row id.
    pub id: IncidentId,
    /// `cluster/namespace/kind/name`.
    pub key: String,
    /// Cluster name.
    pub cluster: String,
    /// Namespace.
    pub namespace: String,
    /// Workload kind as guessed from the labels (`DaemonSet|Job` when the pod name cannot tell).
    pub workload_kind: String,
    /// Workload name.
    pub workload_name: String,
    /// Life state.
    pub state: IncidentState,
    /// Runs started for the current round of work.
    pub attempts: u32,
    /// Why the last run failed or why the incident is parked or ignored.
    pub last_error: Option<String>,
    /// Earliest next run (ms since the Unix epoch), meaningful while queued.
    pub next_attempt_at: i64,
    /// The worker holding it while running.
    pub lease_owner: Option<String>,
    /// End of that worker's lease (ms since the Unix epoch).
    pub lease_until: Option<i64>,
    /// True when every alert of the incident has resolved.
    pub resolved: bool,
    /// Alerts still firing.
    pub alerts_firing: u64,
    /// Resolved notifications received.
    pub alerts_resolved: u64,
    /// Created (ms since the Unix epoch).
    pub created_at: i64,
    /// Last changed (ms since the Unix epoch).
    pub updated_at: i64,
    /// The last successful run's report.
    pub last_report: Option<serde_json::Value>,
    /// The latest outcome of its fix (merged, rejected, reverted, resolved, recurred), if any.
    pub outcome: Option<Outcome>,
}

/// How failed runs are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Runs allowed per round of work before the incident is parked (at least 1).
    pub max_attempts: u32,
    /// Backoff after the first failure; doubled after each further one.
    pub backoff_initial: Duration,
    /// Ceiling of the backoff.
    pub backoff_max: Duration,
}

impl Default for RetryPolicy {
    /// 5 attempts, 30 s doubling up to 1 h.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            backoff_initial: Duration::from_secs(30),
            backoff_max: Duration::from_secs(3600),
        }
    }
}

impl RetryPolicy {
    /// The backoff after `failures` failed runs (1 = the first failure).
    pub fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.backoff_initial
            .saturating_mul(1u32 << doublings)
            .min(self.backoff_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_ceiling() {
        let policy = RetryPolicy {
            max_attempts: 10,
            backoff_initial: Duration::from_secs(30),
            backoff_max: Duration::from_secs(100),
        };
        let secs: Vec<u64> = (1..=5).map(|n| policy.backoff(n).as_secs()).collect();
        assert_eq!(secs, [30, 60, 100, 100, 100]);
        assert_eq!(policy.backoff(200), Duration::from_secs(100));
    }

    #[test]
    fn states_round_trip() {
        for state in IncidentState::ALL {
            assert_eq!(IncidentState::parse(state.as_str()), Some(state));
        }
    }
}
