//! Jobs' artifacts as the database knows them: size, expiry, and which archives the
//! sweeper may delete. The archives themselves are [`crate::artifacts`]'s.

use async_trait::async_trait;

use super::StoreError;
use crate::model::JobId;

/// What is known of jobs' artifact archives: size, expiry, deletion.
#[async_trait]
pub trait ArtifactRecords: Send + Sync {
    /// Records a job's stored archive: its size and when it expires (`None`: never).
    async fn set_artifacts(
        &self,
        id: JobId,
        size: u64,
        expire_at: Option<i64>,
    ) -> Result<(), StoreError>;

    /// Jobs whose archives expired by `now` and may go: their pipeline has finished and is
    /// not the latest successful one of its ref (GitLab's "keep latest artifacts").
    async fn expired_artifacts(&self, now: i64) -> Result<Vec<JobId>, StoreError>;

    /// Marks a job's archive as deleted by the sweeper.
    async fn mark_artifacts_expired(&self, id: JobId) -> Result<(), StoreError>;
}
