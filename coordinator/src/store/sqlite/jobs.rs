//! Jobs and their leases in SQLite: [`JobStore`] for [`SqliteStore`].

use async_trait::async_trait;

use super::SqliteStore;
use crate::model::{AgentId, JobId, JobStatus, PipelineId, now_ms};
use crate::store::StoreError;
use crate::store::jobs::*;

#[async_trait]
impl JobStore for SqliteStore {
    async fn job(&self, id: JobId) -> Result<Option<Job>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM jobs WHERE id = ?")
            .bind(id)
            .fetch_optional(self.pool())
            .await?)
    }

    async fn pipeline_jobs(&self, pipeline: PipelineId) -> Result<Vec<Job>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM jobs WHERE pipeline_id = ? ORDER BY id")
                .bind(pipeline)
                .fetch_all(self.pool())
                .await?,
        )
    }

    async fn transition_job(
        &self,
        id: JobId,
        from: &[JobStatus],
        to: JobStatus,
    ) -> Result<bool, StoreError> {
        let done = self
            .transition_jobs(&[Transition {
                job: id,
                from: from.to_vec(),
                to,
            }])
            .await?;
        Ok(done.first().copied().unwrap_or(false))
    }

    async fn transition_jobs(&self, moves: &[Transition]) -> Result<Vec<bool>, StoreError> {
        let now = now_ms();
        let mut tx = self.write().await?;
        let mut done = Vec::with_capacity(moves.len());
        for transition in moves {
            let sql = format!(
                "UPDATE jobs SET status = ?2,
                    queued_at = CASE WHEN ?2 = 'pending' THEN ?3 ELSE queued_at END,
                    finished_at = CASE WHEN ?2 IN ('success', 'failed', 'canceled', 'skipped', 'lost')
                                       THEN ?3 ELSE finished_at END
                 WHERE id = ?1 AND status IN ({})",
                status_list(&transition.from)
            );
            let moved = sqlx::query(&sql)
                .bind(transition.job)
                .bind(transition.to)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            done.push(moved.rows_affected() == 1);
        }
        tx.commit().await?;
        Ok(done)
    }

    async fn pending_jobs(&self) -> Result<Vec<Job>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM jobs WHERE status = 'pending' ORDER BY queued_at, id")
                .fetch_all(self.pool())
                .await?,
        )
    }

    async fn skip_pending_job(&self, id: JobId, reason: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE jobs SET status = 'skipped', failure_message = ?2, finished_at = ?3
             WHERE id = ?1 AND status = 'pending'",
        )
        .bind(id)
        .bind(reason)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn running_jobs(&self) -> Result<Vec<Job>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM jobs WHERE status = 'running'")
                .fetch_all(self.pool())
                .await?,
        )
    }

    async fn running_jobs_of(&self, agent: AgentId) -> Result<Vec<Job>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM jobs WHERE status = 'running' AND agent_id = ?")
                .bind(agent)
                .fetch_all(self.pool())
                .await?,
        )
    }

    async fn expired_leases(&self, now: i64) -> Result<Vec<Job>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT * FROM jobs WHERE status = 'running' AND lease_expires_at < ? ORDER BY id",
        )
        .bind(now)
        .fetch_all(self.pool())
        .await?)
    }

    async fn lease_jobs(
        &self,
        leases: &[(JobId, AgentId)],
        expires_at: i64,
    ) -> Result<Vec<Option<i64>>, StoreError> {
        let mut tx = self.write().await?;
        let mut epochs = Vec::with_capacity(leases.len());
        for (job, agent) in leases {
            let epoch = sqlx::query_scalar(
                "UPDATE jobs SET status = 'running', agent_id = ?2, lease_epoch = lease_epoch + 1,
                    lease_expires_at = ?3, started_at = NULL
                 WHERE id = ?1 AND status = 'pending' RETURNING lease_epoch",
            )
            .bind(job)
            .bind(agent)
            .bind(expires_at)
            .fetch_optional(&mut *tx)
            .await?;
            epochs.push(epoch);
        }
        tx.commit().await?;
        Ok(epochs)
    }

    async fn jobs_with_artifacts(
        &self,
        pipeline: PipelineId,
    ) -> Result<Vec<JobWithArtifacts>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, name, stage_index FROM jobs
             WHERE pipeline_id = ? AND retried = 0 AND artifacts_size IS NOT NULL ORDER BY id",
        )
        .bind(pipeline)
        .fetch_all(self.pool())
        .await?)
    }

    async fn renew_leases(
        &self,
        agent: AgentId,
        leases: &[(JobId, i64)],
        expires_at: i64,
    ) -> Result<Vec<Option<bool>>, StoreError> {
        let mut tx = self.write().await?;
        let mut renewed = Vec::with_capacity(leases.len());
        for (job, epoch) in leases {
            let cancel: Option<bool> = sqlx::query_scalar(
                "UPDATE jobs SET lease_expires_at = max(coalesce(lease_expires_at, 0), ?4)
                 WHERE id = ?1 AND agent_id = ?2 AND lease_epoch = ?3 AND status = 'running'
                 RETURNING cancel_requested",
            )
            .bind(job)
            .bind(agent)
            .bind(epoch)
            .bind(expires_at)
            .fetch_optional(&mut *tx)
            .await?;
            renewed.push(cancel);
        }
        tx.commit().await?;
        Ok(renewed)
    }

    async fn extend_all_leases(&self, expires_at: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE jobs SET lease_expires_at = max(coalesce(lease_expires_at, 0), ?)
             WHERE status = 'running'",
        )
        .bind(expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn mark_started(
        &self,
        id: JobId,
        agent: AgentId,
        epoch: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE jobs SET started_at = coalesce(started_at, ?4)
             WHERE id = ?1 AND agent_id = ?2 AND lease_epoch = ?3 AND status = 'running'",
        )
        .bind(id)
        .bind(agent)
        .bind(epoch)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn finish_job(
        &self,
        id: JobId,
        epoch: i64,
        ending: &JobEnding,
        by: Finisher,
    ) -> Result<Option<Job>, StoreError> {
        let (agent, log_size) = match by {
            Finisher::Coordinator => (None, 0),
            Finisher::Agent { agent, log_size } => {
                (Some(agent), i64::try_from(log_size).unwrap_or(i64::MAX))
            }
        };
        Ok(sqlx::query_as(
            "UPDATE jobs SET status = ?3, exit_code = ?4, failure_kind = ?5, failure_message = ?6,
                details_json = ?7, finished_at = ?8, lease_expires_at = NULL
             WHERE id = ?1 AND lease_epoch = ?2 AND status = 'running'
               AND (?9 IS NULL OR (agent_id = ?9 AND log_size >= ?10))
             RETURNING *",
        )
        .bind(id)
        .bind(epoch)
        .bind(ending.status)
        .bind(ending.exit_code)
        .bind(&ending.failure_kind)
        .bind(&ending.failure_message)
        .bind(&ending.details_json)
        .bind(now_ms())
        .bind(agent)
        .bind(log_size)
        .fetch_optional(self.pool())
        .await?)
    }

    async fn requeue_job(&self, id: JobId, epoch: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE jobs SET status = 'pending', agent_id = NULL, lease_expires_at = NULL
             WHERE id = ? AND lease_epoch = ? AND status = 'running'",
        )
        .bind(id)
        .bind(epoch)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn set_job_coverage(&self, id: JobId, coverage: f64) -> Result<(), StoreError> {
        sqlx::query("UPDATE jobs SET coverage = ? WHERE id = ?")
            .bind(coverage)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn request_cancel(&self, id: JobId) -> Result<(), StoreError> {
        sqlx::query("UPDATE jobs SET cancel_requested = 1 WHERE id = ?")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn insert_retry(&self, job: JobId) -> Result<JobId, StoreError> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE jobs SET retried = 1 WHERE id = ?")
            .bind(job)
            .execute(&mut *tx)
            .await?;
        let id = sqlx::query_scalar(
            "INSERT INTO jobs (pipeline_id, name, stage, stage_index, spec_json, status, attempt, created_at)
             SELECT pipeline_id, name, stage, stage_index, spec_json, 'created', attempt + 1, ?
             FROM jobs WHERE id = ? RETURNING id",
        )
        .bind(now_ms())
        .bind(job)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn waiting_jobs(&self) -> Result<Vec<Waiting>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, queued_at, json_extract(spec_json, '$.tags') AS tags
             FROM jobs WHERE status = 'pending' ORDER BY queued_at, id",
        )
        .fetch_all(self.pool())
        .await?)
    }

    async fn job_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT status, count(*) FROM jobs WHERE retried = 0 GROUP BY status")
                .fetch_all(self.pool())
                .await?,
        )
    }
}

/// `'created', 'pending'`: statuses as an SQL list (they are fixed words, never input).
fn status_list(statuses: &[JobStatus]) -> String {
    statuses
        .iter()
        .map(|status| format!("'{}'", status.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}
