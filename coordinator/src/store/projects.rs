//! Projects: a name and the repository its pipelines come from.

use serde::Serialize;

use super::{Store, StoreError};
use crate::model::{ProjectId, now_ms};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Project {
    pub id: ProjectId,
    pub name: String,
    pub repo_url: String,
    pub pipeline_file: String,
    pub created_at: i64,
}

impl Store {
    /// Adds a project; `None` when the name is taken.
    pub async fn insert_project(
        &self,
        name: &str,
        repo_url: &str,
        pipeline_file: &str,
    ) -> Result<Option<Project>, StoreError> {
        let row = sqlx::query_as::<_, Project>(
            "INSERT INTO projects (name, repo_url, pipeline_file, created_at) VALUES (?, ?, ?, ?)
             ON CONFLICT(name) DO NOTHING RETURNING *",
        )
        .bind(name)
        .bind(repo_url)
        .bind(pipeline_file)
        .bind(now_ms())
        .fetch_optional(self.pool())
        .await?;
        Ok(row)
    }

    pub async fn project_by_name(&self, name: &str) -> Result<Option<Project>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM projects WHERE name = ?")
            .bind(name)
            .fetch_optional(self.pool())
            .await?)
    }

    pub async fn project(&self, id: ProjectId) -> Result<Option<Project>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM projects WHERE id = ?")
            .bind(id.0)
            .fetch_optional(self.pool())
            .await?)
    }

    pub async fn projects(&self) -> Result<Vec<Project>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM projects ORDER BY name")
            .fetch_all(self.pool())
            .await?)
    }
}
