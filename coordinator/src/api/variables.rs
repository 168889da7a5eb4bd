//! A project's variables: set (the value sealed at rest), list (flags only), remove.
//! Every call needs the admin token.
//!
//! - `PUT /api/v1/projects/{name}/variables/{key}` `{value, masked, protected, file}`
//! - `GET /api/v1/projects/{name}/variables`
//! - `DELETE /api/v1/projects/{name}/variables/{key}`

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, put};
use axum::{Json, Router};
use serde_json::json;

use super::projects::find_project;
use super::{ApiError, ApiResult, ApiState, require_admin};
use crate::project_variables::{NewValue, invalid};

pub(super) fn router() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/projects/{name}/variables", get(list))
        .route(
            "/api/v1/projects/{name}/variables/{key}",
            put(set).delete(remove),
        )
}

async fn set(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path((name, key)): Path<(String, String)>,
    Json(new): Json<NewValue>,
) -> ApiResult<Json<serde_json::Value>> {
    require_admin(&state, &headers)?;
    if let Some(reason) = invalid(&key, &new) {
        return Err(ApiError::BadRequest(reason));
    }
    let project = find_project(&state, &name).await?;
    let sealed = new.seal(&key, &state.secrets);
    state.store.put_variable(project.id, &sealed).await?;
    Ok(Json(json!({
        "key": key, "masked": new.masked, "protected": new.protected, "file": new.file
    })))
}

async fn list(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    require_admin(&state, &headers)?;
    let project = find_project(&state, &name).await?;
    let infos = state.store.variable_infos(project.id).await?;
    Ok(Json(json!(infos)))
}

async fn remove(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path((name, key)): Path<(String, String)>,
) -> ApiResult<Json<serde_json::Value>> {
    require_admin(&state, &headers)?;
    let project = find_project(&state, &name).await?;
    if !state.store.remove_variable(project.id, &key).await? {
        return Err(ApiError::NotFound(format!(
            "variable {key} does not exist in {name}"
        )));
    }
    Ok(Json(json!({ "key": key, "removed": true })))
}
