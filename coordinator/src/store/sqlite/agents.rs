//! Agents in SQLite: [`AgentStore`] for [`SqliteStore`].

use async_trait::async_trait;

use super::SqliteStore;
use crate::model::{AgentId, now_ms};
use crate::store::StoreError;
use crate::store::agents::*;

#[async_trait]
impl AgentStore for SqliteStore {
    async fn insert_agent(
        &self,
        name: &str,
        token_hash: &str,
        labels: &[String],
        version: &str,
    ) -> Result<AgentId, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO agents (name, token_hash, labels_json, version, registered_at)
             VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(name)
        .bind(token_hash)
        .bind(serde_json::to_string(labels)?)
        .bind(version)
        .bind(now_ms())
        .fetch_one(self.pool())
        .await?)
    }

    async fn agent_by_token_hash(&self, hash: &str) -> Result<Option<Agent>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM agents WHERE token_hash = ? AND removed_at IS NULL")
                .bind(hash)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    async fn agents(&self) -> Result<Vec<Agent>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM agents WHERE removed_at IS NULL ORDER BY id")
                .fetch_all(self.pool())
                .await?,
        )
    }

    async fn update_agent_session(
        &self,
        id: AgentId,
        labels: &[String],
        concurrency: u32,
        version: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE agents SET labels_json = ?, concurrency = ?, version = ?, last_contact_at = ?
             WHERE id = ?",
        )
        .bind(serde_json::to_string(labels)?)
        .bind(concurrency)
        .bind(version)
        .bind(now_ms())
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn set_agent_paused(&self, id: AgentId, paused: bool) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE agents SET paused = ? WHERE id = ? AND removed_at IS NULL")
            .bind(paused)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn remove_agent(&self, id: AgentId) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE agents SET removed_at = ? WHERE id = ? AND removed_at IS NULL")
                .bind(now_ms())
                .bind(id)
                .execute(self.pool())
                .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn touch_agent(&self, id: AgentId) -> Result<(), StoreError> {
        sqlx::query("UPDATE agents SET last_contact_at = ? WHERE id = ?")
            .bind(now_ms())
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
