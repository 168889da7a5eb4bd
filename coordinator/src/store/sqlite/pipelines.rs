//! Pipelines in SQLite: [`PipelineStore`] for [`SqliteStore`].

use async_trait::async_trait;

use super::SqliteStore;
use crate::model::{JobId, PipelineId, PipelineStatus, now_ms};
use crate::store::StoreError;
use crate::store::pipelines::*;

/// A pipeline row with its project's name and its coverage (the mean over the latest
/// attempts; `avg` skips jobs without a figure, and the per-pipeline index keeps it cheap).
const SELECT_PIPELINE: &str = "SELECT p.*, pr.name AS project,
       (SELECT avg(j.coverage) FROM jobs j WHERE j.pipeline_id = p.id AND j.retried = 0) AS coverage
     FROM pipelines p JOIN projects pr ON pr.id = p.project_id";

#[async_trait]
impl PipelineStore for SqliteStore {
    async fn reserve_pipeline_id(&self) -> Result<PipelineId, StoreError> {
        let mut tx = self.write().await?;
        let id: i64 = sqlx::query_scalar("INSERT INTO pipeline_ids DEFAULT VALUES RETURNING id")
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM pipeline_ids")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(PipelineId(id))
    }

    async fn insert_pipeline(&self, new: &NewPipeline) -> Result<Vec<JobId>, StoreError> {
        let now = now_ms();
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO pipelines (id, project_id, git_ref, ref_kind, sha, commit_title,
                                    commit_author, source, status, stages_json,
                                    variables_json, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'created', ?, ?, ?)",
        )
        .bind(new.id)
        .bind(new.project_id)
        .bind(&new.git_ref)
        .bind(new.ref_kind)
        .bind(&new.sha)
        .bind(&new.commit_title)
        .bind(&new.commit_author)
        .bind(&new.source)
        .bind(serde_json::to_string(&new.stages)?)
        .bind(serde_json::to_string(&new.variables)?)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let mut ids = Vec::with_capacity(new.jobs.len());
        for job in &new.jobs {
            let id = sqlx::query_scalar(
                "INSERT INTO jobs (pipeline_id, name, stage, stage_index, spec_json, status, created_at)
                 VALUES (?, ?, ?, ?, ?, 'created', ?) RETURNING id",
            )
            .bind(new.id)
            .bind(&job.name)
            .bind(&job.stage)
            .bind(job.stage_index)
            .bind(&job.spec_json)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            ids.push(id);
        }
        tx.commit().await?;
        Ok(ids)
    }

    async fn pipeline(&self, id: PipelineId) -> Result<Option<Pipeline>, StoreError> {
        Ok(sqlx::query_as(&format!("{SELECT_PIPELINE} WHERE p.id = ?"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?)
    }

    async fn pipelines(&self, filter: &PipelineFilter) -> Result<Vec<Pipeline>, StoreError> {
        let sql = format!(
            "{SELECT_PIPELINE} WHERE (?1 IS NULL OR pr.name = ?1) AND (?2 IS NULL OR p.status = ?2)
             AND (?3 IS NULL OR p.git_ref = ?3) AND (?4 IS NULL OR p.id < ?4)
             ORDER BY p.id DESC LIMIT ?5"
        );
        Ok(sqlx::query_as(&sql)
            .bind(&filter.project)
            .bind(filter.status)
            .bind(&filter.git_ref)
            .bind(filter.before)
            .bind(filter.limit)
            .fetch_all(self.pool())
            .await?)
    }

    async fn latest_finished_pipeline(
        &self,
        project: &str,
        git_ref: &str,
    ) -> Result<Option<Pipeline>, StoreError> {
        let sql = format!(
            "{SELECT_PIPELINE} WHERE pr.name = ? AND p.git_ref = ?
             AND p.status IN ('success', 'failed', 'canceled', 'skipped')
             ORDER BY p.id DESC LIMIT 1"
        );
        Ok(sqlx::query_as(&sql)
            .bind(project)
            .bind(git_ref)
            .fetch_optional(self.pool())
            .await?)
    }

    async fn unfinished_pipelines(&self) -> Result<Vec<PipelineId>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM pipelines WHERE status NOT IN ('success', 'failed', 'canceled', 'skipped')",
        )
        .fetch_all(self.pool())
        .await?)
    }

    async fn set_pipeline_status(
        &self,
        id: PipelineId,
        status: PipelineStatus,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        sqlx::query(
            "UPDATE pipelines SET status = ?2,
                started_at = CASE WHEN ?2 = 'running' AND started_at IS NULL THEN ?3 ELSE started_at END,
                finished_at = CASE WHEN ?2 IN ('success', 'failed', 'canceled', 'skipped') THEN ?3 ELSE NULL END
             WHERE id = ?1",
        )
        .bind(id)
        .bind(status)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
