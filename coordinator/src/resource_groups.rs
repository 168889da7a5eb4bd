//! Resource groups: a `resource_group` lets one job at a time run per group and project,
//! across pipelines (the scheduler keeps that rule). When several jobs wait for a free
//! group, the group's process mode says whose turn it is, as in GitLab:
//!
//! - `unordered` (the default): any waiting job, in the order they became pending;
//! - `oldest_first`: the job of the oldest pipeline;
//! - `newest_first`: the job of the newest pipeline (the older ones wait, and a deploy
//!   that becomes outdated meanwhile is skipped by the scheduler).
//!
//! The modes are set over REST ([`crate::api`]).

use std::collections::HashMap;

use crate::model::{JobId, PipelineId, ProcessMode, ProjectId};

/// A pending job of a resource group.
#[derive(Debug, Clone)]
pub struct WaitingForResource {
    pub group: (ProjectId, String),
    pub mode: ProcessMode,
    pub pipeline: PipelineId,
    pub job: JobId,
}

/// The job whose turn it is in each group with an ordered process mode; groups in
/// `unordered` mode have no entry (every waiting job may take the group).
pub fn turns(waiting: &[WaitingForResource]) -> HashMap<(ProjectId, String), JobId> {
    let mut chosen: HashMap<(ProjectId, String), &WaitingForResource> = HashMap::new();
    let order = |w: &WaitingForResource| (w.pipeline, w.job);
    for candidate in waiting {
        let newest_wins = match candidate.mode {
            ProcessMode::Unordered => continue,
            ProcessMode::OldestFirst => false,
            ProcessMode::NewestFirst => true,
        };
        if chosen
            .get(&candidate.group)
            .is_none_or(|current| (order(candidate) > order(current)) == newest_wins)
        {
            chosen.insert(candidate.group.clone(), candidate);
        }
    }
    chosen
        .into_iter()
        .map(|(group, waiting)| (group, waiting.job))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(group: &str, mode: ProcessMode, pipeline: i64, job: i64) -> WaitingForResource {
        WaitingForResource {
            group: (ProjectId(1), group.to_string()),
            mode,
            pipeline: PipelineId(pipeline),
            job: JobId(job),
        }
    }

    #[test]
    fn each_ordered_group_gets_the_job_of_its_oldest_or_newest_pipeline() {
        let queue = [
            waiting("staging", ProcessMode::OldestFirst, 7, 70),
            waiting("staging", ProcessMode::OldestFirst, 5, 50),
            waiting("staging", ProcessMode::OldestFirst, 9, 90),
            waiting("production", ProcessMode::NewestFirst, 5, 51),
            waiting("production", ProcessMode::NewestFirst, 9, 91),
            waiting("production", ProcessMode::NewestFirst, 7, 71),
            waiting("review", ProcessMode::Unordered, 3, 30),
        ];
        let turns = turns(&queue);
        assert_eq!(turns[&(ProjectId(1), "staging".to_string())], JobId(50));
        assert_eq!(turns[&(ProjectId(1), "production".to_string())], JobId(91));
        assert!(
            !turns.contains_key(&(ProjectId(1), "review".to_string())),
            "an unordered group lets any waiting job go"
        );
    }

    #[test]
    fn groups_of_other_projects_are_apart() {
        let mut other = waiting("production", ProcessMode::NewestFirst, 2, 20);
        other.group.0 = ProjectId(2);
        let queue = [
            waiting("production", ProcessMode::NewestFirst, 1, 10),
            other,
        ];
        let turns = turns(&queue);
        assert_eq!(turns.len(), 2);
        assert_eq!(turns[&(ProjectId(1), "production".to_string())], JobId(10));
    }

    #[test]
    fn process_modes_parse_and_unknown_ones_are_named() {
        assert_eq!(
            "newest_first".parse::<ProcessMode>(),
            Ok(ProcessMode::NewestFirst)
        );
        let error = "latest".parse::<ProcessMode>().unwrap_err();
        assert!(error.contains("\"latest\""), "{error}");
    }
}
