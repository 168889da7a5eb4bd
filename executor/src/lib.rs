//! esteira's Docker executor: runs one planned job in containers on the agent's host.
//!
//! # Layout
//! - [`Executor`] (this file): the configuration, the job handed in ([`JobRun`]) and the
//!   three entry points the agent calls: [`Executor::connect`], [`Executor::run`] and
//!   [`Executor::remove_leftovers`].
//! - `job` (and `job/keep`): one run from start to end, step by step; the only place that
//!   orders steps. `docs/executor.md` tells the steps in prose.
//! - `policy`: what the agent's admin allows (the Docker socket).
//! - `workspace`: the cached bare mirror per repository and the checkout of one commit.
//! - `container`: images (present or pulled) and the life of one script container.
//! - `script`: the shell script generated from `before_script`/`script`/`after_script`.
//! - `services`: the job's network and its service containers.
//! - `mask`, `log`: the log stream, masked, with esteira's own lines in it.
//! - `archive`, `artifacts`, `junit`, `cache`: files a job takes in, keeps and shares.
//! - `build`, `dockerignore`: the `build:` extension (build, tag, push).
//! - `deploy`: the `deploy:` extension (roll a service on the host, roll back).
//! - `registry`: `CI_REGISTRY` credentials, for pushes and pulls.
//! - `expand`: `$VARIABLE` references in the values the executor reads itself.
//! - `file_variables`: GitLab's file variables, written to private files in the job.
//! - `cleanup`: removal of every Docker object a job created, now or after a crash.
//! - `outcome`, `error`: how a job ended, and why ([`Outcome`], [`Failure`]).

mod archive;
mod artifacts;
mod build;
mod cache;
mod cleanup;
mod container;
mod deploy;
mod dockerignore;
mod error;
mod expand;
mod file_variables;
mod job;
mod junit;
mod log;
mod mask;
mod outcome;
mod policy;
mod registry;
mod script;
mod services;
mod workspace;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::Docker;
use bytes::Bytes;
use tokio::sync::mpsc::Sender;
use tokio_util::sync::CancellationToken;

pub use archive::ArchiveError;
pub use artifacts::ArtifactsError;
pub use build::BuildError;
pub use cleanup::{CleanupError, remove_leftovers};
pub use container::ContainerError;
pub use deploy::{DEPLOY_JOB_LABEL, DEPLOY_SERVICE_LABEL, DeployError};
pub use dockerignore::ContextError;
pub use error::ExecutorError;
pub use expand::expand;
pub use mask::Masker;
pub use outcome::{Failure, FailureKind, JobResult, Outcome};
pub use policy::PolicyError;
pub use workspace::WorkspaceError;

/// The label every Docker object of a job carries, with the job id as value.
pub const JOB_LABEL: &str = "esteira.job";
/// The label every Docker object esteira creates carries, with value `true`.
pub const MANAGED_LABEL: &str = "esteira.managed";
/// The label naming the executor instance (see [`ExecutorConfig::instance`]).
pub const INSTANCE_LABEL: &str = "esteira.instance";

/// How the executor runs jobs on this host. Tests build it directly.
#[derive(Debug, Clone)]
pub struct ExecutorConfig {
    /// This executor's name among those sharing a Docker engine (e.g. the agent's name):
    /// its objects carry it, and [`Executor::remove_leftovers`] touches only those.
    pub instance: String,
    /// Root of everything on disk: `mirrors/`, `builds/`, `cache/`, `artifacts/`.
    pub work_dir: PathBuf,
    /// Lets jobs use the host's Docker socket (mounted) and privileged `docker:dind` services.
    pub allow_docker_socket: bool,
    /// Gives every job a Docker network of its own, isolating it from other jobs'
    /// containers; without it only jobs with services get one (as GitLab Runner without
    /// `FF_NETWORK_PER_BUILD`) and the others use the default bridge.
    pub network_per_job: bool,
    /// Upper bound on any job's `timeout`.
    pub max_timeout: Option<Duration>,
    /// CPUs per container (e.g. `1.5`).
    pub cpu_limit: Option<f64>,
    /// Memory per container in bytes (swap disabled so that the limit is real).
    pub memory_limit: Option<u64>,
    /// The image of jobs that name none.
    pub default_image: String,
    /// The timeout of jobs that set none (still capped by `max_timeout`).
    pub default_timeout: Duration,
    /// Between SIGTERM and SIGKILL when a job is canceled or times out.
    pub stop_grace: Duration,
    /// Upper bound on `after_script`.
    pub after_script_timeout: Duration,
    /// How long to wait for a service's exposed ports to accept connections.
    pub service_wait: Duration,
    /// Upper bound on pulling one image.
    pub pull_timeout: Duration,
    /// Upper bound on the size of a job's artifacts archive, in bytes.
    pub max_artifacts_size: u64,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        ExecutorConfig {
            instance: "default".to_string(),
            work_dir: PathBuf::from("esteira-work"),
            allow_docker_socket: false,
            network_per_job: false,
            max_timeout: None,
            cpu_limit: None,
            memory_limit: None,
            default_image: "esteira-test/busybox:latest".to_string(),
            default_timeout: Duration::from_secs(3600),
            stop_grace: Duration::from_secs(3),
            after_script_timeout: Duration::from_secs(300),
            service_wait: Duration::from_secs(30),
            pull_timeout: Duration::from_secs(300),
            max_artifacts_size: 1 << 30,
        }
    }
}

