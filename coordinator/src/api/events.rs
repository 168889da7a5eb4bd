//! Server-sent events for the live pages. Each stream subscribes to the coordinator's event
//! bus and re-reads the store when something it watches changed (or when it lagged behind
//! the bus), so what it sends is always the stored truth, never a reconstructed delta.
//!
//! - `GET /api/v1/pipelines/{id}/events`: a `pipeline` event with the pipeline, its stages
//!   and every job attempt (with each job's `needs`, `when` and `allow_failure` taken from
//!   its spec) at once, then again after every change of the pipeline or one of its jobs.
//! - `GET /api/v1/jobs/{id}/log/events?offset=N`: the log from byte `N` (or from the
//!   `Last-Event-ID` a reconnecting browser sends) as `log` events whose data is the
//!   base64 of the bytes and whose id is the offset after them; an `end` event once the
//!   job is finished and every byte was sent.
//! - `GET /api/v1/events`: `pipeline` events (`{"id": N}`) whenever a pipeline or one of
//!   its jobs changes, and `lagged` when the stream missed some: lists refresh on them.
//!
//! Also [`wait_for`], for the answers that wait on the bus (a pipeline's end, a followed
//! log).

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, KeepAliveStream, Sse};
use axum::routing::get;
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::{ApiError, ApiState};
use crate::events::Event;
use crate::model::{JobId, PipelineId};
use crate::store::{Store, StoreError};

/// Log bytes per event: small enough that a live page paints early, large enough that a
/// 20 MiB log is a few hundred events.
const LOG_EVENT_BYTES: usize = 256 * 1024;

pub(super) fn router() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/events", get(changes))
        .route("/api/v1/pipelines/{id}/events", get(pipeline_events))
        .route("/api/v1/jobs/{id}/log/events", get(log_events))
}

type EventStream = Sse<KeepAliveStream<ReceiverStream<Result<SseEvent, Infallible>>>>;

