//! Projects: `GET`/`POST /api/v1/projects`, and `GET`, `PUT`/`PATCH` (the settings given
//! change, the others stay) and `DELETE` of `/api/v1/projects/{name}`. What a project
//! must be is [`crate::projects`]'s.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, ApiResult, ApiState, require_admin};
use crate::projects::{invalid_new, invalid_settings};
use crate::store::projects::{Project, ProjectSettings};

pub(super) fn router() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/projects", get(list_projects).post(add_project))
        .route(
            "/api/v1/projects/{name}",
            get(show_project)
                .put(edit_project)
                .patch(edit_project)
                .delete(remove_project),
        )
}

/// The project named `name`, or 404.
pub(super) async fn find_project(state: &ApiState, name: &str) -> ApiResult<Project> {
    state
        .store
        .project_by_name(name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("project '{name}' does not exist")))
}

#[derive(Deserialize)]
struct NewProject {
    name: String,
    repo_url: String,
    #[serde(flatten)]
    settings: ProjectSettings,
}

async fn add_project(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Json(new): Json<NewProject>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    require_admin(&state, &headers)?;
    if let Some(reason) = invalid_new(&new.name, &new.repo_url, &new.settings) {
        return Err(ApiError::BadRequest(reason));
    }
    let file = new
        .settings
        .pipeline_file
        .as_deref()
        .unwrap_or(".gitlab-ci.yml");
    let store = &state.store;
    let project = store
        .insert_project(&new.name, &new.repo_url, file)
        .await?
        .ok_or_else(|| ApiError::Conflict(format!("project '{}' already exists", new.name)))?;
    let project = store
        .update_project(project.id, &new.settings)
        .await?
        .ok_or_else(|| ApiError::Internal("the new project vanished".into()))?;
    Ok((StatusCode::CREATED, Json(project.view())))
}

async fn list_projects(State(state): State<ApiState>) -> ApiResult<Json<serde_json::Value>> {
    let projects = state.store.projects().await?;
    Ok(Json(json!(
        projects.iter().map(Project::view).collect::<Vec<_>>()
    )))
}

async fn show_project(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(find_project(&state, &name).await?.view()))
}

async fn edit_project(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Json(settings): Json<ProjectSettings>,
) -> ApiResult<Json<serde_json::Value>> {
    require_admin(&state, &headers)?;
    if let Some(reason) = invalid_settings(&settings) {
        return Err(ApiError::BadRequest(reason));
    }
    let project = find_project(&state, &name).await?;
    let project = state
        .store
        .update_project(project.id, &settings)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("project '{name}' does not exist")))?;
    Ok(Json(project.view()))
}

/// The project stops taking events; its pipelines stay.
async fn remove_project(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    require_admin(&state, &headers)?;
    let project = find_project(&state, &name).await?;
    if !state.store.remove_project(project.id).await? {
        return Err(ApiError::NotFound(format!(
            "project '{name}' does not exist"
        )));
    }
    Ok(Json(json!({ "name": name, "removed": true })))
}
