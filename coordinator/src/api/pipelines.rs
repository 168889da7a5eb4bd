//! Pipelines: start one for a ref (`POST /api/v1/projects/{name}/pipelines`), list them
//! with their stages and durations (`GET /api/v1/pipelines?project=&status=&ref=&before=&limit=`),
//! show one with its
//! stages and every job attempt, wait for one to finish (`…/wait?timeout=`), cancel one,
//! retry its failed jobs (`…/retry`: the one path of the CLI's `pipeline retry` and the
//! UI's "Retry failed jobs").

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
use crate::model::{PipelineId, PipelineStatus, now_ms};
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
        .route("/api/v1/pipelines/{id}/retry", post(retry_pipeline))
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
    let id = start_pipeline(&state.store, &state.scheduler, &state.mirrors, trigger).await?;
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
    let pipelines = state.store.pipelines(&filter).await?;
    let now = now_ms();
    let items = futures::future::try_join_all(pipelines.into_iter().map(|pipeline| async {
        let jobs = state.store.pipeline_jobs(pipeline.id).await?;
        let stages = serde_json::from_str(&pipeline.stages_json)?;
        Ok::<_, StoreError>(PipelineListItem {
            duration_ms: ran_for_ms(&jobs, now),
            pipeline,
            stages,
        })
    }))
    .await?;
    Ok(Json(json!(items)))
}

/// A pipeline of a list: with its stages and how long it ran.
#[derive(Serialize)]
struct PipelineListItem {
    #[serde(flatten)]
    pipeline: Pipeline,
    stages: Vec<String>,
    /// See [`ran_for_ms`]; `None` before any job started.
    duration_ms: Option<i64>,
}

/// How long a pipeline ran, as GitLab counts it: the time its latest job attempts were
/// running (until `now` for those still running), overlaps counted once. A retry adds
/// its own run, not the wait before it.
fn ran_for_ms(jobs: &[Job], now: i64) -> Option<i64> {
    let mut runs: Vec<(i64, i64)> = jobs
        .iter()
        .filter(|job| !job.retried)
        .filter_map(|job| Some((job.started_at?, job.finished_at.unwrap_or(now))))
        .collect();
    runs.sort_unstable();
    let mut total = 0;
    let mut current: Option<(i64, i64)> = None;
    for (start, end) in runs {
        current = match current {
            Some((from, to)) if start <= to => Some((from, to.max(end))),
            Some((from, to)) => {
                total += to - from;
                Some((start, end))
            }
            None => Some((start, end)),
        };
    }
    current.map(|(from, to)| total + to - from)
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

/// Retries each failed (or lost) latest attempt of the pipeline; answers with the jobs
/// retried and their new attempts. A pipeline with none is a conflict, saying its status.
async fn retry_pipeline(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<Json<serde_json::Value>> {
    require_admin(&state, &headers)?;
    let view = pipeline_view(&state, PipelineId(id)).await?;
    let failed: Vec<&Job> = view
        .jobs
        .iter()
        .filter(|job| !job.retried && job.status.is_failure())
        .collect();
    if failed.is_empty() {
        return Err(ApiError::Conflict(format!(
            "pipeline {id} has no failed jobs to retry (it is {})",
            view.pipeline.status
        )));
    }
    let mut retried = Vec::new();
    for job in failed {
        let retry = state.scheduler.retry_job(job.id).await?;
        retried.push(json!({ "id": job.id, "name": job.name, "retry": retry }));
    }
    Ok(Json(json!({ "id": id, "retried": retried })))
}
