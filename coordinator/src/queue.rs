//! The queue as admins read it (`GET /api/v1/queue`): the pending jobs grouped by the tag
//! set they require (a job runs on an agent whose labels include every tag) and, per
//! group, how many wait, since when the oldest waits, and which agents could take them now
//! (online, not paused, with the labels). [`group`] is a pure function of the pending
//! jobs (oldest first) and the available agents.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::model::{AgentId, JobId};
use crate::store::agents::Agent;
use crate::store::jobs::Waiting;

/// The jobs waiting for one tag set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueGroup {
    /// The tags the jobs require, sorted; empty: any agent will do.
    pub tags: Vec<String>,
    pub pending: u64,
    /// The job waiting longest, and since when.
    pub oldest_job: JobId,
    pub oldest_queued_at: Option<i64>,
    /// How long the oldest job has waited, in milliseconds.
    pub longest_wait_ms: i64,
    /// The agents that could take these jobs now.
    pub agents: Vec<Taker>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Taker {
    pub id: AgentId,
    pub name: String,
}

/// Groups `waiting` (oldest first) by tag set, longest wait first.
pub fn group(waiting: &[Waiting], available: &[Agent], now: i64) -> Vec<QueueGroup> {
    let mut groups: BTreeMap<Vec<String>, QueueGroup> = BTreeMap::new();
    for job in waiting {
        let tags: BTreeSet<String> = job
            .tags
            .as_deref()
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or_default();
        let tags: Vec<String> = tags.into_iter().collect();
        groups
            .entry(tags.clone())
            .or_insert_with(|| QueueGroup {
                agents: available
                    .iter()
                    .filter(|agent| {
                        let labels = agent.labels();
                        tags.iter().all(|tag| labels.contains(tag))
                    })
                    .map(|agent| Taker {
                        id: agent.id,
                        name: agent.name.clone(),
                    })
                    .collect(),
                tags,
                pending: 0,
                oldest_job: job.id,
                oldest_queued_at: job.queued_at,
                longest_wait_ms: job.queued_at.map_or(0, |at| (now - at).max(0)),
            })
            .pending += 1;
    }
    let mut groups: Vec<QueueGroup> = groups.into_values().collect();
    groups.sort_by_key(|group| std::cmp::Reverse(group.longest_wait_ms));
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(id: i64, queued_at: i64, tags: &str) -> Waiting {
        Waiting {
            id: JobId(id),
            queued_at: Some(queued_at),
            tags: Some(tags.to_string()),
        }
    }

    fn agent(id: i64, name: &str, labels: &[&str]) -> Agent {
        Agent {
            id: AgentId(id),
            name: name.to_string(),
            token_hash: String::new(),
            labels_json: serde_json::to_string(labels).unwrap(),
            version: "0.1.0".into(),
            concurrency: 1,
            paused: false,
            registered_at: 0,
            last_contact_at: None,
            removed_at: None,
        }
    }

    #[test]
    fn jobs_group_by_tag_set_longest_wait_first_with_their_takers() {
        let jobs = [
            waiting(1, 1_000, r#"["linux", "docker"]"#),
            waiting(2, 4_000, "[]"),
            waiting(3, 5_000, r#"["docker", "linux"]"#),
            waiting(4, 6_000, r#"["gpu"]"#),
        ];
        let agents = [
            agent(1, "small", &["docker"]),
            agent(2, "big", &["docker", "linux"]),
        ];
        let groups = group(&jobs, &agents, 10_000);
        assert_eq!(
            serde_json::to_value(&groups).unwrap(),
            serde_json::json!([
                {"tags": ["docker", "linux"], "pending": 2, "oldest_job": 1,
                 "oldest_queued_at": 1_000, "longest_wait_ms": 9_000,
                 "agents": [{"id": 2, "name": "big"}]},
                {"tags": [], "pending": 1, "oldest_job": 2, "oldest_queued_at": 4_000,
                 "longest_wait_ms": 6_000,
                 "agents": [{"id": 1, "name": "small"}, {"id": 2, "name": "big"}]},
                {"tags": ["gpu"], "pending": 1, "oldest_job": 4, "oldest_queued_at": 6_000,
                 "longest_wait_ms": 4_000, "agents": []},
            ])
        );
    }

    #[test]
    fn an_empty_queue_has_no_groups() {
        assert!(group(&[], &[agent(1, "a", &[])], 0).is_empty());
    }
}
