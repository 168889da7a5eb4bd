//! Why a job that has not started waits, as the scheduler sees it now: its earlier stages
//! or its `needs`, a manual action, its resource group's holder, or the agents (none
//! online with its tags, all paused, all busy and its place in the queue).
//!
//! [`Scheduler::why_waiting`] gathers the facts under the decision lock without changing
//! anything; [`reason`] draws the answer from them as plain data, so it is tested alone.

use serde::Serialize;

use super::graph::Slot;
use super::queue::{Queue, tags_of};
use super::{Scheduler, SchedulerError, State, rules};
use crate::model::{AgentId, JobId, JobStatus, PipelineId};
use crate::store::jobs::Job;

/// A job named in a reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobRef {
    pub id: JobId,
    pub name: String,
    pub stage: String,
    pub status: JobStatus,
}

impl JobRef {
    fn of(slot: &Slot) -> JobRef {
        JobRef {
            id: slot.id,
            name: slot.name.clone(),
            stage: slot.spec.stage.clone(),
            status: slot.status,
        }
    }
}

/// The job whose turn it is in a resource group, and its pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Holder {
    pub job: JobRef,
    pub pipeline: PipelineId,
}

/// An agent named in a reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentRef {
    pub id: AgentId,
    pub name: String,
}

/// What a job that has not started waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Waiting {
    /// Jobs of earlier stages have not finished.
    Stage { jobs: Vec<JobRef> },
    /// Jobs its `needs` names have not finished.
    Needs { jobs: Vec<JobRef> },
    /// A manual job: it runs when someone starts it.
    Manual,
    /// Another job holds its resource group (`holder` is `None` until the group's next
    /// turn is given).
    ResourceGroup {
        group: String,
        holder: Option<Holder>,
    },
    /// No online agent carries all its tags; `offline` are the agents that would.
    NoOnlineAgent {
        tags: Vec<String>,
        offline: Vec<AgentRef>,
    },
    /// Every online agent that carries its tags is paused.
    AgentsPaused {
        tags: Vec<String>,
        paused: Vec<AgentRef>,
    },
    /// Every agent that carries its tags is busy; the job is `position` (from 1) of the
    /// `queued` jobs needing these tags.
    AgentsBusy {
        tags: Vec<String>,
        agents: Vec<AgentRef>,
        position: usize,
        queued: usize,
    },
}

/// One known agent as [`reason`] reads it.
#[derive(Debug, Clone)]
pub struct AgentFacts {
    pub agent: AgentRef,
    pub labels: Vec<String>,
    pub online: bool,
    pub paused: bool,
}

/// Where a pending job is kept.
#[derive(Debug, Clone)]
pub enum Place {
    /// Beside the queue, waiting for its resource group's turn.
    Group {
        group: String,
        holder: Option<Holder>,
    },
    /// In the queue of its tag set, `position` (from 1) of `queued`.
    Queue { position: usize, queued: usize },
}

/// Why `job`, one of `pipeline`'s latest attempts, waits: `place` is where a pending job
/// is kept, `agents` every known agent. `None` when it does not wait (it started, it
/// ended, or nothing holds it back any more).
pub fn reason(
    job: &Slot,
    pipeline: &[Slot],
    place: Option<Place>,
    agents: &[AgentFacts],
) -> Option<Waiting> {
    let holding = |waits_for: &dyn Fn(&Slot) -> bool| -> Vec<JobRef> {
        pipeline
            .iter()
            .filter(|other| {
                waits_for(other) && !rules::lets_later_jobs_start(&other.spec, other.status)
            })
            .map(JobRef::of)
            .collect()
    };
    let waiting = match job.status {
        JobStatus::Manual => Waiting::Manual,
        JobStatus::Created => match &job.spec.needs {
            Some(needs) => Waiting::Needs {
                jobs: holding(&|other| {
                    needs
                        .iter()
                        .any(|need| rules::is_needed_as(&other.name, &need.job))
                }),
            },
            None => Waiting::Stage {
                jobs: holding(&|other| other.stage_index < job.stage_index),
            },
        },
        JobStatus::Pending => match place? {
            Place::Group { group, holder } => Waiting::ResourceGroup { group, holder },
            Place::Queue { position, queued } => agents_reason(job, agents, position, queued),
        },
        _ => return None,
    };
    match &waiting {
        Waiting::Stage { jobs } | Waiting::Needs { jobs } if jobs.is_empty() => None,
        _ => Some(waiting),
    }
}

/// Why a queued job has no agent.
fn agents_reason(job: &Slot, agents: &[AgentFacts], position: usize, queued: usize) -> Waiting {
    let tags = tags_of(&job.spec.tags).to_vec();
    let matching = || {
        agents
            .iter()
            .filter(|facts| tags.iter().all(|tag| facts.labels.contains(tag)))
    };
    let named = |facts: &AgentFacts| facts.agent.clone();
    let available: Vec<AgentRef> = matching()
        .filter(|facts| facts.online && !facts.paused)
        .map(named)
        .collect();
    if !available.is_empty() {
        return Waiting::AgentsBusy {
            tags,
            agents: available,
            position,
            queued,
        };
    }
    let paused: Vec<AgentRef> = matching().filter(|facts| facts.online).map(named).collect();
    if !paused.is_empty() {
        return Waiting::AgentsPaused { tags, paused };
    }
    let offline = matching().map(named).collect();
    Waiting::NoOnlineAgent { tags, offline }
}

