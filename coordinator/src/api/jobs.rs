//! Jobs: `GET /api/v1/jobs/{id}` (with its spec, details and, while it has not started,
//! what it is `waiting` for), its raw log (`…/log?offset=N&follow=true`), when its lines
//! started (`…/log/stamps?from=N`), its artifacts archive and the files in it
//! (`…/artifacts`, `…/artifacts/files`), and the commands cancel, retry and play.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use super::events::wait_for;
use super::{ApiError, ApiResult, ApiState, require_admin};
use crate::artifacts::Listing;
use crate::events::Event;
use crate::model::JobId;
use crate::store::StoreError;
use crate::store::jobs::Job;
use crate::store::logs::LineStamp;

pub(super) fn router() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/jobs/{id}", get(show_job))
        .route("/api/v1/jobs/{id}/log", get(job_log))
        .route("/api/v1/jobs/{id}/log/stamps", get(job_log_stamps))
        .route("/api/v1/jobs/{id}/artifacts", get(job_artifacts))
        .route("/api/v1/jobs/{id}/artifacts/files", get(job_artifact_files))
        .route("/api/v1/jobs/{id}/cancel", post(cancel_job))
        .route("/api/v1/jobs/{id}/retry", post(retry_job))
        .route("/api/v1/jobs/{id}/play", post(play_job))
}

async fn find_job(state: &ApiState, id: JobId) -> ApiResult<Job> {
    state
        .store
        .job(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("job {id} does not exist")))
}

async fn show_job(
    State(state): State<ApiState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<serde_json::Value>> {
    let job = find_job(&state, JobId(id)).await?;
    let spec: serde_json::Value = serde_json::from_str(&job.spec_json).map_err(StoreError::from)?;
    let details: Option<serde_json::Value> = job
        .details_json
        .as_deref()
        .and_then(|text| serde_json::from_str(text).ok());
    let mut value = json!(job);
    value["spec"] = spec;
    value["details"] = json!(details);
    value["waiting"] = json!(state.scheduler.why_waiting(&job).await?);
    Ok(Json(value))
}

#[derive(Deserialize)]
struct LogQuery {
    #[serde(default)]
    offset: u64,
    #[serde(default)]
    follow: bool,
}

const LOG_PIECE: usize = 1 << 20;

/// The raw log bytes from `offset`; with `follow`, the body stays open and grows with the
/// log until the job finishes.
async fn job_log(
    State(state): State<ApiState>,
    Path(id): Path<i64>,
    Query(query): Query<LogQuery>,
) -> ApiResult<Response> {
    let id = JobId(id);
    find_job(&state, id).await?;
    let store = state.store.clone();
    let events = state.events.subscribe();
    let follow = query.follow;
    let stream = futures::stream::unfold(
        (store, events, query.offset, false),
        move |(store, mut events, offset, done)| async move {
            if done {
                return None;
            }
            loop {
                let (data, next) = match store.read_log(id, offset, LOG_PIECE).await {
                    Ok(read) => read,
                    Err(error) => {
                        let error = std::io::Error::other(error.to_string());
                        return Some((Err(error), (store, events, offset, true)));
                    }
                };
                if !data.is_empty() {
                    return Some((Ok(Bytes::from(data)), (store, events, next, false)));
                }
                let finished = match store.job(id).await {
                    Ok(Some(job)) => job.status.is_finished(),
                    _ => true,
                };
                if !follow || finished {
                    return None;
                }
                let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
                wait_for(&mut events, deadline, |event| {
                    matches!(event, Event::Log { job } | Event::Job { job, .. } if job == id)
                })
                .await;
            }
        },
    );
    let body = Body::from_stream(stream);
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response())
}

#[derive(Deserialize)]
struct StampsQuery {
    #[serde(default)]
    from: u64,
}

/// The most stamps in one answer; the next call asks from after the last one.
const STAMPS_PIECE: usize = 10_000;

/// When the job's lines starting at byte `from` or later started, in offset order (up to
/// [`STAMPS_PIECE`] of them): `[{"offset": N, "at_ms": T}, …]`. Empty for logs of agents
/// that send no stamps.
async fn job_log_stamps(
    State(state): State<ApiState>,
    Path(id): Path<i64>,
    Query(query): Query<StampsQuery>,
) -> ApiResult<Json<Vec<LineStamp>>> {
    let job = find_job(&state, JobId(id)).await?;
    let stamps = state
        .store
        .log_stamps(job.id, query.from, STAMPS_PIECE)
        .await?;
    Ok(Json(stamps))
}

/// The job's artifacts archive (tar.gz), streamed from the data dir; 410 once expired.
async fn job_artifacts(State(state): State<ApiState>, Path(id): Path<i64>) -> ApiResult<Response> {
    let job = find_job(&state, JobId(id)).await?;
    if job.artifacts_expired {
        return Err(ApiError::Gone(format!(
            "the artifacts of job {id} expired (artifacts: expire_in) and were deleted"
        )));
    }
    let file = state
        .artifacts
        .open(job.id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("job {id} has no artifacts")))?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    let disposition = format!("attachment; filename=\"job-{id}-artifacts.tar.gz\"");
    Ok((
        [
            (header::CONTENT_TYPE, "application/gzip".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

/// The files in the job's artifacts archive (path and size), read from the archive itself.
async fn job_artifact_files(
    State(state): State<ApiState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Listing>> {
    let job = find_job(&state, JobId(id)).await?;
    let listing = state
        .artifacts
        .list(job.id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("job {id} has no artifacts")))?;
    Ok(Json(listing))
}

async fn cancel_job(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<Json<serde_json::Value>> {
    require_admin(&state, &headers)?;
    state.scheduler.cancel_job(JobId(id)).await?;
    Ok(Json(json!({ "id": id })))
}

async fn retry_job(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<Json<serde_json::Value>> {
    require_admin(&state, &headers)?;
    let retry = state.scheduler.retry_job(JobId(id)).await?;
    Ok(Json(json!({ "id": retry })))
}

async fn play_job(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<Json<serde_json::Value>> {
    require_admin(&state, &headers)?;
    state.scheduler.play_job(JobId(id)).await?;
    Ok(Json(json!({ "id": id })))
}
