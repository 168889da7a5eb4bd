//! Starting a pipeline: resolve the ref in the project's mirror, read the pipeline file
//! at that commit, plan it for the event, and hand the plan to the scheduler. Nothing is
//! stored unless every step succeeds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use esteira_pipeline::{Diagnostic, EventContext, PipelineSource, RefKind};

use crate::git::{self, CommitFiles, GitError, Mirrors};
use crate::model::PipelineId;
use crate::scheduler::{Scheduler, SchedulerError};
use crate::store::Store;
use crate::store::pipelines::{NewJob, NewPipeline};
use crate::store::projects::Project;
use crate::variables::{PipelineFacts, predefined, source_name};
use tracing::{info, warn};

/// A request for a pipeline: from the API or CLI (a ref, maybe a commit and variables),
/// or from a Git event, which also says what the ref was before, what changed and the
/// event's own variables (`CI_MERGE_REQUEST_*`...).
#[derive(Debug, Clone, Default)]
pub struct Trigger {
    pub project: String,
    pub git_ref: String,
    pub sha: Option<String>,
    /// Variables given with the pipeline (highest precedence).
    pub variables: Vec<(String, String)>,
    pub source: PipelineSource,
    /// The commit the ref pointed at before a push (`CI_COMMIT_BEFORE_SHA`).
    pub before_sha: Option<String>,
    /// The revision the changed files are diffed from (`BASE...sha` in the mirror): the
    /// `before` commit of a push, the target branch of a merge request.
    pub diff_base: Option<String>,
    /// Changed files as the event lists them, used when the diff cannot be made.
    pub changed_files: Option<Vec<String>>,
    /// Variables the event defines, with the predefined ones' precedence.
    pub event_variables: Vec<(String, String)>,
    /// The delivery (or poll) that asked, for the logs.
    pub delivery: Option<String>,
}

/// The commit GitLab names when there is no `before`.
pub const NO_COMMIT: &str = "0000000000000000000000000000000000000000";

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
    store: &Store,
    scheduler: &Arc<Scheduler>,
    mirrors: &Mirrors,
    trigger: Trigger,
) -> Result<PipelineId, TriggerError> {
    let project = store
        .project_by_name(&trigger.project)
        .await
        .map_err(SchedulerError::from)?
        .ok_or_else(|| TriggerError::UnknownProject(trigger.project.clone()))?;
    let (mirror, git_ref, sha) = fetch_and_resolve(mirrors, &project, &trigger).await?;
    let facts = commit_facts(&mirror, &sha, &trigger).await?;
    let server_url = scheduler.config().server_url.clone();
    let CommitFacts {
        variables: commit_variables,
        changed_files,
        title: commit_title,
        author: commit_author,
    } = facts;
    // The event's variables travel with the pipeline (jobs see them), before the given
    // ones so that those win.
    let mut stored_variables = commit_variables;
    stored_variables.extend(trigger.event_variables.iter().cloned());
    stored_variables.extend(trigger.variables.iter().cloned());
    // Project and pipeline variables win over the file's in the plan, as in GitLab. Masked
    // ones stay out of it: what the plan expands is stored in clear.
    let (RefKind::Branch(ref_name) | RefKind::Tag(ref_name)) = &git_ref;
    let mut overriding_variables: BTreeMap<String, String> = scheduler
        .project_variables(&project, ref_name)
        .await?
        .into_iter()
        .filter(|variable| !variable.masked)
        .map(|variable| (variable.key, variable.value))
        .collect();
    overriding_variables.extend(trigger.variables.iter().cloned());
    let project_name = project.name.clone();
    let source = trigger.source;
    let delivery = trigger.delivery.clone();
    let resolved_ref = git_ref.clone();
    let created = scheduler
        .create_pipeline(move |id| {
            let pipeline_facts = PipelineFacts {
                pipeline_id: id.0,
                project: &project.name,
                git_ref: &git_ref,
                sha: &sha,
                source: trigger.source,
                server_url: &server_url,
            };
            let mut variables = predefined(&pipeline_facts);
            if trigger.source == PipelineSource::MergeRequestEvent {
                variables.retain(|(key, _)| key != "CI_COMMIT_BRANCH");
            }
            variables.extend(stored_variables.iter().cloned());
            let context = EventContext {
                git_ref: git_ref.clone(),
                sha: sha.clone(),
                source: trigger.source,
                changed_files: changed_files.clone(),
                variables: variables.into_iter().collect(),
                overriding_variables,
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
                commit_title,
                commit_author,
                source: source_name(trigger.source),
                stages: plan.stages,
                variables: stored_variables,
                jobs,
            })
        })
        .await??;
    info!(pipeline_id = %created, delivery = delivery.as_deref().unwrap_or("-"), "pipeline started");
    if let (RefKind::Branch(branch), PipelineSource::Push | PipelineSource::MergeRequestEvent) =
        (&resolved_ref, source)
    {
        // GitLab's auto-cancel of redundant pipelines; a failure here never undoes the
        // new pipeline.
        if let Err(error) = scheduler
            .cancel_interruptible(&project_name, branch, created)
            .await
        {
            warn!(pipeline_id = %created, %error, "auto-cancel of older pipelines failed");
        }
    }
    Ok(created)
}

