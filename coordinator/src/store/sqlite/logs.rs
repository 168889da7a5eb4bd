//! Job logs, exactly the bytes the job printed in SQLite: [`LogStore`] for [`SqliteStore`].

use async_trait::async_trait;

use super::SqliteStore;
use crate::model::{AgentId, JobId};
use crate::store::StoreError;
use crate::store::logs::*;
use futures::TryStreamExt;

#[async_trait]
impl LogStore for SqliteStore {
    async fn append_log(
        &self,
        job: JobId,
        agent: AgentId,
        epoch: i64,
        offset: u64,
        data: &[u8],
        stamps: &[LineStamp],
        limit: u64,
    ) -> Result<Option<Appended>, StoreError> {
        let mut tx = self.write().await?;
        let row: Option<(i64, bool)> = sqlx::query_as(
            "SELECT log_size, log_truncated FROM jobs
             WHERE id = ? AND agent_id = ? AND lease_epoch = ? AND status = 'running'",
        )
        .bind(job)
        .bind(agent)
        .bind(epoch)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((size, truncated)) = row else {
            return Ok(None);
        };
        let size = u64::try_from(size).unwrap_or(0);
        let end = offset + data.len() as u64;
        if offset > size || end <= size {
            // A gap (the agent must resend from `size`) or nothing new.
            return Ok(Some(Appended {
                acknowledged: size,
                grew: false,
            }));
        }
        let fresh = &data[usize::try_from(size - offset).unwrap_or(0)..];
        let mut now_truncated = truncated;
        if !truncated {
            let room = limit.saturating_sub(size);
            let (stored, marker) = if fresh.len() as u64 > room {
                now_truncated = true;
                let marker = format!(
                    "\n\x1b[31;1mesteira: the log exceeded its limit of {limit} bytes and was truncated\x1b[0;m\n"
                );
                (&fresh[..usize::try_from(room).unwrap_or(0)], Some(marker))
            } else {
                (fresh, None)
            };
            let mut chunk = stored.to_vec();
            if let Some(marker) = marker {
                chunk.extend_from_slice(marker.as_bytes());
            }
            sqlx::query("INSERT INTO log_chunks (job_id, offset, data) VALUES (?, ?, ?)")
                .bind(job)
                .bind(i64::try_from(size).unwrap_or(i64::MAX))
                .bind(chunk)
                .execute(&mut *tx)
                .await?;
            let stored_end = size + stored.len() as u64;
            let kept = stamps
                .iter()
                .filter(|stamp| (size..stored_end).contains(&stamp.offset));
            for stamp in kept {
                sqlx::query(
                    "INSERT OR IGNORE INTO log_stamps (job_id, offset, at_ms) VALUES (?, ?, ?)",
                )
                .bind(job)
                .bind(i64::try_from(stamp.offset).unwrap_or(i64::MAX))
                .bind(stamp.at_ms)
                .execute(&mut *tx)
                .await?;
            }
        }
        sqlx::query("UPDATE jobs SET log_size = ?, log_truncated = ? WHERE id = ?")
            .bind(i64::try_from(end).unwrap_or(i64::MAX))
            .bind(now_truncated)
            .bind(job)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(Appended {
            acknowledged: end,
            grew: true,
        }))
    }

    async fn read_log(
        &self,
        job: JobId,
        from: u64,
        max: usize,
    ) -> Result<(Vec<u8>, u64), StoreError> {
        let mut rows = sqlx::query_as::<_, (i64, Vec<u8>)>(
            "SELECT offset, data FROM log_chunks WHERE job_id = ? AND offset + length(data) > ?
             ORDER BY offset",
        )
        .bind(job)
        .bind(i64::try_from(from).unwrap_or(i64::MAX))
        .fetch(self.pool());
        let mut out = Vec::new();
        let mut next = from;
        while let Some((offset, data)) = rows.try_next().await? {
            let offset = u64::try_from(offset).unwrap_or(0);
            let skip = usize::try_from(next.saturating_sub(offset))
                .unwrap_or(0)
                .min(data.len());
            out.extend_from_slice(&data[skip..]);
            next = offset + data.len() as u64;
            if out.len() >= max {
                break;
            }
        }
        Ok((out, next))
    }

    async fn log_stamps(
        &self,
        job: JobId,
        from: u64,
        max: usize,
    ) -> Result<Vec<LineStamp>, StoreError> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT offset, at_ms FROM log_stamps WHERE job_id = ? AND offset >= ?
             ORDER BY offset LIMIT ?",
        )
        .bind(job)
        .bind(i64::try_from(from).unwrap_or(i64::MAX))
        .bind(i64::try_from(max).unwrap_or(i64::MAX))
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(offset, at_ms)| LineStamp {
                offset: u64::try_from(offset).unwrap_or(0),
                at_ms,
            })
            .collect())
    }
}
