-- esteira's state. Times are milliseconds since the Unix epoch.
CREATE TABLE projects (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    repo_url TEXT NOT NULL,
    pipeline_file TEXT NOT NULL DEFAULT '.gitlab-ci.yml',
    created_at INTEGER NOT NULL
);

CREATE TABLE pipelines (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    git_ref TEXT NOT NULL,
    ref_kind TEXT NOT NULL,
    sha TEXT NOT NULL,
    source TEXT NOT NULL,
    status TEXT NOT NULL,
    stages_json TEXT NOT NULL,
    variables_json TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER
);
CREATE INDEX pipelines_by_project ON pipelines(project_id, id);

CREATE TABLE agents (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    labels_json TEXT NOT NULL,
    version TEXT NOT NULL,
    concurrency INTEGER NOT NULL DEFAULT 1,
    paused INTEGER NOT NULL DEFAULT 0,
    registered_at INTEGER NOT NULL,
    last_contact_at INTEGER
);

CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    pipeline_id INTEGER NOT NULL REFERENCES pipelines(id),
    name TEXT NOT NULL,
    stage TEXT NOT NULL,
    stage_index INTEGER NOT NULL,
    spec_json TEXT NOT NULL,
    status TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 1,
    retried INTEGER NOT NULL DEFAULT 0,
    agent_id INTEGER REFERENCES agents(id),
    lease_epoch INTEGER NOT NULL DEFAULT 0,
    lease_expires_at INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    exit_code INTEGER,
    failure_kind TEXT,
    failure_message TEXT,
    log_size INTEGER NOT NULL DEFAULT 0,
    log_truncated INTEGER NOT NULL DEFAULT 0,
    details_json TEXT,
    created_at INTEGER NOT NULL,
    queued_at INTEGER,
    started_at INTEGER,
    finished_at INTEGER
);
CREATE INDEX jobs_by_pipeline ON jobs(pipeline_id);
CREATE INDEX jobs_by_status ON jobs(status);

-- A job's log as the chunks the agent sent, keyed by byte offset.
CREATE TABLE log_chunks (
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    offset INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (job_id, offset)
);
