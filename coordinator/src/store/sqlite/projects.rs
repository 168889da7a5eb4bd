//! Projects and their sealed secrets in SQLite: [`ProjectStore`] for [`SqliteStore`].

use async_trait::async_trait;

use super::SqliteStore;
use crate::model::{ProjectId, now_ms};
use crate::store::StoreError;
use crate::store::projects::*;

#[async_trait]
impl ProjectStore for SqliteStore {
    async fn insert_project(
        &self,
        name: &str,
        repo_url: &str,
        pipeline_file: &str,
    ) -> Result<Option<Project>, StoreError> {
        let row = sqlx::query_as::<_, ProjectRow>(
            "INSERT INTO projects (name, repo_url, pipeline_file, created_at) VALUES (?, ?, ?, ?)
             ON CONFLICT(name) DO NOTHING RETURNING *",
        )
        .bind(name)
        .bind(repo_url)
        .bind(pipeline_file)
        .bind(now_ms())
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| self.open_project(row)).transpose()
    }

    async fn update_project(
        &self,
        id: ProjectId,
        settings: &ProjectSettings,
    ) -> Result<Option<Project>, StoreError> {
        let protected = settings
            .protected_branches
            .as_ref()
            .map(serde_json::to_string)
            .transpose()?;
        let poll = settings.poll_interval_secs.map(|s| (s > 0).then_some(s));
        let sealed = |value: Option<&String>| -> Result<(bool, Option<Vec<u8>>), StoreError> {
            let (set, clear) = optional(empty_is_none(value));
            let sealed = match clear {
                Some(clear) => Some(self.secrets()?.seal_joined(clear.as_bytes())),
                None => None,
            };
            Ok((set, sealed))
        };
        let (secret_set, secret) = sealed(settings.webhook_secret.as_ref())?;
        let (token_set, token) = sealed(settings.forge_token.as_ref())?;
        let (repo_token_set, repo_token) = sealed(settings.repo_token.as_ref())?;
        let (ssh_key_set, ssh_key) = sealed(settings.ssh_key.as_ref())?;
        let (api_set, api) = optional(empty_is_none(settings.forge_api_url.as_ref()));
        let (path_set, path) = optional(empty_is_none(settings.forge_project.as_ref()));
        let row = sqlx::query_as::<_, ProjectRow>(
            "UPDATE projects SET
                repo_url = coalesce(?, repo_url),
                pipeline_file = coalesce(?, pipeline_file),
                forge = coalesce(?, forge),
                default_branch = coalesce(?, default_branch),
                protected_branches_json = coalesce(?, protected_branches_json),
                webhook_secret_sealed = CASE WHEN ? THEN ? ELSE webhook_secret_sealed END,
                forge_token_sealed = CASE WHEN ? THEN ? ELSE forge_token_sealed END,
                repo_token_sealed = CASE WHEN ? THEN ? ELSE repo_token_sealed END,
                ssh_key_sealed = CASE WHEN ? THEN ? ELSE ssh_key_sealed END,
                forge_api_url = CASE WHEN ? THEN ? ELSE forge_api_url END,
                forge_project = CASE WHEN ? THEN ? ELSE forge_project END,
                poll_interval_secs = CASE WHEN ? THEN ? ELSE poll_interval_secs END
             WHERE id = ? AND removed_at IS NULL RETURNING *",
        )
        .bind(settings.repo_url.as_deref())
        .bind(settings.pipeline_file.as_deref())
        .bind(settings.forge.map(Forge::as_str))
        .bind(settings.default_branch.as_deref())
        .bind(protected)
        .bind(secret_set)
        .bind(secret)
        .bind(token_set)
        .bind(token)
        .bind(repo_token_set)
        .bind(repo_token)
        .bind(ssh_key_set)
        .bind(ssh_key)
        .bind(api_set)
        .bind(api)
        .bind(path_set)
        .bind(path)
        .bind(poll.is_some())
        .bind(poll.flatten())
        .bind(id.0)
        .fetch_optional(self.pool())
        .await?;
        self.cache.forget(id);
        row.map(|row| self.open_project(row)).transpose()
    }

    async fn remove_project(&self, id: ProjectId) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE projects SET removed_at = ?, name = name || '~removed~' || id,
                    poll_interval_secs = NULL
             WHERE id = ? AND removed_at IS NULL",
        )
        .bind(now_ms())
        .bind(id.0)
        .execute(self.pool())
        .await?;
        self.cache.forget(id);
        Ok(done.rows_affected() == 1)
    }

    async fn project_by_name(&self, name: &str) -> Result<Option<Project>, StoreError> {
        let row = sqlx::query_as("SELECT * FROM projects WHERE name = ? AND removed_at IS NULL")
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        row.map(|row| self.open_project(row)).transpose()
    }

    async fn project(&self, id: ProjectId) -> Result<Option<Project>, StoreError> {
        if let Some(project) = self.cache.project(id) {
            return Ok(Some(project));
        }
        let row = sqlx::query_as("SELECT * FROM projects WHERE id = ?")
            .bind(id.0)
            .fetch_optional(self.pool())
            .await?;
        let project = row.map(|row| self.open_project(row)).transpose()?;
        if let Some(project) = &project {
            self.cache.keep_project(project);
        }
        Ok(project)
    }

    async fn projects(&self) -> Result<Vec<Project>, StoreError> {
        let rows = sqlx::query_as("SELECT * FROM projects WHERE removed_at IS NULL ORDER BY name")
            .fetch_all(self.pool())
            .await?;
        rows.into_iter().map(|row| self.open_project(row)).collect()
    }

    async fn polled_projects(&self) -> Result<Vec<Project>, StoreError> {
        let rows = sqlx::query_as(
            "SELECT * FROM projects WHERE removed_at IS NULL AND poll_interval_secs > 0",
        )
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(|row| self.open_project(row)).collect()
    }

    async fn seal_clear_project_secrets(&self) -> Result<usize, StoreError> {
        let rows: Vec<ProjectRow> = sqlx::query_as(
            "SELECT * FROM projects WHERE webhook_secret IS NOT NULL
                OR forge_token IS NOT NULL OR repo_token IS NOT NULL",
        )
        .fetch_all(self.pool())
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let secrets = self.secrets()?;
        let seal = |clear: &Option<String>, sealed: &Option<Vec<u8>>| match (clear, sealed) {
            (_, Some(sealed)) => Some(sealed.clone()),
            (Some(clear), None) => Some(secrets.seal_joined(clear.as_bytes())),
            (None, None) => None,
        };
        let mut connection = self.pool().acquire().await?;
        sqlx::query("PRAGMA secure_delete = ON")
            .execute(&mut *connection)
            .await?;
        for row in &rows {
            sqlx::query(
                "UPDATE projects SET webhook_secret_sealed = ?, forge_token_sealed = ?,
                    repo_token_sealed = ?, webhook_secret = NULL, forge_token = NULL,
                    repo_token = NULL
                 WHERE id = ?",
            )
            .bind(seal(&row.webhook_secret, &row.webhook_secret_sealed))
            .bind(seal(&row.forge_token, &row.forge_token_sealed))
            .bind(seal(&row.repo_token, &row.repo_token_sealed))
            .bind(row.id.0)
            .execute(&mut *connection)
            .await?;
        }
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut *connection)
            .await?;
        sqlx::query("PRAGMA secure_delete = OFF")
            .execute(&mut *connection)
            .await?;
        self.cache.forget_all();
        Ok(rows.len())
    }
}

