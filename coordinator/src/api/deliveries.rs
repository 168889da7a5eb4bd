//! The forges' webhooks and what became of their deliveries:
//!
//! - `POST /hooks/{gitlab|github|gitea|forgejo}/{project}`: the body size limit (413), the
//!   project (404), then [`webhooks::read`] (its signature 401, its JSON 400) and
//!   [`Deliveries::process`](crate::deliveries::Deliveries::process), whose [`Outcome`] is
//!   the answer;
//! - `GET /api/v1/projects/{name}/deliveries?limit=N`: the latest deliveries.

use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::projects::find_project;
use super::{ApiError, ApiResult, ApiState};
use crate::deliveries::Outcome;
use crate::store::projects::Forge;
use crate::webhooks::{self, BODY_LIMIT};

pub(super) fn router() -> Router<ApiState> {
    Router::new()
        .route("/hooks/{forge}/{project}", post(receive))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .route("/api/v1/projects/{name}/deliveries", get(list_deliveries))
}

impl IntoResponse for Outcome {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK);
        (status, Json(self)).into_response()
    }
}

async fn receive(
    State(state): State<ApiState>,
    Path((forge, project)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Outcome> {
    let path_forge = Forge::parse(&forge)
        .filter(|f| *f != Forge::Generic)
        .ok_or_else(|| ApiError::NotFound(format!("no webhooks for forge '{forge}'")))?;
    let project = find_project(&state, &project).await?;
    let delivery = webhooks::read(path_forge, &project, &headers, &body)?;
    let outcome = state.deliveries.process(
        &project,
        delivery.forge.as_str(),
        delivery.id.as_deref(),
        delivery.parsed,
    );
    let outcome = outcome.await;
    state
        .metrics
        .webhook_delivered(delivery.forge.as_str(), outcome.outcome);
    Ok(outcome)
}

#[derive(Deserialize)]
struct DeliveriesQuery {
    limit: Option<i64>,
}

async fn list_deliveries(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    Query(query): Query<DeliveriesQuery>,
) -> ApiResult<Json<Value>> {
    let project = find_project(&state, &name).await?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let rows = state.store.deliveries(project.id, limit).await?;
    Ok(Json(json!(rows)))
}
