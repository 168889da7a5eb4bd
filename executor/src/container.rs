//! Images and script containers: an image present locally or pulled, the life of one
//! container that runs a script (create, attach, start, stream, stop, exit code), and the
//! tracking of every request that creates a job's Docker object.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::models::{ContainerCreateBody, EndpointSettings, HostConfig, NetworkingConfig};
use bollard::query_parameters::{
    AttachContainerOptions, CreateContainerOptions, CreateImageOptions, KillContainerOptions,
    RemoveContainerOptions, WaitContainerOptions,
};
use futures::StreamExt;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use crate::log::LogSink;
use crate::{INSTANCE_LABEL, JOB_LABEL, MANAGED_LABEL};

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// The image is not on this host and could not be pulled.
    #[error("image not found: {image}")]
    ImageNotFound { image: String },
    /// The Docker engine refused or failed a request.
    #[error("{action}: {source}")]
    Docker {
        action: String,
        #[source]
        source: bollard::errors::Error,
    },
    /// A creation request could not finish (the runtime is shutting down).
    #[error("a Docker request was aborted")]
    Aborted,
}

/// The requests that create a job's Docker objects. Each runs on a task of its own, so
/// it finishes even when the job's future is dropped halfway (a cancel during the
/// preparation, an agent giving the job up); the cleanup waits for them all, then finds
/// every object they made.
#[derive(Debug, Clone, Default)]
pub(crate) struct Creations(TaskTracker);

impl Creations {
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        request: impl Future<Output = Result<T, ContainerError>> + Send + 'static,
    ) -> Result<T, ContainerError> {
        match self.0.spawn(request).await {
            Ok(result) => result,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(_) => Err(ContainerError::Aborted),
        }
    }

    /// Waits until every creation request has finished.
    pub(crate) async fn settled(&self) {
        self.0.close();
        self.0.wait().await;
    }
}

impl ContainerError {
    fn docker(action: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> ContainerError {
        let action = action.into();
        move |source| ContainerError::Docker { action, source }
    }
}

/// The labels of every Docker object of a job.
pub(crate) fn job_labels(instance: &str, job_id: i64) -> HashMap<String, String> {
    HashMap::from([
        (JOB_LABEL.to_string(), job_id.to_string()),
        (MANAGED_LABEL.to_string(), "true".to_string()),
        (INSTANCE_LABEL.to_string(), instance.to_string()),
    ])
}

/// Makes sure `image` is on this host: used when present, pulled otherwise (with the
/// registry credentials given, if any).
pub(crate) async fn ensure_image(
    docker: &Docker,
    image: &str,
    credentials: Option<DockerCredentials>,
    pull_timeout: Duration,
) -> Result<(), ContainerError> {
    if docker.inspect_image(image).await.is_ok() {
        return Ok(());
    }
    let options = CreateImageOptions {
        from_image: Some(image.to_string()),
        // Without a tag, the engine would pull every tag of the repository.
        tag: (!has_tag_or_digest(image)).then(|| "latest".to_string()),
        ..Default::default()
    };
    let pull = async {
        let mut progress = docker.create_image(Some(options), None, credentials);
        while let Some(step) = progress.next().await {
            if step.is_err() {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(pull_timeout, pull).await;
    match docker.inspect_image(image).await {
        Ok(_) => Ok(()),
        Err(_) => Err(ContainerError::ImageNotFound {
            image: image.to_string(),
        }),
    }
}

/// Whether an image reference names its tag or digest (`a:1`, `a@sha256:…`; a registry
/// port is not a tag).
fn has_tag_or_digest(image: &str) -> bool {
    let last = image.rsplit('/').next().unwrap_or(image);
    last.contains(':') || last.contains('@')
}

/// What a container is made of.
#[derive(Debug, Clone, Default)]
pub(crate) struct ContainerSpec {
    pub name: String,
    pub labels: HashMap<String, String>,
    pub image: String,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub binds: Vec<String>,
    pub network: Option<String>,
    pub aliases: Vec<String>,
    pub privileged: bool,
    pub cpu_limit: Option<f64>,
    pub memory_limit: Option<u64>,
}

impl ContainerSpec {
    fn body(&self) -> ContainerCreateBody {
        let entrypoint = self.entrypoint.as_ref().map(|entrypoint| {
            if entrypoint.is_empty() {
                // Docker resets an image's entrypoint only when given one empty word.
                vec![String::new()]
            } else {
                entrypoint.clone()
            }
        });
        let memory = self
            .memory_limit
            .map(|bytes| i64::try_from(bytes).unwrap_or(i64::MAX));
        let host_config = HostConfig {
            binds: Some(self.binds.clone()),
            network_mode: self.network.clone(),
            init: Some(true),
            privileged: Some(self.privileged),
            memory,
            // Without swap, the memory limit is what the job gets.
            memory_swap: memory,
            nano_cpus: self.cpu_limit.map(|cpus| (cpus * 1e9) as i64),
            ..Default::default()
        };
        let networking_config = self.network.as_ref().map(|network| NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                network.clone(),
                EndpointSettings {
                    aliases: Some(self.aliases.clone()),
                    ..Default::default()
                },
            )])),
        });
        ContainerCreateBody {
            image: Some(self.image.clone()),
            entrypoint,
            cmd: self.cmd.clone(),
            env: Some(self.env.clone()),
            working_dir: self.working_dir.clone(),
            labels: Some(self.labels.clone()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            host_config: Some(host_config),
            networking_config,
            ..Default::default()
        }
    }
}

