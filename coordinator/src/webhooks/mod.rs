//! Git events from forges: webhooks at `/hooks/{gitlab|github|gitea|forgejo}/{project}`.
//!
//! A delivery goes through, in order: the body size limit (413), the project (404), its
//! authenticity on the raw bytes ([`signature`], 401), the JSON (400), the forge's
//! parser ([`gitlab`], [`github`], [`gitea`] for Gitea and Forgejo) into a [`GitEvent`]
//! or a reason to ignore it, then [`process`]: the delivery is claimed in the store
//! (a redelivery, or another delivery of the same event, stops there) and the pipeline
//! started. Nothing before the claim writes anything. Polling ([`crate::poll`]) hands its
//! ref updates to [`process`] too.

pub mod event;
pub mod gitea;
pub mod github;
pub mod gitlab;
pub mod signature;

use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use esteira_pipeline::PipelineSource;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::http::{ApiResult, HttpState, find_project};
use crate::model::PipelineId;
use crate::store::deliveries::{Claim, NewDelivery};
use crate::store::projects::{Forge, Project};
use crate::trigger::{Pipelines, Trigger, TriggerError, start_pipeline};

pub use event::{EventKind, GitEvent, Parsed};

/// The largest body a delivery may have (GitHub caps its payloads at 25 MB; GitLab's
/// push payloads list at most 20 commits).
pub const BODY_LIMIT: usize = 5 * 1024 * 1024;

pub fn router() -> Router<HttpState> {
    Router::new()
        .route("/hooks/{forge}/{project}", post(receive))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .route("/api/v1/projects/{name}/deliveries", get(list_deliveries))
}

/// A header's trimmed value; empty counts as absent.
pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

/// Which forge sent the delivery, by its headers: Forgejo, then Gitea and Gogs (which
/// also send GitHub's headers), then GitLab, then GitHub.
pub fn detect(headers: &HeaderMap) -> Option<Forge> {
    if header(headers, "x-forgejo-event").is_some() {
        Some(Forge::Forgejo)
    } else if header(headers, "x-gitea-event").is_some()
        || header(headers, "x-gogs-event").is_some()
    {
        Some(Forge::Gitea)
    } else if header(headers, "x-gitlab-event").is_some() {
        Some(Forge::Gitlab)
    } else if header(headers, "x-github-event").is_some() {
        Some(Forge::Github)
    } else {
        None
    }
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

fn refuse(status: StatusCode, message: impl std::fmt::Display) -> Response {
    answer(status, json!({ "error": message.to_string() }))
}

async fn receive(
    State(state): State<HttpState>,
    Path((forge, project)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(path_forge) = Forge::parse(&forge).filter(|f| *f != Forge::Generic) else {
        return refuse(
            StatusCode::NOT_FOUND,
            format!("no webhooks for forge '{forge}'"),
        );
    };
    let store = state.pipelines.scheduler.store();
    let project = match store.project_by_name(&project).await {
        Ok(Some(project)) => project,
        Ok(None) => {
            return refuse(
                StatusCode::NOT_FOUND,
                format!("project '{project}' does not exist"),
            );
        }
        Err(error) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, error),
    };
    // The path names the forge; the headers may say it is a Gitea or Forgejo speaking
    // GitHub's dialect too.
    let forge = match (path_forge, detect(&headers)) {
        (Forge::Gitlab, _) => Forge::Gitlab,
        (_, Some(Forge::Gitlab)) | (_, None) => path_forge,
        (_, Some(detected)) => detected,
    };
    let secret = project.webhook_secret.as_deref();
    if let Err(error) = signature::verify(forge, &headers, &body, secret) {
        warn!(project = %project.name, forge = forge.as_str(), %error, "webhook refused");
        return refuse(StatusCode::UNAUTHORIZED, error);
    }
    let payload = match payload_json(&headers, &body) {
        Ok(payload) => payload,
        Err(error) => return refuse(StatusCode::BAD_REQUEST, error),
    };
    let parsed = match forge {
        Forge::Gitlab => gitlab::parse(&headers, &payload),
        Forge::Gitea | Forge::Forgejo => gitea::parse(&headers, &payload),
        Forge::Github | Forge::Generic => github::parse(&headers, &payload),
    };
    let parsed = match parsed {
        Ok(parsed) => parsed,
        Err(error) => return refuse(StatusCode::BAD_REQUEST, error),
    };
    let delivery_id = match forge {
        Forge::Gitlab => gitlab::delivery_id(&headers),
        Forge::Gitea | Forge::Forgejo => gitea::delivery_id(&headers),
        Forge::Github | Forge::Generic => github::delivery_id(&headers),
    };
    let outcome = process(
        &state.pipelines,
        &project,
        forge.as_str(),
        delivery_id.as_deref(),
        parsed,
    )
    .await;
    outcome.into_response()
}

/// The JSON of a delivery: the body, or its `payload` form field (GitHub and Gitea can
/// send `application/x-www-form-urlencoded`).
fn payload_json(headers: &HeaderMap, body: &[u8]) -> Result<Value, String> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let json = if form {
        form_field(body, "payload").ok_or("the form has no 'payload' field")?
    } else {
        body.to_vec()
    };
    let value: Value =
        serde_json::from_slice(&json).map_err(|e| format!("the body is not valid JSON: {e}"))?;
    if !value.is_object() {
        return Err("the body is not a JSON object".to_string());
    }
    Ok(value)
}

