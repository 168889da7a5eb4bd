//! What an agent is sent for a job: the lease, the repository and commit, the spec, and
//! the variables it runs with, as a domain value. The gRPC layer converts it to the
//! protocol's `JobAssignment`.
//!
//! Variables, lowest precedence first: the predefined `CI_*` ones, the job's (from the
//! file), the project's (opened; protected ones only on protected refs), the pipeline's
//! own; then `$VAR` references are expanded.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use esteira_pipeline::RefKind;

use super::graph::Slot;
use super::{LeaseRef, Scheduler, SchedulerError, heartbeat_interval, rules};
use crate::model::{PipelineId, ProjectId};
use crate::store::StoreError;
use crate::store::jobs::JobWithArtifacts;
use crate::store::pipelines::Pipeline;
use crate::store::projects::Project;
use crate::variables::{PipelineFacts, expand_all, predefined};

/// A project variable, opened for a pipeline.
#[derive(Debug, Clone)]
pub struct ProjectVariable {
    pub key: String,
    pub value: String,
    pub masked: bool,
    /// Given to jobs as a file holding the value.
    pub file: bool,
}

/// A variable as a job gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobVariable {
    pub key: String,
    pub value: String,
    pub masked: bool,
    pub file: bool,
}

#[derive(Debug, Clone)]
pub struct Assignment {
    pub lease: LeaseRef,
    pub pipeline: PipelineId,
    pub project: String,
    pub repo_url: String,
    /// Where the agent fetches from when it differs from `repo_url` (a token in it).
    pub fetch_url: Option<String>,
    pub ssh_key: Option<String>,
    pub sha: String,
    pub git_ref: String,
    pub spec_json: std::sync::Arc<str>,
    pub variables: Vec<JobVariable>,
    pub heartbeat_interval_secs: u32,
    /// The earlier jobs whose artifacts the job downloads.
    pub artifact_jobs: Vec<i64>,
}

impl Assignment {
    /// An upper bound of the assignment's size on the wire: its text plus a few bytes of
    /// framing per field.
    pub fn wire_size_bound(&self) -> usize {
        const FRAMING: usize = 16;
        let text = self.project.len()
            + self.repo_url.len()
            + self.fetch_url.as_ref().map_or(0, String::len)
            + self.ssh_key.as_ref().map_or(0, String::len)
            + self.sha.len()
            + self.git_ref.len()
            + self.spec_json.len();
        let variables: usize = self
            .variables
            .iter()
            .map(|variable| variable.key.len() + variable.value.len() + 2 * FRAMING)
            .sum();
        text + variables + FRAMING * (12 + self.artifact_jobs.len())
    }
}

/// What the assignments of one dispatch share, read once per project and pipeline.
#[derive(Default)]
pub struct Context {
    projects: HashMap<ProjectId, Project>,
    variables: HashMap<PipelineId, Vec<ProjectVariable>>,
    artifacts: HashMap<PipelineId, Vec<JobWithArtifacts>>,
}

impl Scheduler {
    /// The project's variables that a pipeline on `git_ref` may see (protected ones only
    /// on protected refs), opened. A merge request from a fork (its ref is the forge's
    /// `refs/pull/…` or `refs/merge-requests/…`) sees none: its code is not the project's.
    pub async fn project_variables(
        &self,
        project: &Project,
        git_ref: &str,
    ) -> Result<Vec<ProjectVariable>, SchedulerError> {
        if git_ref.starts_with("refs/") {
            return Ok(Vec::new());
        }
        let protected_ref = project
            .protected_branches()
            .iter()
            .any(|pattern| rules::ref_matches(pattern, git_ref));
        let mut opened = Vec::new();
        for sealed in self.store.sealed_variables(project.id).await? {
            if sealed.protected && !protected_ref {
                continue;
            }
            let value = self
                .secrets
                .open(&sealed.nonce, &sealed.ciphertext)
                .map_err(|error| SchedulerError::InvalidState(error.to_string()))?;
            opened.push(ProjectVariable {
                key: sealed.key,
                value: String::from_utf8_lossy(&value).into_owned(),
                masked: sealed.masked,
                file: sealed.file,
            });
        }
        Ok(opened)
    }