impl SqliteStore {
    /// The project of a stored row, its secrets opened.
    fn open_project(&self, row: ProjectRow) -> Result<Project, StoreError> {
        let open = |sealed: Option<Vec<u8>>, clear: Option<String>| match sealed {
            Some(sealed) => {
                let plain = self.secrets()?.open_joined(&sealed)?;
                Ok::<_, StoreError>(Some(String::from_utf8_lossy(&plain).into_owned()))
            }
            None => Ok(clear),
        };
        Ok(Project {
            id: row.id,
            name: row.name,
            repo_url: row.repo_url,
            pipeline_file: row.pipeline_file,
            created_at: row.created_at,
            forge: row.forge,
            webhook_secret: open(row.webhook_secret_sealed, row.webhook_secret)?,
            forge_token: open(row.forge_token_sealed, row.forge_token)?,
            repo_token: open(row.repo_token_sealed, row.repo_token)?,
            ssh_key: open(row.ssh_key_sealed, None)?,
            default_branch: row.default_branch,
            forge_api_url: row.forge_api_url,
            forge_project: row.forge_project,
            poll_interval_secs: row.poll_interval_secs,
            protected_branches_json: row.protected_branches_json,
            removed_at: row.removed_at,
        })
    }
}

/// A project as stored: its secrets sealed (and, from before they were, maybe in clear).
#[derive(sqlx::FromRow)]
struct ProjectRow {
    id: ProjectId,
    name: String,
    repo_url: String,
    pipeline_file: String,
    created_at: i64,
    forge: String,
    webhook_secret: Option<String>,
    forge_token: Option<String>,
    repo_token: Option<String>,
    webhook_secret_sealed: Option<Vec<u8>>,
    forge_token_sealed: Option<Vec<u8>>,
    repo_token_sealed: Option<Vec<u8>>,
    ssh_key_sealed: Option<Vec<u8>>,
    default_branch: String,
    forge_api_url: Option<String>,
    forge_project: Option<String>,
    poll_interval_secs: Option<i64>,
    protected_branches_json: String,
    removed_at: Option<i64>,
}

