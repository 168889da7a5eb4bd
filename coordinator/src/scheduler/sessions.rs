//! Agents' sessions and what agents report: a session opened or closed, heartbeats
//! renewing leases, a job started, log chunks, a job's end; and the one path for a job
//! whose agent is gone ([`Scheduler::lose`]), used by lease expiry, an agent that came
//! back without the job, and an admin removing the agent.
//!
//! Starts, log appends and renewals are guarded writes that need no decision, so they do
//! not take the decision lock. Like every command they run detached from their caller: a
//! call cut in the middle of a write transaction would otherwise leave it open on a
//! pooled connection, holding SQLite's write lock from every other writer.

use std::collections::BTreeSet;
use std::sync::Arc;

use tracing::{info, warn};

use super::assignment::Assignment;
use super::graph::Slot;
use super::{Decision, LeaseRef, Scheduler, SchedulerError, Session, SessionSender, detach};
use crate::events::Event;
use crate::model::{AgentId, JobId, JobStatus, now_ms};
use crate::store::deployments::NewDeployment;
use crate::store::jobs::{Finisher, Job, JobEnding};
use crate::store::logs::LineStamp;

/// What the scheduler pushes on an agent's session.
#[derive(Debug, Clone)]
pub enum SessionMessage {
    /// Run this job.
    Assign(Box<Assignment>),
    /// Stop the job of this lease (its `after_script` still runs).
    Cancel(LeaseRef),
}

/// Who removed an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// An admin, through the API.
    Admin,
    /// The agent itself, leaving for good (an ephemeral agent done with its jobs).
    Deregistered,
}

/// The answer to a heartbeat.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Renewal {
    /// Leases that are no longer valid: the agent must stop those jobs and forget them.
    pub abandon: Vec<LeaseRef>,
    /// Jobs whose cancel was requested.
    pub cancel: Vec<LeaseRef>,
}

impl Scheduler {
    /// An agent opened its session: remember it, settle the jobs the store thinks it runs
    /// against what it says it runs, and give it work. Returns the session's id.
    pub async fn connect(
        self: &Arc<Self>,
        agent: AgentId,
        labels: Vec<String>,
        concurrency: u32,
        running: Vec<LeaseRef>,
        sender: SessionSender,
    ) -> Result<u64, SchedulerError> {
        let this = self.clone();
        detach(async move {
            let mut state = this.decide().await;
            state.next_session += 1;
            let id = state.next_session;
            state.sessions.insert(
                agent,
                Session {
                    id,
                    labels: labels.into_iter().collect::<BTreeSet<_>>(),
                    concurrency: concurrency.max(1),
                    sender,
                },
            );
            for job in this.store.running_jobs_of(agent).await? {
                let still_running = running
                    .iter()
                    .any(|lease| lease.job == job.id && lease.epoch == job.lease_epoch);
                if still_running {
                    continue;
                }
                if job.started_at.is_none() {
                    // The assignment never reached the agent: nothing ran, queue it again.
                    this.requeue(&mut state, job.id, job.lease_epoch).await?;
                } else {
                    this.lose(
                        &mut state,
                        &job,
                        "the agent restarted and no longer runs the job",
                    )
                    .await?;
                }
            }
            state.refresh_room(agent);
            this.dispatch(&mut state).await?;
            Ok(id)
        })
        .await
    }

    /// The session `session` of `agent` ended. Its jobs keep their leases until they expire.
    pub async fn disconnect(&self, agent: AgentId, session: u64) {
        let mut state = self.decide().await;
        if state
            .sessions
            .get(&agent)
            .is_some_and(|open| open.id == session)
        {
            state.sessions.remove(&agent);
            state.refresh_room(agent);
        }
    }

    /// Renews the agent's leases; answers which jobs to abandon and which to cancel.
    pub async fn heartbeat(
        self: &Arc<Self>,
        agent: AgentId,
        running: Vec<LeaseRef>,
    ) -> Result<Renewal, SchedulerError> {
        let this = self.clone();
        detach(async move {
            let leases: Vec<(JobId, i64)> = running.iter().map(|l| (l.job, l.epoch)).collect();
            let renewed = this
                .store
                .renew_leases(agent, &leases, this.lease_deadline())
                .await?;
            let mut renewal = Renewal::default();
            for (lease, renewed) in running.iter().zip(renewed) {
                match renewed {
                    None => renewal.abandon.push(*lease),
                    Some(true) => renewal.cancel.push(*lease),
                    Some(false) => {}
                }
            }
            this.store.touch_agent(agent).await?;
            Ok(renewal)
        })
        .await
    }

