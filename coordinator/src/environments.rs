//! Environments over REST: each environment's current deployment and history, and
//! rollback, which runs the deploy job of an earlier deployment again (on its commit)
//! and so records a new deployment.
//!
//! - `GET /api/v1/projects/{name}/environments`
//! - `GET /api/v1/projects/{name}/environments/{env}`
//! - `POST /api/v1/projects/{name}/environments/{env}/rollback` `{"deployment": ID}`
//!   (default: the successful deployment before the current one)

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::http::{ApiError, ApiResult, HttpState, find_project, require_admin};
use crate::model::JobId;
use crate::scheduler::latest_attempts;
use crate::store::deployments::Deployment;

pub fn router() -> Router<HttpState> {
    Router::new()
        .route("/api/v1/projects/{name}/environments", get(list))
        .route("/api/v1/projects/{name}/environments/{env}", get(show))
        .route(
            "/api/v1/projects/{name}/environments/{env}/rollback",
            post(rollback),
        )
}

#[derive(Serialize)]
struct DeploymentView {
    #[serde(flatten)]
    deployment: Deployment,
    /// What the UI and CLI show as the version: the short commit.
    version: String,
    deployed_at: i64,
}

#[derive(Serialize)]
struct EnvironmentView {
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

async fn project_environments(state: &HttpState, name: &str) -> ApiResult<Vec<EnvironmentView>> {
    let project = find_project(state, name).await?;
    let deployments = state
        .pipelines
        .scheduler
        .store()
        .deployments(project.id)
        .await?;
    Ok(environments(deployments))
}

async fn list(
    State(state): State<HttpState>,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(json!(project_environments(&state, &name).await?)))
}

async fn one(state: &HttpState, name: &str, env: &str) -> ApiResult<EnvironmentView> {
    project_environments(state, name)
        .await?
        .into_iter()
        .find(|view| view.name == env)
        .ok_or_else(|| {
            ApiError::NotFound(format!("environment '{env}' of '{name}' does not exist"))
        })
}

async fn show(
    State(state): State<HttpState>,
    Path((name, env)): Path<(String, String)>,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(json!(one(&state, &name, &env).await?)))
}

#[derive(Deserialize, Default)]
struct RollbackTo {
    deployment: Option<i64>,
}

async fn rollback(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Path((name, env)): Path<(String, String)>,
    body: Option<Json<RollbackTo>>,
) -> ApiResult<Json<serde_json::Value>> {
    require_admin(&state, &headers)?;
    let view = one(&state, &name, &env).await?;
    let wanted = body.and_then(|Json(to)| to.deployment);
    let current = view.current.as_ref().map(|d| d.deployment.id);
    let target = view
        .history
        .iter()
        .map(|d| &d.deployment)
        .find(|d| match wanted {
            Some(id) => d.id == id,
            None => d.status == "success" && Some(d.id) != current,
        })
        .ok_or_else(|| {
            ApiError::NotFound(match wanted {
                Some(id) => format!("deployment {id} of '{env}' does not exist"),
                None => format!("'{env}' has no earlier successful deployment to roll back to"),
            })
        })?;
    let scheduler = &state.pipelines.scheduler;
    let deployed = scheduler
        .store()
        .job(target.job_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("job {} does not exist", target.job_id)))?;
    // Run the deploy job's latest attempt in its pipeline again.
    let attempts = latest_attempts(
        scheduler
            .store()
            .pipeline_jobs(deployed.pipeline_id)
            .await?,
    );
    let latest: JobId = attempts
        .iter()
        .find(|job| job.name == deployed.name)
        .map_or(deployed.id, |job| job.id);
    let job = scheduler.retry_job(latest).await?;
    Ok(Json(
        json!({ "environment": env, "deployment": target.id, "job": job }),
    ))
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
