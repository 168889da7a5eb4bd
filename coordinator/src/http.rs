//! The HTTP side: the REST API under `/api/v1/` (JSON), health and metrics. Handlers stay
//! thin: parse, check the token, call the scheduler or the store, convert the answer.
//! Errors become HTTP answers in one place, [`ApiError`].

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use bytes::Bytes;
use esteira_pipeline::PipelineSource;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::broadcast;

use crate::artifacts::Listing;
use crate::events::Event;
use crate::model::{AgentId, JobId, PipelineId, PipelineStatus, now_ms};
use crate::scheduler::{SchedulerError, heartbeat_interval};
use crate::store::StoreError;
use crate::store::jobs::Job;
use crate::store::pipelines::{Pipeline, PipelineFilter};
use crate::store::projects::{Project, ProjectSettings};
use crate::tokens;
use crate::trigger::{Pipelines, Trigger, TriggerError, start_pipeline};

#[derive(Clone)]
pub struct HttpState {
    pub pipelines: Pipelines,
    pub admin_token: Arc<String>,
}

/// The app. With `read_token_required`, reads of the API, badges and metrics need the
/// token too (as `Authorization: Bearer` or the UI's `esteira_token` cookie); the page
/// itself stays public so that it can ask for the token.
pub fn router(state: HttpState, read_token_required: bool) -> Router {
    let guard =
        axum::middleware::from_fn_with_state((state.clone(), read_token_required), read_guard);
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route("/api/v1/projects", get(list_projects).post(add_project))
        .route(
            "/api/v1/projects/{name}",
            get(show_project)
                .put(edit_project)
                .patch(edit_project)
                .delete(remove_project),
        )
        .route("/api/v1/projects/{name}/pipelines", post(run_pipeline))
        .route("/api/v1/pipelines", get(list_pipelines))
        .route("/api/v1/pipelines/{id}", get(show_pipeline))
        .route("/api/v1/pipelines/{id}/wait", get(wait_pipeline))
        .route("/api/v1/pipelines/{id}/cancel", post(cancel_pipeline))
        .route("/api/v1/jobs/{id}", get(show_job))
        .route("/api/v1/jobs/{id}/log", get(job_log))
        .route("/api/v1/jobs/{id}/artifacts", get(job_artifacts))
        .route("/api/v1/jobs/{id}/artifacts/files", get(job_artifact_files))
        .route("/api/v1/jobs/{id}/cancel", post(cancel_job))
        .route("/api/v1/jobs/{id}/retry", post(retry_job))
        .route("/api/v1/jobs/{id}/play", post(play_job))
        .route("/api/v1/agents", get(list_agents))
        .route("/api/v1/agents/{id}", delete(remove_agent))
        .route("/api/v1/agents/{id}/{action}", post(pause_or_resume_agent))
        .merge(crate::ui::router())
        .merge(crate::webhooks::router())
        .merge(crate::project_variables::router())
        .merge(crate::environments::router())
        .merge(crate::resource_groups::router())
        .layer(guard)
        .with_state(state)
}

/// Every way a request can fail, with the HTTP status it gets.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("this action needs the admin token (Authorization: Bearer <token>)")]
    Unauthorized,
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
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
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

pub type ApiResult<T> = Result<T, ApiError>;

pub fn require_admin(state: &HttpState, headers: &HeaderMap) -> ApiResult<()> {
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
    State((state, required)): State<(HttpState, bool)>,
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

#[derive(Deserialize)]
struct NewProject {
    name: String,
    repo_url: String,
    #[serde(flatten)]
    settings: ProjectSettings,
}

fn valid_project_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.')
}

/// Refuses settings that cannot work, before anything is stored.
fn check_settings(settings: &ProjectSettings) -> ApiResult<()> {
    let bad = |message: &str| Err(ApiError::BadRequest(message.to_string()));
    if settings
        .repo_url
        .as_deref()
        .is_some_and(|u| u.trim().is_empty())
    {
        return bad("a project needs a repository URL");
    }
    if settings
        .pipeline_file
        .as_deref()
        .is_some_and(|f| f.trim().is_empty())
    {
        return bad("the pipeline file cannot be empty");
    }
    if settings
        .default_branch
        .as_deref()
        .is_some_and(|b| b.trim().is_empty())
    {
        return bad("the default branch cannot be empty");
    }
    if settings.poll_interval_secs.is_some_and(|s| s < 0) {
        return bad("the poll interval is a number of seconds, 0 to turn polling off");
    }
    if let Some(url) = settings.forge_api_url.as_deref().filter(|u| !u.is_empty())
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return bad("the forge API URL must start with http:// or https://");
    }
    Ok(())
}

