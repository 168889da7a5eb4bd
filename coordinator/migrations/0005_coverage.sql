-- The figure a job's `coverage` regex found in its log, in percent.
ALTER TABLE jobs ADD COLUMN coverage REAL;
