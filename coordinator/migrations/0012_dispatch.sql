-- Pipeline ids are handed out before a pipeline is planned (its variables carry the id),
-- outside any lock: AUTOINCREMENT never gives an id twice, even one whose plan was refused.
CREATE TABLE pipeline_ids (id INTEGER PRIMARY KEY AUTOINCREMENT);
INSERT INTO pipeline_ids (id) SELECT max(id) FROM pipelines HAVING max(id) IS NOT NULL;
DELETE FROM pipeline_ids;

-- Lease expiry and an agent's reconnect read running jobs by agent and by deadline.
CREATE INDEX jobs_running_by_agent ON jobs(agent_id) WHERE status = 'running';

-- Each assignment lists the jobs of its pipeline that kept artifacts: without this index
-- that read scans the whole pipeline.
CREATE INDEX jobs_with_artifacts ON jobs(pipeline_id) WHERE artifacts_size IS NOT NULL;
