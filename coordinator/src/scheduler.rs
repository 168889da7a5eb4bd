//! Every decision about jobs, in one place: which job becomes runnable, which agent gets
//! it, what a completion, a lost lease or a cancel does to the pipeline.
//!
//! The job state machine is documented in [`crate::model`]. All transitions happen under
//! one lock ([`Scheduler::decide`]), so the flow of a job reads top to bottom here, and the
//! database guards each write by the status (and lease epoch) it expects, so a stale
//! agent or a second writer changes nothing.
//!
//! Agents hold a session (the `OpenSession` stream): the moment a job becomes pending, or an
//! agent has room, [`Scheduler::dispatch`] leases the job and pushes the assignment on that
//! stream. Nothing polls for work.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use esteira_pipeline::{AllowFailure, PlannedJob, RefKind, When};
use esteira_proto::v1::{CancelJob, JobAssignment, Lease, ServerMessage, server_message};
use tokio::sync::{Mutex, MutexGuard, mpsc};
use tracing::{info, warn};

use crate::artifacts::ArtifactStore;
use crate::events::{Event, Events};
use crate::model::{
    AgentId, JobId, JobStatus, PipelineId, PipelineStatus, ProcessMode, ProjectId, now_ms,
};
use crate::resource_groups::{self, WaitingForResource};
use crate::secrets::SecretBox;
use crate::store::deployments::NewDeployment;
use crate::store::jobs::{Job, JobEnding};
use crate::store::pipelines::{NewPipeline, Pipeline};
use crate::store::{Store, StoreError};
use crate::variables::{PipelineFacts, expand_all, predefined};

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0} not found")]
    NotFound(String),
    #[error("the lease of job {0} is no longer valid")]
    Fenced(JobId),
    #[error("{0}")]
    InvalidState(String),
}

/// A project variable, opened for a pipeline.
#[derive(Debug, Clone)]
pub struct ProjectVariable {
    pub key: String,
    pub value: String,
    pub masked: bool,
    /// Given to jobs as a file holding the value.
    pub file: bool,
}

/// A message pushed to an agent's session stream.
pub type SessionSender = mpsc::UnboundedSender<Result<ServerMessage, tonic::Status>>;

#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// A running job whose agent has not renewed its lease for this long is lost.
    pub lease_timeout: Duration,
    /// Bytes of log kept per job; the rest is dropped after a marker.
    pub log_limit: u64,
    /// The coordinator's public HTTP address, for links in variables.
    pub server_url: String,
    /// Where jobs' artifacts are kept.
    pub artifacts: ArtifactStore,
}

struct Session {
    id: u64,
    labels: Vec<String>,
    concurrency: u32,
    sender: SessionSender,
}

#[derive(Default)]
struct Sessions {
    by_agent: HashMap<AgentId, Session>,
    next_id: u64,
}

pub struct Scheduler {
    store: Store,
    secrets: SecretBox,
    events: Events,
    config: SchedulerConfig,
    sessions: Mutex<Sessions>,
}

/// Proof that the caller holds the decision lock.
type Decision<'a> = MutexGuard<'a, Sessions>;