    /// Pauses (no new jobs) or resumes an agent.
    pub async fn set_paused(
        self: &Arc<Self>,
        agent: AgentId,
        paused: bool,
    ) -> Result<(), SchedulerError> {
        let this = self.clone();
        detach(async move {
            let mut state = this.decide().await;
            if !this.store.set_agent_paused(agent, paused).await? {
                return Err(SchedulerError::NotFound(format!("agent {agent}")));
            }
            if paused {
                state.paused.insert(agent);
            } else {
                state.paused.remove(&agent);
            }
            state.refresh_room(agent);
            this.dispatch(&mut state).await
        })
        .await
    }

    /// Removes an agent: its credential stops working, its session closes, and its
    /// running jobs are lost (and retried by policy), with `removal` as the reason.
    pub async fn remove_agent(
        self: &Arc<Self>,
        agent: AgentId,
        removal: Removal,
    ) -> Result<(), SchedulerError> {
        let this = self.clone();
        detach(async move {
            let mut state = this.decide().await;
            if !this.store.remove_agent(agent).await? {
                return Err(SchedulerError::NotFound(format!("agent {agent}")));
            }
            this.credentials.retain(|_, known| *known != agent);
            state.sessions.remove(&agent);
            state.refresh_room(agent);
            for job in this.store.running_jobs_of(agent).await? {
                let reason = match removal {
                    Removal::Admin => format!("agent {agent} was removed by an admin"),
                    Removal::Deregistered => format!("agent {agent} deregistered"),
                };
                this.lose(&mut state, &job, &reason).await?;
            }
            this.dispatch(&mut state).await
        })
        .await
    }

    /// Agents with an open session.
    pub async fn connected_agents(&self) -> Vec<AgentId> {
        self.decide().await.sessions.keys().copied().collect()
    }

    /// Tells the agent running `job` to cancel it. A closed session learns of the cancel
    /// at its next heartbeat.
    pub(super) async fn send_cancel(
        &self,
        state: &mut Decision<'_>,
        job: JobId,
    ) -> Result<(), SchedulerError> {
        let Some(row) = self.store.job(job).await? else {
            return Ok(());
        };
        if let Some(session) = row.agent_id.and_then(|agent| state.sessions.get(&agent)) {
            let lease = LeaseRef {
                job,
                epoch: row.lease_epoch,
            };
            let _ = session.sender.send(SessionMessage::Cancel(lease));
        }
        Ok(())
    }

    /// The agent has started the job it was leased.
    pub async fn start_job(
        self: &Arc<Self>,
        agent: AgentId,
        lease: LeaseRef,
    ) -> Result<(), SchedulerError> {
        let this = self.clone();
        detach(async move {
            if !this
                .store
                .mark_started(lease.job, agent, lease.epoch)
                .await?
            {
                return Err(SchedulerError::Fenced(lease.job));
            }
            Ok(())
        })
        .await
    }

    /// Appends a log chunk of a job leased to `agent`, with the stamps of the lines starting
    /// in it; answers the acknowledged offset.
    pub async fn append_log(
        self: &Arc<Self>,
        agent: AgentId,
        lease: LeaseRef,
        offset: u64,
        data: Vec<u8>,
        stamps: Vec<LineStamp>,
    ) -> Result<u64, SchedulerError> {
        let this = self.clone();
        detach(async move {
            let appended = this
                .store
                .append_log(
                    lease.job,
                    agent,
                    lease.epoch,
                    offset,
                    &data,
                    &stamps,
                    this.config.log_limit,
                )
                .await?
                .ok_or(SchedulerError::Fenced(lease.job))?;
            if appended.grew {
                this.events.publish(Event::Log { job: lease.job });
            }
            Ok(appended.acknowledged)
        })
        .await
    }

    /// The agent finished a job. The same completion twice is accepted once.
    pub async fn complete(
        self: &Arc<Self>,
        agent: AgentId,
        lease: LeaseRef,
        log_size: u64,
        ending: JobEnding,
    ) -> Result<(), SchedulerError> {
        let this = self.clone();
        detach(async move {
            let mut state = this.decide().await;
            let id = lease.job;
            let by = Finisher::Agent { agent, log_size };
            let Some(job) = this.store.finish_job(id, lease.epoch, &ending, by).await? else {
                return this
                    .refused_completion(id, agent, lease, log_size, &ending)
                    .await;
            };
            info!(job_id = %id, agent_id = %agent, status = %ending.status, "job finished");
            this.config.metrics.job_ended(&job, ending.status);
            this.graph(&mut state, job.pipeline_id).await?;
            let slot = match state.graphs.get(&job.pipeline_id).and_then(|g| g.slot(id)) {
                Some(slot) => slot.clone(),
                None => Slot::of(&job)?,
            };
            this.record_coverage(&job, &slot).await?;
            this.record_deployment(&job, &slot, &ending).await?;
            this.finished(
                &mut state,
                job.pipeline_id,
                &slot,
                &ending,
                !job.cancel_requested,
            )
            .await?;
            this.dispatch(&mut state).await
        })
        .await
    }

