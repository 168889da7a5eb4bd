//! One job from start to end, the only place that orders the steps: prepare (policy,
//! network, image, checkout, services), the script, `after_script`, then cleanup, with
//! cancel and timeout watched throughout.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc::Sender;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::container::{self, ContainerSpec, ScriptEnd, StopReason};
use crate::log::LogSink;
use crate::outcome::{Failure, FailureKind, Outcome};
use crate::{Executor, ExecutorError, JobRun, cleanup, script, services, workspace};

/// Where the job's build directory is mounted in its containers.
const BUILDS_DIR: &str = "/builds";

/// Runs one job; see [`Executor::run`].
pub(crate) async fn run(
    exec: &Executor,
    job: JobRun,
    log_tx: Sender<Bytes>,
    cancel: CancellationToken,
) -> Outcome {
    let mut log = LogSink::new(log_tx, &job.masked);
    log.note(&format!(
        "Running with esteira {} (Docker executor)",
        env!("CARGO_PKG_VERSION")
    ))
    .await;
    let timeout = exec.job_timeout(job.spec.timeout_secs);
    let runner = Runner {
        exec,
        build_root: exec
            .config
            .work_dir
            .join("builds")
            .join(job.job_id.to_string()),
        project: workspace::sanitize(&job.project),
        network: format!("{}-net", object_prefix(&exec.config.instance, job.job_id)),
        deadline: Instant::now() + timeout,
        timeout,
        job: &job,
        cancel: &cancel,
    };
    let outcome = runner.execute(&mut log).await;
    let outcome = runner.clean_up(&mut log, outcome).await;
    match &outcome.failure {
        None => log.success("Job succeeded").await,
        Some(failure) => log.error(&format!("Job failed: {}", failure.message)).await,
    }
    log.finish().await;
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
    network: String,
    deadline: Instant,
    timeout: Duration,
}

/// How far a job got before it ended.
enum Stage {
    /// It never reached its script.
    Prepare(Failure),
    /// Its script ran (or was stopped).
    Script(Outcome),
}

