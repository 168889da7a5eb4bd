//! Artifact expiry (`artifacts: expire_in`).
//!
//! The expiry is fixed when the archive is stored — the agent uploads it as the job ends,
//! just before completing it — as the upload time plus `expire_in`; `expire_in: never` and
//! no `expire_in` keep the archive. A sweeper task wakes every `--artifacts-sweep-interval`,
//! deletes the archives whose time has come from the data dir and marks their jobs
//! `artifacts_expired`: the job keeps its size and expiry for the record, and downloads
//! answer 410 Gone (REST) or FAILED_PRECONDITION (a later job's agent).
//!
//! Two kinds of archives are kept past their expiry (see [`Store::expired_artifacts`]):
//! those of pipelines still running, whose later stages may still need them, and those of
//! the latest successful pipeline of each ref, as GitLab's "keep artifacts from the most
//! recent successful jobs" does by default. Both go at the first sweep after they stop
//! being so (a newer pipeline of the ref succeeded).
//!
//! [`Store::expired_artifacts`]: crate::store::Store::expired_artifacts

use std::time::Duration;

use tracing::{info, warn};

use crate::artifacts::{ArtifactError, ArtifactStore};
use crate::model::now_ms;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Artifacts(#[from] ArtifactError),
}

/// When artifacts stored at `now` (ms) by a job of this spec expire; `None`: never.
pub fn expire_at(spec_json: &str, now: i64) -> Option<i64> {
    let spec: esteira_pipeline::PlannedJob = serde_json::from_str(spec_json).ok()?;
    let secs = spec.artifacts?.expire_in_secs?;
    let millis = i64::try_from(secs).unwrap_or(i64::MAX).saturating_mul(1000);
    Some(now.saturating_add(millis))
}

/// Deletes every archive that may go now; returns how many went.
pub async fn sweep(store: &Store, artifacts: &ArtifactStore) -> Result<usize, SweepError> {
    let expired = store.expired_artifacts(now_ms()).await?;
    for &job in &expired {
        // The file first: a crash between the two leaves a row the next sweep marks.
        artifacts.remove(job).await?;
        store.mark_artifacts_expired(job).await?;
        info!(job_id = %job, "expired artifacts deleted");
    }
    Ok(expired.len())
}

/// Runs [`sweep`] every `every`, for the life of the process.
pub fn spawn(store: Store, artifacts: ArtifactStore, every: Duration) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(error) = sweep(&store, &artifacts).await {
                warn!(%error, "sweeping expired artifacts failed");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use esteira_pipeline::{Artifacts, PlannedJob};

    use super::*;

    fn spec(expire_in_secs: Option<u64>) -> String {
        let job = PlannedJob {
            artifacts: Some(Artifacts {
                paths: vec!["out/".to_string()],
                expire_in_secs,
                ..Artifacts::default()
            }),
            ..PlannedJob::default()
        };
        serde_json::to_string(&job).unwrap()
    }

    #[test]
    fn the_expiry_is_the_upload_time_plus_expire_in() {
        assert_eq!(expire_at(&spec(Some(90)), 1_000), Some(91_000));
        assert_eq!(expire_at(&spec(None), 1_000), None, "expire_in: never");
        let without = serde_json::to_string(&PlannedJob::default()).unwrap();
        assert_eq!(expire_at(&without, 1_000), None, "no artifacts:");
    }
}
