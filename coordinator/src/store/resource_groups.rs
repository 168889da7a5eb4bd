//! Resource groups: the process mode of those a project set one for (the others are
//! `unordered`).

use super::{Store, StoreError};
use crate::model::{ProcessMode, ProjectId};

impl Store {
    /// The process modes of a project's resource groups that have one set.
    pub async fn resource_group_modes(
        &self,
        project: ProjectId,
    ) -> Result<Vec<(String, ProcessMode)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT name, process_mode FROM resource_groups WHERE project_id = ? ORDER BY name",
        )
        .bind(project)
        .fetch_all(self.pool())
        .await?)
    }

    /// Sets a resource group's process mode.
    pub async fn set_resource_group_mode(
        &self,
        project: ProjectId,
        group: &str,
        mode: ProcessMode,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO resource_groups (project_id, name, process_mode) VALUES (?1, ?2, ?3)
             ON CONFLICT (project_id, name) DO UPDATE SET process_mode = ?3",
        )
        .bind(project)
        .bind(group)
        .bind(mode)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
