//! Agents and the queue: `GET /api/v1/agents` (each agent with its labels, status and
//! running jobs), `POST /api/v1/agents/{id}/pause` and `/resume`, `DELETE
//! /api/v1/agents/{id}`, and `GET /api/v1/queue` (the pending jobs per required tag set,
//! [`crate::queue`]).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::json;

use super::{ApiError, ApiResult, HttpState, require_admin};
use crate::agent_status::status;
use crate::model::{AgentId, JobId, now_ms};
use crate::queue::{QueueGroup, group};
use crate::store::agents::Agent;

pub(super) fn router() -> Router<HttpState> {
    Router::new()
        .route("/api/v1/agents", get(list_agents))
        .route("/api/v1/agents/{id}", delete(remove_agent))
        .route("/api/v1/agents/{id}/{action}", post(pause_or_resume_agent))
        .route("/api/v1/queue", get(queue))
}

async fn list_agents(State(state): State<HttpState>) -> ApiResult<Json<serde_json::Value>> {
    let scheduler = &state.pipelines.scheduler;
    let connected = scheduler.connected_agents().await;
    let running = scheduler.store().running_jobs().await?;
    let lease_timeout = scheduler.config().lease_timeout;
    let now = now_ms();
    let agents: Vec<serde_json::Value> = scheduler
        .store()
        .agents()
        .await?
        .into_iter()
        .map(|agent| {
            let jobs: Vec<JobId> = running
                .iter()
                .filter(|job| job.agent_id == Some(agent.id))
                .map(|job| job.id)
                .collect();
            let online = connected.contains(&agent.id);
            let status = status(&agent, online, jobs.len(), lease_timeout, now);
            let mut value = json!(agent);
            value["labels"] = json!(agent.labels());
            value["status"] = json!(status);
            value["running_jobs"] = json!(jobs);
            value
        })
        .collect();
    Ok(Json(json!(agents)))
}

/// `POST /api/v1/agents/{id}/pause` and `/resume`.
async fn pause_or_resume_agent(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Path((id, action)): Path<(i64, String)>,
) -> ApiResult<Json<serde_json::Value>> {
    require_admin(&state, &headers)?;
    let paused = match action.as_str() {
        "pause" => true,
        "resume" => false,
        other => return Err(ApiError::NotFound(format!("no agent action '{other}'"))),
    };
    state
        .pipelines
        .scheduler
        .set_paused(AgentId(id), paused)
        .await?;
    Ok(Json(json!({ "id": id, "paused": paused })))
}

async fn remove_agent(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<Json<serde_json::Value>> {
    require_admin(&state, &headers)?;
    state.pipelines.scheduler.remove_agent(AgentId(id)).await?;
    Ok(Json(json!({ "id": id, "removed": true })))
}

async fn queue(State(state): State<HttpState>) -> ApiResult<Json<Vec<QueueGroup>>> {
    let scheduler = &state.pipelines.scheduler;
    let store = scheduler.store();
    let waiting = store.waiting_jobs().await?;
    let connected = scheduler.connected_agents().await;
    let available: Vec<Agent> = store
        .agents()
        .await?
        .into_iter()
        .filter(|agent| !agent.paused && connected.contains(&agent.id))
        .collect();
    Ok(Json(group(&waiting, &available, now_ms())))
}
