-- The fix proposed by each incident's last run, in plain columns (filled from the run report
-- when a run completes), so both backends look fixes up by branch, hash or commit without JSON
-- functions. Existing reports are copied over once.
ALTER TABLE incidents ADD COLUMN fix_branch TEXT;
ALTER TABLE incidents ADD COLUMN fix_hash TEXT;
ALTER TABLE incidents ADD COLUMN fix_commit TEXT;
ALTER TABLE incidents ADD COLUMN fix_pr BIGINT;
ALTER TABLE incidents ADD COLUMN fix_risk DOUBLE PRECISION;

UPDATE incidents SET
    fix_branch = json_extract(last_report, '$.branch'),
    fix_hash = json_extract(last_report, '$.incident'),
    fix_commit = json_extract(last_report, '$.commit'),
    fix_pr = CAST(json_extract(last_report, '$.pr.number') AS INTEGER),
    fix_risk = CAST(json_extract(last_report, '$.risk.score') AS REAL)
WHERE last_report IS NOT NULL;

CREATE INDEX incidents_by_fix_branch ON incidents (fix_branch);
