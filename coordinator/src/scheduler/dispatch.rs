//! Dispatch: matching runnable jobs with agents that have room, without reading the queue.
//!
//! A job that becomes pending is queued by the tags it needs (or, with a
//! `resource_group`, waits for its group's turn); its tag group is marked fresh. An
//! agent that gets room (it connected, finished a job, was resumed) is marked freed.
//! [`Scheduler::dispatch`] then places the fresh groups' oldest jobs on the least loaded
//! agents that cover their tags, and gives each freed agent the oldest job its labels
//! cover, until nothing more fits. Leases of one round are stored in one transaction.
//!
//! A `resource_group` runs one job at a time per project: the group's holder is the job
//! whose turn it is (queued or running); the others wait beside the queue until the
//! holder finishes, and the group's process mode picks the next ([`resource_groups`]).
//! As GitLab's "prevent outdated deployment jobs", a first run of a deploy job whose
//! environment already has a newer pipeline's deployment is skipped when it would be
//! leased.

use tracing::{info, warn};

use super::assignment::Context;
use super::queue::{Queued, tags_of};
use super::sessions::SessionMessage;
use super::{Decision, GroupKey, LeaseRef, Leased, Scheduler, SchedulerError, State};
use crate::events::Event;
use crate::model::{AgentId, JobId, JobStatus, PipelineId, ProcessMode};
use crate::resource_groups::{self, WaitingForResource};
use crate::store::jobs::{Finisher, JobEnding};

impl State {
    /// Whether `agent` has a session, is not paused and runs fewer jobs than it may.
    fn has_room(&self, agent: AgentId) -> bool {
        let load = self.load.get(&agent).copied().unwrap_or(0);
        !self.paused.contains(&agent)
            && self
                .sessions
                .get(&agent)
                .is_some_and(|session| load < session.concurrency)
    }

    /// Brings the agent's entry among those with room up to date, and marks it freed when
    /// it has room.
    pub(super) fn refresh_room(&mut self, agent: AgentId) {
        let has_room = self.has_room(agent);
        let load = self.load.get(&agent).copied().unwrap_or(0);
        self.room.set(agent, load, has_room);
        if has_room {
            self.freed.insert(agent);
        }
    }

    /// A job of `pipeline` became pending: queue it, or let it wait for its resource group.
    pub(super) fn enqueue(&mut self, pipeline: PipelineId, job: JobId, order: Option<u64>) {
        let Some(graph) = self.graphs.get(&pipeline) else {
            return;
        };
        let Some(slot) = graph.slot(job) else {
            return;
        };
        let tags = tags_of(&slot.spec.tags);
        let group = slot
            .spec
            .resource_group
            .clone()
            .map(|group| (graph.pipeline.project_id, group));
        let order = order.unwrap_or_else(|| self.queue.next_order());
        match group {
            Some(group) if self.group_holders.get(&group) != Some(&job) => {
                let waiting = self.group_waiting.entry(group.clone()).or_default();
                if !waiting.iter().any(|(waiting, ..)| *waiting == job) {
                    waiting.push((job, pipeline, order));
                }
                self.groups_to_turn.insert(group);
            }
            _ => {
                self.queue.push(job, pipeline, tags.clone(), order);
                self.fresh_tags.insert(tags);
            }
        }
    }

    /// A job left the queue for good (finished, canceled, skipped): forget it, free its
    /// resource group and its agent's slot.
    pub(super) fn forget(&mut self, job: JobId) {
        self.queue.remove(job);
        let held: Vec<GroupKey> = self
            .group_holders
            .iter()
            .filter(|(_, holder)| **holder == job)
            .map(|(group, _)| group.clone())
            .collect();
        for group in held {
            self.group_holders.remove(&group);
            self.groups_to_turn.insert(group);
        }
        for waiting in self.group_waiting.values_mut() {
            waiting.retain(|(waiting, ..)| *waiting != job);
        }
        self.group_waiting.retain(|_, waiting| !waiting.is_empty());
        if let Some(leased) = self.leased.remove(&job) {
            self.release_slot(leased.agent);
        }
    }

    fn release_slot(&mut self, agent: AgentId) {
        if let Some(load) = self.load.get_mut(&agent) {
            *load = load.saturating_sub(1);
        }
        self.refresh_room(agent);
    }