fn empty_is_none(value: Option<&String>) -> Option<Option<&str>> {
    value.map(|text| Some(text.as_str()).filter(|t| !t.is_empty()))
}

/// Whether an optional setting was given, and its new value (`None` clears it).
fn optional(value: Option<Option<&str>>) -> (bool, Option<&str>) {
    (value.is_some(), value.flatten())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::SecretBox;

    /// Every byte of the database's files (main file, WAL).
    fn database_bytes(dir: &std::path::Path) -> Vec<u8> {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter(|entry| entry.file_name().to_string_lossy().starts_with("db.sqlite"))
            .flat_map(|entry| std::fs::read(entry.path()).unwrap())
            .collect()
    }

    fn holds(haystack: &[u8], needle: &str) -> bool {
        haystack
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
    }

    #[tokio::test]
    async fn secrets_left_in_clear_by_an_older_version_are_sealed_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = SecretBox::load_or_create(&dir.path().join("key")).unwrap();
        let path = dir.path().join("db.sqlite");
        let store = SqliteStore::open(&path.to_string_lossy(), Some(secrets))
            .await
            .unwrap();
        let project = store
            .insert_project("app", "https://forge.example/app.git", ".gitlab-ci.yml")
            .await
            .unwrap()
            .unwrap();
        // What the first schema stored: the secrets in clear.
        sqlx::query(
            "UPDATE projects SET webhook_secret = 'clear-hook-secret-1',
                forge_token = 'clear-forge-token-2', repo_token = 'clear-repo-token-3'
             WHERE id = ?",
        )
        .bind(project.id.0)
        .execute(store.pool())
        .await
        .unwrap();
        assert!(holds(&database_bytes(dir.path()), "clear-forge-token-2"));

        assert_eq!(store.seal_clear_project_secrets().await.unwrap(), 1);
        assert_eq!(store.seal_clear_project_secrets().await.unwrap(), 0, "once");
        let project = store.project(project.id).await.unwrap().unwrap();
        assert_eq!(
            project.webhook_secret.as_deref(),
            Some("clear-hook-secret-1")
        );
        assert_eq!(project.forge_token.as_deref(), Some("clear-forge-token-2"));
        assert_eq!(project.repo_token.as_deref(), Some("clear-repo-token-3"));
        let bytes = database_bytes(dir.path());
        for secret in [
            "clear-hook-secret-1",
            "clear-forge-token-2",
            "clear-repo-token-3",
        ] {
            assert!(
                !holds(&bytes, secret),
                "{secret} still in the database files"
            );
        }

        // New values are sealed on the way in; "" clears.
        let edited = store
            .update_project(
                project.id,
                &ProjectSettings {
                    forge_token: Some("new-forge-token-4".into()),
                    ssh_key: Some("-----BEGIN OPENSSH PRIVATE KEY-----".into()),
                    webhook_secret: Some(String::new()),
                    ..ProjectSettings::default()
                },
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(edited.forge_token.as_deref(), Some("new-forge-token-4"));
        assert_eq!(edited.webhook_secret, None);
        assert!(edited.ssh_key.is_some());
        assert_eq!(edited.view()["ssh_key"], "***");
        let bytes = database_bytes(dir.path());
        assert!(!holds(&bytes, "new-forge-token-4"));
        assert!(!holds(&bytes, "BEGIN OPENSSH"));

        // Another key cannot open them: a clear error, not garbage.
        let other = SecretBox::load_or_create(&dir.path().join("other")).unwrap();
        let wrong = SqliteStore::open(&path.to_string_lossy(), Some(other))
            .await
            .unwrap();
        assert!(matches!(
            wrong.project(project.id).await,
            Err(StoreError::Secret(_))
        ));
    }
}
