//! Deployments to environments, newest first in SQLite: [`DeploymentStore`] for [`SqliteStore`].

use async_trait::async_trait;

use super::SqliteStore;
use crate::model::{PipelineId, ProjectId};
use crate::store::StoreError;
use crate::store::deployments::*;

#[async_trait]
impl DeploymentStore for SqliteStore {
    async fn insert_deployment(&self, new: &NewDeployment<'_>) -> Result<(), StoreError> {
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

    async fn deployments(&self, project: ProjectId) -> Result<Vec<Deployment>, StoreError> {
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

    async fn newest_successful_deploy(
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
