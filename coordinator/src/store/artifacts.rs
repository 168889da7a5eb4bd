//! Jobs' artifacts as the database knows them: size, expiry, and which archives the
//! sweeper may delete. The archives themselves are [`crate::artifacts`]'s.

use super::{Store, StoreError};
use crate::model::JobId;

impl Store {
    /// Records a job's stored archive: its size and when it expires (`None`: never).
    pub async fn set_artifacts(
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

    /// Jobs whose archives expired by `now` and may go: their pipeline has finished and is
    /// not the latest successful one of its ref (GitLab's "keep latest artifacts").
    pub async fn expired_artifacts(&self, now: i64) -> Result<Vec<JobId>, StoreError> {
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

    /// Marks a job's archive as deleted by the sweeper.
    pub async fn mark_artifacts_expired(&self, id: JobId) -> Result<(), StoreError> {
        sqlx::query("UPDATE jobs SET artifacts_expired = 1 WHERE id = ?")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
