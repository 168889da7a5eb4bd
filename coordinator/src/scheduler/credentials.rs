//! Agents' credentials: registering an agent, and knowing which agent a credential names.
//! Every agent call carries its credential, so the answer is kept in memory (by the
//! credential's hash, as the store keeps it) after the first look; removing an agent
//! forgets its entry, so its credential stops working at once.

use super::{Scheduler, SchedulerError};
use crate::memo::Memo;
use crate::model::AgentId;
use crate::tokens;

/// Credential hashes already looked up, and the agent each names.
pub(super) type Credentials = Memo<String, AgentId>;

/// A newly registered agent and the credential it uses from now on (shown only once).
pub struct Registered {
    pub agent: AgentId,
    pub token: String,
}

impl Scheduler {
    /// Registers an agent under `name` with `labels`; answers its credential.
    pub async fn register_agent(
        &self,
        name: &str,
        labels: &[String],
        version: &str,
    ) -> Result<Registered, SchedulerError> {
        let token = tokens::generate();
        let hash = tokens::hash(&token);
        let agent = self
            .store
            .insert_agent(name, &hash, labels, version)
            .await?;
        self.credentials.insert(hash, agent);
        Ok(Registered { agent, token })
    }

    /// The agent whose credential is `token`, if any.
    pub async fn authenticate(&self, token: &str) -> Result<Option<AgentId>, SchedulerError> {
        let hash = tokens::hash(token);
        if let Some(agent) = self.credentials.get(&hash) {
            return Ok(Some(agent));
        }
        let Some(agent) = self.store.agent_by_token_hash(&hash).await? else {
            return Ok(None);
        };
        self.credentials.insert(hash, agent.id);
        Ok(Some(agent.id))
    }
}
