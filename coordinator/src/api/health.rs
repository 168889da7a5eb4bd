//! Health and metrics: `/healthz` (the process answers), `/readyz` (its database answers
//! too) and `/metrics` (Prometheus text: jobs by status, connected agents).

use axum::Router;
use axum::extract::State;
use axum::routing::get;

use super::{ApiError, ApiResult, HttpState};
use crate::store::StoreError;

pub(super) fn router() -> Router<HttpState> {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
}

async fn ready(State(state): State<HttpState>) -> ApiResult<&'static str> {
    sqlx::query("SELECT 1")
        .execute(state.pipelines.scheduler.store().pool())
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok("ready\n")
}

async fn metrics(State(state): State<HttpState>) -> ApiResult<String> {
    let counts: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM jobs WHERE retried = 0 GROUP BY status")
            .fetch_all(state.pipelines.scheduler.store().pool())
            .await
            .map_err(StoreError::from)?;
    let mut out = String::from("# HELP esteira_jobs Jobs by status (latest attempts).\n");
    out.push_str("# TYPE esteira_jobs gauge\n");
    for (status, count) in counts {
        out.push_str(&format!("esteira_jobs{{status=\"{status}\"}} {count}\n"));
    }
    let connected = state.pipelines.scheduler.connected_agents().await.len();
    out.push_str("# HELP esteira_agents_connected Agents with an open session.\n");
    out.push_str("# TYPE esteira_agents_connected gauge\n");
    out.push_str(&format!("esteira_agents_connected {connected}\n"));
    Ok(out)
}
