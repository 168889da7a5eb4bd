//! Project variables, stored encrypted ([`crate::secrets`]); only their flags are listed.

use serde::Serialize;

use super::{Store, StoreError};
use crate::model::{ProjectId, now_ms};

/// A variable's listing: never its value.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct VariableInfo {
    pub key: String,
    pub masked: bool,
    pub protected: bool,
    pub file: bool,
    pub updated_at: i64,
}

/// A stored variable with its sealed value.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SealedVariable {
    pub key: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
    pub masked: bool,
    pub protected: bool,
    pub file: bool,
}

impl Store {
    pub async fn put_variable(
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

    /// Removes a variable; false when there was none.
    pub async fn remove_variable(&self, project: ProjectId, key: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM project_variables WHERE project_id = ? AND key = ?")
            .bind(project)
            .bind(key)
            .execute(self.pool())
            .await?;
        self.cache.forget(project);
        Ok(done.rows_affected() == 1)
    }

    pub async fn variable_infos(
        &self,
        project: ProjectId,
    ) -> Result<Vec<VariableInfo>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT key, masked, protected, file, updated_at FROM project_variables
             WHERE project_id = ? ORDER BY key",
        )
        .bind(project)
        .fetch_all(self.pool())
        .await?)
    }

    /// The project's variables, sealed, by key; kept in memory after the first read
    /// ([`super::cache`]).
    pub async fn sealed_variables(
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

    /// The branches (and tags) whose pipelines see protected variables.
    pub async fn protected_refs(&self, project: ProjectId) -> Result<Vec<String>, StoreError> {
        let json: Option<String> =
            sqlx::query_scalar("SELECT protected_branches_json FROM projects WHERE id = ?")
                .bind(project)
                .fetch_optional(self.pool())
                .await?;
        Ok(json
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default())
    }
}
