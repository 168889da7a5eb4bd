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

/// Who ends a running job: the coordinator (a lost lease, a refused assignment), or the
/// agent holding the lease, whose reported log must all be stored.
#[derive(Debug, Clone, Copy)]
pub enum Finisher {
    Coordinator,
    Agent { agent: AgentId, log_size: u64 },
}

/// A guarded move of one job: it goes to `to` only from one of `from`.
#[derive(Debug, Clone)]
pub struct Transition {
    pub job: JobId,
    pub from: Vec<JobStatus>,
    pub to: JobStatus,
}

/// A job whose artifacts later jobs may download.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobWithArtifacts {
    pub id: JobId,
    pub name: String,
    pub stage_index: i64,
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

/// `'created', 'pending'`: statuses as an SQL list (they are fixed words, never input).
fn status_list(statuses: &[JobStatus]) -> String {
    statuses
        .iter()
        .map(|status| format!("'{}'", status.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
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
        let done = self
            .transition_jobs(&[Transition {
                job: id,
                from: from.to_vec(),
                to,
            }])
            .await?;
        Ok(done.first().copied().unwrap_or(false))
    }

    /// Applies several guarded transitions in one transaction; for each, whether the job
    /// was in one of its `from` statuses (and so moved).
    pub async fn transition_jobs(&self, moves: &[Transition]) -> Result<Vec<bool>, StoreError> {
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

    /// Pending jobs in the order they became runnable.
    pub async fn pending_jobs(&self) -> Result<Vec<Job>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM jobs WHERE status = 'pending' ORDER BY queued_at, id")
                .fetch_all(self.pool())
                .await?,
        )
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

    /// The running jobs leased to `agent`.
    pub async fn running_jobs_of(&self, agent: AgentId) -> Result<Vec<Job>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM jobs WHERE status = 'running' AND agent_id = ?")
                .bind(agent)
                .fetch_all(self.pool())
                .await?,
        )
    }

    /// Running jobs whose lease ended before `now`.
    pub async fn expired_leases(&self, now: i64) -> Result<Vec<Job>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT * FROM jobs WHERE status = 'running' AND lease_expires_at < ? ORDER BY id",
        )
        .bind(now)
        .fetch_all(self.pool())
        .await?)
    }

    /// Leases pending jobs to agents in one transaction; for each, the new epoch, or `None`
    /// when the job was no longer pending.
    pub async fn lease_jobs(
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

    /// The latest attempts of a pipeline's jobs that kept artifacts.
    pub async fn jobs_with_artifacts(
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

    /// Renews the leases `agent` says it holds, in one transaction; for each, `None` when
    /// the lease is no longer valid, else whether a cancel was requested.
    pub async fn renew_leases(
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

    /// Ends a running job held under `epoch` as `ending`; the job as it now is, or `None`
    /// when the lease is no longer valid (or, ended by its agent, when the agent does not
    /// hold it or reports more log than is stored).
    pub async fn finish_job(
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

    /// Inserts the next attempt of `job` (status `created`) and marks `job` as retried;
    /// returns the new attempt's id.
    pub async fn insert_retry(&self, job: JobId) -> Result<JobId, StoreError> {
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
}