async fn add_project(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Json(new): Json<NewProject>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    require_admin(&state, &headers)?;
    if !valid_project_name(&new.name) {
        return Err(ApiError::BadRequest(format!(
            "invalid project name '{}': use letters, digits, '-', '_' and '.'",
            new.name
        )));
    }
    if new.repo_url.trim().is_empty() {
        return Err(ApiError::BadRequest(
            "a project needs a repository URL".into(),
        ));
    }
    check_settings(&new.settings)?;
    let file = new
        .settings
        .pipeline_file
        .as_deref()
        .unwrap_or(".gitlab-ci.yml");
    let store = state.pipelines.scheduler.store();
    let project = store
        .insert_project(&new.name, &new.repo_url, file)
        .await?
        .ok_or_else(|| ApiError::Conflict(format!("project '{}' already exists", new.name)))?;
    let project = store
        .update_project(project.id, &new.settings)
        .await?
        .ok_or_else(|| ApiError::Internal("the new project vanished".into()))?;
    Ok((StatusCode::CREATED, Json(project.view())))
}

async fn list_projects(State(state): State<HttpState>) -> ApiResult<Json<serde_json::Value>> {
    let projects = state.pipelines.scheduler.store().projects().await?;
    Ok(Json(json!(
        projects.iter().map(Project::view).collect::<Vec<_>>()
    )))
}

/// The project named `name`, or 404.
pub async fn find_project(state: &HttpState, name: &str) -> ApiResult<Project> {
    state
        .pipelines
        .scheduler
        .store()
        .project_by_name(name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("project '{name}' does not exist")))
}

async fn show_project(
    State(state): State<HttpState>,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(find_project(&state, &name).await?.view()))
}

/// `PUT`/`PATCH /api/v1/projects/{name}`: changes the settings given, keeps the others.
async fn edit_project(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Json(settings): Json<ProjectSettings>,
) -> ApiResult<Json<serde_json::Value>> {
    require_admin(&state, &headers)?;
    check_settings(&settings)?;
    let project = find_project(&state, &name).await?;
    let project = state
        .pipelines
        .scheduler
        .store()
        .update_project(project.id, &settings)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("project '{name}' does not exist")))?;
    Ok(Json(project.view()))
}

/// `DELETE /api/v1/projects/{name}`: the project stops taking events; its pipelines stay.
async fn remove_project(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    require_admin(&state, &headers)?;
    let project = find_project(&state, &name).await?;
    if !state
        .pipelines
        .scheduler
        .store()
        .remove_project(project.id)
        .await?
    {
        return Err(ApiError::NotFound(format!(
            "project '{name}' does not exist"
        )));
    }
    Ok(Json(json!({ "name": name, "removed": true })))
}

#[derive(Deserialize)]
struct RunPipeline {
    #[serde(rename = "ref")]
    git_ref: String,
    #[serde(default)]
    sha: Option<String>,
    #[serde(default)]
    variables: Vec<(String, String)>,
}

async fn run_pipeline(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Path(project): Path<String>,
    Json(run): Json<RunPipeline>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    require_admin(&state, &headers)?;
    let trigger = Trigger {
        project,
        git_ref: run.git_ref,
        sha: run.sha,
        variables: run.variables,
        source: PipelineSource::Api,
        ..Trigger::default()
    };
    let p = &state.pipelines;
    let id = start_pipeline(&p.scheduler, &p.mirrors, trigger).await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))))
}

#[derive(Deserialize)]
struct ListQuery {
    project: Option<String>,
    status: Option<PipelineStatus>,
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    before: Option<i64>,
    limit: Option<i64>,
}

async fn list_pipelines(
    State(state): State<HttpState>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let filter = PipelineFilter {
        project: query.project,
        status: query.status,
        git_ref: query.git_ref,
        before: query.before.map(PipelineId),
        limit: query.limit.unwrap_or(50).clamp(1, 500),
    };
    Ok(Json(json!(
        state.pipelines.scheduler.store().pipelines(&filter).await?
    )))
}

/// A pipeline with its stages and every job attempt.
#[derive(Serialize)]
struct PipelineView {
    #[serde(flatten)]
    pipeline: Pipeline,
    stages: Vec<String>,
    jobs: Vec<Job>,
}

async fn pipeline_view(state: &HttpState, id: PipelineId) -> ApiResult<PipelineView> {
    let store = state.pipelines.scheduler.store();
    let pipeline = store
        .pipeline(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("pipeline {id} does not exist")))?;
    let stages = serde_json::from_str(&pipeline.stages_json).map_err(StoreError::from)?;
    let jobs = store.pipeline_jobs(id).await?;
    Ok(PipelineView {
        pipeline,
        stages,
        jobs,
    })
}

