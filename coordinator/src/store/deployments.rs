//! Deployments: each finished run of a job that deploys to an environment, kept as the
//! environment's history (the newest successful one is what runs there now).

use serde::Serialize;

use async_trait::async_trait;

use super::StoreError;
use crate::model::{JobId, PipelineId, ProjectId};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Deployment {
    pub id: i64,
    pub environment: String,
    pub tier: String,
    pub url: Option<String>,
    pub job_id: JobId,
    pub pipeline_id: PipelineId,
    pub sha: String,
    pub git_ref: String,
    pub status: String,
    pub image_digest: Option<String>,
    pub started_at: Option<i64>,
    pub finished_at: i64,
    /// Who or what started it: `rollback` (a re-run of an earlier deploy job), else the
    /// pipeline's source (`push`, `api`, `web`, …) and the commit's author when known.
    pub triggered_by: String,
}

/// A deployment about to be recorded.
pub struct NewDeployment<'a> {
    pub project: ProjectId,
    pub environment: &'a str,
    pub tier: &'a str,
    pub url: Option<&'a str>,
    pub job: JobId,
    pub pipeline: PipelineId,
    pub sha: &'a str,
    pub git_ref: &'a str,
    pub status: &'a str,
    pub image_digest: Option<&'a str>,
    pub started_at: Option<i64>,
    pub finished_at: i64,
}

/// Deployments to environments, newest first.
#[async_trait]
pub trait DeploymentStore: Send + Sync {
    async fn insert_deployment(&self, new: &NewDeployment<'_>) -> Result<(), StoreError>;

    /// Every deployment of a project, newest first.
    async fn deployments(&self, project: ProjectId) -> Result<Vec<Deployment>, StoreError>;

    /// The newest pipeline that deployed to `environment` successfully, if any.
    async fn newest_successful_deploy(
        &self,
        project: ProjectId,
        environment: &str,
    ) -> Result<Option<PipelineId>, StoreError>;
}
