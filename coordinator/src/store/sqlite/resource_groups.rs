//! The process mode of each resource group in SQLite: [`ResourceGroupStore`] for [`SqliteStore`].

use async_trait::async_trait;

use super::SqliteStore;
use crate::model::{ProcessMode, ProjectId};
use crate::store::StoreError;
use crate::store::resource_groups::*;

#[async_trait]
impl ResourceGroupStore for SqliteStore {
    async fn resource_group_modes(
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

    async fn set_resource_group_mode(
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
