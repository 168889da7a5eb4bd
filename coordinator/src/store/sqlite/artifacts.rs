//! What is known of jobs' artifact archives in SQLite: [`ArtifactRecords`] for [`SqliteStore`].

use async_trait::async_trait;

use super::SqliteStore;
use crate::model::JobId;
use crate::store::StoreError;
use crate::store::artifacts::*;

#[async_trait]
impl ArtifactRecords for SqliteStore {
    async fn set_artifacts(
        &self,
        id: JobId,
        size: u64,
        expire_at: Option<i64>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE jobs SET artifacts_size = ?, artifacts_expire_at = ?, artifacts_expired = 0
             WHERE id = ?",
        )
        .bind(i64::try_from(size).unwrap_or(i64::MAX))
        .bind(expire_at)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn expired_artifacts(&self, now: i64) -> Result<Vec<JobId>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT j.id FROM jobs j JOIN pipelines p ON p.id = j.pipeline_id
             WHERE j.artifacts_expire_at <= ?1 AND j.artifacts_expired = 0
               AND j.artifacts_size IS NOT NULL
               AND p.status IN ('success', 'failed', 'canceled', 'skipped')
               AND p.id NOT IN (SELECT MAX(id) FROM pipelines WHERE status = 'success'
                                GROUP BY project_id, ref_kind, git_ref)
             ORDER BY j.id",
        )
        .bind(now)
        .fetch_all(self.pool())
        .await?)
    }

    async fn mark_artifacts_expired(&self, id: JobId) -> Result<(), StoreError> {
        sqlx::query("UPDATE jobs SET artifacts_expired = 1 WHERE id = ?")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
