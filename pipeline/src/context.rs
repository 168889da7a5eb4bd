//! The event a pipeline is planned for, and the files it may read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Whether the pipeline runs for a branch or a tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefKind {
    Branch(String),
    Tag(String),
}

/// GitLab's `CI_PIPELINE_SOURCE` values esteira produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PipelineSource {
    #[default]
    Push,
    Web,
    Api,
    MergeRequestEvent,
    Schedule,
    Trigger,
}

/// Everything a plan depends on besides the files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventContext {
    pub git_ref: RefKind,
    pub sha: String,
    pub source: PipelineSource,
    /// Files changed by the event; `None` when unknown (then `rules:changes` is true, as GitLab).
    pub changed_files: Option<Vec<String>>,
    /// Predefined `CI_*` variables, project and pipeline variables, in GitLab's precedence
    /// order already merged by the caller (the plan adds the file's own variables).
    pub variables: BTreeMap<String, String>,
    /// Project variables and the pipeline's own (`pipeline run --var`): as in GitLab,
    /// they win over the file's `variables:` wherever the plan reads variables.
    #[serde(default)]
    pub overriding_variables: BTreeMap<String, String>,
    /// `group/project`, for `only: [branches@group/project]`.
    pub project_path: String,
}

/// Read access to the repository at the pipeline's commit.
pub trait FileSource {
    /// The file's bytes, or `None` when it does not exist.
    fn read(&self, path: &str) -> std::io::Result<Option<Vec<u8>>>;
    /// Every file path in the repository (for `include: local` globs and `rules:exists`).
    fn list(&self) -> std::io::Result<Vec<String>>;
}
