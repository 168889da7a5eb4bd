//! Webhook deliveries claimed once, and the refs polling has seen in SQLite: [`DeliveryStore`] for [`SqliteStore`].

use async_trait::async_trait;

use super::SqliteStore;
use crate::model::{PipelineId, ProjectId, now_ms};
use crate::store::StoreError;
use crate::store::deliveries::*;

#[async_trait]
impl DeliveryStore for SqliteStore {
    async fn claim_delivery(&self, new: &NewDelivery<'_>) -> Result<Claim, StoreError> {
        let inserted = sqlx::query_as::<_, Delivery>(
            "INSERT INTO deliveries
                (project_id, forge, delivery_id, event_key, event, outcome, message, received_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT DO NOTHING RETURNING *",
        )
        .bind(new.project_id.0)
        .bind(new.forge)
        .bind(new.delivery_id)
        .bind(new.event_key)
        .bind(new.event)
        .bind(new.outcome)
        .bind(new.message)
        .bind(now_ms())
        .fetch_optional(self.pool())
        .await?;
        if let Some(row) = inserted {
            return Ok(Claim::New(row));
        }
        let earlier = sqlx::query_as::<_, Delivery>(
            "SELECT * FROM deliveries WHERE project_id = ?
               AND ((delivery_id IS NOT NULL AND delivery_id = ?)
                 OR (event_key IS NOT NULL AND event_key = ?))
             ORDER BY id LIMIT 1",
        )
        .bind(new.project_id.0)
        .bind(new.delivery_id)
        .bind(new.event_key)
        .fetch_one(self.pool())
        .await?;
        Ok(Claim::Seen(earlier))
    }

    async fn finish_delivery(
        &self,
        id: i64,
        outcome: &str,
        pipeline: Option<PipelineId>,
        message: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE deliveries SET outcome = ?, pipeline_id = ?, message = ? WHERE id = ?")
            .bind(outcome)
            .bind(pipeline.map(|p| p.0))
            .bind(message)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn release_delivery(&self, id: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM deliveries WHERE id = ?")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn delivery(&self, id: i64) -> Result<Option<Delivery>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM deliveries WHERE id = ?")
            .bind(id)
            .fetch_optional(self.pool())
            .await?)
    }

    async fn deliveries(
        &self,
        project: ProjectId,
        limit: i64,
    ) -> Result<Vec<Delivery>, StoreError> {
        Ok(
            sqlx::query_as(
                "SELECT * FROM deliveries WHERE project_id = ? ORDER BY id DESC LIMIT ?",
            )
            .bind(project.0)
            .bind(limit)
            .fetch_all(self.pool())
            .await?,
        )
    }

    async fn polled_refs(&self, project: ProjectId) -> Result<Vec<(String, String)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT name, sha FROM polled_refs WHERE project_id = ? ORDER BY name")
                .bind(project.0)
                .fetch_all(self.pool())
                .await?,
        )
    }

    async fn set_polled_refs(
        &self,
        project: ProjectId,
        refs: &[(String, String)],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM polled_refs WHERE project_id = ?")
            .bind(project.0)
            .execute(&mut *tx)
            .await?;
        for (name, sha) in refs {
            sqlx::query("INSERT INTO polled_refs (project_id, name, sha) VALUES (?, ?, ?)")
                .bind(project.0)
                .bind(name)
                .bind(sha)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