impl Runner<'_> {
    async fn execute(&self, log: &mut LogSink) -> Outcome {
        let stage = tokio::select! {
            prepared = self.prepare(log) => match prepared {
                Ok(()) => Stage::Script(self.main_script(log).await),
                Err(error) => Stage::Prepare(error.failure()),
            },
            _ = self.cancel.cancelled() => {
                Stage::Prepare(Failure::new(FailureKind::Canceled, "canceled"))
            }
            _ = tokio::time::sleep_until(self.deadline) => Stage::Prepare(self.timed_out()),
        };
        match stage {
            Stage::Prepare(failure) => Outcome::failed(failure),
            Stage::Script(outcome) => {
                self.after_script(log).await;
                outcome
            }
        }
    }

    async fn prepare(&self, log: &mut LogSink) -> Result<(), ExecutorError> {
        let docker = &self.exec.docker;
        let job = self.job;
        if !is_commit_sha(&job.sha) {
            return Err(ExecutorError::InvalidJob(format!(
                "not a commit sha: {:?}",
                job.sha
            )));
        }
        // A job id that ran before on this host (a retry after a crash) starts clean.
        cleanup::remove_job(docker, &self.exec.config.instance, job.job_id).await?;
        services::create_network(docker, &self.network, self.labels()).await?;

        let image = self.image();
        log.note(&format!("Using Docker image {image}")).await;
        container::ensure_image(docker, &image, self.exec.config.pull_timeout).await?;

        let short = job.sha.get(..8).unwrap_or(&job.sha);
        log.section(&format!(
            "Checking out {short} as detached HEAD (ref is {})...",
            job.git_ref
        ))
        .await;
        let mirror =
            workspace::mirror_path(&self.exec.config.work_dir.join("mirrors"), &job.repo_url);
        {
            let lock = self.exec.mirror_lock(&mirror);
            let _held = lock.lock().await;
            workspace::update_mirror(&mirror, &job.repo_url, &job.sha).await?;
        }
        workspace::checkout(&mirror, &self.project_dir(), &job.repo_url, &job.sha).await?;
        Ok(())
    }

    async fn main_script(&self, log: &mut LogSink) -> Outcome {
        let spec = &self.job.spec;
        let commands: Vec<String> = spec
            .before_script
            .iter()
            .chain(&spec.script)
            .cloned()
            .collect();
        log.section("Executing \"step_script\" stage of the job script")
            .await;
        let container = self.script_container("build", &commands);
        let stop = async {
            tokio::select! {
                _ = self.cancel.cancelled() => StopReason::Canceled,
                _ = tokio::time::sleep_until(self.deadline) => StopReason::TimedOut,
            }
        };
        let grace = self.exec.config.stop_grace;
        match container::run_to_end(&self.exec.docker, &container, log, stop, grace).await {
            Ok(end) => self.script_outcome(end),
            Err(error) => Outcome::failed(ExecutorError::from(error).failure()),
        }
    }

    fn script_outcome(&self, end: ScriptEnd) -> Outcome {
        let failure = match end.stopped {
            Some(StopReason::Canceled) => Failure::new(FailureKind::Canceled, "canceled"),
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

    /// Runs `after_script` in a fresh container; its failure is only a warning.
    async fn after_script(&self, log: &mut LogSink) {
        let commands = &self.job.spec.after_script;
        if commands.is_empty() {
            return;
        }
        log.section("Running after_script").await;
        let container = self.script_container("after", commands);
        let limit = self.exec.config.after_script_timeout;
        let stop = async {
            tokio::time::sleep(limit).await;
            StopReason::TimedOut
        };
        let grace = self.exec.config.stop_grace;
        match container::run_to_end(&self.exec.docker, &container, log, stop, grace).await {
            Ok(ScriptEnd {
                stopped: Some(_), ..
            }) => {
                log.warning(&format!(
                    "after_script timed out after {}s",
                    limit.as_secs()
                ))
                .await
            }
            Ok(ScriptEnd { exit_code: 0, .. }) => {}
            Ok(end) => {
                log.warning(&format!("after_script failed: exit code {}", end.exit_code))
                    .await
            }
            Err(error) => log.warning(&format!("after_script failed: {error}")).await,
        }
    }

    /// Removes every Docker object of the job and its build directory. A failure to do so
    /// is logged; the job's result stands.
    async fn clean_up(&self, log: &mut LogSink, outcome: Outcome) -> Outcome {
        if let Err(error) = cleanup::remove_job(
            &self.exec.docker,
            &self.exec.config.instance,
            self.job.job_id,
        )
        .await
        {
            log.warning(&format!("cleanup failed: {error}")).await;
        }
        if self.build_root.exists()
            && let Err(error) = tokio::fs::remove_dir_all(&self.build_root).await
        {
            log.warning(&format!(
                "cannot remove the build directory {}: {error}",
                self.build_root.display()
            ))
            .await;
        }
        outcome
    }

    fn timed_out(&self) -> Failure {
        Failure::new(
            FailureKind::StuckOrTimeoutFailure,
            format!("job timed out after {}s", self.timeout.as_secs()),
        )
    }

    fn labels(&self) -> HashMap<String, String> {
        container::job_labels(&self.exec.config.instance, self.job.job_id)
    }

    fn image(&self) -> String {
        match &self.job.spec.image {
            Some(image) if !image.name.is_empty() => image.name.clone(),
            _ => self.exec.config.default_image.clone(),
        }
    }

    fn project_dir(&self) -> PathBuf {
        self.build_root.join(&self.project)
    }

    /// The job's variables, plus the paths only the executor knows.
    fn env(&self) -> Vec<String> {
        let project_dir = format!("{BUILDS_DIR}/{}", self.project);
        let own = [
            ("CI_PROJECT_DIR", project_dir.as_str()),
            ("CI_BUILDS_DIR", BUILDS_DIR),
        ];
        self.job
            .env
            .iter()
            .filter(|(key, _)| !own.iter().any(|(own_key, _)| own_key == key))
            .map(|(key, value)| format!("{key}={value}"))
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
            name: format!(
                "{}-{role}",
                object_prefix(&config.instance, self.job.job_id)
            ),
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
            network: Some(self.network.clone()),
            aliases: Vec::new(),
            privileged: false,
            cpu_limit: config.cpu_limit,
            memory_limit: config.memory_limit,
        }
    }
}

/// The start of the names of a job's Docker objects: readable, and distinct per instance.
fn object_prefix(instance: &str, job_id: i64) -> String {
    format!("esteira-{}-{job_id}", workspace::sanitize(instance))
}

/// A full or abbreviated hexadecimal commit id (never an option or a ref expression).
fn is_commit_sha(sha: &str) -> bool {
    (7..=64).contains(&sha.len()) && sha.bytes().all(|b| b.is_ascii_hexdigit())
}
