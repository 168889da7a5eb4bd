//! The crate's error: every module's error gathered, and how each becomes the
//! [`Failure`] a person reads on the job.

use std::path::PathBuf;

use crate::outcome::{Failure, FailureKind};
use crate::{artifacts, build, cleanup, container, deploy, policy, workspace};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecutorError {
    /// The Docker engine cannot be reached.
    #[error("cannot connect to Docker: {0}")]
    Connect(#[source] bollard::errors::Error),
    /// The work directory cannot be created.
    #[error("cannot use work directory {path}: {source}")]
    WorkDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The job itself is malformed (e.g. a sha that is not one).
    #[error("invalid job: {0}")]
    InvalidJob(String),
    #[error(transparent)]
    Policy(#[from] policy::PolicyError),
    #[error("checkout failed: {0}")]
    Workspace(#[from] workspace::WorkspaceError),
    #[error(transparent)]
    Container(#[from] container::ContainerError),
    #[error(transparent)]
    Artifacts(#[from] artifacts::ArtifactsError),
    #[error(transparent)]
    Build(#[from] build::BuildError),
    #[error(transparent)]
    Deploy(#[from] deploy::DeployError),
    #[error("cleanup failed: {0}")]
    Cleanup(#[from] cleanup::CleanupError),
}

impl ExecutorError {
    /// The failure a job that hit this error ends with.
    pub(crate) fn failure(&self) -> Failure {
        use artifacts::ArtifactsError as A;
        use build::BuildError as B;
        use deploy::DeployError as D;
        let kind = match self {
            ExecutorError::Container(container::ContainerError::ImageNotFound { .. })
            | ExecutorError::Deploy(D::Container(container::ContainerError::ImageNotFound {
                ..
            })) => FailureKind::ImageNotFound,
            ExecutorError::Policy(_) => FailureKind::RunnerUnsupported,
            ExecutorError::Artifacts(A::Extract { .. }) => FailureKind::MissingDependency,
            ExecutorError::Artifacts(A::TooLarge { .. }) => FailureKind::ArtifactTooLarge,
            ExecutorError::Build(
                B::Failed(_) | B::Push { .. } | B::BadTag(_) | B::OutsideWorkspace(_),
            )
            | ExecutorError::Deploy(D::Unhealthy { .. } | D::BadPort(_) | D::BadService(_)) => {
                FailureKind::ScriptFailure
            }
            _ => FailureKind::RunnerSystemFailure,
        };
        Failure::new(kind, self.to_string())
    }
}
