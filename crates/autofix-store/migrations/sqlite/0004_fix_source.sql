-- Which strategy produced each proposed fix (`rule`, `revert-to-last-good`, `llm`,
-- `llm-narrowed`) and the incident's category, on the incident (from the run report) and copied
-- onto every outcome recorded for it, so outcomes teach which strategy works per category.
ALTER TABLE incidents ADD COLUMN fix_source TEXT;
ALTER TABLE incidents ADD COLUMN fix_category TEXT;
ALTER TABLE outcomes ADD COLUMN source TEXT;
ALTER TABLE outcomes ADD COLUMN category TEXT;