/// Creates (without starting) a container; returns its id.
pub(crate) async fn create(
    creations: &Creations,
    docker: &Docker,
    spec: &ContainerSpec,
) -> Result<String, ContainerError> {
    let options = CreateContainerOptions {
        name: Some(spec.name.clone()),
        ..Default::default()
    };
    let (docker, body, name) = (docker.clone(), spec.body(), spec.name.clone());
    creations
        .run(async move {
            let created = docker.create_container(Some(options), body).await.map_err(
                ContainerError::docker(format!("cannot create container {name}")),
            )?;
            Ok(created.id)
        })
        .await
}

/// Removes a container and its anonymous volumes, whatever its state. A container that
/// is already gone is not an error.
pub(crate) async fn remove(docker: &Docker, id: &str) -> Result<(), ContainerError> {
    let options = RemoveContainerOptions {
        force: true,
        v: true,
        ..Default::default()
    };
    match docker.remove_container(id, Some(options)).await {
        Ok(()) => Ok(()),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(()),
        Err(source) => Err(ContainerError::Docker {
            action: format!("cannot remove container {id}"),
            source,
        }),
    }
}

/// Why a script was stopped before it ended by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    Canceled,
    TimedOut,
}

/// How a script container ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScriptEnd {
    pub exit_code: i64,
    pub oom_killed: bool,
    pub stopped: Option<StopReason>,
}

/// Runs a container to its end, its output into `log`. When `stop` completes first, the
/// container gets SIGTERM, then SIGKILL after `grace`. The container is removed after.
pub(crate) async fn run_to_end(
    creations: &Creations,
    docker: &Docker,
    spec: &ContainerSpec,
    log: &mut LogSink,
    stop: impl Future<Output = StopReason>,
    grace: Duration,
) -> Result<ScriptEnd, ContainerError> {
    let id = create(creations, docker, spec).await?;
    let result = attach_and_run(docker, &id, log, stop, grace).await;
    let removed = remove(docker, &id).await;
    let end = result?;
    removed?;
    Ok(end)
}

async fn attach_and_run(
    docker: &Docker,
    id: &str,
    log: &mut LogSink,
    stop: impl Future<Output = StopReason>,
    grace: Duration,
) -> Result<ScriptEnd, ContainerError> {
    let options = AttachContainerOptions {
        stream: true,
        stdout: true,
        stderr: true,
        ..Default::default()
    };
    // Attached before the start, so not one byte is missed.
    let mut attached = docker
        .attach_container(id, Some(options))
        .await
        .map_err(ContainerError::docker("cannot attach to the job container"))?;
    docker
        .start_container(id, None)
        .await
        .map_err(ContainerError::docker("cannot start the job container"))?;

    let mut stop = std::pin::pin!(stop);
    let mut stopped = None;
    let mut kill_at: Option<Instant> = None;
    loop {
        let kill_deadline = kill_at.unwrap_or_else(Instant::now);
        tokio::select! {
            item = attached.output.next() => match item {
                Some(Ok(output)) => log.write(&output.into_bytes()).await,
                Some(Err(source)) => {
                    return Err(ContainerError::Docker {
                        action: "lost the job's output".to_string(),
                        source,
                    })
                }
                None => break,
            },
            reason = &mut stop, if stopped.is_none() => {
                stopped = Some(reason);
                signal(docker, id, "SIGTERM").await;
                kill_at = Some(Instant::now() + grace);
            }
            _ = tokio::time::sleep_until(kill_deadline), if kill_at.is_some() => {
                signal(docker, id, "SIGKILL").await;
                kill_at = None;
            }
        }
    }

    let options = WaitContainerOptions {
        condition: "not-running".to_string(),
    };
    // The wait stream reports a non-zero exit as an error; the inspection below has it.
    let _ = docker.wait_container(id, Some(options)).next().await;
    let (exit_code, mut oom_killed) = exit_state(docker, id).await?;
    // Docker learns of an OOM kill from an event that may come after the exit: a SIGKILL
    // nobody sent is looked at again, briefly, before it counts as the script's own.
    let mut looks = 0;
    while exit_code == 137 && !oom_killed && stopped.is_none() && looks < OOM_EVENT_LOOKS {
        tokio::time::sleep(OOM_EVENT_PAUSE).await;
        oom_killed = exit_state(docker, id).await?.1;
        looks += 1;
    }
    Ok(ScriptEnd {
        exit_code,
        oom_killed,
        stopped,
    })
}

/// How often, and how far apart, an unexplained SIGKILL is checked for an OOM kill.
const OOM_EVENT_LOOKS: u32 = 10;
const OOM_EVENT_PAUSE: Duration = Duration::from_millis(50);

/// The stopped container's exit code and whether Docker saw it killed for memory.
async fn exit_state(docker: &Docker, id: &str) -> Result<(i64, bool), ContainerError> {
    let inspected = docker
        .inspect_container(id, None)
        .await
        .map_err(ContainerError::docker("cannot inspect the job container"))?;
    let state = inspected.state.unwrap_or_default();
    Ok((
        state.exit_code.unwrap_or(-1),
        state.oom_killed.unwrap_or(false),
    ))
}

async fn signal(docker: &Docker, id: &str, signal: &str) {
    let options = KillContainerOptions {
        signal: signal.to_string(),
    };
    // The container may have ended already; that is what was wanted.
    let _ = docker.kill_container(id, Some(options)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_tags_from_registry_ports() {
        assert!(has_tag_or_digest("postgres:15"));
        assert!(has_tag_or_digest("localhost:5000/app@sha256:abc"));
        assert!(!has_tag_or_digest("localhost:5000/app"));
        assert!(!has_tag_or_digest("app"));
    }
}