    /// The assignment of `slot` of `pipeline`, leased under `lease`.
    pub(super) async fn assignment(
        &self,
        context: &mut Context,
        pipeline: &Pipeline,
        slot: &Slot,
        lease: LeaseRef,
    ) -> Result<Assignment, SchedulerError> {
        if let Entry::Vacant(entry) = context.projects.entry(pipeline.project_id) {
            let project = self.store.project(pipeline.project_id).await?;
            entry.insert(project.ok_or_else(|| {
                SchedulerError::NotFound(format!("project {}", pipeline.project_id))
            })?);
        }
        if let Entry::Vacant(entry) = context.variables.entry(pipeline.id) {
            let project = &context.projects[&pipeline.project_id];
            let opened = self.project_variables(project, &pipeline.git_ref).await?;
            entry.insert(opened);
        }
        if let Entry::Vacant(entry) = context.artifacts.entry(pipeline.id) {
            entry.insert(self.store.jobs_with_artifacts(pipeline.id).await?);
        }
        let project = &context.projects[&pipeline.project_id];
        let opened = &context.variables[&pipeline.id];
        let git_ref = if pipeline.ref_kind == "tag" {
            RefKind::Tag(pipeline.git_ref.clone())
        } else {
            RefKind::Branch(pipeline.git_ref.clone())
        };
        let source = serde_json::from_value(serde_json::Value::String(pipeline.source.clone()))
            .unwrap_or_default();
        let facts = PipelineFacts {
            pipeline_id: pipeline.id.0,
            project: &project.name,
            git_ref: &git_ref,
            sha: &pipeline.sha,
            source,
            server_url: &self.config.server_url,
        };
        let mut variables = predefined(&facts);
        variables.extend([
            ("CI_JOB_ID".to_string(), slot.id.to_string()),
            ("CI_JOB_NAME".to_string(), slot.name.clone()),
            ("CI_JOB_STAGE".to_string(), slot.spec.stage.clone()),
            (
                "CI_JOB_URL".to_string(),
                format!("{}/jobs/{}", self.config.server_url, slot.id),
            ),
        ]);
        variables.extend(
            slot.spec
                .variables
                .iter()
                .map(|v| (v.key.clone(), v.value.clone())),
        );
        variables.extend(
            opened
                .iter()
                .map(|variable| (variable.key.clone(), variable.value.clone())),
        );
        let given: Vec<(String, String)> =
            serde_json::from_str(&pipeline.variables_json).map_err(StoreError::from)?;
        variables.extend(given);
        let flag = |key: &str, of: fn(&ProjectVariable) -> bool| {
            opened
                .iter()
                .any(|variable| variable.key == key && of(variable))
        };
        let fetch_url = Some(project.fetch_url()).filter(|url| *url != project.repo_url);
        Ok(Assignment {
            lease,
            pipeline: pipeline.id,
            project: project.name.clone(),
            repo_url: project.repo_url.clone(),
            fetch_url,
            ssh_key: project.ssh_key.clone(),
            sha: pipeline.sha.clone(),
            git_ref: pipeline.git_ref.clone(),
            spec_json: slot.spec_json.clone(),
            variables: expand_all(variables)
                .into_iter()
                .map(|(key, value)| JobVariable {
                    masked: flag(&key, |variable| variable.masked),
                    file: flag(&key, |variable| variable.file),
                    key,
                    value,
                })
                .collect(),
            heartbeat_interval_secs: heartbeat_interval(self.config.lease_timeout),
            artifact_jobs: rules::artifact_sources(
                &slot.spec,
                slot.id,
                slot.stage_index,
                &context.artifacts[&pipeline.id],
            ),
        })
    }
}