impl Scheduler {
    pub fn new(
        store: Store,
        secrets: SecretBox,
        events: Events,
        config: SchedulerConfig,
    ) -> Arc<Scheduler> {
        Arc::new(Scheduler {
            store,
            secrets,
            events,
            config,
            sessions: Mutex::new(Sessions::default()),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn secrets(&self) -> &SecretBox {
        &self.secrets
    }

    pub fn events(&self) -> &Events {
        &self.events
    }

    pub fn config(&self) -> &SchedulerConfig {
        &self.config
    }

    async fn decide(&self) -> Decision<'_> {
        self.sessions.lock().await
    }

    /// After a restart: give agents one lease period to come back, and carry every
    /// unfinished pipeline on from where the database says it stood.
    pub async fn recover(&self) -> Result<(), SchedulerError> {
        let mut decision = self.decide().await;
        let grace = now_ms() + millis(self.config.lease_timeout);
        self.store.extend_all_leases(grace).await?;
        for pipeline in self.store.unfinished_pipelines().await? {
            self.advance(&mut decision, pipeline).await?;
        }
        Ok(())
    }

    /// Stores a new pipeline and starts it. `make` gets the pipeline's id (for its
    /// variables) and returns the pipeline with its planned jobs, or why there is none.
    pub async fn create_pipeline<E: Send + 'static>(
        &self,
        make: impl FnOnce(PipelineId) -> Result<NewPipeline, E> + Send + 'static,
    ) -> Result<Result<PipelineId, E>, SchedulerError> {
        let mut decision = self.decide().await;
        let id = self.store.next_pipeline_id().await?;
        let new = match tokio::task::spawn_blocking(move || make(id)).await {
            Ok(Ok(new)) => new,
            Ok(Err(refused)) => return Ok(Err(refused)),
            Err(panic) => {
                return Err(SchedulerError::InvalidState(format!(
                    "planning failed: {panic}"
                )));
            }
        };
        self.store.insert_pipeline(&new).await?;
        info!(pipeline_id = %id, jobs = new.jobs.len(), "pipeline created");
        self.advance(&mut decision, id).await?;
        self.dispatch(&mut decision).await?;
        Ok(Ok(id))
    }

    /// Moves the pipeline's waiting jobs on as far as their stages and needs allow, then
    /// records the pipeline's status.
    async fn advance(
        &self,
        _decision: &mut Decision<'_>,
        pipeline: PipelineId,
    ) -> Result<(), SchedulerError> {
        let jobs = latest_attempts(self.store.pipeline_jobs(pipeline).await?);
        let specs: Vec<PlannedJob> = jobs.iter().map(spec_of).collect::<Result<_, _>>()?;
        for (index, job) in jobs.iter().enumerate() {
            if job.status != JobStatus::Created {
                continue;
            }
            let Some(next) = next_status(index, &jobs, &specs) else {
                continue;
            };
            if self
                .store
                .transition_job(job.id, &[JobStatus::Created], next)
                .await?
            {
                self.events.publish(Event::Job {
                    pipeline,
                    job: job.id,
                });
            }
        }
        let jobs = latest_attempts(self.store.pipeline_jobs(pipeline).await?);
        let status = pipeline_status(&jobs, &specs_by_name(&jobs)?);
        let current = self.store.pipeline(pipeline).await?;
        if current.as_ref().map(|p| p.status) != Some(status) {
            self.store.set_pipeline_status(pipeline, status).await?;
            info!(pipeline_id = %pipeline, %status, "pipeline status");
            self.events.publish(Event::Pipeline { pipeline });
        }
        Ok(())
    }

    /// Leases pending jobs to connected agents with room and the right labels.
    ///
    /// Cheap when nothing can be placed: the pending queue is read only when some agent
    /// has room, and the walk stops once none has. Then a first run of a deploy job that is
    /// older than its environment's current deployment is skipped as outdated, before the
    /// queue is read. A `resource_group` runs one job at a time per project; whose turn it
    /// is follows the group's process mode ([`crate::resource_groups`]).
    async fn dispatch(&self, decision: &mut Decision<'_>) -> Result<(), SchedulerError> {
        if decision.by_agent.is_empty() {
            return Ok(());
        }
        let mut pipelines: HashMap<PipelineId, Pipeline> = HashMap::new();
        let mut load: HashMap<AgentId, u32> = HashMap::new();
        let mut busy_groups: HashSet<(ProjectId, String)> = HashSet::new();
        for job in self.store.running_jobs().await? {
            if let Some(agent) = job.agent_id {
                *load.entry(agent).or_default() += 1;
            }
            if let Some(group) = spec_of(&job)?.resource_group
                && let Some(pipeline) = self
                    .cached_pipeline(&mut pipelines, job.pipeline_id)
                    .await?
            {
                busy_groups.insert((pipeline.project_id, group));
            }
        }
        let paused: Vec<AgentId> = self
            .store
            .agents()
            .await?
            .into_iter()
            .filter(|agent| agent.paused)
            .map(|agent| agent.id)
            .collect();
        let has_room = |agent: &AgentId, session: &Session, load: &HashMap<AgentId, u32>| {
            !paused.contains(agent) && load.get(agent).copied().unwrap_or(0) < session.concurrency
        };
        let any_room = |load: &HashMap<AgentId, u32>, by_agent: &HashMap<AgentId, Session>| {
            by_agent
                .iter()
                .any(|(agent, session)| has_room(agent, session, load))
        };
        if !any_room(&load, &decision.by_agent) {
            return Ok(());
        }
        self.skip_outdated_deploys(decision, &mut pipelines).await?;
        let mut queue = Vec::new();
        for job in self.store.pending_jobs().await? {
            let spec = spec_of(&job)?;
            let Some(pipeline) = self
                .cached_pipeline(&mut pipelines, job.pipeline_id)
                .await?
            else {
                continue;
            };
            queue.push((job, spec, pipeline));
        }
        let turns = self.resource_group_turns(&queue).await?;
        for (job, spec, pipeline) in queue {
            if !any_room(&load, &decision.by_agent) {
                break;
            }
            let group = spec
                .resource_group
                .clone()
                .map(|group| (pipeline.project_id, group));
            if let Some(group) = &group
                && (busy_groups.contains(group)
                    || turns.get(group).is_some_and(|turn| *turn != job.id))
            {
                continue;
            }
            let chosen = decision
                .by_agent
                .iter()
                .filter(|(agent, session)| {
                    has_room(agent, session, &load)
                        && spec.tags.iter().all(|tag| session.labels.contains(tag))
                })
                .min_by_key(|(agent, _)| (load.get(agent).copied().unwrap_or(0), agent.0))
                .map(|(agent, _)| *agent);
            let Some(agent) = chosen else { continue };
            let expires = now_ms() + millis(self.config.lease_timeout);
            let Some(epoch) = self.store.lease_job(job.id, agent, expires).await? else {
                continue;
            };
            *load.entry(agent).or_default() += 1;
            busy_groups.extend(group);
            let assignment = self.assignment(&pipeline, &job, &spec, epoch).await?;
            let message = ServerMessage {
                kind: Some(server_message::Kind::Assignment(assignment)),
            };
            let delivered = decision
                .by_agent
                .get(&agent)
                .is_some_and(|session| session.sender.send(Ok(message)).is_ok());
            if delivered {
                info!(job_id = %job.id, agent_id = %agent, epoch, "job assigned");
            } else {
                warn!(job_id = %job.id, agent_id = %agent, "session gone; job back in the queue");
                decision.by_agent.remove(&agent);
                self.store.requeue_job(job.id, epoch).await?;
                continue;
            }
            self.events.publish(Event::Job {
                pipeline: job.pipeline_id,
                job: job.id,
            });
            if pipelines
                .get(&job.pipeline_id)
                .is_some_and(|cached| cached.status != PipelineStatus::Running)
            {
                self.store
                    .set_pipeline_status(job.pipeline_id, PipelineStatus::Running)
                    .await?;
                self.events.publish(Event::Pipeline {
                    pipeline: job.pipeline_id,
                });
                if let Some(cached) = pipelines.get_mut(&job.pipeline_id) {
                    cached.status = PipelineStatus::Running;
                }
            }
        }
        Ok(())
    }

    /// For each resource group with waiting jobs and a process mode other than
    /// `unordered`, the one job whose turn it is.
    async fn resource_group_turns(
        &self,
        queue: &[(Job, PlannedJob, Pipeline)],
    ) -> Result<HashMap<(ProjectId, String), JobId>, SchedulerError> {
        let mut modes: HashMap<ProjectId, HashMap<String, ProcessMode>> = HashMap::new();
        let mut waiting = Vec::new();
        for (job, spec, pipeline) in queue {
            let Some(group) = &spec.resource_group else {
                continue;
            };
            let project_modes = match modes.entry(pipeline.project_id) {
                Entry::Occupied(known) => known.into_mut(),
                Entry::Vacant(unknown) => {
                    let read = self.store.resource_group_modes(pipeline.project_id).await?;
                    unknown.insert(read.into_iter().collect())
                }
            };
            let mode = project_modes
                .get(group)
                .copied()
                .unwrap_or(ProcessMode::Unordered);
            waiting.push(WaitingForResource {
                group: (pipeline.project_id, group.clone()),
                mode,
                pipeline: pipeline.id,
                job: job.id,
            });
        }
        Ok(resource_groups::turns(&waiting))
    }

    /// Skips, as GitLab's "prevent outdated deployment jobs" does, the pending first runs
    /// of deploy jobs whose environment already runs a newer pipeline's deployment. A
    /// retried job (a rollback) is never outdated.
    async fn skip_outdated_deploys(
        &self,
        decision: &mut Decision<'_>,
        pipelines: &mut HashMap<PipelineId, Pipeline>,
    ) -> Result<(), SchedulerError> {
        for job in self.store.pending_first_deploys().await? {
            let Some(environment) = spec_of(&job)?.environment else {
                continue;
            };
            let Some(pipeline) = self.cached_pipeline(pipelines, job.pipeline_id).await? else {
                continue;
            };
            let newest = self
                .store
                .newest_successful_deploy(pipeline.project_id, &environment.name)
                .await?;
            let Some(newest) = newest.filter(|newest| *newest > pipeline.id) else {
                continue;
            };
            let reason = format!(
                "outdated deployment: pipeline {newest} already deployed a newer version to {}",
                environment.name
            );
            if self.store.skip_pending_job(job.id, &reason).await? {
                info!(job_id = %job.id, %reason, "deploy skipped");
                self.events.publish(Event::Job {
                    pipeline: job.pipeline_id,
                    job: job.id,
                });
                self.advance(decision, job.pipeline_id).await?;
            }
        }
        Ok(())
    }

    /// The pipeline `id`, read once per dispatch.
    async fn cached_pipeline(
        &self,
        cache: &mut HashMap<PipelineId, Pipeline>,
        id: PipelineId,
    ) -> Result<Option<Pipeline>, SchedulerError> {
        if let Some(found) = cache.get(&id) {
            return Ok(Some(found.clone()));
        }
        let found = self.store.pipeline(id).await?;
        if let Some(pipeline) = &found {
            cache.insert(id, pipeline.clone());
        }
        Ok(found)
    }

    async fn assignment(
        &self,
        pipeline: &Pipeline,
        job: &Job,
        spec: &PlannedJob,
        epoch: i64,
    ) -> Result<JobAssignment, SchedulerError> {
        let project = self
            .store
            .project(pipeline.project_id)
            .await?
            .ok_or_else(|| SchedulerError::NotFound(format!("project {}", pipeline.project_id)))?;
        let git_ref = if pipeline.ref_kind == "tag" {
            RefKind::Tag(pipeline.git_ref.clone())
        } else {
            RefKind::Branch(pipeline.git_ref.clone())
        };
        let source = serde_json::from_value(serde_json::Value::String(pipeline.source.clone()))
            .unwrap_or_default();
        let facts = PipelineFacts {
            pipeline_id: pipeline.id.0,
            project: &project.name,
            git_ref: &git_ref,
            sha: &pipeline.sha,
            source,
            server_url: &self.config.server_url,
        };
        let mut variables = predefined(&facts);
        variables.extend([
            ("CI_JOB_ID".to_string(), job.id.to_string()),
            ("CI_JOB_NAME".to_string(), job.name.clone()),
            ("CI_JOB_STAGE".to_string(), job.stage.clone()),
            (
                "CI_JOB_URL".to_string(),
                format!("{}/jobs/{}", self.config.server_url, job.id),
            ),
        ]);
        variables.extend(
            spec.variables
                .iter()
                .map(|v| (v.key.clone(), v.value.clone())),
        );
        let opened = self
            .project_variables(project.id, &pipeline.git_ref)
            .await?;
        let masked_keys: Vec<String> = opened
            .iter()
            .filter(|variable| variable.masked)
            .map(|variable| variable.key.clone())
            .collect();
        let file_keys: Vec<String> = opened
            .iter()
            .filter(|variable| variable.file)
            .map(|variable| variable.key.clone())
            .collect();
        variables.extend(
            opened
                .into_iter()
                .map(|variable| (variable.key, variable.value)),
        );
        let given: Vec<(String, String)> =
            serde_json::from_str(&pipeline.variables_json).map_err(StoreError::from)?;
        variables.extend(given);
        let pipeline_jobs = latest_attempts(self.store.pipeline_jobs(pipeline.id).await?);
        let artifact_jobs = artifact_sources(spec, job, &pipeline_jobs);
        Ok(JobAssignment {
            lease: Some(Lease {
                job_id: job.id.0,
                epoch,
            }),
            pipeline_id: pipeline.id.0,
            project: project.name.clone(),
            repo_url: project.repo_url.clone(),
            fetch_url: Some(project.fetch_url())
                .filter(|url| *url != project.repo_url)
                .unwrap_or_default(),
            ssh_key: project.ssh_key.clone().unwrap_or_default(),
            sha: pipeline.sha.clone(),
            git_ref: pipeline.git_ref.clone(),
            spec_json: job.spec_json.clone(),
            variables: expand_all(variables)
                .into_iter()
                .map(|(key, value)| esteira_proto::v1::Variable {
                    masked: masked_keys.contains(&key),
                    file: file_keys.contains(&key),
                    key,
                    value,
                })
                .collect(),
            heartbeat_interval_secs: heartbeat_interval(self.config.lease_timeout),
            artifact_jobs,
        })
    }

    /// The project's variables that a pipeline on `git_ref` may see (protected ones only
    /// on protected refs), opened. A merge request from a fork (its ref is the forge's
    /// `refs/pull/…` or `refs/merge-requests/…`) sees none: its code is not the project's.
    pub async fn project_variables(
        &self,
        project: ProjectId,
        git_ref: &str,
    ) -> Result<Vec<ProjectVariable>, SchedulerError> {
        if git_ref.starts_with("refs/") {
            return Ok(Vec::new());
        }
        let protected_ref = self
            .store
            .protected_refs(project)
            .await?
            .iter()
            .any(|pattern| ref_matches(pattern, git_ref));
        let mut opened = Vec::new();
        for sealed in self.store.sealed_variables(project).await? {
            if sealed.protected && !protected_ref {
                continue;
            }
            let value = self
                .secrets
                .open(&sealed.nonce, &sealed.ciphertext)
                .map_err(|error| SchedulerError::InvalidState(error.to_string()))?;
            opened.push(ProjectVariable {
                key: sealed.key,
                value: String::from_utf8_lossy(&value).into_owned(),
                masked: sealed.masked,
                file: sealed.file,
            });
        }
        Ok(opened)
    }

    /// An agent opened its session: remember it, settle the jobs the database thinks it
    /// runs against what it says it runs, and give it work.
    pub async fn connect(
        &self,
        agent: AgentId,
        labels: Vec<String>,
        concurrency: u32,
        running: &[Lease],
        sender: SessionSender,
    ) -> Result<u64, SchedulerError> {
        let mut decision = self.decide().await;
        decision.next_id += 1;
        let id = decision.next_id;
        decision.by_agent.insert(
            agent,
            Session {
                id,
                labels,
                concurrency,
                sender,
            },
        );
        for job in self.store.running_jobs().await? {
            if job.agent_id != Some(agent) {
                continue;
            }
            let still_running = running
                .iter()
                .any(|lease| lease.job_id == job.id.0 && lease.epoch == job.lease_epoch);
            if still_running {
                continue;
            }
            if job.started_at.is_none() {
                // The assignment never reached the agent: nothing ran, queue it again.
                self.store.requeue_job(job.id, job.lease_epoch).await?;
            } else {
                self.lose(
                    &mut decision,
                    &job,
                    "the agent restarted and no longer runs the job",
                )
                .await?;
            }
        }
        self.dispatch(&mut decision).await?;
        Ok(id)
    }

    /// The session `session` of `agent` ended. Its jobs keep their leases until they expire.
    pub async fn disconnect(&self, agent: AgentId, session: u64) {
        let mut decision = self.decide().await;
        if decision
            .by_agent
            .get(&agent)
            .is_some_and(|s| s.id == session)
        {
            decision.by_agent.remove(&agent);
        }
    }

    /// Renews the agent's leases; answers which jobs to abandon and which to cancel.
    pub async fn heartbeat(
        &self,
        agent: AgentId,
        running: &[Lease],
    ) -> Result<(Vec<Lease>, Vec<Lease>), SchedulerError> {
        let expires = now_ms() + millis(self.config.lease_timeout);
        let mut abandon = Vec::new();
        let mut cancel = Vec::new();
        for lease in running {
            let job = JobId(lease.job_id);
            if !self
                .store
                .renew_lease(job, agent, lease.epoch, expires)
                .await?
            {
                abandon.push(*lease);
            } else if self
                .store
                .job(job)
                .await?
                .is_some_and(|j| j.cancel_requested)
            {
                cancel.push(*lease);
            }
        }
        self.store.touch_agent(agent).await?;
        Ok((abandon, cancel))
    }

    /// Pauses (no new jobs) or resumes an agent.
    pub async fn set_paused(&self, agent: AgentId, paused: bool) -> Result<(), SchedulerError> {
        let mut decision = self.decide().await;
        if !self.store.set_agent_paused(agent, paused).await? {
            return Err(SchedulerError::NotFound(format!("agent {agent}")));
        }
        self.dispatch(&mut decision).await
    }

    /// Removes an agent: its credential stops working, its session closes, and its
    /// running jobs are lost (and retried by policy).
    pub async fn remove_agent(&self, agent: AgentId) -> Result<(), SchedulerError> {
        let mut decision = self.decide().await;
        if !self.store.remove_agent(agent).await? {
            return Err(SchedulerError::NotFound(format!("agent {agent}")));
        }
        decision.by_agent.remove(&agent);
        for job in self.store.running_jobs().await? {
            if job.agent_id == Some(agent) {
                self.lose(
                    &mut decision,
                    &job,
                    &format!("agent {agent} was removed by an admin"),
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Agents with an open session.
    pub async fn connected_agents(&self) -> Vec<AgentId> {
        self.decide().await.by_agent.keys().copied().collect()
    }

    /// The agent has started the job it was leased.
    pub async fn start_job(&self, agent: AgentId, lease: &Lease) -> Result<(), SchedulerError> {
        let job = JobId(lease.job_id);
        if !self.store.mark_started(job, agent, lease.epoch).await? {
            return Err(SchedulerError::Fenced(job));
        }
        Ok(())
    }

    /// Appends a log chunk of a job leased to `agent`; answers the acknowledged offset.
    pub async fn append_log(
        &self,
        agent: AgentId,
        lease: &Lease,
        offset: u64,
        data: &[u8],
    ) -> Result<u64, SchedulerError> {
        let job = JobId(lease.job_id);
        let holder = self.store.job(job).await?.and_then(|j| j.agent_id);
        if holder != Some(agent) {
            return Err(SchedulerError::Fenced(job));
        }
        let appended = self
            .store
            .append_log(job, lease.epoch, offset, data, self.config.log_limit)
            .await?
            .ok_or(SchedulerError::Fenced(job))?;
        if appended.grew {
            self.events.publish(Event::Log { job });
        }
        Ok(appended.acknowledged)
    }

    /// The agent finished a job. The same completion twice is accepted once.
    pub async fn complete(
        &self,
        agent: AgentId,
        lease: &Lease,
        log_size: u64,
        ending: JobEnding,
    ) -> Result<(), SchedulerError> {
        let mut decision = self.decide().await;
        let id = JobId(lease.job_id);
        let job = self
            .store
            .job(id)
            .await?
            .ok_or_else(|| SchedulerError::NotFound(format!("job {id}")))?;
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
        if u64::try_from(job.log_size).unwrap_or(0) < log_size {
            return Err(SchedulerError::InvalidState(format!(
                "job {id}: {log_size} log bytes reported but {} acknowledged",
                job.log_size
            )));
        }
        if !self.store.finish_job(id, lease.epoch, &ending).await? {
            return Err(SchedulerError::Fenced(id));
        }
        info!(job_id = %id, agent_id = %agent, status = %ending.status, "job finished");
        self.record_coverage(&job).await?;
        self.record_deployment(&job, &ending).await?;
        self.after_finish(&mut decision, &job, &ending).await
    }

    /// Applies the job's `coverage` regex to its log and keeps the figure found.
    async fn record_coverage(&self, job: &Job) -> Result<(), SchedulerError> {
        let Some(pattern) = spec_of(job)?.coverage else {
            return Ok(());
        };
        let limit = usize::try_from(self.config.log_limit).unwrap_or(usize::MAX);
        let (log, _) = self.store.read_log(job.id, 0, limit).await?;
        if let Some(figure) = crate::coverage::find(&pattern, &log) {
            self.store.set_job_coverage(job.id, figure).await?;
        }
        Ok(())
    }

    /// A finished job that deploys to an environment (`action: start`) adds to that
    /// environment's history; a successful `action: stop` job adds a `stopped` entry. The
    /// other actions (`prepare`, `verify`, `access`) leave the environment as it is.
    async fn record_deployment(&self, job: &Job, ending: &JobEnding) -> Result<(), SchedulerError> {
        let Some(environment) = spec_of(job)?.environment else {
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

    /// A finished job may be retried; either way its pipeline moves on.
    async fn after_finish(
        &self,
        decision: &mut Decision<'_>,
        job: &Job,
        ending: &JobEnding,
    ) -> Result<(), SchedulerError> {
        self.events.publish(Event::Job {
            pipeline: job.pipeline_id,
            job: job.id,
        });
        let spec = spec_of(job)?;
        if ending.status.is_failure() && !job.cancel_requested && retries(&spec, job, ending) {
            let retry = self.store.insert_retry(job).await?;
            info!(job_id = %job.id, retry_id = %retry, "job retried");
        }
        self.advance(decision, job.pipeline_id).await?;
        self.dispatch(decision).await
    }

    /// Ends every running job whose lease expired as lost.
    pub async fn expire_leases(&self) -> Result<(), SchedulerError> {
        let mut decision = self.decide().await;
        let now = now_ms();
        for job in self.store.running_jobs().await? {
            if job.lease_expires_at.is_some_and(|at| at < now) {
                let agent = job
                    .agent_id
                    .map_or_else(|| "?".to_string(), |a| a.to_string());
                let reason = format!("lease expired on agent {agent}: the agent was lost");
                self.lose(&mut decision, &job, &reason).await?;
            }
        }
        Ok(())
    }

    /// The one path for a job whose agent is gone.
    async fn lose(
        &self,
        decision: &mut Decision<'_>,
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
            .finish_job(job.id, job.lease_epoch, &ending)
            .await?
        {
            warn!(job_id = %job.id, reason, "job lost");
            self.after_finish(decision, job, &ending).await?;
        }
        Ok(())
    }

    /// Cancels one job: at once when it has not started, through its agent when it runs.
    pub async fn cancel_job(&self, id: JobId) -> Result<(), SchedulerError> {
        let mut decision = self.decide().await;
        let job = self
            .store
            .job(id)
            .await?
            .ok_or_else(|| SchedulerError::NotFound(format!("job {id}")))?;
        self.cancel(&mut decision, &job).await?;
        self.advance(&mut decision, job.pipeline_id).await?;
        self.dispatch(&mut decision).await
    }

    /// Cancels every job of a pipeline that has not finished.
    pub async fn cancel_pipeline(&self, id: PipelineId) -> Result<(), SchedulerError> {
        let mut decision = self.decide().await;
        let jobs = self.store.pipeline_jobs(id).await?;
        if jobs.is_empty() && self.store.pipeline(id).await?.is_none() {
            return Err(SchedulerError::NotFound(format!("pipeline {id}")));
        }
        for job in latest_attempts(jobs) {
            self.cancel(&mut decision, &job).await?;
        }
        self.advance(&mut decision, id).await?;
        self.dispatch(&mut decision).await
    }

    async fn cancel(&self, decision: &mut Decision<'_>, job: &Job) -> Result<(), SchedulerError> {
        let waiting = [JobStatus::Created, JobStatus::Pending, JobStatus::Manual];
        if self
            .store
            .transition_job(job.id, &waiting, JobStatus::Canceled)
            .await?
        {
            self.events.publish(Event::Job {
                pipeline: job.pipeline_id,
                job: job.id,
            });
            return Ok(());
        }
        if job.status != JobStatus::Running {
            return Ok(());
        }
        self.store.request_cancel(job.id).await?;
        if let Some(session) = job.agent_id.and_then(|agent| decision.by_agent.get(&agent)) {
            let message = ServerMessage {
                kind: Some(server_message::Kind::Cancel(CancelJob {
                    lease: Some(Lease {
                        job_id: job.id.0,
                        epoch: job.lease_epoch,
                    }),
                })),
            };
            // A closed session learns of the cancel at its next heartbeat.
            let _ = session.sender.send(Ok(message));
        }
        Ok(())
    }

    /// Starts a manual job.
    pub async fn play_job(&self, id: JobId) -> Result<(), SchedulerError> {
        let mut decision = self.decide().await;
        let job = self
            .store
            .job(id)
            .await?
            .ok_or_else(|| SchedulerError::NotFound(format!("job {id}")))?;
        if !self
            .store
            .transition_job(id, &[JobStatus::Manual], JobStatus::Pending)
            .await?
        {
            return Err(SchedulerError::InvalidState(format!(
                "job {id} is {}, not manual",
                job.status
            )));
        }
        self.events.publish(Event::Job {
            pipeline: job.pipeline_id,
            job: id,
        });
        self.advance(&mut decision, job.pipeline_id).await?;
        self.dispatch(&mut decision).await
    }

    /// Runs a finished job again as a new attempt.
    pub async fn retry_job(&self, id: JobId) -> Result<JobId, SchedulerError> {
        let mut decision = self.decide().await;
        let job = self
            .store
            .job(id)
            .await?
            .ok_or_else(|| SchedulerError::NotFound(format!("job {id}")))?;
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
        let retry = self.store.insert_retry(&job).await?;
        self.advance(&mut decision, job.pipeline_id).await?;
        self.dispatch(&mut decision).await?;
        Ok(retry)
    }

    /// GitLab's auto-cancel of redundant pipelines: `newer` was created on `branch`, so
    /// the unfinished `interruptible: true` jobs of the project's older pipelines on that
    /// branch are canceled (running ones through their agent); their other jobs go on.
    pub async fn cancel_interruptible(
        &self,
        project: &str,
        branch: &str,
        newer: PipelineId,
    ) -> Result<Vec<JobId>, SchedulerError> {
        let mut decision = self.decide().await;
        let mut canceled = Vec::new();
        // Older ones were canceled by the pushes in between.
        let recent = crate::store::pipelines::PipelineFilter {
            project: Some(project.to_string()),
            status: None,
            git_ref: Some(branch.to_string()),
            before: Some(newer),
            limit: 50,
        };
        for older in self.store.pipelines(&recent).await? {
            if older.status.is_finished() || older.ref_kind != "branch" {
                continue;
            }
            let id = older.id;
            let mut touched = false;
            for job in latest_attempts(self.store.pipeline_jobs(id).await?) {
                if job.status.is_finished() || !spec_of(&job)?.interruptible {
                    continue;
                }
                self.cancel(&mut decision, &job).await?;
                canceled.push(job.id);
                touched = true;
            }
            if touched {
                info!(pipeline_id = %id, newer = %newer, "interruptible jobs canceled by a newer pipeline");
                self.advance(&mut decision, id).await?;
            }
        }
        self.dispatch(&mut decision).await?;
        Ok(canceled)
    }
}

/// Whether a protected-ref pattern (`main`, `release/*`) covers `git_ref`.
/// Whether a protected-branch `pattern` (`*` a wildcard) covers `git_ref`.
fn ref_matches(pattern: &str, git_ref: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == git_ref,
        Some((prefix, suffix)) => {
            git_ref.len() >= prefix.len() + suffix.len()
                && git_ref.starts_with(prefix)
                && git_ref.ends_with(suffix)
        }
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Heartbeats come three times per lease period.
pub fn heartbeat_interval(lease_timeout: Duration) -> u32 {
    u32::try_from((lease_timeout.as_secs() / 3).max(1)).unwrap_or(u32::MAX)
}

fn spec_of(job: &Job) -> Result<PlannedJob, StoreError> {
    Ok(serde_json::from_str(&job.spec_json)?)
}

fn specs_by_name(jobs: &[Job]) -> Result<HashMap<String, PlannedJob>, StoreError> {
    jobs.iter()
        .map(|job| Ok((job.name.clone(), spec_of(job)?)))
        .collect()
}

/// The latest attempt of each job, in plan order.
pub fn latest_attempts(jobs: Vec<Job>) -> Vec<Job> {
    jobs.into_iter().filter(|job| !job.retried).collect()
}

/// Whether a finished job's failure is tolerated by its `allow_failure`.
fn failure_allowed(spec: &PlannedJob, job: &Job) -> bool {
    match &spec.allow_failure {
        AllowFailure::No => false,
        AllowFailure::Yes => true,
        AllowFailure::ExitCodes(codes) => job
            .exit_code
            .is_some_and(|code| codes.iter().any(|allowed| i64::from(*allowed) == code)),
    }
}

/// A job that failed the pipeline's path: failed or lost without leave, or canceled.
fn blocks_success(spec: &PlannedJob, job: &Job) -> bool {
    job.status == JobStatus::Canceled || (job.status.is_failure() && !failure_allowed(spec, job))
}

/// Whether a job `needs` names this one (a `parallel` job is needed by its base name).
fn is_needed_as(job_name: &str, need: &str) -> bool {
    job_name == need
        || job_name.strip_prefix(need).is_some_and(|rest| {
            rest.starts_with(' ') && (rest.contains('/') || rest.starts_with(": ["))
        })
}

/// The earlier jobs whose artifacts `job` gets: those it `needs` with artifacts, else its
/// `dependencies`, else every job of the earlier stages (GitLab's default).
fn artifact_sources(spec: &PlannedJob, job: &Job, jobs: &[Job]) -> Vec<i64> {
    let wanted = |other: &Job| match (&spec.needs, &spec.dependencies) {
        (Some(needs), _) => needs
            .iter()
            .any(|need| need.artifacts && is_needed_as(&other.name, &need.job)),
        (None, Some(dependencies)) => dependencies
            .iter()
            .any(|name| is_needed_as(&other.name, name)),
        (None, None) => other.stage_index < job.stage_index,
    };
    jobs.iter()
        .filter(|other| other.id != job.id && other.artifacts_size.is_some() && wanted(other))
        .map(|other| other.id.0)
        .collect()
}

/// What a `created` job becomes now, or `None` while what it waits for has not finished.
fn next_status(index: usize, jobs: &[Job], specs: &[PlannedJob]) -> Option<JobStatus> {
    let job = &jobs[index];
    let spec = &specs[index];
    let upstream: Vec<usize> = match &spec.needs {
        Some(needs) => (0..jobs.len())
            .filter(|&other| {
                needs
                    .iter()
                    .any(|need| is_needed_as(&jobs[other].name, &need.job))
            })
            .collect(),
        None => (0..jobs.len())
            .filter(|&other| jobs[other].stage_index < job.stage_index)
            .collect(),
    };
    let mut upstream_failed = false;
    for other in upstream {
        let (dependency, dependency_spec) = (&jobs[other], &specs[other]);
        match dependency.status {
            JobStatus::Manual if dependency_spec.allow_failure != AllowFailure::No => {}
            status if !status.is_finished() => return None,
            _ => upstream_failed |= blocks_success(dependency_spec, dependency),
        }
    }
    Some(match (spec.when, upstream_failed) {
        (When::Always, _) | (When::OnFailure, true) => JobStatus::Pending,
        (When::OnSuccess | When::Delayed, false) => JobStatus::Pending,
        (When::Manual, false) => JobStatus::Manual,
        _ => JobStatus::Skipped,
    })
}

/// The pipeline's status as its latest job attempts make it.
fn pipeline_status(jobs: &[Job], specs: &HashMap<String, PlannedJob>) -> PipelineStatus {
    let spec = |job: &Job| specs.get(&job.name).cloned().unwrap_or_default();
    let any = |status: JobStatus| jobs.iter().any(|job| job.status == status);
    if any(JobStatus::Running) {
        return PipelineStatus::Running;
    }
    if any(JobStatus::Pending) || any(JobStatus::Created) {
        let started = jobs
            .iter()
            .any(|job| job.status.is_finished() || job.started_at.is_some());
        return if started {
            PipelineStatus::Running
        } else {
            PipelineStatus::Pending
        };
    }
    let blocking_manual = jobs
        .iter()
        .any(|job| job.status == JobStatus::Manual && spec(job).allow_failure == AllowFailure::No);
    if blocking_manual {
        return PipelineStatus::Manual;
    }
    if jobs
        .iter()
        .any(|job| job.status.is_failure() && !failure_allowed(&spec(job), job))
    {
        PipelineStatus::Failed
    } else if any(JobStatus::Canceled) {
        PipelineStatus::Canceled
    } else if jobs.iter().all(|job| job.status == JobStatus::Skipped) {
        PipelineStatus::Skipped
    } else {
        PipelineStatus::Success
    }
}

/// Whether `retry:` asks for another attempt after this failure.
fn retries(spec: &PlannedJob, job: &Job, ending: &JobEnding) -> bool {
    let retry = &spec.retry;
    if i64::from(retry.max) < job.attempt {
        return false;
    }
    let kind = ending.failure_kind.as_deref().unwrap_or("unknown_failure");
    let when_matches = retry.when.is_empty()
        || retry
            .when
            .iter()
            .any(|when| when == "always" || when == kind);
    let code_matches = retry.exit_codes.is_empty()
        || ending
            .exit_code
            .is_some_and(|code| retry.exit_codes.iter().any(|c| i64::from(*c) == code));
    when_matches && code_matches
}

#[cfg(test)]
mod tests {
    use super::ref_matches;

    #[test]
    fn protected_patterns_cover_branches() {
        assert!(ref_matches("master", "master"));
        assert!(ref_matches("release/*", "release/1.2"));
        assert!(ref_matches("*", "devel"));
        assert!(!ref_matches("release/*", "releases"));
        assert!(!ref_matches("master", "master2"));
    }
}
