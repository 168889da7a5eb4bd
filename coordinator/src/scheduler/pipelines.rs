//! Commands on pipelines and their jobs: create, cancel, retry, play, GitLab's
//! auto-cancel of redundant pipelines; and what every status change leads to
//! ([`Scheduler::changed`]): the pipeline's graph advanced, the new changes stored, the
//! pipeline's status recorded.

use std::sync::Arc;

use tracing::{info, warn};

use super::graph::{Change, PipelineGraph, Slot};
use super::{Decision, Scheduler, SchedulerError, State, detach, rules};
use crate::events::Event;
use crate::model::{JobId, JobStatus, PipelineId};
use crate::store::jobs::{JobEnding, Transition};
use crate::store::pipelines::{NewPipeline, PipelineFilter};

/// The statuses of a job that has not started.
const WAITING: [JobStatus; 3] = [JobStatus::Created, JobStatus::Pending, JobStatus::Manual];

impl Scheduler {
    /// After a restart: rebuild the state in memory from the store, give agents one lease
    /// period to come back, and carry every unfinished pipeline on.
    pub async fn recover(self: &Arc<Self>) -> Result<(), SchedulerError> {
        let mut state = self.decide().await;
        self.store.extend_all_leases(self.lease_deadline()).await?;
        for agent in self.store.agents().await? {
            if agent.paused {
                state.paused.insert(agent.id);
            }
        }
        let unfinished = self.store.unfinished_pipelines().await?;
        for pipeline in &unfinished {
            self.load(&mut state, *pipeline).await?;
        }
        for job in self.store.running_jobs().await? {
            let (Some(agent), true) = (job.agent_id, state.graphs.contains_key(&job.pipeline_id))
            else {
                continue;
            };
            let order = state.queue.next_order();
            state.leased.insert(
                job.id,
                super::Leased {
                    agent,
                    pipeline: job.pipeline_id,
                    order,
                },
            );
            *state.load.entry(agent).or_default() += 1;
            if let Some(group) = state.graphs[&job.pipeline_id]
                .slot(job.id)
                .and_then(|slot| slot.spec.resource_group.clone())
            {
                let project = state.graphs[&job.pipeline_id].pipeline.project_id;
                state.group_holders.insert((project, group), job.id);
            }
        }
        for job in self.store.pending_jobs().await? {
            state.enqueue(job.pipeline_id, job.id, None);
        }
        for pipeline in unfinished {
            self.settle(&mut state, pipeline, &[], true).await?;
        }
        self.dispatch(&mut state).await
    }

    /// Reads a pipeline's graph from the store into memory.
    async fn load(&self, state: &mut State, id: PipelineId) -> Result<(), SchedulerError> {
        let pipeline = self
            .store
            .pipeline(id)
            .await?
            .ok_or_else(|| SchedulerError::NotFound(format!("pipeline {id}")))?;
        let jobs = self.store.pipeline_jobs(id).await?;
        state
            .graphs
            .insert(id, PipelineGraph::load(pipeline, &jobs)?);
        Ok(())
    }

    /// Reads a pipeline's graph again after memory and store disagreed.
    pub(super) async fn reload(
        &self,
        state: &mut State,
        id: PipelineId,
    ) -> Result<(), SchedulerError> {
        state.graphs.remove(&id);
        self.load(state, id).await
    }

    /// The graph of pipeline `id`, read from the store when it is not in memory (a
    /// finished pipeline whose job is retried).
    pub(super) async fn graph(
        &self,
        state: &mut State,
        id: PipelineId,
    ) -> Result<(), SchedulerError> {
        if !state.graphs.contains_key(&id) {
            self.load(state, id).await?;
        }
        Ok(())
    }