/// One job as the agent hands it over.
#[derive(Debug, Clone, Default)]
pub struct JobRun {
    pub job_id: i64,
    /// Project name, used for the workspace path and cache keys.
    pub project: String,
    /// Git URL (`file://`, `http(s)://`, `git://` or a local path).
    pub repo_url: String,
    /// The URL to fetch from when it carries credentials (`https://user:token@…`); the
    /// job only ever sees `repo_url`, and the password is masked in the log.
    pub fetch_url: Option<String>,
    /// A private key for fetching an `ssh://` repository (the project's deploy key).
    pub ssh_key: Option<String>,
    /// The exact commit to check out.
    pub sha: String,
    /// Branch or tag name the commit was pushed to.
    pub git_ref: String,
    pub spec: esteira_pipeline::PlannedJob,
    /// Every variable, predefined `CI_*` included, with final values, in order.
    pub env: Vec<(String, String)>,
    /// Values replaced by `[MASKED]` in the log (their base64 too).
    pub masked: Vec<String>,
    /// Keys of `env` that are file variables: the job's containers see the path of a
    /// private file holding the value instead of the value.
    pub file_variables: Vec<String>,
    /// Archives (tar.gz) of earlier jobs, extracted into the workspace before the script.
    pub artifacts_in: Vec<PathBuf>,
}

/// Runs jobs in Docker. Cheap to share: the agent keeps one behind an `Arc`.
pub struct Executor {
    docker: Docker,
    config: ExecutorConfig,
    /// One lock per mirror: two jobs of one repository never fetch into it at once.
    mirror_locks: Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>,
    /// Removals of finished jobs' objects, which go on after `run` has returned.
    cleanups: tokio_util::task::TaskTracker,
}

impl Executor {
    /// Connects to the local Docker engine (`DOCKER_HOST` or the default socket) and
    /// prepares the work directory.
    pub async fn connect(mut config: ExecutorConfig) -> Result<Executor, ExecutorError> {
        let docker = Docker::connect_with_local_defaults().map_err(ExecutorError::Connect)?;
        docker.ping().await.map_err(ExecutorError::Connect)?;
        tokio::fs::create_dir_all(&config.work_dir)
            .await
            .map_err(|source| ExecutorError::WorkDir {
                path: config.work_dir.clone(),
                source,
            })?;
        // Bind mounts need absolute host paths.
        config.work_dir = tokio::fs::canonicalize(&config.work_dir)
            .await
            .map_err(|source| ExecutorError::WorkDir {
                path: config.work_dir.clone(),
                source,
            })?;
        Ok(Executor {
            docker,
            config,
            mirror_locks: Mutex::new(HashMap::new()),
            cleanups: tokio_util::task::TaskTracker::new(),
        })
    }

    /// The configuration in use (with `work_dir` made absolute).
    pub fn config(&self) -> &ExecutorConfig {
        &self.config
    }

    /// Runs the job to its end. Every byte the job prints goes to `log` in order
    /// (chunks of any size), masked. `cancel` cancelled => SIGTERM, grace period,
    /// SIGKILL, then `after_script`, outcome `Canceled`.
    ///
    /// It returns as soon as the outcome is known and the log complete, so that the job
    /// can be reported at once; removing its containers, network and build directory goes
    /// on in the background ([`Executor::wait_for_cleanups`]).
    pub async fn run(&self, job: JobRun, log: Sender<Bytes>, cancel: CancellationToken) -> Outcome {
        job::run(self, job, log, cancel).await
    }

    /// Waits until every finished job's objects are removed (before the agent exits).
    pub async fn wait_for_cleanups(&self) {
        self.cleanups.close();
        self.cleanups.wait().await;
        self.cleanups.reopen();
    }

    /// Removes containers, networks and volumes of this instance carrying esteira's job
    /// label whose job id is not in `running`, and their build directories. Returns how
    /// many Docker objects were removed.
    pub async fn remove_leftovers(&self, running: &[i64]) -> Result<usize, ExecutorError> {
        let removed =
            cleanup::remove_leftovers(&self.docker, &self.config.instance, running).await?;
        cleanup::remove_stale_builds(&self.config.work_dir.join("builds"), running).await;
        Ok(removed)
    }

    fn mirror_lock(&self, mirror: &Path) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .mirror_locks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        locks.entry(mirror.to_path_buf()).or_default().clone()
    }
}
