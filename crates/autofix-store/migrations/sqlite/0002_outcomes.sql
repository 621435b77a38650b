-- What became of each fix: the outcomes that calibrate the risk score (docs/risk-model.md).
--
-- merged / rejected come from GitHub's pull_request (closed) events, reverted from pushes of a
-- revert commit, resolved / recurred from Alertmanager after a merge. Same conventions as 0001.
CREATE TABLE outcomes (
    id INTEGER PRIMARY KEY,
    incident_id BIGINT NOT NULL REFERENCES incidents (id),
    -- The incident key's short hash (the `incident` tag of its MLflow runs).
    incident_hash TEXT NOT NULL,
    -- The fix branch, as in the run report.
    branch TEXT NOT NULL,
    -- merged | rejected | reverted | resolved | recurred
    outcome TEXT NOT NULL,
    -- The fix's risk score when it was proposed, if the run report had one.
    risk_score DOUBLE PRECISION,
    -- The pull request, 0 when unknown: each outcome is recorded once per pull request.
    pr_number BIGINT NOT NULL,
    -- The merge commit of a merged pull request, to recognise its revert.
    commit_sha TEXT,
    -- X-GitHub-Delivery of the event, or `alertmanager:<alert row id>`.
    delivery_id TEXT NOT NULL,
    recorded_at BIGINT NOT NULL,
    CHECK (outcome IN ('merged', 'rejected', 'reverted', 'resolved', 'recurred')),
    UNIQUE (incident_id, pr_number, outcome)
);

CREATE INDEX outcomes_by_incident ON outcomes (incident_id, id);
CREATE INDEX outcomes_by_delivery ON outcomes (delivery_id);
