-- When each line of a job's log started, by the byte offset where it starts: kept beside
-- the log so its bytes stay exactly what the job printed.
CREATE TABLE log_stamps (
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    offset INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (job_id, offset)
) WITHOUT ROWID;
