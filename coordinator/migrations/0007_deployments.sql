-- One row per run of a job with `environment:` (action start): what it deployed, where.
CREATE TABLE deployments (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    environment TEXT NOT NULL,
    tier TEXT NOT NULL,
    url TEXT,
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    pipeline_id INTEGER NOT NULL REFERENCES pipelines(id),
    sha TEXT NOT NULL,
    git_ref TEXT NOT NULL,
    -- The job's final status: success, failed, canceled, lost.
    status TEXT NOT NULL,
    -- The pushed image digest when the job reported one.
    image_digest TEXT,
    started_at INTEGER,
    finished_at INTEGER NOT NULL
);
CREATE INDEX deployments_by_environment ON deployments(project_id, environment, id);
