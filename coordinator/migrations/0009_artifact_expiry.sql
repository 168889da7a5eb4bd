-- `artifacts: expire_in`: when a job's archive expires (NULL: never), and whether the
-- sweeper has deleted it (the job keeps its size; downloads answer 410 Gone).
ALTER TABLE jobs ADD COLUMN artifacts_expire_at INTEGER;
ALTER TABLE jobs ADD COLUMN artifacts_expired INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_by_artifacts_expiry ON jobs(artifacts_expire_at)
    WHERE artifacts_expire_at IS NOT NULL AND artifacts_expired = 0;
