//! Project variables over REST: set (value sealed at rest), list (flags only), remove.
//!
//! - `PUT /api/v1/projects/{name}/variables/{key}` `{value, masked, protected, file}`
//! - `GET /api/v1/projects/{name}/variables`
//! - `DELETE /api/v1/projects/{name}/variables/{key}`
//!
//! A masked value must be at least 8 characters on one line, as GitLab requires, so that
//! masking it in logs is meaningful.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::http::{ApiError, ApiResult, HttpState, find_project, require_admin};
use crate::store::variables::SealedVariable;

pub fn router() -> Router<HttpState> {
    Router::new()
        .route("/api/v1/projects/{name}/variables", get(list))
        .route(
            "/api/v1/projects/{name}/variables/{key}",
            put(set).delete(remove),
        )
}

#[derive(Deserialize)]
struct NewValue {
    value: String,
    #[serde(default)]
    masked: bool,
    #[serde(default)]
    protected: bool,
    #[serde(default)]
    file: bool,
}

/// Why a variable cannot be stored, if it cannot.
fn invalid(key: &str, new: &NewValue) -> Option<String> {
    let key_ok = !key.is_empty()
        && key.len() <= 255
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !key.starts_with(|c: char| c.is_ascii_digit());
    if !key_ok {
        return Some(format!(
            "invalid variable key '{key}': use letters, digits and '_', not starting with a digit"
        ));
    }
    if new.masked && (new.value.chars().count() < 8 || new.value.contains('\n')) {
        return Some(format!(
            "variable {key} cannot be masked: a masked value needs at least 8 characters on one line"
        ));
    }
    None
}

async fn set(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Path((name, key)): Path<(String, String)>,
    Json(new): Json<NewValue>,
) -> ApiResult<Json<serde_json::Value>> {
    require_admin(&state, &headers)?;
    if let Some(reason) = invalid(&key, &new) {
        return Err(ApiError::BadRequest(reason));
    }
    let project = find_project(&state, &name).await?;
    let scheduler = &state.pipelines.scheduler;
    let (nonce, ciphertext) = scheduler.secrets().seal(new.value.as_bytes());
    let sealed = SealedVariable {
        key: key.clone(),
        nonce,
        ciphertext,
        masked: new.masked,
        protected: new.protected,
        file: new.file,
    };
    scheduler.store().put_variable(project.id, &sealed).await?;
    Ok(Json(json!({
        "key": key, "masked": new.masked, "protected": new.protected, "file": new.file
    })))
}

async fn list(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    require_admin(&state, &headers)?;
    let project = find_project(&state, &name).await?;
    let infos = state
        .pipelines
        .scheduler
        .store()
        .variable_infos(project.id)
        .await?;
    Ok(Json(json!(infos)))
}

async fn remove(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Path((name, key)): Path<(String, String)>,
) -> ApiResult<Json<serde_json::Value>> {
    require_admin(&state, &headers)?;
    let project = find_project(&state, &name).await?;
    if !state
        .pipelines
        .scheduler
        .store()
        .remove_variable(project.id, &key)
        .await?
    {
        return Err(ApiError::NotFound(format!(
            "variable {key} does not exist in {name}"
        )));
    }
    Ok(Json(json!({ "key": key, "removed": true })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(value: &str, masked: bool) -> NewValue {
        NewValue {
            value: value.to_string(),
            masked,
            protected: false,
            file: false,
        }
    }

    #[test]
    fn keys_and_masked_values_are_checked() {
        assert_eq!(invalid("DEPLOY_TOKEN", &value("x", false)), None);
        assert!(invalid("1ABC", &value("x", false)).is_some());
        assert!(invalid("A-B", &value("x", false)).is_some());
        assert!(
            invalid("SHORT", &value("1234567", true))
                .unwrap()
                .contains("at least 8")
        );
        assert!(invalid("LINES", &value("12345678\nabc", true)).is_some());
        assert_eq!(invalid("GOOD", &value("12345678", true)), None);
    }
}
