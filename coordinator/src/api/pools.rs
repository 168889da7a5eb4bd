//! Runner pools as their autoscalers report them (`esteira autoscale` publishes each
//! pool's desired, current, idle and draining agents and why at every tick):
//!
//! - `PUT /api/v1/pools/{autoscaler}` `{"pools": [{"name": …}, …]}` (admin token) replaces
//!   what that autoscaler reported;
//! - `GET /api/v1/pools`: every reported pool, with its `autoscaler`, `reported_at` and
//!   `age_ms` (a stale age says the autoscaler stopped).
//!
//! Reports live in memory: an autoscaler reports again within a tick of a restart.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{ApiError, ApiResult, ApiState, require_admin};
use crate::model::now_ms;

/// An autoscaler's last report: when it came (ms) and its pools.
type Reported = (i64, Vec<Map<String, Value>>);

/// The last report of each autoscaler, by its id.
#[derive(Clone, Default)]
pub struct PoolReports(Arc<Mutex<BTreeMap<String, Reported>>>);

impl PoolReports {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Reported>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub(super) fn router() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/pools", get(list))
        .route("/api/v1/pools/{autoscaler}", put(report))
}

#[derive(Deserialize)]
struct Report {
    pools: Vec<Map<String, Value>>,
}

async fn report(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(autoscaler): Path<String>,
    Json(report): Json<Report>,
) -> ApiResult<Json<Value>> {
    require_admin(&state, &headers)?;
    if let Some(unnamed) = report
        .pools
        .iter()
        .position(|pool| !pool.get("name").is_some_and(Value::is_string))
    {
        return Err(ApiError::BadRequest(format!(
            "pool {unnamed} of the report has no name"
        )));
    }
    let count = report.pools.len();
    state
        .pool_reports
        .lock()
        .insert(autoscaler, (now_ms(), report.pools));
    Ok(Json(json!({ "pools": count })))
}

async fn list(State(state): State<ApiState>) -> Json<Vec<Value>> {
    let now = now_ms();
    let pools = state
        .pool_reports
        .lock()
        .iter()
        .flat_map(|(autoscaler, (reported_at, pools))| {
            pools.iter().map(move |pool| {
                let mut pool = pool.clone();
                pool.insert("autoscaler".into(), json!(autoscaler));
                pool.insert("reported_at".into(), json!(reported_at));
                pool.insert("age_ms".into(), json!(now - reported_at));
                Value::Object(pool)
            })
        })
        .collect();
    Json(pools)
}
