//! Where agents run: a [`Provider`] starts an agent of a pool from the pool's template,
//! lists the instances this autoscaler started (found again by their labels after a
//! restart, so it adopts them instead of starting more), and removes one. [`docker`] is
//! the provider of this crate; `docs/autoscaling.md` sketches a Kubernetes one.

pub mod docker;

use std::future::Future;

use crate::pools::Pool;

/// An agent's instance (a container, a pod, a machine), named as its agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub name: String,
    pub pool: String,
    /// False once it stopped (crashed, killed, or its agent exited).
    pub running: bool,
}

/// How the agent in an instance reaches the coordinator.
#[derive(Debug, Clone)]
pub struct Enrollment {
    /// The coordinator's gRPC URL, as seen from the instance.
    pub coordinator: String,
    pub registration_token: String,
}

pub trait Provider: Send + Sync {
    /// The instances this autoscaler started, stopped ones included.
    fn instances(&self) -> impl Future<Output = Result<Vec<Instance>, ProviderError>> + Send;
    /// Starts the agent `name` of `pool`.
    fn start(
        &self,
        pool: &Pool,
        name: &str,
        enrollment: &Enrollment,
    ) -> impl Future<Output = Result<(), ProviderError>> + Send;
    /// Removes the instance `name` and what it holds (its work dir, what its jobs left);
    /// gone already is fine.
    fn remove(&self, name: &str) -> impl Future<Output = Result<(), ProviderError>> + Send;
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The engine refused or failed an operation.
    #[error("{what}: {source}")]
    Docker {
        what: String,
        source: bollard::errors::Error,
    },
    /// What a dead agent's jobs left could not all be removed.
    #[error("cannot remove what the jobs of {agent} left: {source}")]
    Leftovers {
        agent: String,
        source: esteira_executor::CleanupError,
    },
}
