//! Agents: registered build hosts, known by the hash of their credential.

use serde::Serialize;

use super::{Store, StoreError};
use crate::model::{AgentId, now_ms};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Agent {
    pub id: AgentId,
    pub name: String,
    #[serde(skip)]
    pub token_hash: String,
    #[serde(skip)]
    pub labels_json: String,
    pub version: String,
    pub concurrency: i64,
    pub paused: bool,
    pub registered_at: i64,
    pub last_contact_at: Option<i64>,
    #[serde(skip)]
    pub removed_at: Option<i64>,
}

impl Agent {
    pub fn labels(&self) -> Vec<String> {
        serde_json::from_str(&self.labels_json).unwrap_or_default()
    }
}

impl Store {
    pub async fn insert_agent(
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

    pub async fn agent_by_token_hash(&self, hash: &str) -> Result<Option<Agent>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM agents WHERE token_hash = ? AND removed_at IS NULL")
                .bind(hash)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    pub async fn agents(&self) -> Result<Vec<Agent>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM agents WHERE removed_at IS NULL ORDER BY id")
                .fetch_all(self.pool())
                .await?,
        )
    }

    /// Records a session's announced labels, capacity and version, and the contact time.
    pub async fn update_agent_session(
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

    /// Pauses or resumes an agent; false when there is no such agent.
    pub async fn set_agent_paused(&self, id: AgentId, paused: bool) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE agents SET paused = ? WHERE id = ? AND removed_at IS NULL")
            .bind(paused)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Revokes an agent's credential; false when there is no such agent.
    pub async fn remove_agent(&self, id: AgentId) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE agents SET removed_at = ? WHERE id = ? AND removed_at IS NULL")
                .bind(now_ms())
                .bind(id)
                .execute(self.pool())
                .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn touch_agent(&self, id: AgentId) -> Result<(), StoreError> {
        sqlx::query("UPDATE agents SET last_contact_at = ? WHERE id = ?")
            .bind(now_ms())
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
