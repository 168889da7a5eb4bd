-- The commit's title (first line of its message) and author name, read from the mirror
-- when the pipeline is created; NULL for pipelines made before.
ALTER TABLE pipelines ADD COLUMN commit_title TEXT;
ALTER TABLE pipelines ADD COLUMN commit_author TEXT;
