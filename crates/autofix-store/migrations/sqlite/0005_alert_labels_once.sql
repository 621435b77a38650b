-- The labels of each alert are kept once, in its `alert` JSON: the separate copy was never read
-- and made every recorded alert a third larger.
ALTER TABLE alerts DROP COLUMN labels;
