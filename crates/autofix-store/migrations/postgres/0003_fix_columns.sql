-- The fix proposed by each incident's last run, PostgreSQL edition of
-- migrations/sqlite/0003_fix_columns.sql.
ALTER TABLE incidents ADD COLUMN fix_branch TEXT;
ALTER TABLE incidents ADD COLUMN fix_hash TEXT;
ALTER TABLE incidents ADD COLUMN fix_commit TEXT;
ALTER TABLE incidents ADD COLUMN fix_pr BIGINT;
ALTER TABLE incidents ADD COLUMN fix_risk DOUBLE PRECISION;

UPDATE incidents SET
    fix_branch = last_report::jsonb ->> 'branch',
    fix_hash = last_report::jsonb ->> 'incident',
    fix_commit = last_report::jsonb ->> 'commit',
    fix_pr = (last_report::jsonb #>> '{pr,number}')::BIGINT,
    fix_risk = (last_report::jsonb #>> '{risk,score}')::DOUBLE PRECISION
WHERE last_report IS NOT NULL;

CREATE INDEX incidents_by_fix_branch ON incidents (fix_branch);
