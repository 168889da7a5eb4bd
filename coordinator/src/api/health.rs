//! Health and metrics: `/healthz` (the process answers), `/readyz` (its database answers
//! too) and `/metrics` (Prometheus text: jobs by status, connected agents, runner pools).

use axum::Router;
use axum::extract::State;
use axum::routing::get;

use super::{ApiResult, ApiState};

pub(super) fn router() -> Router<ApiState> {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
}

async fn ready(State(state): State<ApiState>) -> ApiResult<&'static str> {
    state.store.ping().await?;
    Ok("ready\n")
}

async fn metrics(State(state): State<ApiState>) -> ApiResult<String> {
    let counts = state.store.job_counts().await?;
    let mut out = String::from("# HELP esteira_jobs Jobs by status (latest attempts).\n");
    out.push_str("# TYPE esteira_jobs gauge\n");
    for (status, count) in counts {
        out.push_str(&format!("esteira_jobs{{status=\"{status}\"}} {count}\n"));
    }
    let connected = state.scheduler.connected_agents().await.len();
    out.push_str("# HELP esteira_agents_connected Agents with an open session.\n");
    out.push_str("# TYPE esteira_agents_connected gauge\n");
    out.push_str(&format!("esteira_agents_connected {connected}\n"));
    out.push_str(&super::pools::metrics(&state.pool_reports));
    Ok(out)
}
