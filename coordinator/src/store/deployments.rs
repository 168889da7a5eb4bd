//! Deployments: each finished run of a job that deploys to an environment, kept as the
//! environment's history (the newest successful one is what runs there now).

use serde::Serialize;

use super::{Store, StoreError};
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

impl Store {
    pub async fn insert_deployment(&self, new: &NewDeployment<'_>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO deployments (project_id, environment, tier, url, job_id, pipeline_id, sha,
                                      git_ref, status, image_digest, started_at, finished_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(new.project)
        .bind(new.environment)
        .bind(new.tier)
        .bind(new.url)
        .bind(new.job)
        .bind(new.pipeline)
        .bind(new.sha)
        .bind(new.git_ref)
        .bind(new.status)
        .bind(new.image_digest)
        .bind(new.started_at)
        .bind(new.finished_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Every deployment of a project, newest first.
    pub async fn deployments(&self, project: ProjectId) -> Result<Vec<Deployment>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, environment, tier, url, job_id, pipeline_id, sha, git_ref, status,
                    image_digest, started_at, finished_at
             FROM deployments WHERE project_id = ? ORDER BY id DESC",
        )
        .bind(project)
        .fetch_all(self.pool())
        .await?)
    }
}
