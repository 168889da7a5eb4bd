//! Reads of jobs for the reports of the HTTP side: the queue by required tags and the job
//! counts of the metrics. They belong with [`super::jobs`] and are to be folded into it;
//! they live apart only while that file is rewritten.

use super::{Store, StoreError};
use crate::model::JobId;

/// A pending job as the queue report needs it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Waiting {
    pub id: JobId,
    pub queued_at: Option<i64>,
    /// The `tags` of the job's spec, as JSON.
    pub tags: Option<String>,
}

impl Store {
    /// The pending jobs, oldest first, read through the `jobs_by_status` index (the cost
    /// follows the queue's length, not the history's).
    pub async fn waiting_jobs(&self) -> Result<Vec<Waiting>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, queued_at, json_extract(spec_json, '$.tags') AS tags
             FROM jobs WHERE status = 'pending' ORDER BY queued_at, id",
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// How many jobs are in each status, counting each job's latest attempt only.
    pub async fn job_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT status, count(*) FROM jobs WHERE retried = 0 GROUP BY status")
                .fetch_all(self.pool())
                .await?,
        )
    }
}
