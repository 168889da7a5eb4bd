//! Project variables, sealed in SQLite: [`VariableStore`] for [`SqliteStore`].

use async_trait::async_trait;

use super::SqliteStore;
use crate::model::{ProjectId, now_ms};
use crate::store::StoreError;
use crate::store::variables::*;

#[async_trait]
impl VariableStore for SqliteStore {
    async fn put_variable(
        &self,
        project: ProjectId,
        variable: &SealedVariable,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO project_variables (project_id, key, nonce, ciphertext, masked, protected, file, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (project_id, key) DO UPDATE SET nonce = excluded.nonce,
                ciphertext = excluded.ciphertext, masked = excluded.masked,
                protected = excluded.protected, file = excluded.file, updated_at = excluded.updated_at",
        )
        .bind(project)
        .bind(&variable.key)
        .bind(&variable.nonce)
        .bind(&variable.ciphertext)
        .bind(variable.masked)
        .bind(variable.protected)
        .bind(variable.file)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        self.cache.forget(project);
        Ok(())
    }

    async fn remove_variable(&self, project: ProjectId, key: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM project_variables WHERE project_id = ? AND key = ?")
            .bind(project)
            .bind(key)
            .execute(self.pool())
            .await?;
        self.cache.forget(project);
        Ok(done.rows_affected() == 1)
    }

    async fn variable_infos(&self, project: ProjectId) -> Result<Vec<VariableInfo>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT key, masked, protected, file, updated_at FROM project_variables
             WHERE project_id = ? ORDER BY key",
        )
        .bind(project)
        .fetch_all(self.pool())
        .await?)
    }

    async fn sealed_variables(
        &self,
        project: ProjectId,
    ) -> Result<Vec<SealedVariable>, StoreError> {
        if let Some(variables) = self.cache.variables(project) {
            return Ok(variables);
        }
        let variables: Vec<SealedVariable> = sqlx::query_as(
            "SELECT key, nonce, ciphertext, masked, protected, file FROM project_variables
             WHERE project_id = ? ORDER BY key",
        )
        .bind(project)
        .fetch_all(self.pool())
        .await?;
        self.cache.keep_variables(project, &variables);
        Ok(variables)
    }
}