    /// Takes a queued job for `agent` (in memory; the lease is stored by the caller).
    fn take(&mut self, queued: Queued, agent: AgentId) {
        self.queue.remove(queued.job);
        *self.load.entry(agent).or_default() += 1;
        self.leased.insert(
            queued.job,
            Leased {
                agent,
                pipeline: queued.pipeline,
                order: queued.order,
            },
        );
        self.refresh_room(agent);
    }

    /// The next job to place and where: first the fresh tag groups' oldest jobs on the
    /// least loaded agents that cover their tags, then the oldest jobs freed agents cover.
    fn next_placement(&mut self) -> Option<(Queued, AgentId)> {
        while let Some(tags) = self.fresh_tags.iter().next().cloned() {
            let head = self.queue.oldest_of(&tags);
            let sessions = &self.sessions;
            let agent = head.and_then(|_| {
                self.room.find(|agent| {
                    sessions
                        .get(&agent)
                        .is_some_and(|session| tags.iter().all(|tag| session.labels.contains(tag)))
                })
            });
            match (head, agent) {
                (Some(head), Some(agent)) => return Some((head, agent)),
                _ => {
                    self.fresh_tags.remove(&tags);
                }
            }
        }
        while let Some(agent) = self.freed.iter().next().copied() {
            let head = self
                .sessions
                .get(&agent)
                .filter(|_| self.has_room(agent))
                .and_then(|session| self.queue.oldest_for(&session.labels));
            match head {
                Some(head) => return Some((head, agent)),
                None => {
                    self.freed.remove(&agent);
                }
            }
        }
        None
    }
}

impl Scheduler {
    /// Places every job that can be placed now (see the module's docs).
    pub(super) async fn dispatch(&self, state: &mut Decision<'_>) -> Result<(), SchedulerError> {
        loop {
            self.give_turns(state).await?;
            let mut planned: Vec<(Queued, AgentId)> = Vec::new();
            while let Some((queued, agent)) = state.next_placement() {
                if self.skip_if_outdated(state, queued).await? {
                    continue;
                }
                state.take(queued, agent);
                planned.push((queued, agent));
            }
            if planned.is_empty() {
                if state.groups_to_turn.is_empty() {
                    return Ok(());
                }
                continue;
            }
            self.lease(state, planned).await?;
        }
    }

    /// Stores the leases of one round and sends each assignment to its agent.
    async fn lease(
        &self,
        state: &mut Decision<'_>,
        planned: Vec<(Queued, AgentId)>,
    ) -> Result<(), SchedulerError> {
        let pairs: Vec<(JobId, AgentId)> =
            planned.iter().map(|(q, agent)| (q.job, *agent)).collect();
        let epochs = self.store.lease_jobs(&pairs, self.lease_deadline()).await?;
        let mut context = Context::default();
        let mut touched = Vec::new();
        for ((queued, agent), epoch) in planned.into_iter().zip(epochs) {
            let Some(epoch) = epoch else {
                warn!(job_id = %queued.job, "job no longer pending in the store; reloading its pipeline");
                state.leased.remove(&queued.job);
                state.release_slot(agent);
                self.reload(state, queued.pipeline).await?;
                continue;
            };
            let lease = LeaseRef {
                job: queued.job,
                epoch,
            };
            let Some(graph) = state.graphs.get_mut(&queued.pipeline) else {
                continue;
            };
            graph.set_status(queued.job, JobStatus::Running, None);
            let Some(slot) = graph.slot(queued.job).cloned() else {
                continue;
            };
            let pipeline = graph.pipeline.clone();
            touched.push(queued.pipeline);
            self.events.publish(Event::Job {
                pipeline: queued.pipeline,
                job: queued.job,
            });
            let assignment = self
                .assignment(&mut context, &pipeline, &slot, lease)
                .await?;
            let size = assignment.wire_size_bound();
            if size > self.config.max_assignment_bytes {
                let ending = JobEnding {
                    status: JobStatus::Failed,
                    exit_code: None,
                    failure_kind: Some("api_failure".to_string()),
                    failure_message: Some(format!(
                        "the job's assignment is about {size} bytes, over the limit of {} \
                         bytes an agent accepts: make its variables or spec smaller",
                        self.config.max_assignment_bytes
                    )),
                    details_json: None,
                };
                if self
                    .store
                    .finish_job(queued.job, epoch, &ending, Finisher::Coordinator)
                    .await?
                    .is_some()
                {
                    warn!(job_id = %queued.job, size, "assignment too large; job failed");
                    self.finished(state, queued.pipeline, &slot, &ending, false)
                        .await?;
                }
                continue;
            }
            let delivered = state.sessions.get(&agent).is_some_and(|session| {
                session
                    .sender
                    .send(SessionMessage::Assign(Box::new(assignment)))
                    .is_ok()
            });
            if delivered {
                info!(job_id = %queued.job, agent_id = %agent, epoch, "job assigned");
                self.config.metrics.jobs_leased.inc();
            } else {
                warn!(job_id = %queued.job, agent_id = %agent, "session gone; job back in the queue");
                state.sessions.remove(&agent);
                self.requeue(state, queued.job, epoch).await?;
            }
        }
        touched.sort_unstable();
        touched.dedup();
        for pipeline in touched {
            self.record_status(state, pipeline).await?;
        }
        Ok(())
    }

