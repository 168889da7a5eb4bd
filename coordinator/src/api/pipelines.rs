//! Pipelines: start one for a ref (`POST /api/v1/projects/{name}/pipelines`), list them
//! (`GET /api/v1/pipelines?project=&status=&ref=&before=&limit=`), show one with its
//! stages and every job attempt, wait for one to finish (`…/wait?timeout=`), cancel one.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use esteira_pipeline::PipelineSource;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::events::wait_for;
use super::{ApiError, ApiResult, ApiState, require_admin};
use crate::events::Event;
use crate::model::{PipelineId, PipelineStatus};
use crate::store::StoreError;
use crate::store::jobs::Job;
use crate::store::pipelines::{Pipeline, PipelineFilter};
use crate::trigger::{Trigger, start_pipeline};

pub(super) fn router() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/projects/{name}/pipelines", post(run_pipeline))
        .route("/api/v1/pipelines", get(list_pipelines))
        .route("/api/v1/pipelines/{id}", get(show_pipeline))
        .route("/api/v1/pipelines/{id}/wait", get(wait_pipeline))
        .route("/api/v1/pipelines/{id}/cancel", post(cancel_pipeline))
}

#[derive(Deserialize)]
struct RunPipeline {
    #[serde(rename = "ref")]
    git_ref: String,
    #[serde(default)]
    sha: Option<String>,
    #[serde(default)]
    variables: Vec<(String, String)>,
}

async fn run_pipeline(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(project): Path<String>,
    Json(run): Json<RunPipeline>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    require_admin(&state, &headers)?;
    let trigger = Trigger {
        project,
        git_ref: run.git_ref,
        sha: run.sha,
        variables: run.variables,
        source: PipelineSource::Api,
        ..Trigger::default()
    };
    let id = start_pipeline(&state.scheduler, &state.mirrors, trigger).await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))))
}

#[derive(Deserialize)]
struct ListQuery {
    project: Option<String>,
    status: Option<PipelineStatus>,
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    before: Option<i64>,
    limit: Option<i64>,
}

async fn list_pipelines(
    State(state): State<ApiState>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let filter = PipelineFilter {
        project: query.project,
        status: query.status,
        git_ref: query.git_ref,
        before: query.before.map(PipelineId),
        limit: query.limit.unwrap_or(50).clamp(1, 500),
    };
    Ok(Json(json!(state.store.pipelines(&filter).await?)))
}

/// A pipeline with its stages and every job attempt.
#[derive(Serialize)]
struct PipelineView {
    #[serde(flatten)]
    pipeline: Pipeline,
    stages: Vec<String>,
    jobs: Vec<Job>,
}

async fn pipeline_view(state: &ApiState, id: PipelineId) -> ApiResult<PipelineView> {
    let store = &state.store;
    let pipeline = store
        .pipeline(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("pipeline {id} does not exist")))?;
    let stages = serde_json::from_str(&pipeline.stages_json).map_err(StoreError::from)?;
    let jobs = store.pipeline_jobs(id).await?;
    Ok(PipelineView {
        pipeline,
        stages,
        jobs,
    })
}

async fn show_pipeline(
    State(state): State<ApiState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<PipelineView>> {
    Ok(Json(pipeline_view(&state, PipelineId(id)).await?))
}

#[derive(Deserialize)]
struct WaitQuery {
    /// Seconds to wait at most before answering with the current state.
    timeout: Option<u64>,
}

/// Answers the moment the pipeline finishes (or when the timeout passes).
async fn wait_pipeline(
    State(state): State<ApiState>,
    Path(id): Path<i64>,
    Query(query): Query<WaitQuery>,
) -> ApiResult<Json<PipelineView>> {
    let id = PipelineId(id);
    let mut events = state.events.subscribe();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(query.timeout.unwrap_or(60));
    loop {
        let view = pipeline_view(&state, id).await?;
        if view.pipeline.status.is_finished() {
            return Ok(Json(view));
        }
        let changed = wait_for(&mut events, deadline, |event| {
            event == Event::Pipeline { pipeline: id }
        })
        .await;
        if !changed {
            return Ok(Json(pipeline_view(&state, id).await?));
        }
    }
}

async fn cancel_pipeline(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<Json<serde_json::Value>> {
    require_admin(&state, &headers)?;
    state.scheduler.cancel_pipeline(PipelineId(id)).await?;
    Ok(Json(json!({ "id": id })))
}
