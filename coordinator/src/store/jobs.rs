//! Jobs: their status, lease and outcome. Transitions are guarded by the status they leave
//! (and for running jobs by the lease epoch), so a stale writer changes nothing.

use serde::Serialize;

use async_trait::async_trait;

use super::StoreError;
use crate::model::{AgentId, JobId, JobStatus, PipelineId};

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

/// A pending job as the queue report needs it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Waiting {
    pub id: JobId,
    pub queued_at: Option<i64>,
    /// The `tags` of the job's spec, as JSON.
    pub tags: Option<String>,
}

/// Jobs and their leases: every write guarded by the status (and epoch) it expects.
#[async_trait]
pub trait JobStore: Send + Sync {
    async fn job(&self, id: JobId) -> Result<Option<Job>, StoreError>;

    /// Every attempt of every job of a pipeline, in creation order.
    async fn pipeline_jobs(&self, pipeline: PipelineId) -> Result<Vec<Job>, StoreError>;

    /// Moves a job from one of `from` to `to`; false when it was in none of them.
    async fn transition_job(
        &self,
        id: JobId,
        from: &[JobStatus],
        to: JobStatus,
    ) -> Result<bool, StoreError>;

    /// Applies several guarded transitions in one transaction; for each, whether the job
    /// was in one of its `from` statuses (and so moved).
    async fn transition_jobs(&self, moves: &[Transition]) -> Result<Vec<bool>, StoreError>;

    /// Pending jobs in the order they became runnable.
    async fn pending_jobs(&self) -> Result<Vec<Job>, StoreError>;

    /// Ends a pending job as skipped, saying why; false when it was no longer pending.
    async fn skip_pending_job(&self, id: JobId, reason: &str) -> Result<bool, StoreError>;

    /// Running jobs, with the agents holding them.
    async fn running_jobs(&self) -> Result<Vec<Job>, StoreError>;

    /// The running jobs leased to `agent`.
    async fn running_jobs_of(&self, agent: AgentId) -> Result<Vec<Job>, StoreError>;

    /// Running jobs whose lease ended before `now`.
    async fn expired_leases(&self, now: i64) -> Result<Vec<Job>, StoreError>;

    /// Leases pending jobs to agents in one transaction; for each, the new epoch, or `None`
    /// when the job was no longer pending.
    async fn lease_jobs(
        &self,
        leases: &[(JobId, AgentId)],
        expires_at: i64,
    ) -> Result<Vec<Option<i64>>, StoreError>;

    /// The latest attempts of a pipeline's jobs that kept artifacts.
    async fn jobs_with_artifacts(
        &self,
        pipeline: PipelineId,
    ) -> Result<Vec<JobWithArtifacts>, StoreError>;

    /// Renews the leases `agent` says it holds, in one transaction; for each, `None` when
    /// the lease is no longer valid, else whether a cancel was requested.
    async fn renew_leases(
        &self,
        agent: AgentId,
        leases: &[(JobId, i64)],
        expires_at: i64,
    ) -> Result<Vec<Option<bool>>, StoreError>;

    /// Gives every running lease at least until `expires_at` (after a coordinator restart,
    /// agents need time to reconnect before their leases count as lost).
    async fn extend_all_leases(&self, expires_at: i64) -> Result<(), StoreError>;

    /// Records that the agent has started the job it was leased.
    async fn mark_started(&self, id: JobId, agent: AgentId, epoch: i64)
    -> Result<bool, StoreError>;

    /// Ends a running job held under `epoch` as `ending`; the job as it now is, or `None`
    /// when the lease is no longer valid (or, ended by its agent, when the agent does not
    /// hold it or reports more log than is stored).
    async fn finish_job(
        &self,
        id: JobId,
        epoch: i64,
        ending: &JobEnding,
        by: Finisher,
    ) -> Result<Option<Job>, StoreError>;

    /// Puts a leased job that never started back in the queue.
    async fn requeue_job(&self, id: JobId, epoch: i64) -> Result<(), StoreError>;

    async fn set_job_coverage(&self, id: JobId, coverage: f64) -> Result<(), StoreError>;

    async fn request_cancel(&self, id: JobId) -> Result<(), StoreError>;

    /// Inserts the next attempt of `job` (status `created`) and marks `job` as retried;
    /// returns the new attempt's id.
    async fn insert_retry(&self, job: JobId) -> Result<JobId, StoreError>;

    /// The pending jobs, oldest first, read through the `jobs_by_status` index (the cost
    /// follows the queue's length, not the history's).
    async fn waiting_jobs(&self) -> Result<Vec<Waiting>, StoreError>;

    /// How many jobs are in each status, counting each job's latest attempt only.
    async fn job_counts(&self) -> Result<Vec<(String, i64)>, StoreError>;
}