/// A field of an `application/x-www-form-urlencoded` body, decoded.
fn form_field(body: &[u8], name: &str) -> Option<Vec<u8>> {
    body.split(|b| *b == b'&').find_map(|pair| {
        let (key, value) = match pair.iter().position(|b| *b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &[][..]),
        };
        (percent_decode(key) == name.as_bytes()).then(|| percent_decode(value))
    })
}

fn percent_decode(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut index = 0;
    while index < text.len() {
        match text[index] {
            b'+' => out.push(b' '),
            b'%' if index + 2 < text.len() => {
                let hex = std::str::from_utf8(&text[index + 1..index + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        index += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        index += 1;
    }
    out
}

/// How a delivery ended, as the forge is told.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// created | duplicate | ignored | no_pipeline | invalid | error
    pub outcome: &'static str,
    pub pipeline: Option<PipelineId>,
    pub delivery: Option<String>,
    pub event: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip)]
    pub status: u16,
}

impl IntoResponse for Outcome {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK);
        (status, Json(self)).into_response()
    }
}

/// Claims the delivery and starts its pipeline. A redelivery (same delivery id) or
/// another delivery of the same event (same project, kind, ref and commit) starts
/// nothing. A failure that may pass (the repository cannot be fetched, the database)
/// releases the claim and answers 5xx so the forge retries.
pub async fn process(
    pipelines: &Pipelines,
    project: &Project,
    forge: &str,
    delivery_id: Option<&str>,
    parsed: Parsed,
) -> Outcome {
    // One delivery at a time: pipelines are created one at a time anyway (under the
    // scheduler's lock), and concurrent SQLite writers only wait on each other's locks.
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _turn = ONE_AT_A_TIME.lock().await;
    let store = pipelines.scheduler.store();
    let (event_name, event_key, reason) = match &parsed {
        Parsed::Event(event) => (event.name().to_string(), Some(event.key()), None),
        Parsed::Ignored { event, reason } => (event.clone(), None, Some(reason.clone())),
    };
    let mut outcome = Outcome {
        outcome: "ignored",
        pipeline: None,
        delivery: delivery_id.map(str::to_string),
        event: event_name.clone(),
        reason: reason.clone(),
        status: 200,
    };
    let claim = store
        .claim_delivery(&NewDelivery {
            project_id: project.id,
            forge,
            delivery_id,
            event_key: event_key.as_deref(),
            event: &event_name,
            outcome: if event_key.is_some() {
                "processing"
            } else {
                "ignored"
            },
            message: reason.as_deref(),
        })
        .await;
    let claimed = match claim {
        Ok(Claim::New(row)) => row,
        Ok(Claim::Seen(earlier)) => {
            info!(project = %project.name, delivery = delivery_id.unwrap_or("-"), earlier = earlier.id, "duplicate delivery");
            outcome.outcome = "duplicate";
            outcome.pipeline = earlier.pipeline_id;
            outcome.reason = Some(format!(
                "already received as delivery {} ({})",
                earlier.delivery_id.as_deref().unwrap_or("-"),
                earlier.outcome
            ));
            return outcome;
        }
        Err(error) => {
            outcome.outcome = "error";
            outcome.reason = Some(error.to_string());
            outcome.status = 500;
            return outcome;
        }
    };
    let Parsed::Event(event) = parsed else {
        info!(project = %project.name, event = %event_name, reason = reason.as_deref().unwrap_or(""), "delivery ignored");
        return outcome;
    };
    let trigger = trigger_for(project, &event, delivery_id);
    let result = start_pipeline(&pipelines.scheduler, &pipelines.mirrors, trigger).await;
    let (kind, pipeline, message, status) = match result {
        Ok(id) => ("created", Some(id), None, 201),
        Err(error @ (TriggerError::NoJobs(_) | TriggerError::Invalid(_))) => {
            let kind = if matches!(error, TriggerError::NoJobs(_)) {
                "no_pipeline"
            } else {
                "invalid"
            };
            (kind, None, Some(error.to_string()), 200)
        }
        Err(error) => {
            warn!(project = %project.name, %error, "delivery failed; the forge may retry it");
            if let Err(release) = store.release_delivery(claimed.id).await {
                warn!(error = %release, "releasing the delivery failed");
            }
            outcome.outcome = "error";
            outcome.reason = Some(error.to_string());
            outcome.status = if matches!(error, TriggerError::Git(_)) {
                502
            } else {
                500
            };
            return outcome;
        }
    };
    if let Err(error) = store
        .finish_delivery(claimed.id, kind, pipeline, message.as_deref())
        .await
    {
        warn!(%error, "recording the delivery's outcome failed");
    }
    outcome.outcome = kind;
    outcome.pipeline = pipeline;
    outcome.reason = message;
    outcome.status = status;
    outcome
}

