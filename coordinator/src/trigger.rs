//! Starting a pipeline: resolve the ref in the project's mirror, read the pipeline file
//! at that commit, plan it for the event, and hand the plan to the scheduler. Nothing is
//! stored unless every step succeeds.

use std::sync::Arc;

use esteira_pipeline::{Diagnostic, EventContext, PipelineSource, RefKind};

use crate::git::{self, CommitFiles, GitError, Mirrors};
use crate::model::PipelineId;
use crate::scheduler::{Scheduler, SchedulerError};
use crate::store::pipelines::{NewJob, NewPipeline};
use crate::variables::{PipelineFacts, predefined, source_name};

/// A request for a pipeline.
#[derive(Debug, Clone)]
pub struct Trigger {
    pub project: String,
    pub git_ref: String,
    pub sha: Option<String>,
    pub variables: Vec<(String, String)>,
    pub source: PipelineSource,
}

#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error("project '{0}' does not exist")]
    UnknownProject(String),
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("the pipeline file is invalid:\n{}", render(.0))]
    Invalid(Vec<Diagnostic>),
    #[error("no job of the pipeline file runs for ref '{0}'")]
    NoJobs(String),
    #[error(transparent)]
    Scheduler(#[from] SchedulerError),
}

fn render(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Plans and starts a pipeline for `trigger`.
pub async fn start_pipeline(
    scheduler: &Scheduler,
    mirrors: &Mirrors,
    trigger: Trigger,
) -> Result<PipelineId, TriggerError> {
    let project = scheduler
        .store()
        .project_by_name(&trigger.project)
        .await
        .map_err(SchedulerError::from)?
        .ok_or_else(|| TriggerError::UnknownProject(trigger.project.clone()))?;
    let mirror = mirrors.fetch(&project.name, &project.repo_url).await?;
    let (git_ref, sha) = git::resolve(&mirror, &trigger.git_ref, trigger.sha.as_deref()).await?;
    let server_url = scheduler.config().server_url.clone();
    let created = scheduler
        .create_pipeline(move |id| {
            let facts = PipelineFacts {
                pipeline_id: id.0,
                project: &project.name,
                git_ref: &git_ref,
                sha: &sha,
                source: trigger.source,
                server_url: &server_url,
            };
            let mut variables = predefined(&facts);
            variables.extend(trigger.variables.iter().cloned());
            let context = EventContext {
                git_ref: git_ref.clone(),
                sha: sha.clone(),
                source: trigger.source,
                changed_files: None,
                variables: variables.into_iter().collect(),
                project_path: project.name.clone(),
            };
            let files = CommitFiles {
                mirror,
                sha: sha.clone(),
            };
            let plan = esteira_pipeline::plan_pipeline(&files, &project.pipeline_file, &context)
                .map_err(TriggerError::Invalid)?;
            if plan.jobs.is_empty() {
                return Err(TriggerError::NoJobs(trigger.git_ref.clone()));
            }
            let jobs = plan
                .jobs
                .iter()
                .map(|job| {
                    let stage_index = plan.stages.iter().position(|s| *s == job.stage);
                    Ok(NewJob {
                        name: job.name.clone(),
                        stage: job.stage.clone(),
                        stage_index: i64::try_from(stage_index.unwrap_or(0)).unwrap_or(0),
                        spec_json: serde_json::to_string(job)
                            .map_err(|e| SchedulerError::InvalidState(e.to_string()))?,
                    })
                })
                .collect::<Result<Vec<_>, TriggerError>>()?;
            let (git_ref_name, ref_kind) = match &git_ref {
                RefKind::Branch(name) => (name.clone(), "branch"),
                RefKind::Tag(name) => (name.clone(), "tag"),
            };
            Ok(NewPipeline {
                id,
                project_id: project.id,
                git_ref: git_ref_name,
                ref_kind,
                sha,
                source: source_name(trigger.source),
                stages: plan.stages,
                variables: trigger.variables,
                jobs,
            })
        })
        .await??;
    Ok(created)
}

/// Shared handles the HTTP side needs to start pipelines.
#[derive(Clone)]
pub struct Pipelines {
    pub scheduler: Arc<Scheduler>,
    pub mirrors: Arc<Mirrors>,
}
