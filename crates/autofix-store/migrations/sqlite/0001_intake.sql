-- Intake and work queue of kube-autofix.
--
-- Plain SQL meant to run on SQLite and PostgreSQL alike: times are BIGINT milliseconds since the
-- Unix epoch, JSON is stored as TEXT, booleans as BIGINT 0/1. The one SQLite-ism is
-- `INTEGER PRIMARY KEY` (a rowid alias that numbers itself); PostgreSQL spells it
-- `BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY`.

-- One row per workload that alerts were received for: the unit of work.
CREATE TABLE incidents (
    id INTEGER PRIMARY KEY,
    -- cluster/namespace/kind/name: alerts with the same key join the same incident.
    incident_key TEXT NOT NULL UNIQUE,
    cluster TEXT NOT NULL,
    namespace TEXT NOT NULL,
    workload_kind TEXT NOT NULL,
    workload_name TEXT NOT NULL,
    -- queued | running | done | parked | ignored
    state TEXT NOT NULL,
    -- Runs started for the current round of work (reset when new alerts re-queue it).
    attempts BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    -- A queued incident is not claimed before this time (retry backoff).
    next_attempt_at BIGINT NOT NULL,
    -- The worker running it and until when; an expired lease may be claimed again.
    lease_owner TEXT,
    lease_until BIGINT,
    -- Bumped by every claim: a worker whose lease was taken over cannot complete the run.
    run_token BIGINT NOT NULL DEFAULT 0,
    -- 1 when every alert of the incident has resolved.
    resolved BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    -- The last successful run's report (JSON).
    last_report TEXT,
    CHECK (state IN ('queued', 'running', 'done', 'parked', 'ignored'))
);

CREATE INDEX incidents_by_state ON incidents (state, next_attempt_at);
CREATE INDEX incidents_by_workload ON incidents (cluster, namespace, workload_name);

-- Every distinct alert notification: (fingerprint, startsAt, status) recognises re-deliveries.
CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    status TEXT NOT NULL,
    alertname TEXT NOT NULL,
    -- The alert's labels (JSON object).
    labels TEXT NOT NULL,
    -- The whole alert as received (JSON), to rebuild the incident for a run.
    alert TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    -- NULL for alerts that are not acted on (cluster-wide, or resolved before any incident).
    incident_id BIGINT REFERENCES incidents (id),
    UNIQUE (fingerprint, starts_at, status)
);

CREATE INDEX alerts_by_incident ON alerts (incident_id);
