//! What an agent is doing, as admins see it: `busy` or `idle` while it holds a session,
//! `paused` when told to take no jobs, `draining` when it closed its session but still
//! heartbeats for the jobs it runs, `offline` otherwise.

use std::time::Duration;

use serde::Serialize;

use crate::scheduler::heartbeat_interval;
use crate::store::agents::Agent;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentStatus {
    Busy,
    Idle,
    Paused,
    Draining,
    Offline,
}

impl AgentStatus {
    /// The name the API and the metrics give it.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Busy => "busy",
            AgentStatus::Idle => "idle",
            AgentStatus::Paused => "paused",
            AgentStatus::Draining => "draining",
            AgentStatus::Offline => "offline",
        }
    }
}

/// The status of `agent`, which holds a session when `online` and runs `running_jobs`,
/// at `now` (ms) when leases last `lease_timeout`.
pub fn status(
    agent: &Agent,
    online: bool,
    running_jobs: usize,
    lease_timeout: Duration,
    now: i64,
) -> AgentStatus {
    let heartbeat_window = 2_000 * i64::from(heartbeat_interval(lease_timeout));
    // An agent told to stop closes its session but heartbeats until its jobs end.
    let heartbeating = agent
        .last_contact_at
        .is_some_and(|at| now - at <= heartbeat_window);
    match (online, agent.paused, running_jobs == 0) {
        (false, _, false) if heartbeating => AgentStatus::Draining,
        (false, _, _) => AgentStatus::Offline,
        (true, true, _) => AgentStatus::Paused,
        (true, false, true) => AgentStatus::Idle,
        (true, false, false) => AgentStatus::Busy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AgentId;

    fn agent(paused: bool, last_contact_at: Option<i64>) -> Agent {
        Agent {
            id: AgentId(1),
            name: "a".into(),
            token_hash: String::new(),
            labels_json: "[]".into(),
            version: "0.1.0".into(),
            concurrency: 1,
            paused,
            registered_at: 0,
            last_contact_at,
            removed_at: None,
        }
    }

    #[test]
    fn an_agent_without_a_session_drains_while_it_heartbeats_for_its_jobs() {
        let lease = Duration::from_secs(30);
        let recent = agent(false, Some(100_000));
        assert_eq!(
            status(&recent, false, 1, lease, 101_000),
            AgentStatus::Draining
        );
        assert_eq!(
            status(&recent, false, 0, lease, 101_000),
            AgentStatus::Offline
        );
        let silent = agent(false, Some(0));
        assert_eq!(
            status(&silent, false, 1, lease, 1_000_000),
            AgentStatus::Offline
        );
        assert_eq!(
            status(&agent(true, None), true, 1, lease, 0),
            AgentStatus::Paused
        );
        assert_eq!(status(&recent, true, 0, lease, 0), AgentStatus::Idle);
        assert_eq!(status(&recent, true, 2, lease, 0), AgentStatus::Busy);
    }
}