/// Runs `produce` in a task feeding an SSE response; the task ends when the client goes.
fn stream<F, Fut>(produce: F) -> EventStream
where
    F: FnOnce(mpsc::Sender<Result<SseEvent, Infallible>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(produce(tx));
    Sse::new(ReceiverStream::new(rx)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// What a subscriber learns from the bus: something it watches changed, or it lagged.
enum Change {
    Some(Vec<Event>),
    Closed,
}

/// Waits until a batch of events holds one that `concerns` the caller, or events were
/// lost (then the caller must re-read); false when the client or the bus went away.
async fn next_change_of(
    events: &mut broadcast::Receiver<Event>,
    tx: &mpsc::Sender<Result<SseEvent, Infallible>>,
    concerns: impl Fn(Event) -> bool,
) -> bool {
    loop {
        let mut lagged = false;
        match next_changes(events, tx, &mut lagged).await {
            Change::Closed => return false,
            Change::Some(batch) if lagged || batch.iter().any(|event| concerns(*event)) => {
                return true;
            }
            Change::Some(_) => {}
        }
    }
}

/// Waits for the next batch of events (everything already queued after the first one),
/// or for the client to go away.
async fn next_changes(
    events: &mut broadcast::Receiver<Event>,
    tx: &mpsc::Sender<Result<SseEvent, Infallible>>,
    lagged: &mut bool,
) -> Change {
    let first = tokio::select! {
        received = events.recv() => received,
        () = tx.closed() => return Change::Closed,
    };
    let mut batch = Vec::new();
    let mut push =
        |received: Result<Event, broadcast::error::RecvError>, lagged: &mut bool| match received {
            Ok(event) => {
                batch.push(event);
                true
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {
                *lagged = true;
                true
            }
            Err(broadcast::error::RecvError::Closed) => false,
        };
    if !push(first, lagged) {
        return Change::Closed;
    }
    loop {
        match events.try_recv() {
            Ok(event) => batch.push(event),
            Err(broadcast::error::TryRecvError::Lagged(_)) => *lagged = true,
            Err(_) => break,
        }
    }
    Change::Some(batch)
}

/// Waits for an event matching `wanted` (or a lag, after which the caller re-reads);
/// false when the deadline passed.
pub(super) async fn wait_for(
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

/// A pipeline with its stages and jobs, each job with the parts of its spec the graph
/// needs. The shape of `GET /api/v1/pipelines/{id}` plus `needs`, `when`,
/// `allow_failure` and `environment` per job.
async fn pipeline_graph(store: &Store, id: PipelineId) -> Result<Value, ApiError> {
    let pipeline = store
        .pipeline(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("pipeline {id} does not exist")))?;
    let stages: Value = serde_json::from_str(&pipeline.stages_json).map_err(StoreError::from)?;
    let jobs: Vec<Value> = store
        .pipeline_jobs(id)
        .await?
        .into_iter()
        .map(|job| {
            let spec: Value = serde_json::from_str(&job.spec_json).unwrap_or(Value::Null);
            let needs = spec["needs"].as_array().map(|needs| {
                needs
                    .iter()
                    .filter_map(|need| need["job"].as_str().map(str::to_string))
                    .collect::<Vec<_>>()
            });
            let mut value = json!(job);
            value["needs"] = json!(needs);
            value["when"] = spec["when"].clone();
            value["allow_failure"] = json!(spec["allow_failure"] != json!("no"));
            value["environment"] = spec["environment"]["name"].clone();
            value
        })
        .collect();
    let mut value = json!(pipeline);
    value["stages"] = stages;
    value["jobs"] = json!(jobs);
    Ok(value)
}

async fn pipeline_events(
    State(state): State<ApiState>,
    Path(id): Path<i64>,
) -> Result<EventStream, ApiError> {
    let id = PipelineId(id);
    let store = state.store.clone();
    // Subscribe before the first read so no change between the two is missed.
    let mut events = state.events.subscribe();
    let first = pipeline_graph(&store, id).await?;
    Ok(stream(move |tx| async move {
        let mut current = first;
        loop {
            let event = SseEvent::default()
                .event("pipeline")
                .data(current.to_string());
            if tx.send(Ok(event)).await.is_err() {
                return;
            }
            let concerns = |event: Event| match event {
                Event::Pipeline { pipeline } | Event::Job { pipeline, .. } => pipeline == id,
                Event::Log { .. } => false,
            };
            if !next_change_of(&mut events, &tx, concerns).await {
                return;
            }
            match pipeline_graph(&store, id).await {
                Ok(value) if value == current => {}
                Ok(value) => current = value,
                Err(error) => {
                    tracing::warn!(pipeline_id = %id, %error, "pipeline stream re-read failed");
                }
            }
        }
    }))
}

#[derive(Deserialize)]
struct LogQuery {
    #[serde(default)]
    offset: u64,
}

async fn log_events(
    State(state): State<ApiState>,
    Path(id): Path<i64>,
    Query(query): Query<LogQuery>,
    headers: HeaderMap,
) -> Result<EventStream, ApiError> {
    let id = JobId(id);
    let store = state.store.clone();
    store
        .job(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("job {id} does not exist")))?;
    // A reconnecting EventSource names the last offset it got; it wins over the query.
    let resume = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    let mut offset = resume.unwrap_or(query.offset);
    let mut events = state.events.subscribe();
    Ok(stream(move |tx| async move {
        let engine = base64::engine::general_purpose::STANDARD;
        loop {
            // Read the status before the log: a job's log is complete once it is finished,
            // so an empty read after a finished status really is the end.
            let job = match store.job(id).await {
                Ok(Some(job)) => job,
                _ => return,
            };
            let (data, next) = match store.read_log(id, offset, LOG_EVENT_BYTES).await {
                Ok(read) => read,
                Err(error) => {
                    tracing::warn!(job_id = %id, %error, "log stream read failed");
                    return;
                }
            };
            if !data.is_empty() {
                let event = SseEvent::default()
                    .event("log")
                    .id(next.to_string())
                    .data(engine.encode(&data));
                if tx.send(Ok(event)).await.is_err() {
                    return;
                }
                offset = next;
                continue;
            }
            if job.status.is_finished() {
                let end = json!({ "status": job.status, "offset": offset });
                let _ = tx
                    .send(Ok(SseEvent::default().event("end").data(end.to_string())))
                    .await;
                return;
            }
            let concerns = |event: Event| match event {
                Event::Log { job } | Event::Job { job, .. } => job == id,
                Event::Pipeline { .. } => false,
            };
            if !next_change_of(&mut events, &tx, concerns).await {
                return;
            }
        }
    }))
}

/// Pipelines that changed, for the lists (they re-read what they show).
async fn changes(State(state): State<ApiState>) -> EventStream {
    let mut events = state.events.subscribe();
    stream(move |tx| async move {
        loop {
            let mut lagged = false;
            let batch = match next_changes(&mut events, &tx, &mut lagged).await {
                Change::Closed => return,
                Change::Some(batch) => batch,
            };
            if lagged {
                let event = SseEvent::default().event("lagged").data("{}");
                if tx.send(Ok(event)).await.is_err() {
                    return;
                }
            }
            let pipelines: BTreeSet<PipelineId> = batch
                .iter()
                .filter_map(|event| match *event {
                    Event::Pipeline { pipeline } | Event::Job { pipeline, .. } => Some(pipeline),
                    Event::Log { .. } => None,
                })
                .collect();
            for pipeline in pipelines {
                let event = SseEvent::default()
                    .event("pipeline")
                    .data(json!({ "id": pipeline }).to_string());
                if tx.send(Ok(event)).await.is_err() {
                    return;
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use base64::Engine;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::events::Events;
    use crate::git::Mirrors;
    use crate::model::JobStatus;
    use crate::scheduler::{Scheduler, SchedulerConfig};
    use crate::secrets::SecretBox;
    use crate::store::jobs::{Finisher, JobEnding};
    use crate::store::pipelines::{NewJob, NewPipeline};

    /// A coordinator's HTTP side on a free port, with one finished job whose log is `log`.
    async fn serve(dir: &std::path::Path, log: &[u8]) -> (std::net::SocketAddr, JobId) {
        let store = Store::open(&dir.join("db.sqlite").to_string_lossy(), None)
            .await
            .unwrap();
        let project = store
            .insert_project("p", "file:///x", ".gitlab-ci.yml")
            .await
            .unwrap()
            .unwrap();
        let spec = json!({"name": "a", "stage": "test", "when": "on_success", "allow_failure": "no",
                          "needs": [{"job": "b", "artifacts": true, "optional": false}]});
        store
            .insert_pipeline(&NewPipeline {
                id: PipelineId(1),
                project_id: project.id,
                git_ref: "main".into(),
                ref_kind: "branch",
                sha: "0".repeat(40),
                commit_title: None,
                commit_author: None,
                source: "api".into(),
                stages: vec!["test".into()],
                variables: vec![],
                jobs: vec![NewJob {
                    name: "a".into(),
                    stage: "test".into(),
                    stage_index: 0,
                    spec_json: spec.to_string(),
                }],
            })
            .await
            .unwrap();
        let job = store.pipeline_jobs(PipelineId(1)).await.unwrap()[0].id;
        store
            .transition_job(job, &[JobStatus::Created], JobStatus::Pending)
            .await
            .unwrap();
        let agent = store.insert_agent("a", "h", &[], "0").await.unwrap();
        let epoch = store.lease_jobs(&[(job, agent)], i64::MAX).await.unwrap()[0].unwrap();
        let mut offset = 0;
        for chunk in log.chunks(100_000) {
            store
                .append_log(job, agent, epoch, offset, chunk, &[], u64::MAX)
                .await
                .unwrap()
                .unwrap();
            offset += chunk.len() as u64;
        }
        let ending = JobEnding::success();
        assert!(
            store
                .finish_job(job, epoch, &ending, Finisher::Coordinator)
                .await
                .unwrap()
                .is_some()
        );
        let config = SchedulerConfig {
            lease_timeout: Duration::from_secs(10),
            log_limit: u64::MAX,
            server_url: "http://x".into(),
            artifacts: crate::artifacts::ArtifactStore::new(dir.join("artifacts"), u64::MAX),
            max_assignment_bytes: 4 << 20,
            metrics: Default::default(),
        };
        let secrets = SecretBox::load_or_create(&dir.join("secret-key")).unwrap();
        let events = Events::new();
        let scheduler = Scheduler::new(
            store.clone(),
            secrets.clone(),
            events.clone(),
            config.clone(),
        );
        let mirrors = Arc::new(Mirrors::new(dir.join("repos")));
        let state = ApiState::new(
            store,
            scheduler,
            events,
            secrets,
            &config,
            mirrors,
            "t".into(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router().with_state(state)).await });
        (address, job)
    }

    /// The answer to a GET that ends (the server closes the stream); HTTP/1.0, so the
    /// body is not chunked.
    async fn get(address: std::net::SocketAddr, path: &str, headers: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let request = format!("GET {path} HTTP/1.0\r\nHost: x\r\n{headers}\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
            .await
            .unwrap()
            .unwrap();
        String::from_utf8_lossy(&answer).into_owned()
    }

    /// The bytes the `log` events of a (chunked) SSE answer carry, and the last event id.
    fn log_bytes(answer: &str) -> (Vec<u8>, Option<u64>) {
        let engine = base64::engine::general_purpose::STANDARD;
        let mut bytes = Vec::new();
        let mut last = None;
        let mut in_log = false;
        for line in answer.lines() {
            if line == "event: log" {
                in_log = true;
            } else if let Some(id) = line.strip_prefix("id: ") {
                last = id.parse().ok();
            } else if let Some(data) = line.strip_prefix("data: ").filter(|_| in_log) {
                bytes.extend(engine.decode(data).unwrap());
                in_log = false;
            }
        }
        (bytes, last)
    }

    fn sample_log() -> Vec<u8> {
        let mut log = Vec::new();
        for n in 0..40_000u32 {
            log.extend_from_slice(format!("line {n}\r\x1b[32mok\x1b[0m ").as_bytes());
            log.extend_from_slice(&[0xff, b'\n']);
        }
        log
    }

    #[tokio::test]
    async fn the_log_stream_sends_every_byte_then_ends_and_resumes_from_last_event_id() {
        let dir = tempfile::tempdir().unwrap();
        let log = sample_log();
        let (address, job) = serve(dir.path(), &log).await;

        let whole = get(address, &format!("/api/v1/jobs/{job}/log/events"), "").await;
        assert!(
            whole.contains("text/event-stream"),
            "{}",
            &whole[..200.min(whole.len())]
        );
        let (bytes, last) = log_bytes(&whole);
        assert_eq!(bytes, log, "every byte, once, in order");
        assert_eq!(last, Some(log.len() as u64));
        assert!(
            whole.contains("event: end"),
            "the stream ends when the job is finished"
        );

        // A browser reconnecting says where it stopped; that wins over ?offset=.
        let resumed = get(
            address,
            &format!("/api/v1/jobs/{job}/log/events?offset=0"),
            "Last-Event-ID: 123457\r\n",
        )
        .await;
        assert_eq!(log_bytes(&resumed).0, &log[123_457..]);
        let from_query = get(
            address,
            &format!("/api/v1/jobs/{job}/log/events?offset={}", log.len() - 5),
            "",
        )
        .await;
        assert_eq!(log_bytes(&from_query).0, &log[log.len() - 5..]);
    }

    #[tokio::test]
    async fn the_pipeline_stream_starts_with_the_graph_and_each_jobs_needs() {
        let dir = tempfile::tempdir().unwrap();
        let (address, _) = serve(dir.path(), b"x").await;
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        stream
            .write_all(b"GET /api/v1/pipelines/1/events HTTP/1.0\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        // The stream stays open: read until the first event's data line is complete.
        let mut answer = Vec::new();
        let mut buffer = [0u8; 4096];
        let data = loop {
            let read = stream.read(&mut buffer);
            let n = tokio::time::timeout(Duration::from_secs(10), read)
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "the stream closed early");
            answer.extend_from_slice(&buffer[..n]);
            let text = String::from_utf8_lossy(&answer);
            if let Some(start) = text.find("\ndata: ")
                && let Some(end) = text[start + 1..].find('\n')
            {
                break text[start + 7..start + 1 + end].to_string();
            }
        };
        let view: Value = serde_json::from_str(&data).unwrap();
        assert_eq!(view["id"], 1);
        assert_eq!(view["stages"], json!(["test"]));
        assert_eq!(view["jobs"][0]["needs"], json!(["b"]));
        assert_eq!(view["jobs"][0]["allow_failure"], json!(false));
        assert_eq!(view["jobs"][0]["status"], "success");
    }

    #[tokio::test]
    async fn an_unknown_job_or_pipeline_is_404() {
        let dir = tempfile::tempdir().unwrap();
        let (address, _) = serve(dir.path(), b"x").await;
        assert!(
            get(address, "/api/v1/jobs/99/log/events", "")
                .await
                .lines()
                .next()
                .unwrap_or("")
                .contains(" 404 ")
        );
        assert!(
            get(address, "/api/v1/pipelines/99/events", "")
                .await
                .lines()
                .next()
                .unwrap_or("")
                .contains(" 404 ")
        );
    }
}
