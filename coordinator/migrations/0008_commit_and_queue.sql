-- The commit's title (first line of its message) and author name, read from the mirror
-- when the pipeline is created; NULL for pipelines made before.
ALTER TABLE pipelines ADD COLUMN commit_title TEXT;
ALTER TABLE pipelines ADD COLUMN commit_author TEXT;
-- The queue report (GET /api/v1/queue) reads only pending jobs, oldest first: a partial
-- index keeps that read proportional to the queue, not to the history.
CREATE INDEX jobs_pending_by_queue_time ON jobs(queued_at, id) WHERE status = 'pending';
