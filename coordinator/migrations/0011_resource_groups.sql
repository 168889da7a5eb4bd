-- A project's resource groups that are not in the default mode (GitLab's `unordered`):
-- `oldest_first` or `newest_first` pick the waiting job of the oldest or newest pipeline.
CREATE TABLE resource_groups (
    project_id INTEGER NOT NULL REFERENCES projects(id),
    name TEXT NOT NULL,
    process_mode TEXT NOT NULL,
    PRIMARY KEY (project_id, name)
);
