//! Jobs: their status, lease and outcome. Transitions are guarded by the status they leave
//! (and for running jobs by the lease epoch), so a stale writer changes nothing.

use serde::Serialize;

use super::{Store, StoreError};
use crate::model::{AgentId, JobId, JobStatus, PipelineId, now_ms};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Job {
    pub id: JobId,
    pub pipeline_id: PipelineId,
    pub name: String,
    pub stage: String,
    pub stage_index: i64,
    #[serde(skip)]
    pub spec_json: String,
    pub status: JobStatus,
    pub attempt: i64,
    pub retried: bool,
    pub agent_id: Option<AgentId>,
    pub lease_epoch: i64,
    #[serde(skip)]
    pub lease_expires_at: Option<i64>,
    pub cancel_requested: bool,
    pub exit_code: Option<i64>,
    pub failure_kind: Option<String>,
    pub failure_message: Option<String>,
    pub log_size: i64,
    pub log_truncated: bool,
    #[serde(skip)]
    pub details_json: Option<String>,
    pub created_at: i64,
    pub queued_at: Option<i64>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub coverage: Option<f64>,
    pub artifacts_size: Option<i64>,
    /// When the artifacts expire (ms since the epoch); `None`: never.
    pub artifacts_expire_at: Option<i64>,
    /// The sweeper deleted the expired archive.
    pub artifacts_expired: bool,
}

/// How a running job ended, as its agent (or the lease expiry) reports it.
#[derive(Debug, Clone)]
pub struct JobEnding {
    pub status: JobStatus,
    pub exit_code: Option<i64>,
    pub failure_kind: Option<String>,
    pub failure_message: Option<String>,
    pub details_json: Option<String>,
}

impl JobEnding {
    /// A script that exited 0, with nothing more to say.
    pub fn success() -> JobEnding {
        JobEnding {
            status: JobStatus::Success,
            exit_code: Some(0),
            failure_kind: None,
            failure_message: None,
            details_json: None,
        }
    }
}

impl Store {
    pub async fn job(&self, id: JobId) -> Result<Option<Job>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM jobs WHERE id = ?")
            .bind(id)
            .fetch_optional(self.pool())
            .await?)
    }

    /// Every attempt of every job of a pipeline, in creation order.
    pub async fn pipeline_jobs(&self, pipeline: PipelineId) -> Result<Vec<Job>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM jobs WHERE pipeline_id = ? ORDER BY id")
                .bind(pipeline)
                .fetch_all(self.pool())
                .await?,
        )
    }

    /// Moves a job from one of `from` to `to`; false when it was in none of them.
    pub async fn transition_job(
        &self,
        id: JobId,
        from: &[JobStatus],
        to: JobStatus,
    ) -> Result<bool, StoreError> {
        let from_json = serde_json::to_string(from)?;
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE jobs SET status = ?2,
                queued_at = CASE WHEN ?2 = 'pending' THEN ?3 ELSE queued_at END,
                finished_at = CASE WHEN ?2 IN ('success', 'failed', 'canceled', 'skipped', 'lost')
                                   THEN ?3 ELSE finished_at END
             WHERE id = ?1 AND status IN (SELECT value FROM json_each(?4))",
        )
        .bind(id)
        .bind(to)
        .bind(now)
        .bind(from_json)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Pending jobs in the order they became runnable.
    pub async fn pending_jobs(&self) -> Result<Vec<Job>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM jobs WHERE status = 'pending' ORDER BY queued_at, id")
                .fetch_all(self.pool())
                .await?,
        )
    }

    /// Pending first runs of jobs that deploy (`environment:` with action `start`).
    pub async fn pending_first_deploys(&self) -> Result<Vec<Job>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT * FROM jobs WHERE status = 'pending' AND attempt = 1
                 AND json_extract(spec_json, '$.environment.action') = 'start'
             ORDER BY id",
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// Ends a pending job as skipped, saying why; false when it was no longer pending.
    pub async fn skip_pending_job(&self, id: JobId, reason: &str) -> Result<bool, StoreError> {
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

    /// Running jobs, with the agents holding them.
    pub async fn running_jobs(&self) -> Result<Vec<Job>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM jobs WHERE status = 'running'")
                .fetch_all(self.pool())
                .await?,
        )
    }

    /// Leases a pending job to an agent; returns the new epoch, `None` if no longer pending.
    pub async fn lease_job(
        &self,
        id: JobId,
        agent: AgentId,
        expires_at: i64,
    ) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "UPDATE jobs SET status = 'running', agent_id = ?2, lease_epoch = lease_epoch + 1,
                lease_expires_at = ?3, started_at = NULL
             WHERE id = ?1 AND status = 'pending' RETURNING lease_epoch",
        )
        .bind(id)
        .bind(agent)
        .bind(expires_at)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Extends the lease of a running job held by `agent` under `epoch`; false if fenced.
    pub async fn renew_lease(
        &self,
        id: JobId,
        agent: AgentId,
        epoch: i64,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE jobs SET lease_expires_at = max(coalesce(lease_expires_at, 0), ?4)
             WHERE id = ?1 AND agent_id = ?2 AND lease_epoch = ?3 AND status = 'running'",
        )
        .bind(id)
        .bind(agent)
        .bind(epoch)
        .bind(expires_at)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives every running lease at least until `expires_at` (after a coordinator restart,
    /// agents need time to reconnect before their leases count as lost).
    pub async fn extend_all_leases(&self, expires_at: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE jobs SET lease_expires_at = max(coalesce(lease_expires_at, 0), ?)
             WHERE status = 'running'",
        )
        .bind(expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records that the agent has started the job it was leased.
    pub async fn mark_started(
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

    /// Ends a running job held under `epoch`; false when the lease is no longer valid.
    pub async fn finish_job(
        &self,
        id: JobId,
        epoch: i64,
        ending: &JobEnding,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE jobs SET status = ?3, exit_code = ?4, failure_kind = ?5, failure_message = ?6,
                details_json = ?7, finished_at = ?8, lease_expires_at = NULL
             WHERE id = ?1 AND lease_epoch = ?2 AND status = 'running'",
        )
        .bind(id)
        .bind(epoch)
        .bind(ending.status)
        .bind(ending.exit_code)
        .bind(&ending.failure_kind)
        .bind(&ending.failure_message)
        .bind(&ending.details_json)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Puts a leased job that never started back in the queue.
    pub async fn requeue_job(&self, id: JobId, epoch: i64) -> Result<(), StoreError> {
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

    pub async fn set_job_coverage(&self, id: JobId, coverage: f64) -> Result<(), StoreError> {
        sqlx::query("UPDATE jobs SET coverage = ? WHERE id = ?")
            .bind(coverage)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn request_cancel(&self, id: JobId) -> Result<(), StoreError> {
        sqlx::query("UPDATE jobs SET cancel_requested = 1 WHERE id = ?")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Inserts the next attempt of `job` (status `created`) and marks `job` as retried.
    pub async fn insert_retry(&self, job: &Job) -> Result<JobId, StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("UPDATE jobs SET retried = 1 WHERE id = ?")
            .bind(job.id)
            .execute(&mut *tx)
            .await?;
        let id = sqlx::query_scalar(
            "INSERT INTO jobs (pipeline_id, name, stage, stage_index, spec_json, status, attempt, created_at)
             VALUES (?, ?, ?, ?, ?, 'created', ?, ?) RETURNING id",
        )
        .bind(job.pipeline_id)
        .bind(&job.name)
        .bind(&job.stage)
        .bind(job.stage_index)
        .bind(&job.spec_json)
        .bind(job.attempt + 1)
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }
}
