-- Git events: what a project needs to take webhooks, be polled and report commit statuses.
ALTER TABLE projects ADD COLUMN forge TEXT NOT NULL DEFAULT 'generic';
-- Secrets: never returned by the API (it shows whether they are set).
ALTER TABLE projects ADD COLUMN webhook_secret TEXT;
ALTER TABLE projects ADD COLUMN forge_token TEXT;
ALTER TABLE projects ADD COLUMN repo_token TEXT;
ALTER TABLE projects ADD COLUMN default_branch TEXT NOT NULL DEFAULT 'main';
-- The forge's API base (https://gitlab.com/api/v4, https://api.github.com, https://host/api/v1).
ALTER TABLE projects ADD COLUMN forge_api_url TEXT;
-- The project on the forge (`group/project`, `owner/repo`); derived from the repository URL when unset.
ALTER TABLE projects ADD COLUMN forge_project TEXT;
ALTER TABLE projects ADD COLUMN poll_interval_secs INTEGER;
ALTER TABLE projects ADD COLUMN protected_branches_json TEXT NOT NULL DEFAULT '[]';
-- A removed project keeps its row (pipelines refer to it) under a freed name.
ALTER TABLE projects ADD COLUMN removed_at INTEGER;

-- Every webhook delivery that passed the signature check (and every polled ref update):
-- the claim that makes a redelivery, or a second delivery of the same event, a no-op.
CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    forge TEXT NOT NULL,
    -- The forge's delivery id (Idempotency-Key, X-GitHub-Delivery, X-Gitea-Delivery...).
    delivery_id TEXT,
    -- kind:ref:sha (and the merge request), shared by every delivery of the same event.
    event_key TEXT,
    event TEXT NOT NULL,
    -- processing | created | ignored | no_pipeline | invalid
    outcome TEXT NOT NULL,
    pipeline_id INTEGER REFERENCES pipelines(id),
    message TEXT,
    received_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX deliveries_by_delivery_id ON deliveries(project_id, delivery_id)
    WHERE delivery_id IS NOT NULL;
CREATE UNIQUE INDEX deliveries_by_event ON deliveries(project_id, event_key)
    WHERE event_key IS NOT NULL;

-- The refs a polled project had at its last poll.
CREATE TABLE polled_refs (
    project_id INTEGER NOT NULL REFERENCES projects(id),
    name TEXT NOT NULL,
    sha TEXT NOT NULL,
    PRIMARY KEY (project_id, name)
);