/// The pipeline request an event makes.
pub fn trigger_for(project: &Project, event: &GitEvent, delivery_id: Option<&str>) -> Trigger {
    let (source, diff_base) = match (&event.kind, &event.merge_request) {
        (EventKind::MergeRequest, Some((_, target))) => (
            PipelineSource::MergeRequestEvent,
            Some(format!("refs/heads/{target}")),
        ),
        _ => (PipelineSource::Push, event.before.clone()),
    };
    Trigger {
        project: project.name.clone(),
        git_ref: event.git_ref.clone(),
        sha: Some(event.sha.clone()),
        variables: Vec::new(),
        source,
        before_sha: event.before.clone(),
        diff_base,
        changed_files: event.changed_files.clone(),
        event_variables: event.variables.clone(),
        delivery: delivery_id.map(str::to_string),
    }
}

#[derive(Deserialize)]
struct DeliveriesQuery {
    limit: Option<i64>,
}

/// `GET /api/v1/projects/{name}/deliveries`: the latest deliveries and what became of them.
async fn list_deliveries(
    State(state): State<HttpState>,
    Path(name): Path<String>,
    Query(query): Query<DeliveriesQuery>,
) -> ApiResult<Json<Value>> {
    let project = find_project(&state, &name).await?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let rows = state
        .pipelines
        .scheduler
        .store()
        .deliveries(project.id, limit)
        .await?;
    Ok(Json(json!(rows)))
}

#[cfg(test)]
mod tests;
