-- Removed agents stay as rows (jobs refer to them) but their credential no longer works.
ALTER TABLE agents ADD COLUMN removed_at INTEGER;
