//! Environments: what runs in each of a project's environments (its newest successful
//! deployment, none once an `action: stop` job ran after it), the history of its
//! deployments, and rollback, which runs the deploy job of an earlier deployment again
//! (on its commit) and so records a new deployment.

use std::sync::Arc;

use serde::Serialize;

use crate::model::JobId;
use crate::scheduler::{Scheduler, SchedulerError, latest_attempts};
use crate::store::deployments::Deployment;
use crate::store::projects::Project;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum EnvironmentError {
    #[error("environment '{env}' of '{project}' does not exist")]
    UnknownEnvironment { project: String, env: String },
    #[error("deployment {id} of '{env}' does not exist")]
    UnknownDeployment { env: String, id: i64 },
    #[error("'{0}' has no earlier successful deployment to roll back to")]
    NothingToRollBackTo(String),
    #[error("job {0} does not exist")]
    UnknownJob(JobId),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Scheduler(#[from] SchedulerError),
}

#[derive(Serialize)]
pub struct DeploymentView {
    #[serde(flatten)]
    deployment: Deployment,
    /// What the UI and CLI show as the version: the short commit.
    version: String,
    deployed_at: i64,
}

#[derive(Serialize)]
pub struct EnvironmentView {
    name: String,
    tier: String,
    url: Option<String>,
    /// `available`, or `stopped` when an `action: stop` job ran after the last deployment.
    state: &'static str,
    /// The newest successful deployment: what runs there now (none once stopped).
    current: Option<DeploymentView>,
    /// Every deployment, newest first.
    history: Vec<DeploymentView>,
}

/// Groups a project's deployments (newest first) by environment, in name order.
fn environments(deployments: Vec<Deployment>) -> Vec<EnvironmentView> {
    let mut views: Vec<EnvironmentView> = Vec::new();
    for deployment in deployments {
        let view = DeploymentView {
            version: deployment.sha.chars().take(8).collect(),
            deployed_at: deployment.finished_at,
            deployment,
        };
        let name = view.deployment.environment.clone();
        let index = match views.iter().position(|env| env.name == name) {
            Some(index) => index,
            None => {
                views.push(EnvironmentView {
                    name,
                    tier: view.deployment.tier.clone(),
                    url: view.deployment.url.clone(),
                    state: "available",
                    current: None,
                    history: Vec::new(),
                });
                views.len() - 1
            }
        };
        views[index].history.push(view);
    }
    for env in &mut views {
        let latest = env
            .history
            .iter()
            .position(|d| ["success", "stopped"].contains(&d.deployment.status.as_str()));
        let stopped = latest.is_some_and(|at| env.history[at].deployment.status == "stopped");
        if stopped {
            env.state = "stopped";
        }
        let current = latest.filter(|_| !stopped);
        env.current = current.map(|at| DeploymentView {
            deployment: env.history[at].deployment.clone(),
            version: env.history[at].version.clone(),
            deployed_at: env.history[at].deployed_at,
        });
    }
    views.sort_by(|a, b| a.name.cmp(&b.name));
    views
}

/// The environments of `project`, in name order.
pub async fn of_project(
    store: &Store,
    project: &Project,
) -> Result<Vec<EnvironmentView>, StoreError> {
    Ok(environments(store.deployments(project.id).await?))
}

/// The environment `env` of `project`.
pub async fn find(
    store: &Store,
    project: &Project,
    env: &str,
) -> Result<EnvironmentView, EnvironmentError> {
    of_project(store, project)
        .await?
        .into_iter()
        .find(|view| view.name == env)
        .ok_or_else(|| EnvironmentError::UnknownEnvironment {
            project: project.name.clone(),
            env: env.to_string(),
        })
}

/// A rollback under way: the deployment rolled back to, and the job that redeploys it.
#[derive(Debug, Clone, Copy)]
pub struct Rollback {
    pub deployment: i64,
    pub job: JobId,
}

/// Rolls `env` back to the deployment `wanted` (by default the successful deployment
/// before the current one) by retrying the latest attempt of its deploy job.
pub async fn rollback(
    store: &Store,
    scheduler: &Arc<Scheduler>,
    project: &Project,
    env: &str,
    wanted: Option<i64>,
) -> Result<Rollback, EnvironmentError> {
    let view = find(store, project, env).await?;
    let current = view.current.as_ref().map(|d| d.deployment.id);
    let target = view
        .history
        .iter()
        .map(|d| &d.deployment)
        .find(|d| match wanted {
            Some(id) => d.id == id,
            None => d.status == "success" && Some(d.id) != current,
        })
        .ok_or_else(|| match wanted {
            Some(id) => EnvironmentError::UnknownDeployment {
                env: env.to_string(),
                id,
            },
            None => EnvironmentError::NothingToRollBackTo(env.to_string()),
        })?;
    let deployed = store
        .job(target.job_id)
        .await?
        .ok_or(EnvironmentError::UnknownJob(target.job_id))?;
    // Run the deploy job's latest attempt in its pipeline again.
    let attempts = latest_attempts(store.pipeline_jobs(deployed.pipeline_id).await?);
    let latest: JobId = attempts
        .iter()
        .find(|job| job.name == deployed.name)
        .map_or(deployed.id, |job| job.id);
    let job = scheduler.retry_job(latest).await?;
    Ok(Rollback {
        deployment: target.id,
        job,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PipelineId;

    fn deployment(id: i64, environment: &str, status: &str) -> Deployment {
        Deployment {
            id,
            environment: environment.to_string(),
            tier: "production".to_string(),
            url: None,
            job_id: JobId(id * 10),
            pipeline_id: PipelineId(id),
            sha: format!("{id:0>40}"),
            git_ref: "master".to_string(),
            status: status.to_string(),
            image_digest: None,
            started_at: None,
            finished_at: id,
            triggered_by: "push".to_string(),
        }
    }

    #[test]
    fn the_current_deployment_is_the_newest_success_until_a_stop() {
        // Newest first, as the store reads them.
        let views = environments(vec![
            deployment(4, "production", "failed"),
            deployment(3, "production", "success"),
            deployment(2, "staging", "stopped"),
            deployment(1, "staging", "success"),
        ]);
        let production = &views[0];
        assert_eq!(
            (production.name.as_str(), production.state),
            ("production", "available")
        );
        assert_eq!(
            production.current.as_ref().map(|d| d.deployment.id),
            Some(3)
        );
        assert_eq!(production.history.len(), 2);
        let staging = &views[1];
        assert_eq!(staging.state, "stopped");
        assert!(
            staging.current.is_none(),
            "a stopped environment runs nothing"
        );

        let redeployed = environments(vec![
            deployment(3, "staging", "success"),
            deployment(2, "staging", "stopped"),
            deployment(1, "staging", "success"),
        ]);
        assert_eq!(redeployed[0].state, "available");
        assert_eq!(
            redeployed[0].current.as_ref().map(|d| d.deployment.id),
            Some(3)
        );
    }
}