    /// Why a completion changed nothing: the same completion again is accepted (once is
    /// enough), anything else from an agent without the lease is fenced.
    async fn refused_completion(
        &self,
        id: JobId,
        agent: AgentId,
        lease: LeaseRef,
        log_size: u64,
        ending: &JobEnding,
    ) -> Result<(), SchedulerError> {
        let job = self.existing_job(id).await?;
        if job.agent_id != Some(agent) || job.lease_epoch != lease.epoch {
            return Err(SchedulerError::Fenced(id));
        }
        if job.status.is_finished() {
            return if job.status == ending.status {
                Ok(())
            } else {
                Err(SchedulerError::Fenced(id))
            };
        }
        Err(SchedulerError::InvalidState(format!(
            "job {id}: {log_size} log bytes reported but {} acknowledged",
            job.log_size
        )))
    }

    /// Ends every running job whose lease expired as lost.
    pub async fn expire_leases(self: &Arc<Self>) -> Result<(), SchedulerError> {
        let this = self.clone();
        detach(async move {
            let mut state = this.decide().await;
            for job in this.store.expired_leases(this.clock.now_ms()).await? {
                let agent = job
                    .agent_id
                    .map_or_else(|| "?".to_string(), |a| a.to_string());
                let reason = format!("lease expired on agent {agent}: the agent was lost");
                this.config.metrics.leases_expired.inc();
                this.lose(&mut state, &job, &reason).await?;
            }
            this.dispatch(&mut state).await
        })
        .await
    }

    /// The one path for a job whose agent is gone.
    pub(super) async fn lose(
        &self,
        state: &mut Decision<'_>,
        job: &Job,
        reason: &str,
    ) -> Result<(), SchedulerError> {
        let ending = if job.cancel_requested {
            JobEnding {
                status: JobStatus::Canceled,
                exit_code: None,
                failure_kind: None,
                failure_message: Some(format!("canceled; {reason}")),
                details_json: None,
            }
        } else {
            JobEnding {
                status: JobStatus::Lost,
                exit_code: None,
                failure_kind: Some("runner_system_failure".to_string()),
                failure_message: Some(reason.to_string()),
                details_json: None,
            }
        };
        if self
            .store
            .finish_job(job.id, job.lease_epoch, &ending, Finisher::Coordinator)
            .await?
            .is_some()
        {
            warn!(job_id = %job.id, reason, "job lost");
            self.config.metrics.job_ended(job, ending.status);
            let slot = Slot::of(job)?;
            self.finished(
                state,
                job.pipeline_id,
                &slot,
                &ending,
                !job.cancel_requested,
            )
            .await?;
        }
        Ok(())
    }

    /// Applies the job's `coverage` regex to its log and keeps the figure found.
    async fn record_coverage(&self, job: &Job, slot: &Slot) -> Result<(), SchedulerError> {
        let Some(pattern) = &slot.spec.coverage else {
            return Ok(());
        };
        let limit = usize::try_from(self.config.log_limit).unwrap_or(usize::MAX);
        let (log, _) = self.store.read_log(job.id, 0, limit).await?;
        if let Some(figure) = crate::coverage::find(pattern, &log) {
            self.store.set_job_coverage(job.id, figure).await?;
        }
        Ok(())
    }

    /// A finished job that deploys to an environment (`action: start`) adds to that
    /// environment's history; a successful `action: stop` job adds a `stopped` entry. The
    /// other actions (`prepare`, `verify`, `access`) leave the environment as it is.
    async fn record_deployment(
        &self,
        job: &Job,
        slot: &Slot,
        ending: &JobEnding,
    ) -> Result<(), SchedulerError> {
        let Some(environment) = &slot.spec.environment else {
            return Ok(());
        };
        let status = match environment.action.as_str() {
            "start" => ending.status.as_str(),
            "stop" if ending.status == JobStatus::Success => "stopped",
            _ => return Ok(()),
        };
        let Some(pipeline) = self.store.pipeline(job.pipeline_id).await? else {
            return Ok(());
        };
        let details: Option<serde_json::Value> = ending
            .details_json
            .as_deref()
            .and_then(|text| serde_json::from_str(text).ok());
        let digest = details
            .as_ref()
            .and_then(|details| details["image_digest"].as_str().map(str::to_string));
        let deployment = NewDeployment {
            project: pipeline.project_id,
            environment: &environment.name,
            tier: &environment.deployment_tier,
            url: environment.url.as_deref(),
            job: job.id,
            pipeline: pipeline.id,
            sha: &pipeline.sha,
            git_ref: &pipeline.git_ref,
            status,
            image_digest: digest.as_deref(),
            started_at: job.started_at,
            finished_at: now_ms(),
        };
        self.store.insert_deployment(&deployment).await?;
        Ok(())
    }
}
