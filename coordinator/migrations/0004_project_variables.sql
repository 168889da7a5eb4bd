-- Project variables (CI/CD settings), encrypted at rest with the data dir's secret key.
CREATE TABLE project_variables (
    project_id INTEGER NOT NULL REFERENCES projects(id),
    key TEXT NOT NULL,
    nonce BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    masked INTEGER NOT NULL DEFAULT 0,
    protected INTEGER NOT NULL DEFAULT 0,
    file INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (project_id, key)
);
