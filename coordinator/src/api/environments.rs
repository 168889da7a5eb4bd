//! A project's environments ([`crate::environments`]): each one's current deployment and
//! history, and rollback.
//!
//! - `GET /api/v1/projects/{name}/environments`
//! - `GET /api/v1/projects/{name}/environments/{env}`
//! - `POST /api/v1/projects/{name}/environments/{env}/rollback` `{"deployment": ID}`
//!   (default: the successful deployment before the current one)

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::projects::find_project;
use super::{ApiResult, ApiState, require_admin};
use crate::environments;

pub(super) fn router() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/projects/{name}/environments", get(list))
        .route("/api/v1/projects/{name}/environments/{env}", get(show))
        .route(
            "/api/v1/projects/{name}/environments/{env}/rollback",
            post(rollback),
        )
}

async fn list(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let project = find_project(&state, &name).await?;
    let store = &state.store;
    Ok(Json(json!(
        environments::of_project(store, &project).await?
    )))
}

async fn show(
    State(state): State<ApiState>,
    Path((name, env)): Path<(String, String)>,
) -> ApiResult<Json<serde_json::Value>> {
    let project = find_project(&state, &name).await?;
    let store = &state.store;
    Ok(Json(json!(
        environments::find(store, &project, &env).await?
    )))
}

#[derive(Deserialize, Default)]
struct RollbackTo {
    deployment: Option<i64>,
}

async fn rollback(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path((name, env)): Path<(String, String)>,
    body: Option<Json<RollbackTo>>,
) -> ApiResult<Json<serde_json::Value>> {
    require_admin(&state, &headers)?;
    let project = find_project(&state, &name).await?;
    let wanted = body.and_then(|Json(to)| to.deployment);
    let rollback =
        environments::rollback(&state.store, &state.scheduler, &project, &env, wanted).await?;
    Ok(Json(json!({
        "environment": env, "deployment": rollback.deployment, "job": rollback.job
    })))
}