/// Where `job` sits in its tag set's queue.
fn queue_place(queue: &Queue, job: JobId) -> Option<Place> {
    let (tags, order) = queue.places.get(&job)?;
    let group = queue.groups.get(tags)?;
    Some(Place::Queue {
        position: group.range(..order).count() + 1,
        queued: group.len(),
    })
}

impl State {
    /// The resource group `job` waits beside the queue for, with its holder.
    fn group_place(&self, job: JobId) -> Option<Place> {
        let (key, _) = self
            .group_waiting
            .iter()
            .find(|(_, waiting)| waiting.iter().any(|(waiting, ..)| *waiting == job))?;
        let holder = self.group_holders.get(key).and_then(|holder| {
            self.graphs.values().find_map(|graph| {
                graph.slot(*holder).map(|slot| Holder {
                    job: JobRef::of(slot),
                    pipeline: graph.pipeline.id,
                })
            })
        });
        Some(Place::Group {
            group: key.1.clone(),
            holder,
        })
    }
}

impl Scheduler {
    /// Why `job` has not started; `None` once it started or ended. Changes nothing.
    pub async fn why_waiting(&self, job: &Job) -> Result<Option<Waiting>, SchedulerError> {
        if !matches!(
            job.status,
            JobStatus::Created | JobStatus::Pending | JobStatus::Manual
        ) {
            return Ok(None);
        }
        let known = self.store.agents().await?;
        let state = self.decide().await;
        let Some(graph) = state.graphs.get(&job.pipeline_id) else {
            return Ok(None);
        };
        let Some(slot) = graph.slot(job.id) else {
            return Ok(None);
        };
        let place = state
            .group_place(job.id)
            .or_else(|| queue_place(&state.queue, job.id));
        let agents: Vec<AgentFacts> = known
            .iter()
            .map(|agent| {
                let session = state.sessions.get(&agent.id);
                AgentFacts {
                    agent: AgentRef {
                        id: agent.id,
                        name: agent.name.clone(),
                    },
                    labels: session.map_or_else(
                        || agent.labels(),
                        |session| session.labels.iter().cloned().collect(),
                    ),
                    online: session.is_some(),
                    paused: state.paused.contains(&agent.id),
                }
            })
            .collect();
        Ok(reason(slot, graph.slots(), place, &agents))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use esteira_pipeline::{AllowFailure, Need, PlannedJob, When};

    use super::*;

    fn slot(id: i64, name: &str, stage_index: i64, status: JobStatus) -> Slot {
        slot_of(
            id,
            status,
            PlannedJob {
                name: name.to_string(),
                stage: format!("stage{stage_index}"),
                ..PlannedJob::default()
            },
            stage_index,
        )
    }

    fn slot_of(id: i64, status: JobStatus, spec: PlannedJob, stage_index: i64) -> Slot {
        Slot {
            id: JobId(id),
            name: spec.name.clone(),
            stage_index,
            status,
            exit_code: None,
            attempt: 1,
            spec: Arc::new(spec),
            spec_json: "{}".into(),
        }
    }

    fn tagged(id: i64, tags: &[&str]) -> Slot {
        let spec = PlannedJob {
            name: "deploy".to_string(),
            tags: tags.iter().map(|tag| tag.to_string()).collect(),
            ..PlannedJob::default()
        };
        slot_of(id, JobStatus::Pending, spec, 0)
    }

    fn agent(id: i64, labels: &[&str], online: bool, paused: bool) -> AgentFacts {
        AgentFacts {
            agent: AgentRef {
                id: AgentId(id),
                name: format!("agent{id}"),
            },
            labels: labels.iter().map(|label| label.to_string()).collect(),
            online,
            paused,
        }
    }

    fn named(id: i64) -> AgentRef {
        AgentRef {
            id: AgentId(id),
            name: format!("agent{id}"),
        }
    }

    fn queued(position: usize, queued: usize) -> Option<Place> {
        Some(Place::Queue { position, queued })
    }

    #[test]
    fn a_created_job_names_the_earlier_stages_unfinished_jobs() {
        let mut optional_manual = slot(2, "review", 0, JobStatus::Manual);
        Arc::make_mut(&mut optional_manual.spec).allow_failure = AllowFailure::Yes;
        let pipeline = vec![
            slot(1, "unit", 0, JobStatus::Running),
            optional_manual,
            slot(3, "lint", 0, JobStatus::Success),
            slot(4, "release", 1, JobStatus::Created),
            slot(5, "deploy", 2, JobStatus::Created),
        ];
        let unit = JobRef::of(&pipeline[0]);
        assert_eq!(
            reason(&pipeline[3], &pipeline, None, &[]),
            Some(Waiting::Stage {
                jobs: vec![unit.clone()]
            })
        );
        let release = JobRef::of(&pipeline[3]);
        assert_eq!(
            reason(&pipeline[4], &pipeline, None, &[]),
            Some(Waiting::Stage {
                jobs: vec![unit, release]
            })
        );
    }

    #[test]
    fn a_job_with_needs_names_only_the_unfinished_ones_it_needs() {
        let need = |job: &str| Need {
            job: job.to_string(),
            artifacts: true,
            optional: false,
        };
        let spec = PlannedJob {
            name: "package".to_string(),
            needs: Some(vec![need("build"), need("test")]),
            ..PlannedJob::default()
        };
        let pipeline = vec![
            slot(1, "build", 0, JobStatus::Success),
            slot(2, "test 1/2", 0, JobStatus::Running),
            slot(3, "test 2/2", 0, JobStatus::Pending),
            slot(4, "slow", 0, JobStatus::Running),
            slot_of(5, JobStatus::Created, spec, 1),
        ];
        assert_eq!(
            reason(&pipeline[4], &pipeline, None, &[]),
            Some(Waiting::Needs {
                jobs: vec![JobRef::of(&pipeline[1]), JobRef::of(&pipeline[2])]
            })
        );
    }

    #[test]
    fn nothing_is_waited_for_once_the_job_started_or_nothing_holds_it() {
        let pipeline = vec![
            slot(1, "unit", 0, JobStatus::Success),
            slot(2, "release", 1, JobStatus::Created),
            slot(3, "deploy", 1, JobStatus::Running),
        ];
        assert_eq!(reason(&pipeline[1], &pipeline, None, &[]), None);
        assert_eq!(reason(&pipeline[2], &pipeline, queued(1, 1), &[]), None);
    }

    #[test]
    fn a_manual_job_waits_for_someone() {
        let mut job = slot(1, "deploy", 0, JobStatus::Manual);
        Arc::make_mut(&mut job.spec).when = When::Manual;
        assert_eq!(
            reason(&job, std::slice::from_ref(&job), None, &[]),
            Some(Waiting::Manual)
        );
    }

    #[test]
    fn a_job_beside_the_queue_names_its_groups_holder() {
        let job = tagged(2, &[]);
        let holder = Holder {
            job: JobRef::of(&slot(1, "deploy", 0, JobStatus::Running)),
            pipeline: PipelineId(7),
        };
        let place = Place::Group {
            group: "production".to_string(),
            holder: Some(holder.clone()),
        };
        assert_eq!(
            reason(&job, std::slice::from_ref(&job), Some(place), &[]),
            Some(Waiting::ResourceGroup {
                group: "production".to_string(),
                holder: Some(holder)
            })
        );
    }

    #[test]
    fn a_queued_job_says_which_agents_could_take_it() {
        let job = tagged(1, &["linux", "gpu"]);
        let tags = vec!["gpu".to_string(), "linux".to_string()];
        let jobs = std::slice::from_ref(&job);
        let offline = [
            agent(1, &["linux"], true, false),
            agent(2, &["gpu", "linux", "big"], false, false),
        ];
        assert_eq!(
            reason(&job, jobs, queued(1, 1), &offline),
            Some(Waiting::NoOnlineAgent {
                tags: tags.clone(),
                offline: vec![named(2)]
            })
        );
        let paused = [
            agent(2, &["gpu", "linux"], false, false),
            agent(3, &["gpu", "linux"], true, true),
        ];
        assert_eq!(
            reason(&job, jobs, queued(1, 1), &paused),
            Some(Waiting::AgentsPaused {
                tags: tags.clone(),
                paused: vec![named(3)]
            })
        );
        let busy = [
            agent(3, &["gpu", "linux"], true, true),
            agent(4, &["gpu", "linux"], true, false),
        ];
        assert_eq!(
            reason(&job, jobs, queued(2, 3), &busy),
            Some(Waiting::AgentsBusy {
                tags,
                agents: vec![named(4)],
                position: 2,
                queued: 3
            })
        );
    }

    #[test]
    fn an_untagged_job_with_no_agent_at_all_says_so() {
        let job = tagged(1, &[]);
        assert_eq!(
            reason(&job, std::slice::from_ref(&job), queued(1, 1), &[]),
            Some(Waiting::NoOnlineAgent {
                tags: vec![],
                offline: vec![]
            })
        );
    }

    #[test]
    fn the_queue_place_counts_the_older_jobs_of_the_same_tags() {
        let mut queue = Queue::default();
        let gpu = tags_of(&["gpu".to_string()]);
        let none = tags_of(&[]);
        for (job, tags) in [(1, &gpu), (2, &none), (3, &gpu), (4, &gpu)] {
            let order = queue.next_order();
            queue.push(JobId(job), PipelineId(1), tags.clone(), order);
        }
        let place = |job| match queue_place(&queue, JobId(job)) {
            Some(Place::Queue { position, queued }) => Some((position, queued)),
            _ => None,
        };
        assert_eq!(place(3), Some((2, 3)));
        assert_eq!(place(2), Some((1, 1)));
        assert_eq!(place(9), None);
    }
}
