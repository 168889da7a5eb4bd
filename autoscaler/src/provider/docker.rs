//! Agents as containers of the agent image on a Docker engine (the local socket, or
//! `DOCKER_HOST`). Each container is named as its agent, carries the labels
//! `esteira.autoscaler` and `esteira.pool`, drives the same engine through its socket, and
//! has its own work dir, `work_root/NAME`, mounted at the same path as on the host since
//! Docker resolves the jobs' bind mounts on the host. Removing one removes what its jobs
//! left too (the executor's labels name the agent), for an agent killed mid-job.

use std::collections::HashMap;
use std::path::PathBuf;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, ContainerSummaryStateEnum, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, RemoveContainerOptions,
};
use tracing::warn;

use super::{Enrollment, Instance, Provider, ProviderError};
use crate::pools::Pool;

/// The label holding the id of the autoscaler that started the container.
pub const AUTOSCALER_LABEL: &str = "esteira.autoscaler";
/// The label holding the container's pool.
pub const POOL_LABEL: &str = "esteira.pool";
/// Where the engine's socket is, on the host and in the agent containers.
const DOCKER_SOCKET: &str = "/var/run/docker.sock";

pub struct DockerProvider {
    docker: Docker,
    autoscaler: String,
    /// Each container's work dir, to remove with it.
    work_dirs: std::sync::Mutex<HashMap<String, PathBuf>>,
}

impl DockerProvider {
    /// The engine of the environment (`DOCKER_HOST`, else the local socket).
    pub fn connect(autoscaler: &str) -> Result<DockerProvider, ProviderError> {
        let docker = Docker::connect_with_defaults().map_err(|source| ProviderError::Docker {
            what: "cannot reach the Docker engine".to_string(),
            source,
        })?;
        Ok(DockerProvider {
            docker,
            autoscaler: autoscaler.to_string(),
            work_dirs: std::sync::Mutex::default(),
        })
    }

    fn error(what: String) -> impl FnOnce(bollard::errors::Error) -> ProviderError {
        move |source| ProviderError::Docker { what, source }
    }

    fn work_dirs(&self) -> std::sync::MutexGuard<'_, HashMap<String, PathBuf>> {
        self.work_dirs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Provider for DockerProvider {
    async fn instances(&self) -> Result<Vec<Instance>, ProviderError> {
        let filters = HashMap::from([(
            "label".to_string(),
            vec![format!("{AUTOSCALER_LABEL}={}", self.autoscaler)],
        )]);
        let containers = self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters),
                ..Default::default()
            }))
            .await
            .map_err(Self::error("cannot list the agent containers".to_string()))?;
        Ok(containers
            .into_iter()
            .filter_map(|container| {
                let name = container
                    .names?
                    .first()?
                    .trim_start_matches('/')
                    .to_string();
                let pool = container.labels?.get(POOL_LABEL)?.clone();
                // Created and never started (the start failed): as good as stopped.
                let running = container.state == Some(ContainerSummaryStateEnum::RUNNING);
                if let Some(dir) = container
                    .mounts
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|mount| mount.source)
                    .map(PathBuf::from)
                    .find(|source| source.ends_with(&name))
                {
                    self.work_dirs().insert(name.clone(), dir);
                }
                Some(Instance {
                    name,
                    pool,
                    running,
                })
            })
            .collect())
    }

    async fn start(
        &self,
        pool: &Pool,
        name: &str,
        enrollment: &Enrollment,
    ) -> Result<(), ProviderError> {
        let template = &pool.agent;
        let work_dir = template.work_root.join(name);
        let work = work_dir.display().to_string();
        let labels: Vec<&str> = pool.labels.iter().map(String::as_str).collect();
        let mut cmd = vec![
            "--name".to_string(),
            name.to_string(),
            "--labels".to_string(),
            labels.join(","),
            "--concurrency".to_string(),
            pool.concurrency.to_string(),
            "--work-dir".to_string(),
            work.clone(),
        ];
        cmd.extend(template.args.iter().cloned());
        let mut env: Vec<String> = template
            .env
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        env.push(format!("ESTEIRA_COORDINATOR={}", enrollment.coordinator));
        env.push(format!(
            "ESTEIRA_REGISTRATION_TOKEN={}",
            enrollment.registration_token
        ));
        let mut binds = vec![
            format!("{DOCKER_SOCKET}:{DOCKER_SOCKET}"),
            format!("{work}:{work}"),
        ];
        binds.extend(template.volumes.iter().cloned());
        let body = ContainerCreateBody {
            image: Some(template.image.clone()),
            cmd: Some(cmd),
            env: Some(env),
            labels: Some(HashMap::from([
                (AUTOSCALER_LABEL.to_string(), self.autoscaler.clone()),
                (POOL_LABEL.to_string(), pool.name.clone()),
            ])),
            host_config: Some(HostConfig {
                binds: Some(binds),
                network_mode: template.network.clone(),
                // SIGTERM reaches the agent, which drains.
                init: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        };
        let options = CreateContainerOptions {
            name: Some(name.to_string()),
            ..Default::default()
        };
        let id = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(Self::error(format!(
                "cannot create the agent container {name}"
            )))?
            .id;
        self.work_dirs().insert(name.to_string(), work_dir);
        self.docker
            .start_container(&id, None)
            .await
            .map_err(Self::error(format!(
                "cannot start the agent container {name}"
            )))
    }

    async fn remove(&self, name: &str) -> Result<(), ProviderError> {
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        match self.docker.remove_container(name, Some(options)).await {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(source) => {
                return Err(ProviderError::Docker {
                    what: format!("cannot remove the agent container {name}"),
                    source,
                });
            }
        }
        // An agent killed mid-job could not clean up after its jobs.
        esteira_executor::remove_leftovers(&self.docker, name, &[])
            .await
            .map_err(|source| ProviderError::Leftovers {
                agent: name.to_string(),
                source,
            })?;
        // With a remote engine the directory is on the engine's host, not here.
        if let Some(dir) = self.work_dirs().remove(name)
            && let Err(error) = std::fs::remove_dir_all(&dir)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            warn!(%error, dir = %dir.display(), "cannot remove an agent's work dir");
        }
        Ok(())
    }
}
