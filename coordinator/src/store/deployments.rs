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
            "SELECT d.id, d.environment, d.tier, d.url, d.job_id, d.pipeline_id, d.sha,
                    d.git_ref, d.status, d.image_digest, d.started_at, d.finished_at,
                    CASE WHEN j.attempt > 1 THEN 'rollback'
                         WHEN p.commit_author IS NULL THEN p.source
                         ELSE p.source || ' by ' || p.commit_author END AS triggered_by
             FROM deployments d
             JOIN jobs j ON j.id = d.job_id
             JOIN pipelines p ON p.id = d.pipeline_id
             WHERE d.project_id = ? ORDER BY d.id DESC",
        )
        .bind(project)
        .fetch_all(self.pool())
        .await?)
    }

    /// The newest pipeline that deployed to `environment` successfully, if any.
    pub async fn newest_successful_deploy(
        &self,
        project: ProjectId,
        environment: &str,
    ) -> Result<Option<PipelineId>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT MAX(pipeline_id) FROM deployments
             WHERE project_id = ? AND environment = ? AND status = 'success'",
        )
        .bind(project)
        .bind(environment)
        .fetch_one(self.pool())
        .await?)
    }
}
