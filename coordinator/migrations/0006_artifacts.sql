-- Size of the job's artifacts archive (stored in the data dir's artifacts/), if it has one.
ALTER TABLE jobs ADD COLUMN artifacts_size INTEGER;
