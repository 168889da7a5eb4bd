//! The HTTP side: the REST API under `/api/v1/` (JSON), the forges' webhooks, health and
//! metrics, with the web UI ([`crate::ui`]) merged in. One file per resource:
//!
//! - [`projects`], [`pipelines`], [`jobs`], [`variables`] (a project's variables),
//!   [`environments`] (and rollback), [`resource_groups`], [`agents`] (and the queue),
//!   [`pools`] (runner pools as their autoscalers report them);
//! - [`deliveries`]: the webhooks' entry, `/hooks/{forge}/{project}`, and what became of
//!   each delivery;
//! - [`events`]: server-sent events for the live pages, and waiting on the event bus;
//! - [`health`]: `/healthz`, `/readyz` and `/metrics`.
//!
//! This file owns what they share: the state every handler gets ([`ApiState`]), the one
//! mapping of errors to HTTP answers ([`ApiError`]) and the tokens (the admin token for
//! changes, [`read_guard`] for reads). Handlers stay thin: parse, check the token, call the
//! domain (the scheduler's commands, the store's reads, [`crate::deliveries`]), convert
//! the answer.

mod agents;
mod deliveries;
mod environments;
mod events;
mod health;
mod jobs;
mod pipelines;
mod pools;
mod projects;
mod resource_groups;
mod variables;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::json;

use crate::artifacts::{ArtifactError, ArtifactStore};
use crate::deliveries::Deliveries;
use crate::environments::EnvironmentError;
use crate::events::Events;
use crate::git::Mirrors;
use crate::metrics::Metrics;
use crate::scheduler::{Scheduler, SchedulerConfig, SchedulerError};
use crate::secrets::SecretBox;
use crate::store::{Store, StoreError};
use crate::tokens;
use crate::trigger::TriggerError;
use crate::webhooks::Refusal;

/// What the handlers work with, each part shared with the rest of the coordinator (built
/// in [`crate::run`]): reads go to the store, commands to the scheduler, waits to the
/// event bus, and Git events to [`Deliveries`].
#[derive(Clone)]
pub struct ApiState {
    pub store: Store,
    pub scheduler: Arc<Scheduler>,
    pub events: Events,
    /// The projects' mirrors, for pipelines started over the API.
    pub mirrors: Arc<Mirrors>,
    pub deliveries: Deliveries,
    /// Seals project variables as they are set.
    pub secrets: SecretBox,
    pub artifacts: ArtifactStore,
    /// How long agents' leases last: an agent's status follows its heartbeats.
    pub lease_timeout: Duration,
    pub admin_token: Arc<String>,
    pub pool_reports: pools::PoolReports,
    /// The registry `/metrics` serves, holding the scheduler's series of `config`.
    pub metrics: Arc<Metrics>,
}

impl ApiState {
    /// The state over the coordinator's parts: `scheduler` was built on the same `store`,
    /// `events`, `secrets` and `config`.
    pub fn new(
        store: Store,
        scheduler: Arc<Scheduler>,
        events: Events,
        secrets: SecretBox,
        config: &SchedulerConfig,
        mirrors: Arc<Mirrors>,
        admin_token: String,
    ) -> ApiState {
        ApiState {
            deliveries: Deliveries::new(store.clone(), scheduler.clone(), mirrors.clone()),
            store,
            scheduler,
            events,
            mirrors,
            secrets,
            artifacts: config.artifacts.clone(),
            lease_timeout: config.lease_timeout,
            admin_token: Arc::new(admin_token),
            pool_reports: pools::PoolReports::default(),
            metrics: Arc::new(Metrics::new(config.metrics.clone())),
        }
    }
}

/// The app. With `read_token_required`, reads of the API, badges and metrics need the
/// token too (as `Authorization: Bearer` or the UI's `esteira_token` cookie); the page
/// itself stays public so that it can ask for the token.
pub fn router(state: ApiState, read_token_required: bool) -> Router {
    let guard =
        axum::middleware::from_fn_with_state((state.clone(), read_token_required), read_guard);
    let counted = axum::middleware::from_fn_with_state(state.metrics.clone(), Metrics::http_layer);
    Router::new()
        .merge(health::router())
        .merge(projects::router())
        .merge(pipelines::router())
        .merge(jobs::router())
        .merge(variables::router())
        .merge(environments::router())
        .merge(resource_groups::router())
        .merge(agents::router())
        .merge(pools::router())
        .merge(deliveries::router())
        .merge(events::router())
        .merge(crate::ui::router())
        .layer(guard)
        .layer(counted)
        .with_state(state)
}

/// Every way a request can fail, with the HTTP status it gets.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("this action needs the admin token (Authorization: Bearer <token>)")]
    Unauthorized,
    /// A webhook delivery whose signature does not hold.
    #[error("{0}")]
    NotAuthentic(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unprocessable(String),
    /// It existed and was deleted for good (expired artifacts).
    #[error("{0}")]
    Gone(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized | ApiError::NotAuthentic(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Gone(_) => StatusCode::GONE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        crate::metrics::DATABASE_ERRORS.inc();
        ApiError::Internal(error.to_string())
    }
}

impl From<ArtifactError> for ApiError {
    fn from(error: ArtifactError) -> ApiError {
        ApiError::Internal(error.to_string())
    }
}

impl From<SchedulerError> for ApiError {
    fn from(error: SchedulerError) -> ApiError {
        match error {
            SchedulerError::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            SchedulerError::InvalidState(message) => ApiError::Conflict(message),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<TriggerError> for ApiError {
    fn from(error: TriggerError) -> ApiError {
        match error {
            TriggerError::UnknownProject(_) => ApiError::NotFound(error.to_string()),
            TriggerError::Git(_) | TriggerError::Invalid(_) | TriggerError::NoJobs(_) => {
                ApiError::Unprocessable(error.to_string())
            }
            TriggerError::Scheduler(inner) => inner.into(),
        }
    }
}

impl From<EnvironmentError> for ApiError {
    fn from(error: EnvironmentError) -> ApiError {
        match error {
            EnvironmentError::Store(inner) => inner.into(),
            EnvironmentError::Scheduler(inner) => inner.into(),
            unknown => ApiError::NotFound(unknown.to_string()),
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(error: Refusal) -> ApiError {
        match error {
            Refusal::Signature(_) => ApiError::NotAuthentic(error.to_string()),
            Refusal::Body(_) | Refusal::Payload(_) => ApiError::BadRequest(error.to_string()),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

fn require_admin(state: &ApiState, headers: &HeaderMap) -> ApiResult<()> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .ok_or(ApiError::Unauthorized)?;
    if tokens::equal(given, &state.admin_token) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// The token a request carries: its bearer token, else the UI's `esteira_token` cookie.
fn request_token(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    bearer.or_else(|| {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|cookies| cookies.split(';'))
            .find_map(|cookie| cookie.trim().strip_prefix("esteira_token="))
    })
}

/// Refuses reads without the token when the coordinator requires one.
async fn read_guard(
    State((state, required)): State<(ApiState, bool)>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path();
    let guarded = path.starts_with("/api/") || path.starts_with("/badges/") || path == "/metrics";
    let allowed = request_token(request.headers())
        .is_some_and(|token| tokens::equal(token, &state.admin_token));
    if required && guarded && !allowed {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "error": "reading needs a token (Authorization: Bearer <token>)" })),
        )
            .into_response();
    }
    next.run(request).await
}