    /// Puts a leased job that never started back in the queue, at its old place.
    pub(super) async fn requeue(
        &self,
        state: &mut State,
        job: JobId,
        epoch: i64,
    ) -> Result<(), SchedulerError> {
        self.store.requeue_job(job, epoch).await?;
        let Some(leased) = state.leased.remove(&job) else {
            return Ok(());
        };
        state.release_slot(leased.agent);
        if let Some(graph) = state.graphs.get_mut(&leased.pipeline) {
            graph.set_status(job, JobStatus::Pending, None);
        }
        state.enqueue(leased.pipeline, job, Some(leased.order));
        self.events.publish(Event::Job {
            pipeline: leased.pipeline,
            job,
        });
        Ok(())
    }

    /// Gives each free resource group with waiting jobs to the one whose turn it is.
    async fn give_turns(&self, state: &mut State) -> Result<(), SchedulerError> {
        while let Some(group) = state.groups_to_turn.pop_first() {
            if state.group_holders.contains_key(&group) {
                continue;
            }
            let Some(waiting) = state.group_waiting.get(&group).filter(|w| !w.is_empty()) else {
                continue;
            };
            let mode = self
                .store
                .resource_group_modes(group.0)
                .await?
                .into_iter()
                .find(|(name, _)| *name == group.1)
                .map_or(ProcessMode::Unordered, |(_, mode)| mode);
            let candidates: Vec<WaitingForResource> = waiting
                .iter()
                .map(|(job, pipeline, _)| WaitingForResource {
                    group: group.clone(),
                    mode,
                    pipeline: *pipeline,
                    job: *job,
                })
                .collect();
            let turn = resource_groups::turns(&candidates)
                .remove(&group)
                .or_else(|| waiting.iter().min_by_key(|(.., order)| *order).map(|w| w.0));
            let Some(turn) = turn else { continue };
            let Some(&(job, pipeline, order)) = waiting.iter().find(|(job, ..)| *job == turn)
            else {
                continue;
            };
            if let Some(waiting) = state.group_waiting.get_mut(&group) {
                waiting.retain(|(waiting, ..)| *waiting != job);
            }
            state.group_holders.insert(group, job);
            state.enqueue(pipeline, job, Some(order));
        }
        Ok(())
    }

    /// Skips `queued` when it is the first run of a deploy job older than its
    /// environment's current deployment; true when it did.
    async fn skip_if_outdated(
        &self,
        state: &mut Decision<'_>,
        queued: Queued,
    ) -> Result<bool, SchedulerError> {
        let Some(graph) = state.graphs.get(&queued.pipeline) else {
            return Ok(false);
        };
        let Some(slot) = graph.slot(queued.job) else {
            return Ok(false);
        };
        let Some(environment) = slot.spec.environment.as_ref() else {
            return Ok(false);
        };
        if slot.attempt != 1 || environment.action != "start" {
            return Ok(false);
        }
        let pipeline = &graph.pipeline;
        let newest = self
            .store
            .newest_successful_deploy(pipeline.project_id, &environment.name)
            .await?;
        let Some(newest) = newest.filter(|newest| *newest > pipeline.id) else {
            return Ok(false);
        };
        let reason = format!(
            "outdated deployment: pipeline {newest} already deployed a newer version to {}",
            environment.name
        );
        state.queue.remove(queued.job);
        if self.store.skip_pending_job(queued.job, &reason).await? {
            info!(job_id = %queued.job, %reason, "deploy skipped");
            self.changed(state, queued.pipeline, queued.job, JobStatus::Skipped, None)
                .await?;
        }
        Ok(true)
    }
}