    /// Stores a new pipeline and starts it. `make` gets the pipeline's id (for its
    /// variables) and returns the pipeline with its planned jobs, or why there is none.
    /// Planning and storing happen before the decision lock is taken.
    pub async fn create_pipeline<E: Send + 'static>(
        self: &Arc<Self>,
        make: impl FnOnce(PipelineId) -> Result<NewPipeline, E> + Send + 'static,
    ) -> Result<Result<PipelineId, E>, SchedulerError> {
        let id = self.store.reserve_pipeline_id().await?;
        let new = match tokio::task::spawn_blocking(move || make(id)).await {
            Ok(Ok(new)) => new,
            Ok(Err(refused)) => return Ok(Err(refused)),
            Err(panic) => {
                return Err(SchedulerError::InvalidState(format!(
                    "planning failed: {panic}"
                )));
            }
        };
        let this = self.clone();
        detach(async move {
            let ids = this.store.insert_pipeline(&new).await?;
            let pipeline = this
                .store
                .pipeline(id)
                .await?
                .ok_or_else(|| SchedulerError::NotFound(format!("pipeline {id}")))?;
            let slots = ids
                .iter()
                .zip(&new.jobs)
                .map(|(id, job)| Slot::planned(*id, job))
                .collect::<Result<Vec<_>, _>>()?;
            let graph = PipelineGraph::new(pipeline, slots);
            info!(pipeline_id = %id, jobs = new.jobs.len(), "pipeline created");
            let mut state = this.decide().await;
            state.graphs.insert(id, graph);
            this.settle(&mut state, id, &[], true).await?;
            this.dispatch(&mut state).await?;
            Ok(Ok(id))
        })
        .await
    }

    /// Moves the pipeline's waiting jobs on as far as their stages and needs allow after
    /// the jobs `changed` changed, stores what moved, and records the pipeline's status.
    pub(super) async fn settle(
        &self,
        state: &mut State,
        pipeline: PipelineId,
        changed: &[JobId],
        everything: bool,
    ) -> Result<(), SchedulerError> {
        let Some(graph) = state.graphs.get_mut(&pipeline) else {
            return Ok(());
        };
        let changes = graph.advance(changed, everything);
        if !changes.is_empty() {
            let moves: Vec<Transition> = changes
                .iter()
                .map(|change| Transition {
                    job: change.job,
                    from: vec![change.from],
                    to: change.to,
                })
                .collect();
            let done = self.store.transition_jobs(&moves).await?;
            if done.iter().any(|moved| !moved) {
                warn!(pipeline_id = %pipeline, "the store and the pipeline's graph disagreed; reloading it");
                self.reload(state, pipeline).await?;
                return Box::pin(self.settle(state, pipeline, &[], true)).await;
            }
            for Change { job, to, .. } in changes {
                self.after_change(state, pipeline, job, to);
            }
        }
        self.record_status(state, pipeline).await
    }

    /// What a stored status change means beside the graph: the queue, the resource
    /// groups, the agents' slots, the event.
    fn after_change(&self, state: &mut State, pipeline: PipelineId, job: JobId, to: JobStatus) {
        if to == JobStatus::Pending {
            state.enqueue(pipeline, job, None);
        } else if to.is_finished() || to == JobStatus::Manual {
            state.forget(job);
        }
        self.events.publish(Event::Job { pipeline, job });
    }

    /// A stored change of one job's status: the graph follows, and the pipeline advances.
    pub(super) async fn changed(
        &self,
        state: &mut State,
        pipeline: PipelineId,
        job: JobId,
        to: JobStatus,
        exit_code: Option<i64>,
    ) -> Result<(), SchedulerError> {
        self.graph(state, pipeline).await?;
        if let Some(graph) = state.graphs.get_mut(&pipeline) {
            graph.set_status(job, to, exit_code);
        }
        self.after_change(state, pipeline, job, to);
        self.settle(state, pipeline, &[job], false).await
    }

    /// A running job ended as `ending` (already stored): retried when its `retry:` says
    /// so and `may_retry`, then the pipeline advances.
    pub(super) async fn finished(
        &self,
        state: &mut State,
        pipeline: PipelineId,
        slot: &Slot,
        ending: &JobEnding,
        may_retry: bool,
    ) -> Result<(), SchedulerError> {
        self.graph(state, pipeline).await?;
        if let Some(graph) = state.graphs.get_mut(&pipeline) {
            graph.set_status(slot.id, ending.status, ending.exit_code);
        }
        self.after_change(state, pipeline, slot.id, ending.status);
        let mut changed = vec![slot.id];
        if may_retry
            && ending.status.is_failure()
            && rules::retries(&slot.spec, slot.attempt, ending)
        {
            let retry = self.store.insert_retry(slot.id).await?;
            info!(job_id = %slot.id, retry_id = %retry, "job retried");
            if let Some(graph) = state.graphs.get_mut(&pipeline) {
                graph.replace(slot.id, retry, slot.attempt + 1);
            }
            changed.push(retry);
        }
        self.settle(state, pipeline, &changed, false).await
    }

    /// Records the pipeline's status when its jobs changed it; a finished pipeline's
    /// graph leaves memory.
    pub(super) async fn record_status(
        &self,
        state: &mut State,
        pipeline: PipelineId,
    ) -> Result<(), SchedulerError> {
        let Some(graph) = state.graphs.get_mut(&pipeline) else {
            return Ok(());
        };
        let status = graph.status();
        if graph.pipeline.status != status {
            self.store.set_pipeline_status(pipeline, status).await?;
            graph.pipeline.status = status;
            info!(pipeline_id = %pipeline, %status, "pipeline status");
            self.events.publish(Event::Pipeline { pipeline });
        }
        if status.is_finished() {
            state.graphs.remove(&pipeline);
        }
        Ok(())
    }

    /// Cancels one job: at once when it has not started, through its agent when it runs.
    pub async fn cancel_job(self: &Arc<Self>, id: JobId) -> Result<(), SchedulerError> {
        let this = self.clone();
        detach(async move {
            let mut state = this.decide().await;
            let job = this.existing_job(id).await?;
            this.cancel(&mut state, job.pipeline_id, id, job.status)
                .await?;
            this.dispatch(&mut state).await
        })
        .await
    }

    /// Cancels every job of a pipeline that has not finished; refused when the pipeline
    /// has finished.
    pub async fn cancel_pipeline(self: &Arc<Self>, id: PipelineId) -> Result<(), SchedulerError> {
        let this = self.clone();
        detach(async move {
            let mut state = this.decide().await;
            let Some(graph) = state.graphs.get(&id) else {
                return match this.store.pipeline(id).await? {
                    None => Err(SchedulerError::NotFound(format!("pipeline {id}"))),
                    Some(pipeline) => Err(SchedulerError::InvalidState(format!(
                        "pipeline {id} has already finished: it is {}",
                        pipeline.status
                    ))),
                };
            };
            let open: Vec<(JobId, JobStatus)> = graph
                .slots()
                .iter()
                .filter(|slot| !slot.status.is_finished())
                .map(|slot| (slot.id, slot.status))
                .collect();
            for (job, status) in open {
                this.cancel(&mut state, id, job, status).await?;
            }
            this.dispatch(&mut state).await
        })
        .await
    }

    async fn cancel(
        &self,
        state: &mut Decision<'_>,
        pipeline: PipelineId,
        job: JobId,
        status: JobStatus,
    ) -> Result<(), SchedulerError> {
        if WAITING.contains(&status) {
            if self
                .store
                .transition_job(job, &WAITING, JobStatus::Canceled)
                .await?
            {
                self.changed(state, pipeline, job, JobStatus::Canceled, None)
                    .await?;
            }
            return Ok(());
        }
        if status != JobStatus::Running {
            return Ok(());
        }
        self.store.request_cancel(job).await?;
        self.send_cancel(state, job).await
    }

    /// Starts a manual job.
    pub async fn play_job(self: &Arc<Self>, id: JobId) -> Result<(), SchedulerError> {
        let this = self.clone();
        detach(async move {
            let mut state = this.decide().await;
            let job = this.existing_job(id).await?;
            if !this
                .store
                .transition_job(id, &[JobStatus::Manual], JobStatus::Pending)
                .await?
            {
                return Err(SchedulerError::InvalidState(format!(
                    "job {id} is {}, not manual",
                    job.status
                )));
            }
            this.changed(&mut state, job.pipeline_id, id, JobStatus::Pending, None)
                .await?;
            this.dispatch(&mut state).await
        })
        .await
    }

    /// Runs a finished job again as a new attempt.
    pub async fn retry_job(self: &Arc<Self>, id: JobId) -> Result<JobId, SchedulerError> {
        let this = self.clone();
        detach(async move {
            let mut state = this.decide().await;
            let job = this.existing_job(id).await?;
            if !job.status.is_finished() || job.retried || job.status == JobStatus::Skipped {
                return Err(SchedulerError::InvalidState(format!(
                    "job {id} cannot be retried: it is {}{}",
                    job.status,
                    if job.retried {
                        " and already retried"
                    } else {
                        ""
                    }
                )));
            }
            this.graph(&mut state, job.pipeline_id).await?;
            let retry = this.store.insert_retry(id).await?;
            if let Some(graph) = state.graphs.get_mut(&job.pipeline_id) {
                graph.replace(id, retry, job.attempt + 1);
            }
            this.events.publish(Event::Job {
                pipeline: job.pipeline_id,
                job: retry,
            });
            this.settle(&mut state, job.pipeline_id, &[retry], false)
                .await?;
            this.dispatch(&mut state).await?;
            Ok(retry)
        })
        .await
    }

    /// GitLab's auto-cancel of redundant pipelines: `newer` was created on `branch`, so
    /// the unfinished `interruptible: true` jobs of the project's older pipelines on that
    /// branch are canceled (running ones through their agent); their other jobs go on.
    pub async fn cancel_interruptible(
        self: &Arc<Self>,
        project: &str,
        branch: &str,
        newer: PipelineId,
    ) -> Result<Vec<JobId>, SchedulerError> {
        // Older ones were canceled by the pushes in between.
        let recent = PipelineFilter {
            project: Some(project.to_string()),
            status: None,
            git_ref: Some(branch.to_string()),
            before: Some(newer),
            limit: 50,
        };
        let this = self.clone();
        detach(async move {
            let older = this.store.pipelines(&recent).await?;
            let mut state = this.decide().await;
            let mut canceled = Vec::new();
            for older in older {
                if older.ref_kind != "branch" {
                    continue;
                }
                let Some(graph) = state.graphs.get(&older.id) else {
                    continue;
                };
                let interruptible: Vec<(JobId, JobStatus)> = graph
                    .slots()
                    .iter()
                    .filter(|slot| !slot.status.is_finished() && slot.spec.interruptible)
                    .map(|slot| (slot.id, slot.status))
                    .collect();
                if interruptible.is_empty() {
                    continue;
                }
                for (job, status) in interruptible {
                    this.cancel(&mut state, older.id, job, status).await?;
                    canceled.push(job);
                }
                info!(pipeline_id = %older.id, newer = %newer, "interruptible jobs canceled by a newer pipeline");
            }
            this.dispatch(&mut state).await?;
            Ok(canceled)
        })
        .await
    }
}
