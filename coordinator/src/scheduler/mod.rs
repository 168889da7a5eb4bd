//! Every decision about jobs, in one place: which job becomes runnable, which agent gets
//! it, what a completion, a lost lease or a cancel does to the pipeline.
//!
//! # Layout
//!
//! - [`rules`]: the pure rules (what a waiting job becomes, a pipeline's status, retries,
//!   artifact sources), with unit tests of their own.
//! - [`graph`]: each unfinished pipeline's stage graph in memory, so advancing a pipeline
//!   looks only at the jobs a change can affect.
//! - [`queue`]: the runnable jobs by the tags they need, and the agents with room.
//! - `dispatch`: matching the two, resource-group turns, outdated deploys, leases.
//! - `pipelines`: commands on pipelines and jobs (create, cancel, retry, play).
//! - `sessions`: agents' sessions, heartbeats, logs, completions, lost leases.
//! - [`assignment`]: what an agent is sent for a job, as a domain value (the gRPC layer
//!   converts it).
//! - [`clock`]: the time leases are measured with, injectable in tests.
//! - `credentials`: registering agents and knowing them by their credential.
//! - [`waiting`]: why a job that has not started waits, read from the state above.
//!
//! # How a decision is made
//!
//! The job state machine is in [`crate::model`]. Every transition happens under one lock
//! (the [`State`] behind [`Scheduler::decide`]); the database guards each write by the
//! status (and lease epoch) it expects, so a stale agent or a second writer changes
//! nothing. The state in memory (graphs, queue, sessions, loads) is rebuilt from the store
//! at start ([`Scheduler::recover`]) and changed only after the store was.
//!
//! What is slow stays outside the lock: reading and planning a pipeline file, storing a
//! new pipeline, log appends, lease renewals, job starts.
//!
//! A command runs as a task of its own ([`detach`]): once it started, a caller that goes
//! away (a dropped connection, a deadline) does not stop it halfway, so what follows from
//! a stored completion — the pipeline advancing, the next dispatch — always happens.

pub mod assignment;
pub mod clock;
mod credentials;
mod dispatch;
pub mod graph;
mod pipelines;
pub mod queue;
pub mod rules;
mod sessions;
#[cfg(test)]
mod tests;
pub mod waiting;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, MutexGuard, mpsc};

use crate::artifacts::ArtifactStore;
use crate::events::Events;
use crate::model::{AgentId, JobId, PipelineId, ProjectId};
use crate::secrets::SecretBox;
use crate::store::jobs::Job;
use crate::store::{Store, StoreError};

pub use assignment::{Assignment, JobVariable, ProjectVariable};
pub use clock::{Clock, SystemClock};
pub use credentials::Registered;
pub use sessions::{Removal, SessionMessage};

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

/// A lease as agents name it: the job and the epoch it was leased under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseRef {
    pub job: JobId,
    pub epoch: i64,
}

/// Where the scheduler pushes messages for an agent's session.
pub type SessionSender = mpsc::UnboundedSender<SessionMessage>;

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
    /// The largest assignment an agent accepts (its gRPC decoding limit).
    pub max_assignment_bytes: usize,
    /// Where leases, endings and lost leases are counted.
    pub metrics: crate::metrics::SchedulerMetrics,
}

/// An agent's open session.
struct Session {
    id: u64,
    labels: BTreeSet<String>,
    concurrency: u32,
    sender: SessionSender,
}

/// A job leased to an agent, as dispatch counts it.
#[derive(Debug, Clone, Copy)]
struct Leased {
    agent: AgentId,
    pipeline: PipelineId,
    /// Its place in the queue, kept if it goes back there.
    order: u64,
}

/// A resource group of a project.
type GroupKey = (ProjectId, String);

/// Everything decided in memory, behind the decision lock.
#[derive(Default)]
pub struct State {
    sessions: HashMap<AgentId, Session>,
    next_session: u64,
    paused: HashSet<AgentId>,
    graphs: HashMap<PipelineId, graph::PipelineGraph>,
    queue: queue::Queue,
    room: queue::Room,
    leased: HashMap<JobId, Leased>,
    load: HashMap<AgentId, u32>,
    /// The job that holds each busy resource group (queued for its turn, or running).
    group_holders: HashMap<GroupKey, JobId>,
    /// Pending jobs waiting for their resource group, with their place in the queue.
    group_waiting: HashMap<GroupKey, Vec<(JobId, PipelineId, u64)>>,
    /// Work for the next dispatch: groups whose turn may pass, tag groups with new jobs,
    /// agents that may have room.
    groups_to_turn: BTreeSet<GroupKey>,
    fresh_tags: HashSet<queue::Tags>,
    freed: BTreeSet<AgentId>,
}

pub struct Scheduler {
    store: Store,
    secrets: SecretBox,
    events: Events,
    config: SchedulerConfig,
    clock: Arc<dyn Clock>,
    credentials: credentials::Credentials,
    state: Mutex<State>,
}

/// Proof that the caller holds the decision lock.
type Decision<'a> = MutexGuard<'a, State>;

/// Runs a command to its end even if its caller stops waiting for it.
async fn detach<T: Send + 'static>(
    command: impl Future<Output = Result<T, SchedulerError>> + Send + 'static,
) -> Result<T, SchedulerError> {
    tokio::spawn(command).await.unwrap_or_else(|failed| {
        Err(SchedulerError::InvalidState(format!(
            "a scheduler command failed: {failed}"
        )))
    })
}

impl Scheduler {
    pub fn new(
        store: Store,
        secrets: SecretBox,
        events: Events,
        config: SchedulerConfig,
    ) -> Arc<Scheduler> {
        Scheduler::with_clock(store, secrets, events, config, Arc::new(SystemClock))
    }

    /// A scheduler measuring leases with `clock`.
    pub fn with_clock(
        store: Store,
        secrets: SecretBox,
        events: Events,
        config: SchedulerConfig,
        clock: Arc<dyn Clock>,
    ) -> Arc<Scheduler> {
        Arc::new(Scheduler {
            store,
            secrets,
            events,
            config,
            clock,
            credentials: credentials::Credentials::default(),
            state: Mutex::new(State::default()),
        })
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
        self.state.lock().await
    }

    /// The job `id`, or why there is none.
    async fn existing_job(&self, id: JobId) -> Result<Job, SchedulerError> {
        self.store
            .job(id)
            .await?
            .ok_or_else(|| SchedulerError::NotFound(format!("job {id}")))
    }

    /// When a lease given now ends.
    fn lease_deadline(&self) -> i64 {
        self.clock.now_ms() + millis(self.config.lease_timeout)
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Heartbeats come three times per lease period.
pub fn heartbeat_interval(lease_timeout: Duration) -> u32 {
    u32::try_from((lease_timeout.as_secs() / 3).max(1)).unwrap_or(u32::MAX)
}

/// The latest attempt of each job, in plan order.
pub fn latest_attempts(jobs: Vec<Job>) -> Vec<Job> {
    jobs.into_iter().filter(|job| !job.retried).collect()
}
