//! The coordinator's durable state, behind one trait per concern: [`jobs::JobStore`]
//! (jobs and leases), [`pipelines::PipelineStore`], [`agents::AgentStore`],
//! [`logs::LogStore`], [`deliveries::DeliveryStore`], [`projects::ProjectStore`] and
//! [`variables::VariableStore`] (projects and their secrets),
//! [`artifacts::ArtifactRecords`], [`deployments::DeploymentStore`] and
//! [`resource_groups::ResourceGroupStore`]. [`Storage`] is all of them; a [`Store`] is a
//! handle on one, cheap to clone.
//!
//! Each concern's file holds its trait and the domain types it reads and writes; the
//! SQLite implementation is in [`sqlite`], and the conformance suite (`conformance`, run
//! against every backend) checks the behaviour the rest of the coordinator relies on
//! through the traits only. The traits are plain reads and writes; every decision about
//! what state comes next is the scheduler's.

pub mod agents;
pub mod artifacts;
#[cfg(test)]
mod conformance;
pub mod deliveries;
pub mod deployments;
pub mod jobs;
pub mod logs;
pub mod pipelines;
pub mod projects;
pub mod resource_groups;
pub mod sqlite;
pub mod variables;

use std::ops::Deref;
use std::sync::Arc;

use async_trait::async_trait;

use crate::secrets::SecretBox;

/// What can go wrong reading or writing the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored JSON is invalid: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Secret(#[from] crate::secrets::SecretError),
    #[error("the store has no secret key to seal or open project secrets with")]
    NoSecretKey,
}

/// A backend: every concern's trait, and the database as a whole.
#[async_trait]
pub trait Storage:
    agents::AgentStore
    + artifacts::ArtifactRecords
    + deliveries::DeliveryStore
    + deployments::DeploymentStore
    + jobs::JobStore
    + logs::LogStore
    + pipelines::PipelineStore
    + projects::ProjectStore
    + resource_groups::ResourceGroupStore
    + variables::VariableStore
    + Send
    + Sync
{
    /// One round trip to the database, for readiness.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Closes the database's connections; the store answers nothing after.
    async fn close(&self);

    /// The backend's name, for logs and the readiness report.
    fn backend(&self) -> &'static str;
}

/// A handle on the store, cheap to clone.
#[derive(Clone)]
pub struct Store(Arc<dyn Storage>);

impl Store {
    /// Opens the database at `url` (`sqlite://path` or a plain path: the embedded SQLite)
    /// and brings its schema up to date. Without `secrets`, projects' secrets can be
    /// neither sealed nor opened.
    pub async fn open(url: &str, secrets: Option<SecretBox>) -> Result<Store, StoreError> {
        Ok(Store(sqlite::open(url, secrets).await?))
    }

    /// A store on `backend`.
    pub fn new(backend: Arc<dyn Storage>) -> Store {
        Store(backend)
    }
}

impl Deref for Store {
    type Target = dyn Storage;

    fn deref(&self) -> &(dyn Storage + 'static) {
        self.0.as_ref()
    }
}
