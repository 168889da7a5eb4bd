//! Health and metrics: `/healthz` (the process answers), `/readyz` (its database answers
//! too) and `/metrics` (Prometheus text: jobs by status, connected agents).

use axum::Router;
use axum::extract::State;
use axum::routing::get;

use super::{ApiResult, HttpState};

pub(super) fn router() -> Router<HttpState> {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
}

async fn ready(State(state): State<HttpState>) -> ApiResult<&'static str> {
    state.pipelines.scheduler.store().ping().await?;
    Ok("ready\n")
}

async fn metrics(State(state): State<HttpState>) -> ApiResult<String> {
    let counts = state.pipelines.scheduler.store().job_counts().await?;
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
