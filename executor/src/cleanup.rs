//! Removal of what jobs leave in Docker and on disk: at the end of each job, and at the
//! agent's start for jobs that are no longer running (after a crash).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bollard::Docker;
use bollard::query_parameters::{
    ListContainersOptions, ListNetworksOptions, ListVolumesOptions, RemoveVolumeOptions,
};
use tokio_util::task::TaskTracker;

use crate::container;
use crate::{INSTANCE_LABEL, JOB_LABEL, MANAGED_LABEL};

#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    /// Docker refused to list or remove an object.
    #[error("cannot remove {what}: {source}")]
    Docker {
        what: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error(transparent)]
    Container(#[from] container::ContainerError),
}

/// Which job a labelled object belongs to.
fn job_of(labels: Option<&HashMap<String, String>>) -> Option<i64> {
    labels?.get(JOB_LABEL)?.parse().ok()
}

/// Removes every object of jobs for which `doomed(job_id)` holds; returns how many.
/// Goes on after a failure (whatever can go, goes) and reports the first one.
async fn remove_matching(
    docker: &Docker,
    label_filters: Vec<String>,
    doomed: impl Fn(i64) -> bool,
) -> Result<usize, CleanupError> {
    let filters = HashMap::from([("label".to_string(), label_filters)]);
    let mut removed = 0;
    let mut first_error = None;
    let mut outcome = |result: Result<(), CleanupError>| match result {
        Ok(()) => removed += 1,
        Err(error) => {
            first_error.get_or_insert(error);
        }
    };
    let gone = |what: String| {
        move |result: Result<(), bollard::errors::Error>| match result {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(source) => Err(CleanupError::Docker { what, source }),
        }
    };

    // Containers first: networks and volumes in use cannot go.
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters.clone()),
            ..Default::default()
        }))
        .await
        .map_err(|source| CleanupError::Docker {
            what: "containers".to_string(),
            source,
        })?;
    for found in containers {
        if let (Some(id), Some(job)) = (found.id.as_deref(), job_of(found.labels.as_ref()))
            && doomed(job)
        {
            outcome(container::remove(docker, id).await.map_err(Into::into));
        }
    }

    let networks = docker
        .list_networks(Some(ListNetworksOptions {
            filters: Some(filters.clone()),
        }))
        .await
        .map_err(|source| CleanupError::Docker {
            what: "networks".to_string(),
            source,
        })?;
    for found in networks {
        if let (Some(id), Some(job)) = (found.id.as_deref(), job_of(found.labels.as_ref()))
            && doomed(job)
        {
            outcome(gone(format!("network {id}"))(
                docker.remove_network(id).await,
            ));
        }
    }

    let volumes = docker
        .list_volumes(Some(ListVolumesOptions {
            filters: Some(filters),
        }))
        .await
        .map_err(|source| CleanupError::Docker {
            what: "volumes".to_string(),
            source,
        })?;
    for found in volumes.volumes.unwrap_or_default() {
        if job_of(Some(&found.labels)).is_some_and(&doomed) {
            let options = RemoveVolumeOptions { force: true };
            let result = docker.remove_volume(&found.name, Some(options)).await;
            outcome(gone(format!("volume {}", found.name))(result));
        }
    }
    match first_error {
        Some(error) => Err(error),
        None => Ok(removed),
    }
}

/// Removes every container, network and volume of one job of this instance.
pub(crate) async fn remove_job(
    docker: &Docker,
    instance: &str,
    job_id: i64,
) -> Result<usize, CleanupError> {
    let filters = vec![
        format!("{INSTANCE_LABEL}={instance}"),
        format!("{JOB_LABEL}={job_id}"),
    ];
    remove_matching(docker, filters, |_| true).await
}

/// Removes the objects of every job of this instance not in `running` (also for an
/// autoscaler removing what a dead agent's jobs left).
pub async fn remove_leftovers(
    docker: &Docker,
    instance: &str,
    running: &[i64],
) -> Result<usize, CleanupError> {
    let filters = vec![
        format!("{MANAGED_LABEL}=true"),
        format!("{INSTANCE_LABEL}={instance}"),
    ];
    remove_matching(docker, filters, |job| !running.contains(&job)).await
}

/// Removes the build directories (`builds/<job_id>`) of jobs not in `running`.
pub(crate) async fn remove_stale_builds(builds: &Path, running: &[i64]) {
    let Ok(mut entries) = tokio::fs::read_dir(builds).await else {
        return;
    };
    while let Ok(Some(entry)) = entries.next_entry().await {
        let job = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<i64>().ok());
        if job.is_some_and(|job| !running.contains(&job))
            && let Err(error) = tokio::fs::remove_dir_all(entry.path()).await
        {
            tracing::warn!(path = %entry.path().display(), %error, "cannot remove a stale build directory");
        }
    }
}

/// Removes a job's Docker objects and build directory when dropped: at the end of the
/// job, or when the agent gives the job up midway. The removal runs on a task of its
/// own, tracked so that the agent can wait for it before exiting.
pub(crate) struct DropGuard {
    tracker: TaskTracker,
    creations: container::Creations,
    docker: Docker,
    instance: String,
    job_id: i64,
    build_root: PathBuf,
}

impl DropGuard {
    pub(crate) fn new(
        tracker: TaskTracker,
        creations: container::Creations,
        docker: Docker,
        instance: &str,
        job_id: i64,
        build_root: PathBuf,
    ) -> Self {
        DropGuard {
            tracker,
            creations,
            docker,
            instance: instance.to_string(),
            job_id,
            build_root,
        }
    }
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (docker, instance) = (self.docker.clone(), std::mem::take(&mut self.instance));
        let (job_id, build_root) = (self.job_id, std::mem::take(&mut self.build_root));
        let creations = self.creations.clone();
        self.tracker.spawn_on(
            async move {
                creations.settled().await;
                if let Err(error) = remove_job(&docker, &instance, job_id).await {
                    tracing::warn!(job_id, %error, "cannot remove the job's Docker objects");
                }
                match tokio::fs::remove_dir_all(&build_root).await {
                    Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                        let path = build_root.display();
                        tracing::warn!(job_id, %error, "cannot remove the build directory {path}");
                    }
                    _ => {}
                }
            },
            &runtime,
        );
    }
}
