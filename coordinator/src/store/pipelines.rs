//! Pipelines: one run of a project's pipeline file for a ref and commit.

use serde::Serialize;

use async_trait::async_trait;

use super::StoreError;
use crate::model::{JobId, PipelineId, PipelineStatus, ProjectId};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Pipeline {
    pub id: PipelineId,
    pub project_id: ProjectId,
    /// The project's name (joined in every read).
    pub project: String,
    pub git_ref: String,
    /// `branch` or `tag`.
    pub ref_kind: String,
    pub sha: String,
    /// The first line of the commit's message, as the mirror had it.
    pub commit_title: Option<String>,
    /// The commit's author name.
    pub commit_author: Option<String>,
    pub source: String,
    pub status: PipelineStatus,
    #[serde(skip)]
    pub stages_json: String,
    #[serde(skip)]
    pub variables_json: String,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// The mean of the latest job attempts' coverage figures, as GitLab shows it.
    pub coverage: Option<f64>,
}

/// A pipeline about to be stored, with its planned jobs.
pub struct NewPipeline {
    pub id: PipelineId,
    pub project_id: ProjectId,
    pub git_ref: String,
    pub ref_kind: &'static str,
    pub sha: String,
    pub commit_title: Option<String>,
    pub commit_author: Option<String>,
    pub source: String,
    pub stages: Vec<String>,
    pub variables: Vec<(String, String)>,
    pub jobs: Vec<NewJob>,
}

pub struct NewJob {
    pub name: String,
    pub stage: String,
    pub stage_index: i64,
    pub spec_json: String,
}

/// Which pipelines a listing shows, newest first.
#[derive(Debug, Default, Clone)]
pub struct PipelineFilter {
    pub project: Option<String>,
    pub status: Option<PipelineStatus>,
    pub git_ref: Option<String>,
    /// Only pipelines with an id below this one (pagination).
    pub before: Option<PipelineId>,
    pub limit: i64,
}

/// Pipelines: their ids, their planned jobs, their status.
#[async_trait]
pub trait PipelineStore: Send + Sync {
    /// Hands out the id of a pipeline about to be planned; never the same one twice.
    async fn reserve_pipeline_id(&self) -> Result<PipelineId, StoreError>;

    /// Stores a pipeline and all its jobs (status `created`) in one transaction; returns
    /// the jobs' ids in the order of `new.jobs`.
    async fn insert_pipeline(&self, new: &NewPipeline) -> Result<Vec<JobId>, StoreError>;

    async fn pipeline(&self, id: PipelineId) -> Result<Option<Pipeline>, StoreError>;

    async fn pipelines(&self, filter: &PipelineFilter) -> Result<Vec<Pipeline>, StoreError>;

    /// The project's newest finished pipeline on `git_ref` (what a coverage badge shows).
    async fn latest_finished_pipeline(
        &self,
        project: &str,
        git_ref: &str,
    ) -> Result<Option<Pipeline>, StoreError>;

    /// Pipelines not yet finished, for the scheduler to pick up after a restart.
    async fn unfinished_pipelines(&self) -> Result<Vec<PipelineId>, StoreError>;

    /// Records a pipeline's new status, stamping its start and end.
    async fn set_pipeline_status(
        &self,
        id: PipelineId,
        status: PipelineStatus,
    ) -> Result<(), StoreError>;
}
