//! The runnable jobs and the agents with room, indexed so that placing a job never reads
//! the whole queue: jobs are grouped by the tag set they need (few distinct sets in
//! practice), each group ordered by when its jobs became runnable; agents with room are
//! ordered by load.
//!
//! - a newly runnable job goes to the least loaded agent with room whose labels cover
//!   its tags ([`Room::find`]);
//! - an agent that gets room takes the oldest job among the groups its labels cover
//!   ([`Queue::oldest_for`]): O(groups × log n).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::model::{AgentId, JobId, PipelineId};

/// The tags a job needs, sorted: the key of its group.
pub type Tags = Arc<[String]>;

pub fn tags_of(tags: &[String]) -> Tags {
    let mut sorted = tags.to_vec();
    sorted.sort();
    sorted.dedup();
    sorted.into()
}

/// A runnable job waiting for an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queued {
    pub job: JobId,
    pub pipeline: PipelineId,
    /// Its place in the queue: smaller became runnable earlier.
    pub order: u64,
}

#[derive(Default)]
pub struct Queue {
    pub(super) groups: HashMap<Tags, BTreeMap<u64, Queued>>,
    pub(super) places: HashMap<JobId, (Tags, u64)>,
    next_order: u64,
}

impl Queue {
    /// A fresh place at the end of the queue.
    pub fn next_order(&mut self) -> u64 {
        self.next_order += 1;
        self.next_order
    }

    /// Queues a job at `order` (a job put back keeps the place it had).
    pub fn push(&mut self, job: JobId, pipeline: PipelineId, tags: Tags, order: u64) {
        self.remove(job);
        self.next_order = self.next_order.max(order);
        self.groups.entry(tags.clone()).or_default().insert(
            order,
            Queued {
                job,
                pipeline,
                order,
            },
        );
        self.places.insert(job, (tags, order));
    }

    /// Takes a job out of the queue; false when it was not queued.
    pub fn remove(&mut self, job: JobId) -> bool {
        let Some((tags, order)) = self.places.remove(&job) else {
            return false;
        };
        if let Some(group) = self.groups.get_mut(&tags) {
            group.remove(&order);
            if group.is_empty() {
                self.groups.remove(&tags);
            }
        }
        true
    }

    /// The oldest queued job whose tags `labels` all cover.
    pub fn oldest_for(&self, labels: &BTreeSet<String>) -> Option<Queued> {
        self.groups
            .iter()
            .filter(|(tags, _)| tags.iter().all(|tag| labels.contains(tag)))
            .filter_map(|(_, group)| group.first_key_value().map(|(_, queued)| *queued))
            .min_by_key(|queued| queued.order)
    }

    /// The oldest queued job of the group `tags`.
    pub fn oldest_of(&self, tags: &Tags) -> Option<Queued> {
        self.groups
            .get(tags)
            .and_then(|group| group.first_key_value().map(|(_, queued)| *queued))
    }
}

/// The connected, unpaused agents that can take another job, least loaded first.
#[derive(Default)]
pub struct Room {
    by_load: BTreeSet<(u32, AgentId)>,
    load_of: HashMap<AgentId, u32>,
}

impl Room {
    /// Says whether `agent` has room, at its current `load`.
    pub fn set(&mut self, agent: AgentId, load: u32, has_room: bool) {
        if let Some(old) = self.load_of.remove(&agent) {
            self.by_load.remove(&(old, agent));
        }
        if has_room {
            self.by_load.insert((load, agent));
            self.load_of.insert(agent, load);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_load.is_empty()
    }

    /// The least loaded agent with room (lowest id first) for which `fits` holds.
    pub fn find(&self, mut fits: impl FnMut(AgentId) -> bool) -> Option<AgentId> {
        self.by_load
            .iter()
            .map(|(_, agent)| *agent)
            .find(|agent| fits(*agent))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    #[test]
    fn an_agent_takes_the_oldest_job_its_labels_cover() {
        let mut queue = Queue::default();
        let docker = tags_of(&["docker".to_string()]);
        let gpu = tags_of(&["gpu".to_string(), "docker".to_string()]);
        for (job, tags) in [(1, &gpu), (2, &docker), (3, &docker)] {
            let order = queue.next_order();
            queue.push(JobId(job), PipelineId(1), tags.clone(), order);
        }
        let taken = queue.oldest_for(&labels(&["docker"])).map(|q| q.job);
        assert_eq!(taken, Some(JobId(2)));
        let taken = queue.oldest_for(&labels(&["docker", "gpu"])).map(|q| q.job);
        assert_eq!(taken, Some(JobId(1)));
        assert_eq!(queue.oldest_for(&labels(&["linux"])), None);
        assert!(queue.remove(JobId(2)));
        assert!(!queue.remove(JobId(2)));
        let taken = queue.oldest_for(&labels(&["docker"])).map(|q| q.job);
        assert_eq!(taken, Some(JobId(3)));
    }

    #[test]
    fn a_job_put_back_keeps_its_place() {
        let mut queue = Queue::default();
        let none = tags_of(&[]);
        let first = queue.next_order();
        queue.push(JobId(1), PipelineId(1), none.clone(), first);
        let second = queue.next_order();
        queue.push(JobId(2), PipelineId(1), none.clone(), second);
        queue.remove(JobId(1));
        queue.push(JobId(1), PipelineId(1), none.clone(), first);
        assert_eq!(queue.oldest_of(&none).map(|q| q.job), Some(JobId(1)));
    }

    #[test]
    fn the_least_loaded_agent_with_room_comes_first() {
        let mut room = Room::default();
        room.set(AgentId(1), 2, true);
        room.set(AgentId(2), 0, true);
        room.set(AgentId(3), 1, true);
        assert_eq!(room.find(|_| true), Some(AgentId(2)));
        room.set(AgentId(2), 1, false);
        assert_eq!(room.find(|_| true), Some(AgentId(3)));
        assert_eq!(room.find(|agent| agent == AgentId(1)), Some(AgentId(1)));
        room.set(AgentId(1), 3, false);
        room.set(AgentId(3), 2, false);
        assert!(room.is_empty());
    }
}
