//! Health and metrics: `/healthz` (the process answers), `/readyz` (its database answers
//! too) and `/metrics` (Prometheus text, [`crate::metrics`], and the runner pools'
//! gauges as their autoscalers last reported them).

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use super::{ApiResult, ApiState};
use crate::agent_status::status;
use crate::metrics::Snapshot;
use crate::model::now_ms;
use crate::queue::group;

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

/// Reads the state series (jobs, queue, agents) and renders every series.
async fn metrics(State(state): State<ApiState>) -> ApiResult<impl IntoResponse> {
    let job_counts = state.store.job_counts().await?;
    let connected = state.scheduler.connected_agents().await;
    let agents = state.store.agents().await?;
    let running = state.store.running_jobs().await?;
    let waiting = state.store.waiting_jobs().await?;
    let now = now_ms();
    let agent_states = agents
        .iter()
        .map(|agent| {
            let online = connected.contains(&agent.id);
            let jobs = running
                .iter()
                .filter(|job| job.agent_id == Some(agent.id))
                .count();
            status(agent, online, jobs, state.lease_timeout, now).as_str()
        })
        .collect();
    let available: Vec<_> = agents
        .into_iter()
        .filter(|agent| !agent.paused && connected.contains(&agent.id))
        .collect();
    let queue = group(&waiting, &available, now)
        .into_iter()
        .map(|group| {
            let wait = std::time::Duration::from_millis(group.longest_wait_ms.max(0) as u64);
            (group.tags, group.pending, wait)
        })
        .collect();
    let snapshot = Snapshot {
        job_counts,
        queue,
        agents_connected: connected.len(),
        agent_states,
    };
    let mut out = state.metrics.render(snapshot);
    // The pools' gauges go before the exposition's end marker.
    let end = out.rfind("# EOF").unwrap_or(out.len());
    out.insert_str(end, &super::pools::metrics(&state.pool_reports));
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        out,
    ))
}
