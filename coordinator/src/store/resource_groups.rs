//! Resource groups: the process mode of those a project set one for (the others are
//! `unordered`).

use async_trait::async_trait;

use super::StoreError;
use crate::model::{ProcessMode, ProjectId};

/// The process mode of each resource group.
#[async_trait]
pub trait ResourceGroupStore: Send + Sync {
    /// The process modes of a project's resource groups that have one set.
    async fn resource_group_modes(
        &self,
        project: ProjectId,
    ) -> Result<Vec<(String, ProcessMode)>, StoreError>;

    /// Sets a resource group's process mode.
    async fn set_resource_group_mode(
        &self,
        project: ProjectId,
        group: &str,
        mode: ProcessMode,
    ) -> Result<(), StoreError>;
}