async fn show_pipeline(
    State(state): State<HttpState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<PipelineView>> {
    Ok(Json(pipeline_view(&state, PipelineId(id)).await?))
}

#[derive(Deserialize)]
struct WaitQuery {
    /// Seconds to wait at most before answering with the current state.
    timeout: Option<u64>,
}

/// Answers the moment the pipeline finishes (or when the timeout passes).
async fn wait_pipeline(
    State(state): State<HttpState>,
    Path(id): Path<i64>,
    Query(query): Query<WaitQuery>,
) -> ApiResult<Json<PipelineView>> {
    let id = PipelineId(id);
    let mut events = state.pipelines.scheduler.events().subscribe();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(query.timeout.unwrap_or(60));
    loop {
        let view = pipeline_view(&state, id).await?;
        if view.pipeline.status.is_finished() {
            return Ok(Json(view));
        }
        let changed = wait_for(&mut events, deadline, |event| {
            event == Event::Pipeline { pipeline: id }
        })
        .await;
        if !changed {
            return Ok(Json(pipeline_view(&state, id).await?));
        }
    }
}

/// Waits for an event matching `wanted` (or a lag, after which the caller re-reads);
/// false when the deadline passed.
async fn wait_for(
    events: &mut broadcast::Receiver<Event>,
    deadline: tokio::time::Instant,
    wanted: impl Fn(Event) -> bool,
) -> bool {
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Err(_) => return false,
            Ok(Ok(event)) if wanted(event) => return true,
            Ok(Ok(_)) => {}
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => return true,
            Ok(Err(broadcast::error::RecvError::Closed)) => return false,
        }
    }
}

async fn cancel_pipeline(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<Json<serde_json::Value>> {
    require_admin(&state, &headers)?;
    state
        .pipelines
        .scheduler
        .cancel_pipeline(PipelineId(id))
        .await?;
    Ok(Json(json!({ "id": id })))
}

async fn find_job(state: &HttpState, id: JobId) -> ApiResult<Job> {
    state
        .pipelines
        .scheduler
        .store()
        .job(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("job {id} does not exist")))
}

async fn show_job(
    State(state): State<HttpState>,
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
    State(state): State<HttpState>,
    Path(id): Path<i64>,
    Query(query): Query<LogQuery>,
) -> ApiResult<Response> {
    let id = JobId(id);
    find_job(&state, id).await?;
    let scheduler = state.pipelines.scheduler.clone();
    let events = scheduler.events().subscribe();
    let follow = query.follow;
    let stream = futures::stream::unfold(
        (scheduler, events, query.offset, false),
        move |(scheduler, mut events, offset, done)| async move {
            if done {
                return None;
            }
            loop {
                let store = scheduler.store();
                let (data, next) = match store.read_log(id, offset, LOG_PIECE).await {
                    Ok(read) => read,
                    Err(error) => {
                        let error = std::io::Error::other(error.to_string());
                        return Some((Err(error), (scheduler, events, offset, true)));
                    }
                };
                if !data.is_empty() {
                    return Some((Ok(Bytes::from(data)), (scheduler, events, next, false)));
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

/// The job's artifacts archive (tar.gz), streamed from the data dir; 410 once expired.
async fn job_artifacts(State(state): State<HttpState>, Path(id): Path<i64>) -> ApiResult<Response> {
    let job = find_job(&state, JobId(id)).await?;
    if job.artifacts_expired {
        return Err(ApiError::Gone(format!(
            "the artifacts of job {id} expired (artifacts: expire_in) and were deleted"
        )));
    }
    let file = state
        .pipelines
        .scheduler
        .config()
        .artifacts
        .open(job.id)
        .await
        .map_err(|error| ApiError::Internal(error.to_string()))?
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
    State(state): State<HttpState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Listing>> {
    let job = find_job(&state, JobId(id)).await?;
    let listing = state
        .pipelines
        .scheduler
        .config()
        .artifacts
        .list(job.id)
        .await
        .map_err(|error| ApiError::Internal(error.to_string()))?
        .ok_or_else(|| ApiError::NotFound(format!("job {id} has no artifacts")))?;
    Ok(Json(listing))
}

async fn cancel_job(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<Json<serde_json::Value>> {
    require_admin(&state, &headers)?;
    state.pipelines.scheduler.cancel_job(JobId(id)).await?;
    Ok(Json(json!({ "id": id })))
}

async fn retry_job(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<Json<serde_json::Value>> {
    require_admin(&state, &headers)?;
    let retry = state.pipelines.scheduler.retry_job(JobId(id)).await?;
    Ok(Json(json!({ "id": retry })))
}

async fn play_job(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<Json<serde_json::Value>> {
    require_admin(&state, &headers)?;
    state.pipelines.scheduler.play_job(JobId(id)).await?;
    Ok(Json(json!({ "id": id })))
}

async fn list_agents(State(state): State<HttpState>) -> ApiResult<Json<serde_json::Value>> {
    let scheduler = &state.pipelines.scheduler;
    let connected = scheduler.connected_agents().await;
    let running = scheduler.store().running_jobs().await?;
    let heartbeat_window = 2_000 * i64::from(heartbeat_interval(scheduler.config().lease_timeout));
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
            // An agent told to stop closes its session but heartbeats until its jobs end.
            let heartbeating = agent
                .last_contact_at
                .is_some_and(|at| now - at <= heartbeat_window);
            let status = match (online, agent.paused, jobs.is_empty()) {
                (false, _, false) if heartbeating => "draining",
                (false, _, _) => "offline",
                (true, true, _) => "paused",
                (true, false, true) => "idle",
                (true, false, false) => "busy",
            };
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
