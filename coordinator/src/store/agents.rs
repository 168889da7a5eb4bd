//! Agents: registered build hosts, known by the hash of their credential.

use serde::Serialize;

use async_trait::async_trait;

use super::StoreError;
use crate::model::AgentId;

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

/// Agents: registration, sessions, pause and removal.
#[async_trait]
pub trait AgentStore: Send + Sync {
    async fn insert_agent(
        &self,
        name: &str,
        token_hash: &str,
        labels: &[String],
        version: &str,
    ) -> Result<AgentId, StoreError>;

    async fn agent_by_token_hash(&self, hash: &str) -> Result<Option<Agent>, StoreError>;

    async fn agents(&self) -> Result<Vec<Agent>, StoreError>;

    /// Records a session's announced labels, capacity and version, and the contact time.
    async fn update_agent_session(
        &self,
        id: AgentId,
        labels: &[String],
        concurrency: u32,
        version: &str,
    ) -> Result<(), StoreError>;

    /// Pauses or resumes an agent; false when there is no such agent.
    async fn set_agent_paused(&self, id: AgentId, paused: bool) -> Result<bool, StoreError>;

    /// Revokes an agent's credential; false when there is no such agent.
    async fn remove_agent(&self, id: AgentId) -> Result<bool, StoreError>;

    async fn touch_agent(&self, id: AgentId) -> Result<(), StoreError>;
}
