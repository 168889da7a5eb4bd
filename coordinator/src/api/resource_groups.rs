//! A project's resource groups and their process modes ([`crate::resource_groups`]);
//! reads as any read, setting needs the admin token.
//!
//! - `GET /api/v1/projects/{name}/resource_groups`
//! - `PUT /api/v1/projects/{name}/resource_groups/{group}` `{"process_mode": "newest_first"}`

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::projects::find_project;
use super::{ApiError, ApiResult, ApiState, require_admin};
use crate::model::ProcessMode;

pub(super) fn router() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/projects/{name}/resource_groups", get(list))
        .route("/api/v1/projects/{name}/resource_groups/{group}", put(set))
}

async fn list(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let project = find_project(&state, &name).await?;
    let store = &state.store;
    let groups: Vec<serde_json::Value> = store
        .resource_group_modes(project.id)
        .await?
        .into_iter()
        .map(|(name, mode)| json!({"name": name, "process_mode": mode}))
        .collect();
    Ok(Json(json!(groups)))
}

#[derive(Deserialize)]
struct NewMode {
    process_mode: String,
}

async fn set(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path((name, group)): Path<(String, String)>,
    Json(new): Json<NewMode>,
) -> ApiResult<Json<serde_json::Value>> {
    require_admin(&state, &headers)?;
    let mode: ProcessMode = new.process_mode.parse().map_err(ApiError::BadRequest)?;
    if group.is_empty() || group.len() > 255 {
        return Err(ApiError::BadRequest(format!(
            "invalid resource group name {group:?}"
        )));
    }
    let project = find_project(&state, &name).await?;
    let store = &state.store;
    store
        .set_resource_group_mode(project.id, &group, mode)
        .await?;
    Ok(Json(json!({"name": group, "process_mode": mode})))
}
