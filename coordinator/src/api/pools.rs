//! Runner pools as their autoscalers report them (`esteira autoscale` publishes each
//! pool's desired, current, idle and draining agents and why at every tick):
//!
//! - `PUT /api/v1/pools/{autoscaler}` `{"pools": [{"name": …}, …]}` (admin token) replaces
//!   what that autoscaler reported;
//! - `GET /api/v1/pools`: every reported pool, with its `autoscaler`, `reported_at` and
//!   `age_ms` (a stale age says the autoscaler stopped);
//! - in `/metrics` ([`metrics`]): `esteira_pool_agents{autoscaler, pool, state}` (state
//!   `desired`, `current`, `starting`, `idle`, `busy`, `draining`),
//!   `esteira_pool_pending_jobs` and `esteira_pool_oldest_wait_seconds`.
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

/// The reported pools as Prometheus text.
pub(super) fn metrics(reports: &PoolReports) -> String {
    let mut agents = String::from(
        "# HELP esteira_pool_agents A runner pool's agents by state, as its autoscaler reports them.\n\
         # TYPE esteira_pool_agents gauge\n",
    );
    let mut pending = String::from(
        "# HELP esteira_pool_pending_jobs Jobs waiting for a runner pool's labels.\n\
         # TYPE esteira_pool_pending_jobs gauge\n",
    );
    let mut oldest = String::from(
        "# HELP esteira_pool_oldest_wait_seconds How long the oldest of them waits.\n\
         # TYPE esteira_pool_oldest_wait_seconds gauge\n",
    );
    for (autoscaler, (_, pools)) in reports.lock().iter() {
        for pool in pools {
            let name = pool.get("name").and_then(Value::as_str).unwrap_or_default();
            let labels = format!(
                "autoscaler=\"{}\",pool=\"{}\"",
                escape(autoscaler),
                escape(name)
            );
            let number = |key: &str| pool.get(key).and_then(Value::as_f64).unwrap_or(0.0);
            for state in ["desired", "current", "starting", "idle", "busy", "draining"] {
                agents.push_str(&format!(
                    "esteira_pool_agents{{{labels},state=\"{state}\"}} {}\n",
                    number(state)
                ));
            }
            pending.push_str(&format!(
                "esteira_pool_pending_jobs{{{labels}}} {}\n",
                number("pending")
            ));
            oldest.push_str(&format!(
                "esteira_pool_oldest_wait_seconds{{{labels}}} {}\n",
                number("oldest_wait_ms") / 1000.0
            ));
        }
    }
    agents + &pending + &oldest
}

/// A Prometheus label value.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reported_pools_become_gauges_with_escaped_labels() {
        let reports = PoolReports::default();
        let pool = json!({"name": "burst", "desired": 3, "current": 2, "idle": 1,
                          "pending": 7, "oldest_wait_ms": 1500});
        let Value::Object(pool) = pool else {
            unreachable!()
        };
        reports.lock().insert("as\"1".to_string(), (0, vec![pool]));
        let text = metrics(&reports);
        for line in [
            "esteira_pool_agents{autoscaler=\"as\\\"1\",pool=\"burst\",state=\"desired\"} 3\n",
            "esteira_pool_agents{autoscaler=\"as\\\"1\",pool=\"burst\",state=\"draining\"} 0\n",
            "esteira_pool_pending_jobs{autoscaler=\"as\\\"1\",pool=\"burst\"} 7\n",
            "esteira_pool_oldest_wait_seconds{autoscaler=\"as\\\"1\",pool=\"burst\"} 1.5\n",
        ] {
            assert!(text.contains(line), "{line:?} not in\n{text}");
        }
    }
}