/// Brings the mirror up to date (unless it already holds the event's commit and ref) and
/// resolves the ref and commit in it.
async fn fetch_and_resolve(
    mirrors: &Mirrors,
    project: &Project,
    trigger: &Trigger,
) -> Result<(PathBuf, RefKind, String), TriggerError> {
    let mirror = mirrors.path(&project.name);
    if trigger.sha.is_some()
        && mirror.join("HEAD").exists()
        && let Ok((git_ref, sha)) =
            git::resolve(&mirror, &trigger.git_ref, trigger.sha.as_deref()).await
    {
        return Ok((mirror, git_ref, sha));
    }
    let mirror = mirrors.fetch(project).await?;
    let (git_ref, sha) = git::resolve(&mirror, &trigger.git_ref, trigger.sha.as_deref()).await?;
    Ok((mirror, git_ref, sha))
}

/// What the mirror tells about the commit: its message, author and time (as variables,
/// and the title and author name for the pipeline's record), and the files changed since
/// the trigger's diff base.
struct CommitFacts {
    variables: Vec<(String, String)>,
    changed_files: Option<Vec<String>>,
    title: Option<String>,
    author: Option<String>,
}

async fn commit_facts(
    mirror: &Path,
    sha: &str,
    trigger: &Trigger,
) -> Result<CommitFacts, TriggerError> {
    let mirror = mirror.to_path_buf();
    let sha = sha.to_string();
    let before = trigger.before_sha.clone();
    let base = trigger
        .diff_base
        .clone()
        .filter(|base| base.as_str() != NO_COMMIT);
    let listed = trigger.changed_files.clone();
    let facts = tokio::task::spawn_blocking(move || {
        let run = |args: &[&str]| -> Option<Vec<u8>> {
            let output = Command::new("git")
                .arg("-C")
                .arg(&mirror)
                .args(args)
                .output()
                .ok()?;
            output.status.success().then_some(output.stdout)
        };
        let mut variables = Vec::new();
        let (mut commit_title, mut commit_author) = (None, None);
        if let Some(out) = run(&["log", "-1", "--format=%an%x00%ae%x00%aI%x00%B", &sha]) {
            let text = String::from_utf8_lossy(&out);
            let mut parts = text.splitn(4, '\0');
            let name = parts.next().unwrap_or_default().to_string();
            let author = format!("{name} <{}>", parts.next().unwrap_or_default());
            let timestamp = parts.next().unwrap_or_default().to_string();
            let message = parts.next().unwrap_or_default().trim_end().to_string();
            let title = message.lines().next().unwrap_or_default().to_string();
            commit_title = Some(title.clone());
            commit_author = Some(name);
            let description = message
                .split_once('\n')
                .map(|(_, rest)| rest.trim_start_matches('\n').to_string())
                .unwrap_or_default();
            variables.extend([
                ("CI_COMMIT_MESSAGE".to_string(), message),
                ("CI_COMMIT_TITLE".to_string(), title),
                ("CI_COMMIT_DESCRIPTION".to_string(), description),
                ("CI_COMMIT_AUTHOR".to_string(), author),
                ("CI_COMMIT_TIMESTAMP".to_string(), timestamp),
            ]);
        }
        variables.push((
            "CI_COMMIT_BEFORE_SHA".to_string(),
            before.unwrap_or_else(|| NO_COMMIT.to_string()),
        ));
        let diffed = base.and_then(|base| {
            let range = format!("{base}...{sha}");
            run(&["diff", "--name-only", "-z", &range]).map(|out| {
                out.split(|byte| *byte == 0)
                    .filter(|name| !name.is_empty())
                    .map(|name| String::from_utf8_lossy(name).into_owned())
                    .collect::<Vec<_>>()
            })
        });
        CommitFacts {
            variables,
            changed_files: diffed.or(listed),
            title: commit_title,
            author: commit_author,
        }
    })
    .await
    .map_err(GitError::from)?;
    Ok(facts)
}
