//! Agents and the queue: `GET /api/v1/agents` (each agent with its labels, status and
//! running jobs), `POST /api/v1/agents/{id}/pause` and `/resume`, `DELETE
//! /api/v1/agents/{id}`, and `GET /api/v1/queue` (the pending jobs per required tag set,
//! [`crate::queue`]).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::json;

use super::{ApiError, ApiResult, ApiState, require_admin};
use crate::agent_status::status;
use crate::model::{AgentId, JobId, now_ms};
use crate::queue::{QueueGroup, group};
use crate::scheduler::Removal;
use crate::store::agents::Agent;

pub(super) fn router() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/agents", get(list_agents))
        .route("/api/v1/agents/{id}", delete(remove_agent))
        .route("/api/v1/agents/{id}/{action}", post(pause_or_resume_agent))
        .route("/api/v1/queue", get(queue))
}

async fn list_agents(State(state): State<ApiState>) -> ApiResult<Json<serde_json::Value>> {
    let connected = state.scheduler.connected_agents().await;
    let running = state.store.running_jobs().await?;
    let now = now_ms();
    let agents: Vec<serde_json::Value> = state
        .store
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
            let status = status(&agent, online, jobs.len(), state.lease_timeout, now);
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
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path((id, action)): Path<(i64, String)>,
) -> ApiResult<Json<serde_json::Value>> {
    require_admin(&state, &headers)?;
    let paused = match action.as_str() {
        "pause" => true,
        "resume" => false,
        other => return Err(ApiError::NotFound(format!("no agent action '{other}'"))),
    };
    state.scheduler.set_paused(AgentId(id), paused).await?;
    Ok(Json(json!({ "id": id, "paused": paused })))
}

async fn remove_agent(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<Json<serde_json::Value>> {
    require_admin(&state, &headers)?;
    state
        .scheduler
        .remove_agent(AgentId(id), Removal::Admin)
        .await?;
    Ok(Json(json!({ "id": id, "removed": true })))
}

async fn queue(State(state): State<ApiState>) -> ApiResult<Json<Vec<QueueGroup>>> {
    let waiting = state.store.waiting_jobs().await?;
    let connected = state.scheduler.connected_agents().await;
    let available: Vec<Agent> = state
        .store
        .agents()
        .await?
        .into_iter()
        .filter(|agent| !agent.paused && connected.contains(&agent.id))
        .collect();
    Ok(Json(group(&waiting, &available, now_ms())))
}
