//! One job from start to end, the only place that orders the steps:
//! prepare (policy, network, image, checkout, artifacts in, cache restore, services),
//! the script, the `build:`, `after_script`, then cache save, artifacts out and cleanup,
//! with cancel and timeout watched throughout.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc::Sender;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::container::{self, ContainerError, ContainerSpec, Creations, ScriptEnd, StopReason};
use crate::expand::expand;
use crate::log::LogSink;
use crate::outcome::{Failure, FailureKind, JobResult, Outcome};
use crate::services::{self, ServiceContext};
use crate::{
    Executor, ExecutorError, JobRun, artifacts, build, cleanup, deploy, file_variables, policy,
    registry, script, workspace,
};

mod keep;

/// Where the job's build directory is mounted in its containers.
const BUILDS_DIR: &str = "/builds";

/// Runs one job; see [`Executor::run`].
pub(crate) async fn run(
    exec: &Executor,
    job: JobRun,
    log_tx: Sender<Bytes>,
    cancel: CancellationToken,
) -> Outcome {
    let mut masked = job.masked.clone();
    masked.extend(job.fetch_url.as_deref().and_then(workspace::url_password));
    let mut log = LogSink::new(log_tx, &masked);
    log.note(&format!(
        "Running with esteira {} (Docker executor)",
        env!("CARGO_PKG_VERSION")
    ))
    .await;
    let timeout = exec.job_timeout(job.spec.timeout_secs);
    let prefix = format!(
        "esteira-{}-{}",
        workspace::sanitize(&exec.config.instance),
        job.job_id
    );
    let runner = Runner {
        exec,
        build_root: exec
            .config
            .work_dir
            .join("builds")
            .join(job.job_id.to_string()),
        project: workspace::sanitize(&job.project),
        // A network of its own for a job with services (they are reached by alias there), or
        // for every job when the agent isolates jobs from each other; otherwise Docker's
        // default bridge, which starts containers faster.
        network: (!job.spec.services.is_empty() || exec.config.network_per_job)
            .then(|| format!("{prefix}-net")),
        prefix,
        deadline: Instant::now() + timeout,
        timeout,
        job: &job,
        cancel: &cancel,
        creations: Creations::default(),
    };
    // Removes everything the job created once it is dropped: after the outcome below is
    // returned, or when the agent abandons the job midway.
    let _cleanup = cleanup::DropGuard::new(
        exec.cleanups.clone(),
        runner.creations.clone(),
        exec.docker.clone(),
        &exec.config.instance,
        job.job_id,
        runner.build_root.clone(),
    );
    let span = tracing::info_span!("job", job_id = job.job_id);
    let outcome = runner.execute(&mut log).instrument(span).await;
    match &outcome.failure {
        None => log.success("Job succeeded").await,
        Some(failure) => log.error(&format!("Job failed: {}", failure.message)).await,
    }
    log.finish().await;
    tracing::info!(job_id = job.job_id, result = ?outcome.result, "job ended");
    outcome
}

impl Executor {
    /// The job's `timeout`, or the default, capped by `max_timeout`.
    fn job_timeout(&self, timeout_secs: Option<u64>) -> Duration {
        let asked = timeout_secs
            .map(Duration::from_secs)
            .unwrap_or(self.config.default_timeout);
        match self.config.max_timeout {
            Some(max) => asked.min(max),
            None => asked,
        }
    }
}

struct Runner<'a> {
    exec: &'a Executor,
    job: &'a JobRun,
    cancel: &'a CancellationToken,
    /// `work_dir/builds/<job_id>`, mounted at [`BUILDS_DIR`].
    build_root: PathBuf,
    project: String,
    /// The start of the names of the job's Docker objects.
    prefix: String,
    /// The job's own network, when it has one.
    network: Option<String>,
    deadline: Instant,
    timeout: Duration,
    /// Every request creating one of the job's Docker objects, awaited before cleanup.
    creations: Creations,
}

