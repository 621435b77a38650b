-- PostgreSQL edition of migrations/sqlite/0004_fix_source.sql: the strategy that produced each
-- fix and its category, on the incident and on every outcome recorded for it.
ALTER TABLE incidents ADD COLUMN fix_source TEXT;
ALTER TABLE incidents ADD COLUMN fix_category TEXT;
ALTER TABLE outcomes ADD COLUMN source TEXT;
ALTER TABLE outcomes ADD COLUMN category TEXT;
