//! Projects: a name, the repository its pipelines come from, and how it meets its forge
//! (webhook secret, API for commit statuses, polling).
//!
//! Secrets (webhook secret, forge token, repository token, SSH key) are sealed with the
//! store's [`SecretBox`](crate::secrets::SecretBox) before they are written, in the
//! `*_sealed` columns (nonce and ciphertext in one blob), and opened when a project is
//! read: the rest of the coordinator sees a [`Project`] with its secrets in clear, in
//! memory only. They are never serialized: [`Project::view`] is what the API shows. The
//! clear columns of the first schema are emptied at start
//! ([`Store::seal_clear_project_secrets`]).

use serde::{Deserialize, Serialize};
use serde_json::json;

use async_trait::async_trait;

use super::StoreError;
use crate::model::ProjectId;

/// The forges esteira takes events from and reports statuses to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Forge {
    Gitlab,
    Github,
    Gitea,
    Forgejo,
    Generic,
}

impl Forge {
    pub fn parse(text: &str) -> Option<Forge> {
        Some(match text {
            "gitlab" => Forge::Gitlab,
            "github" => Forge::Github,
            "gitea" => Forge::Gitea,
            "forgejo" => Forge::Forgejo,
            "generic" => Forge::Generic,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Forge::Gitlab => "gitlab",
            Forge::Github => "github",
            Forge::Gitea => "gitea",
            Forge::Forgejo => "forgejo",
            Forge::Generic => "generic",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Project {
    pub id: ProjectId,
    pub name: String,
    pub repo_url: String,
    pub pipeline_file: String,
    pub created_at: i64,
    pub forge: String,
    pub webhook_secret: Option<String>,
    pub forge_token: Option<String>,
    pub repo_token: Option<String>,
    /// A private SSH key the repository is fetched with.
    pub ssh_key: Option<String>,
    pub default_branch: String,
    pub forge_api_url: Option<String>,
    pub forge_project: Option<String>,
    pub poll_interval_secs: Option<i64>,
    pub protected_branches_json: String,
    pub removed_at: Option<i64>,
}

impl Project {
    pub fn forge(&self) -> Forge {
        Forge::parse(&self.forge).unwrap_or(Forge::Generic)
    }

    pub fn protected_branches(&self) -> Vec<String> {
        serde_json::from_str(&self.protected_branches_json).unwrap_or_default()
    }

    /// The URL git fetches from: the repository URL with the HTTPS token, if any, as
    /// its credentials.
    pub fn fetch_url(&self) -> String {
        match (&self.repo_token, self.repo_url.split_once("://")) {
            (Some(token), Some((scheme, rest)))
                if scheme.starts_with("http") && !rest.contains('@') =>
            {
                format!("{scheme}://oauth2:{token}@{rest}")
            }
            _ => self.repo_url.clone(),
        }
    }

    /// The project's path on its forge: as configured, else the repository URL's path
    /// without `.git` (`group/project` on GitLab, `owner/repo` elsewhere).
    pub fn forge_path(&self) -> String {
        if let Some(path) = self.forge_project.as_deref().filter(|p| !p.is_empty()) {
            return path.to_string();
        }
        let url = self.repo_url.trim_end_matches('/');
        let url = url.strip_suffix(".git").unwrap_or(url);
        let path = match url.split_once("://") {
            Some((_, rest)) => rest.split_once('/').map_or("", |(_, path)| path),
            // scp-like `git@host:owner/repo`
            None => url.split_once(':').map_or(url, |(_, path)| path),
        };
        path.trim_start_matches('/').to_string()
    }

    /// What the API shows: every field, secrets as whether they are set.
    pub fn view(&self) -> serde_json::Value {
        json!({
            "id": self.id,
            "name": self.name,
            "repo_url": redact_userinfo(&self.repo_url),
            "pipeline_file": self.pipeline_file,
            "created_at": self.created_at,
            "forge": self.forge,
            "default_branch": self.default_branch,
            "forge_api_url": self.forge_api_url,
            "forge_project": self.forge_path(),
            "poll_interval_secs": self.poll_interval_secs,
            "protected_branches": self.protected_branches(),
            "webhook_secret": self.webhook_secret.as_ref().map(|_| "***"),
            "forge_token": self.forge_token.as_ref().map(|_| "***"),
            "repo_token": self.repo_token.as_ref().map(|_| "***"),
            "ssh_key": self.ssh_key.as_ref().map(|_| "***"),
            "webhook_path": format!("/hooks/{}/{}", self.forge, self.name),
        })
    }
}

/// `https://user:secret@host/x` shown as `https://***@host/x`.
pub fn redact_userinfo(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let host_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..host_end].rfind('@') {
            return format!("{scheme}://***@{}", &rest[at + 1..]);
        }
    }
    url.to_string()
}

/// Every setting of a project besides its name; `None` leaves a field as it is on edit.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProjectSettings {
    pub repo_url: Option<String>,
    pub pipeline_file: Option<String>,
    pub forge: Option<Forge>,
    /// An empty string clears the secret.
    pub webhook_secret: Option<String>,
    pub forge_token: Option<String>,
    pub repo_token: Option<String>,
    /// A private SSH key (its text).
    pub ssh_key: Option<String>,
    pub default_branch: Option<String>,
    pub forge_api_url: Option<String>,
    pub forge_project: Option<String>,
    /// 0 turns polling off.
    pub poll_interval_secs: Option<i64>,
    pub protected_branches: Option<Vec<String>>,
}

/// Projects and their sealed secrets.
#[async_trait]
pub trait ProjectStore: Send + Sync {
    /// Adds a project; `None` when the name is taken.
    async fn insert_project(
        &self,
        name: &str,
        repo_url: &str,
        pipeline_file: &str,
    ) -> Result<Option<Project>, StoreError>;

    /// Changes the settings given in `settings`, secrets sealed; `None` when the project
    /// does not exist. (The clear columns of the first schema are not written: they are
    /// empty once [`Self::seal_clear_project_secrets`] has run at start.)
    async fn update_project(
        &self,
        id: ProjectId,
        settings: &ProjectSettings,
    ) -> Result<Option<Project>, StoreError>;

    /// Removes a project: its row stays for its pipelines, under a name that frees the
    /// old one. False when there was no such project.
    async fn remove_project(&self, id: ProjectId) -> Result<bool, StoreError>;

    async fn project_by_name(&self, name: &str) -> Result<Option<Project>, StoreError>;

    /// The project `id` (removed or not), its secrets opened; kept in memory after the
    /// first read ([`super::cache`]).
    async fn project(&self, id: ProjectId) -> Result<Option<Project>, StoreError>;

    async fn projects(&self) -> Result<Vec<Project>, StoreError>;

    /// Projects with polling turned on.
    async fn polled_projects(&self) -> Result<Vec<Project>, StoreError>;

    /// Seals the secrets still stored in clear by an earlier version (the columns of
    /// migration 0003) and empties those columns; the number of projects changed. The
    /// emptied bytes are overwritten (`secure_delete`) and the WAL is checkpointed, so
    /// the clear values leave the database file too.
    async fn seal_clear_project_secrets(&self) -> Result<usize, StoreError>;
}