impl Runner<'_> {
    async fn execute(&self, log: &mut LogSink) -> Outcome {
        let prepared = tokio::select! {
            prepared = self.prepare(log) => prepared.map_err(|error| error.failure()),
            _ = self.cancel.cancelled() => Err(canceled()),
            _ = tokio::time::sleep_until(self.deadline) => Err(self.timed_out()),
        };
        if let Err(failure) = prepared {
            return Outcome::failed(failure);
        }
        let mut outcome = self.main_step(log).await;
        if self.after_script(log, outcome.result).await == Some(StopReason::Canceled) {
            outcome = Outcome::failed(canceled());
        }
        if outcome.result != JobResult::Canceled {
            self.keep(log, &mut outcome).await;
        }
        outcome
    }

    async fn prepare(&self, log: &mut LogSink) -> Result<(), ExecutorError> {
        let docker = &self.exec.docker;
        let job = self.job;
        let config = &self.exec.config;
        if !is_commit_sha(&job.sha) {
            return Err(ExecutorError::InvalidJob(format!(
                "not a commit sha: {:?}",
                job.sha
            )));
        }
        if job.repo_url.starts_with('-') {
            return Err(ExecutorError::InvalidJob(format!(
                "not a repository URL: {:?}",
                job.repo_url
            )));
        }
        policy::check_supported(&job.spec)?;
        policy::check_docker_access(config.allow_docker_socket, &job.spec.services, &job.env)?;
        let image = self.needs_container().then(|| self.image());
        if let Some(image) = &image {
            log.note(&format!("Using Docker image {image}")).await;
        }
        let short = job.sha.get(..8).unwrap_or(&job.sha);
        log.section(&format!(
            "Checking out {short} as detached HEAD (ref is {})...",
            job.git_ref
        ))
        .await;
        // Docker's side and git's side do not wait for each other.
        let docker_side = async {
            // A job id that ran before on this host (a retry after a crash) starts clean.
            cleanup::remove_job(docker, &config.instance, job.job_id).await?;
            if let Some(network) = &self.network {
                services::create_network(&self.creations, docker, network, self.labels()).await?;
            }
            if let Some(image) = &image {
                let credentials = registry::credentials(image, &job.env);
                container::ensure_image(docker, image, credentials, config.pull_timeout).await?;
            }
            Ok::<(), ExecutorError>(())
        };
        let git_side = async {
            let mirror = workspace::mirror_path(&config.work_dir.join("mirrors"), &job.repo_url);
            {
                let lock = self.exec.mirror_lock(&mirror);
                let _held = lock.lock().await;
                let remote = workspace::Remote {
                    url: job.fetch_url.as_deref().unwrap_or(&job.repo_url),
                    ssh_key: job.ssh_key.as_deref(),
                    ssh_dir: &config.work_dir.join("ssh"),
                };
                workspace::update_mirror(&mirror, &remote, &job.sha).await?;
            }
            workspace::checkout(&mirror, &self.project_dir(), &job.repo_url, &job.sha).await?;
            Ok::<(), ExecutorError>(())
        };
        tokio::try_join!(docker_side, git_side)?;
        file_variables::write(&self.file_variables_dir(), &job.env, &job.file_variables).await?;

        if !job.artifacts_in.is_empty() {
            log.section(&format!(
                "Extracting artifacts of {} earlier job(s)",
                job.artifacts_in.len()
            ))
            .await;
            artifacts::extract_all(&job.artifacts_in, &self.project_dir()).await?;
        }
        self.restore_caches(log).await;

        if let (false, Some(network)) = (job.spec.services.is_empty(), &self.network) {
            let ctx = ServiceContext {
                docker,
                creations: &self.creations,
                prefix: &self.prefix,
                network,
                labels: self.labels(),
                env: self.env(),
                vars: &job.env,
                privileged_dind: config.allow_docker_socket,
                cpu_limit: config.cpu_limit,
                memory_limit: config.memory_limit,
                pull_timeout: config.pull_timeout,
                wait: config.service_wait,
            };
            services::start(&ctx, &job.spec.services, log).await?;
        }
        Ok(())
    }

    /// The script, then the `build:`, then the `deploy:`, each when the job has it and
    /// what came before succeeded.
    async fn main_step(&self, log: &mut LogSink) -> Outcome {
        let spec = &self.job.spec;
        let commands: Vec<String> = spec
            .before_script
            .iter()
            .chain(&spec.script)
            .cloned()
            .collect();
        let outcome = if commands.is_empty() {
            Outcome {
                exit_code: None,
                ..Outcome::success()
            }
        } else {
            log.section("Executing \"step_script\" stage of the job script")
                .await;
            let container = self.script_container("build", &commands);
            let stop = async {
                tokio::select! {
                    _ = self.cancel.cancelled() => StopReason::Canceled,
                    _ = tokio::time::sleep_until(self.deadline) => StopReason::TimedOut,
                }
            };
            match self.run_container(&container, log, stop).await {
                Ok(end) => self.script_outcome(end),
                Err(error) => Outcome::failed(ExecutorError::from(error).failure()),
            }
        };
        let mut outcome = match &spec.build {
            Some(build) if outcome.result == JobResult::Success => {
                self.build_image(build, log).await
            }
            _ => outcome,
        };
        if let Some(deploy) = &spec.deploy
            && outcome.result == JobResult::Success
        {
            let built = std::mem::take(&mut outcome.details);
            outcome = self.deploy(deploy, log).await;
            if let serde_json::Value::Object(built) = built {
                for (key, value) in built {
                    outcome.detail(&key, value);
                }
            }
        }
        outcome
    }

    async fn deploy(&self, spec: &esteira_pipeline::Deploy, log: &mut LogSink) -> Outcome {
        log.section("Deploying (deploy:)").await;
        let (exec, job) = (self.exec, self.job);
        let deployed = tokio::select! {
            deployed = deploy::deploy(
                &exec.docker,
                spec,
                job.job_id,
                &job.env,
                exec.config.pull_timeout,
                log,
            ) => deployed.map_err(|error| ExecutorError::from(error).failure()),
            _ = self.cancel.cancelled() => Err(canceled()),
            _ = tokio::time::sleep_until(self.deadline) => Err(self.timed_out()),
        };
        match deployed {
            Ok(deployed) => {
                let mut outcome = Outcome::success();
                outcome.detail(
                    "deploy",
                    serde_json::json!({
                        "service": deployed.service,
                        "image": deployed.image,
                        "container_id": deployed.container_id,
                        "previous_image": deployed.previous_image,
                    }),
                );
                outcome
            }
            Err(failure) => Outcome::failed(failure),
        }
    }

    async fn build_image(&self, spec: &esteira_pipeline::Build, log: &mut LogSink) -> Outcome {
        log.section("Building the image (build:)").await;
        let project_dir = self.project_dir();
        let built = tokio::select! {
            built = build::build(
                &self.exec.docker,
                spec,
                &project_dir,
                &self.build_root,
                &self.job.env,
                log,
            ) => built.map_err(|error| ExecutorError::from(error).failure()),
            _ = self.cancel.cancelled() => Err(canceled()),
            _ = tokio::time::sleep_until(self.deadline) => Err(self.timed_out()),
        };
        match built {
            Ok(built) => {
                let mut outcome = Outcome::success();
                outcome.detail("image_id", built.image_id.into());
                if let Some((_, digest)) = built.pushed.first() {
                    outcome.detail("image_digest", digest.clone().into());
                }
                let images: Vec<serde_json::Value> = built
                    .pushed
                    .iter()
                    .map(|(tag, digest)| serde_json::json!({"tag": tag, "digest": digest}))
                    .collect();
                outcome.detail("images", images.into());
                outcome
            }
            Err(failure) => Outcome::failed(failure),
        }
    }

    /// Runs one of the job's containers to its end, stopped (SIGTERM, the agent's grace,
    /// SIGKILL) when `stop` resolves first.
    async fn run_container(
        &self,
        container: &ContainerSpec,
        log: &mut LogSink,
        stop: impl Future<Output = StopReason>,
    ) -> Result<ScriptEnd, ContainerError> {
        let grace = self.exec.config.stop_grace;
        container::run_to_end(
            &self.creations,
            &self.exec.docker,
            container,
            log,
            stop,
            grace,
        )
        .await
    }

    fn script_outcome(&self, end: ScriptEnd) -> Outcome {
        let failure = match end.stopped {
            Some(StopReason::Canceled) => canceled(),
            Some(StopReason::TimedOut) => self.timed_out(),
            None if end.oom_killed => Failure::new(
                FailureKind::OutOfMemory,
                format!("out of memory (exit code {})", end.exit_code),
            ),
            None if end.exit_code == 0 => return Outcome::success(),
            None => Failure::new(
                FailureKind::ScriptFailure,
                format!("exit code {}", end.exit_code),
            ),
        };
        let mut outcome = Outcome::failed(failure);
        if end.stopped.is_none() {
            outcome.exit_code = Some(end.exit_code);
        }
        outcome
    }

    /// Runs `after_script` in a fresh container, with `CI_JOB_STATUS` telling how the
    /// job went (as in GitLab); its failure is only a warning. A job canceled before
    /// runs it in full (bounded by its timeout); a cancel during it stops it, and says so.
    async fn after_script(&self, log: &mut LogSink, result: JobResult) -> Option<StopReason> {
        let commands = &self.job.spec.after_script;
        if commands.is_empty() {
            return None;
        }
        log.section("Running after_script").await;
        let mut container = self.script_container("after", commands);
        let status = match result {
            JobResult::Success => "success",
            JobResult::Failed => "failed",
            JobResult::Canceled => "canceled",
        };
        container.env.push(format!("CI_JOB_STATUS={status}"));
        let limit = self.exec.config.after_script_timeout;
        let watch_cancel = !self.cancel.is_cancelled();
        let stop = async {
            tokio::select! {
                _ = tokio::time::sleep(limit) => StopReason::TimedOut,
                _ = self.cancel.cancelled(), if watch_cancel => StopReason::Canceled,
            }
        };
        match self.run_container(&container, log, stop).await {
            Ok(ScriptEnd {
                stopped: Some(StopReason::TimedOut),
                ..
            }) => {
                log.warning(&format!(
                    "after_script timed out after {}s",
                    limit.as_secs()
                ))
                .await;
            }
            Ok(ScriptEnd {
                stopped: Some(StopReason::Canceled),
                ..
            }) => {
                log.warning("after_script canceled").await;
                return Some(StopReason::Canceled);
            }
            Ok(ScriptEnd { exit_code: 0, .. }) => {}
            Ok(end) => {
                log.warning(&format!("after_script failed: exit code {}", end.exit_code))
                    .await;
            }
            Err(error) => log.warning(&format!("after_script failed: {error}")).await,
        }
        None
    }

    /// Removes every Docker object of the job and its build directory. A failure to do so
    /// is logged; the job's result stands.
    fn timed_out(&self) -> Failure {
        Failure::new(
            FailureKind::StuckOrTimeoutFailure,
            format!("job timed out after {}s", self.timeout.as_secs()),
        )
    }

    /// Whether the job runs anything in its image (a `build:`-only job does not).
    fn needs_container(&self) -> bool {
        let spec = &self.job.spec;
        !(spec.script.is_empty() && spec.before_script.is_empty() && spec.after_script.is_empty())
    }

    fn labels(&self) -> HashMap<String, String> {
        container::job_labels(&self.exec.config.instance, self.job.job_id)
    }

    /// The job's image, variables expanded, or the default one.
    fn image(&self) -> String {
        match &self.job.spec.image {
            Some(image) if !image.name.is_empty() => expand(&image.name, &self.job.env),
            _ => self.exec.config.default_image.clone(),
        }
    }

    fn project_dir(&self) -> PathBuf {
        self.build_root.join(&self.project)
    }

    /// Where file variables are written on the host (see `file_variables`).
    fn file_variables_dir(&self) -> PathBuf {
        self.build_root
            .join(file_variables::dir_name(&self.project))
    }

    /// The job's variables, plus the paths only the executor knows; a file variable's
    /// value is the path of its file.
    fn env(&self) -> Vec<String> {
        let project_dir = format!("{BUILDS_DIR}/{}", self.project);
        let own = [
            ("CI_PROJECT_DIR", project_dir.as_str()),
            ("CI_BUILDS_DIR", BUILDS_DIR),
        ];
        let files_dir = format!("{BUILDS_DIR}/{}", file_variables::dir_name(&self.project));
        self.job
            .env
            .iter()
            .filter(|(key, _)| !own.iter().any(|(own_key, _)| own_key == key))
            .map(|(key, value)| {
                if self.job.file_variables.contains(key) {
                    format!("{key}={files_dir}/{key}")
                } else {
                    format!("{key}={value}")
                }
            })
            .chain(own.iter().map(|(key, value)| format!("{key}={value}")))
            .collect()
    }

    fn script_container(&self, role: &str, commands: &[String]) -> ContainerSpec {
        let config = &self.exec.config;
        let mut binds = vec![format!("{}:{BUILDS_DIR}", self.build_root.display())];
        if config.allow_docker_socket {
            binds.push("/var/run/docker.sock:/var/run/docker.sock".to_string());
        }
        ContainerSpec {
            name: format!("{}-{role}", self.prefix),
            labels: self.labels(),
            image: self.image(),
            entrypoint: self
                .job
                .spec
                .image
                .as_ref()
                .and_then(|image| image.entrypoint.clone()),
            cmd: Some(vec![
                "sh".to_string(),
                "-c".to_string(),
                script::render(commands),
            ]),
            env: self.env(),
            working_dir: Some(format!("{BUILDS_DIR}/{}", self.project)),
            binds,
            network: self.network.clone(),
            aliases: Vec::new(),
            privileged: false,
            cpu_limit: config.cpu_limit,
            memory_limit: config.memory_limit,
        }
    }
}

fn canceled() -> Failure {
    Failure::new(FailureKind::Canceled, "canceled")
}

/// A full or abbreviated hexadecimal commit id (never an option or a ref expression).
fn is_commit_sha(sha: &str) -> bool {
    (7..=64).contains(&sha.len()) && sha.bytes().all(|b| b.is_ascii_hexdigit())
}
