//! The agents' gRPC service (`esteira.v1.AgentService`): authenticates, converts between
//! protocol and domain types, and hands every decision to the [`Scheduler`].

use std::sync::Arc;

use esteira_proto::v1::agent_service_server::AgentService;
use esteira_proto::v1::{
    AppendLogRequest, AppendLogResponse, ArtifactChunk, CancelJob, CompleteJobRequest,
    CompleteJobResponse, DeregisterRequest, DeregisterResponse, DownloadArtifactsRequest,
    HeartbeatRequest, HeartbeatResponse, JobAssignment, JobResult, Lease, OpenSessionRequest,
    RegisterRequest, RegisterResponse, ServerMessage, StartJobRequest, StartJobResponse,
    UploadArtifactsResponse, Variable, server_message,
};
use esteira_proto::{AUTHORIZATION, PROTOCOL_VERSION};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::{info, warn};

use crate::artifacts::ArtifactError;
use crate::expiry;
use crate::metrics::{GrpcLabels, Metrics};
use crate::model::{AgentId, JobId, JobStatus, now_ms};
use crate::scheduler::{Assignment, LeaseRef, Removal, Scheduler, SchedulerError, SessionMessage};
use crate::store::jobs::Job;
use crate::store::jobs::JobEnding;
use crate::store::logs::LineStamp;
use crate::store::{Store, StoreError};
use crate::tokens;

pub struct AgentApi {
    scheduler: Arc<Scheduler>,
    /// For the reads that need no decision: a leased job, an artifact's source.
    store: Store,
    registration_token: String,
}

impl AgentApi {
    pub fn new(scheduler: Arc<Scheduler>, store: Store, registration_token: String) -> AgentApi {
        AgentApi {
            scheduler,
            store,
            registration_token,
        }
    }

    /// The agent whose credential the request carries.
    async fn agent<T>(&self, request: &Request<T>) -> Result<AgentId, Status> {
        let token = request
            .metadata()
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or_else(|| Status::unauthenticated("missing agent credential"))?;
        self.scheduler
            .authenticate(token)
            .await?
            .ok_or_else(|| Status::unauthenticated("unknown agent credential"))
    }
}

fn check_version(version: u32) -> Result<(), Status> {
    if version == PROTOCOL_VERSION {
        Ok(())
    } else {
        Err(Status::failed_precondition(format!(
            "protocol version {version} is not supported: this coordinator speaks esteira.v1 \
             protocol version {PROTOCOL_VERSION}"
        )))
    }
}

fn lease_of(lease: Option<Lease>) -> Result<LeaseRef, Status> {
    lease
        .map(lease_ref)
        .ok_or_else(|| Status::invalid_argument("lease is required"))
}

fn lease_ref(lease: Lease) -> LeaseRef {
    LeaseRef {
        job: JobId(lease.job_id),
        epoch: lease.epoch,
    }
}

fn lease_proto(lease: LeaseRef) -> Lease {
    Lease {
        job_id: lease.job.0,
        epoch: lease.epoch,
    }
}

impl From<Assignment> for JobAssignment {
    fn from(assignment: Assignment) -> JobAssignment {
        JobAssignment {
            lease: Some(lease_proto(assignment.lease)),
            pipeline_id: assignment.pipeline.0,
            project: assignment.project,
            repo_url: assignment.repo_url,
            fetch_url: assignment.fetch_url.unwrap_or_default(),
            ssh_key: assignment.ssh_key.unwrap_or_default(),
            sha: assignment.sha,
            git_ref: assignment.git_ref,
            spec_json: assignment.spec_json.to_string(),
            variables: assignment
                .variables
                .into_iter()
                .map(|variable| Variable {
                    key: variable.key,
                    value: variable.value,
                    masked: variable.masked,
                    file: variable.file,
                })
                .collect(),
            heartbeat_interval_secs: assignment.heartbeat_interval_secs,
            artifact_jobs: assignment.artifact_jobs,
        }
    }
}

impl From<SessionMessage> for ServerMessage {
    fn from(message: SessionMessage) -> ServerMessage {
        let kind = match message {
            SessionMessage::Assign(assignment) => {
                server_message::Kind::Assignment((*assignment).into())
            }
            SessionMessage::Cancel(lease) => server_message::Kind::Cancel(CancelJob {
                lease: Some(lease_proto(lease)),
            }),
        };
        ServerMessage { kind: Some(kind) }
    }
}

fn store_status(error: StoreError) -> Status {
    crate::metrics::DATABASE_ERRORS.inc();
    warn!(%error, "store error");
    Status::internal(error.to_string())
}

impl From<SchedulerError> for Status {
    fn from(error: SchedulerError) -> Status {
        match error {
            SchedulerError::Store(error) => store_status(error),
            SchedulerError::NotFound(what) => Status::not_found(format!("{what} not found")),
            fenced @ SchedulerError::Fenced(_) => Status::failed_precondition(fenced.to_string()),
            SchedulerError::InvalidState(message) => Status::aborted(message),
        }
    }
}

type SessionStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<ServerMessage, Status>> + Send>>;
type ArtifactStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<ArtifactChunk, Status>> + Send>>;

/// Bytes per chunk when streaming an archive to an agent.
const ARTIFACT_CHUNK: usize = 1 << 20;

impl AgentApi {
    /// The running job `lease` names, if `agent` holds it under that epoch.
    async fn leased_job(&self, agent: AgentId, lease: &LeaseRef) -> Result<Job, Status> {
        let job = self
            .store
            .job(lease.job)
            .await
            .map_err(store_status)?
            .ok_or_else(|| Status::not_found(format!("job {} not found", lease.job)))?;
        if job.agent_id != Some(agent)
            || job.lease_epoch != lease.epoch
            || job.status != JobStatus::Running
        {
            return Err(SchedulerError::Fenced(job.id).into());
        }
        Ok(job)
    }
}

#[tonic::async_trait]
impl AgentService for AgentApi {
    async fn register(
        &self,
        request: Request<RegisterRequest>,
    ) -> Result<Response<RegisterResponse>, Status> {
        let request = request.into_inner();
        check_version(request.protocol_version)?;
        if !tokens::equal(&request.registration_token, &self.registration_token) {
            return Err(Status::unauthenticated("wrong registration token"));
        }
        if request.name.trim().is_empty() {
            return Err(Status::invalid_argument("an agent needs a name"));
        }
        let registered = self
            .scheduler
            .register_agent(&request.name, &request.labels, &request.version)
            .await?;
        info!(agent_id = %registered.agent, name = %request.name, "agent registered");
        Ok(Response::new(RegisterResponse {
            agent_id: registered.agent.0,
            agent_token: registered.token,
        }))
    }

    type OpenSessionStream = SessionStream;

    async fn open_session(
        &self,
        request: Request<OpenSessionRequest>,
    ) -> Result<Response<SessionStream>, Status> {
        let agent = self.agent(&request).await?;
        let request = request.into_inner();
        check_version(request.protocol_version)?;
        let concurrency = request.concurrency.max(1);
        self.store
            .update_agent_session(agent, &request.labels, concurrency, &request.version)
            .await
            .map_err(store_status)?;
        let (sender, receiver) = mpsc::unbounded_channel();
        let closed = sender.clone();
        let running = request.running.into_iter().map(lease_ref).collect();
        let session = self
            .scheduler
            .connect(agent, request.labels, concurrency, running, sender)
            .await?;
        info!(agent_id = %agent, session, "agent connected");
        let scheduler = self.scheduler.clone();
        tokio::spawn(async move {
            closed.closed().await;
            scheduler.disconnect(agent, session).await;
            info!(agent_id = %agent, session, "agent disconnected");
        });
        let messages = UnboundedReceiverStream::new(receiver).map(|message| Ok(message.into()));
        Ok(Response::new(Box::pin(messages)))
    }

    async fn start_job(
        &self,
        request: Request<StartJobRequest>,
    ) -> Result<Response<StartJobResponse>, Status> {
        let agent = self.agent(&request).await?;
        let lease = lease_of(request.into_inner().lease)?;
        self.scheduler.start_job(agent, lease).await?;
        Ok(Response::new(StartJobResponse {}))
    }

    async fn heartbeat(
        &self,
        request: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        let agent = self.agent(&request).await?;
        let running: Vec<LeaseRef> = request
            .into_inner()
            .running
            .into_iter()
            .map(lease_ref)
            .collect();
        let renewal = self.scheduler.heartbeat(agent, running).await?;
        Ok(Response::new(HeartbeatResponse {
            abandon: renewal.abandon.into_iter().map(lease_proto).collect(),
            cancel: renewal.cancel.into_iter().map(lease_proto).collect(),
        }))
    }

    async fn append_log(
        &self,
        request: Request<AppendLogRequest>,
    ) -> Result<Response<AppendLogResponse>, Status> {
        let agent = self.agent(&request).await?;
        let request = request.into_inner();
        let lease = lease_of(request.lease)?;
        let stamps: Vec<LineStamp> = request
            .stamps
            .iter()
            .map(|stamp| LineStamp {
                offset: stamp.offset,
                at_ms: stamp.at_ms,
            })
            .collect();
        let acknowledged = self
            .scheduler
            .append_log(agent, lease, request.offset, request.data, stamps)
            .await?;
        Ok(Response::new(AppendLogResponse { acknowledged }))
    }

    async fn complete_job(
        &self,
        request: Request<CompleteJobRequest>,
    ) -> Result<Response<CompleteJobResponse>, Status> {
        let agent = self.agent(&request).await?;
        let request = request.into_inner();
        let lease = lease_of(request.lease)?;
        let status = match request.result() {
            JobResult::Success => JobStatus::Success,
            JobResult::Failed => JobStatus::Failed,
            JobResult::Canceled => JobStatus::Canceled,
            JobResult::Unspecified => return Err(Status::invalid_argument("result is required")),
        };
        let non_empty = |text: String| (!text.is_empty()).then_some(text);
        let ending = JobEnding {
            status,
            exit_code: request.exit_code,
            failure_kind: non_empty(request.failure_kind),
            failure_message: non_empty(request.failure_message),
            details_json: non_empty(request.details_json),
        };
        self.scheduler
            .complete(agent, lease, request.log_size, ending)
            .await?;
        Ok(Response::new(CompleteJobResponse {}))
    }

    async fn upload_artifacts(
        &self,
        request: Request<Streaming<ArtifactChunk>>,
    ) -> Result<Response<UploadArtifactsResponse>, Status> {
        let agent = self.agent(&request).await?;
        let mut chunks = request.into_inner();
        let first = chunks
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("an upload needs at least one chunk"))?;
        let lease = lease_of(first.lease)?;
        let job = self.leased_job(agent, &lease).await?;
        let rest = chunks.map(|chunk| chunk.map(|chunk| chunk.data));
        let all = futures::stream::iter([Ok(first.data)]).chain(rest);
        let artifacts = &self.scheduler.config().artifacts;
        let size = artifacts
            .receive(job.id, Box::pin(all))
            .await
            .map_err(|error| match error {
                ArtifactError::TooLarge { .. } => Status::resource_exhausted(error.to_string()),
                other => Status::internal(other.to_string()),
            })?;
        self.leased_job(agent, &lease).await?;
        let expire_at = expiry::expire_at(&job.spec_json, now_ms());
        self.store
            .set_artifacts(job.id, size, expire_at)
            .await
            .map_err(store_status)?;
        Ok(Response::new(UploadArtifactsResponse { size }))
    }

    type DownloadArtifactsStream = ArtifactStream;

    async fn download_artifacts(
        &self,
        request: Request<DownloadArtifactsRequest>,
    ) -> Result<Response<ArtifactStream>, Status> {
        let agent = self.agent(&request).await?;
        let request = request.into_inner();
        let lease = lease_of(request.lease)?;
        let job = self.leased_job(agent, &lease).await?;
        let source = self
            .store
            .job(JobId(request.from_job_id))
            .await
            .map_err(store_status)?
            .filter(|source| source.pipeline_id == job.pipeline_id)
            .ok_or_else(|| {
                Status::not_found(format!(
                    "job {} of this pipeline not found",
                    request.from_job_id
                ))
            })?;
        if source.artifacts_expired {
            return Err(Status::failed_precondition(format!(
                "the artifacts of job {} ({}) expired and were deleted",
                source.id, source.name
            )));
        }
        let file = self
            .scheduler
            .config()
            .artifacts
            .open(source.id)
            .await
            .map_err(|error| Status::internal(error.to_string()))?
            .ok_or_else(|| Status::not_found(format!("job {} has no artifacts", source.id)))?;
        let chunks =
            tokio_util::io::ReaderStream::with_capacity(file, ARTIFACT_CHUNK).map(|read| {
                read.map(|data| ArtifactChunk {
                    lease: None,
                    data: data.to_vec(),
                })
                .map_err(|error| Status::internal(error.to_string()))
            });
        Ok(Response::new(Box::pin(chunks)))
    }

    async fn deregister(
        &self,
        request: Request<DeregisterRequest>,
    ) -> Result<Response<DeregisterResponse>, Status> {
        let agent = self.agent(&request).await?;
        self.scheduler
            .remove_agent(agent, Removal::Deregistered)
            .await?;
        info!(agent_id = %agent, "agent deregistered");
        Ok(Response::new(DeregisterResponse {}))
    }
}

/// Counts the agents' calls by method and code into [`Metrics`]. The code is the one a
/// response starts with: a handler's error (or a refused request) comes as a
/// trailers-only response with `grpc-status` in its headers, so a response without one is
/// a handler's `Ok`; how a stream ends later is not counted.
#[derive(Clone)]
pub struct CallCounter(pub Arc<Metrics>);

impl<S> tower::Layer<S> for CallCounter {
    type Service = CountedService<S>;

    fn layer(&self, inner: S) -> CountedService<S> {
        CountedService {
            inner,
            metrics: self.0.clone(),
        }
    }
}

/// A service whose calls [`CallCounter`] counts.
#[derive(Clone)]
pub struct CountedService<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, B, R> tonic::codegen::Service<tonic::codegen::http::Request<B>> for CountedService<S>
where
    S: tonic::codegen::Service<
            tonic::codegen::http::Request<B>,
            Response = tonic::codegen::http::Response<R>,
        >,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = tonic::codegen::BoxFuture<S::Response, S::Error>;

    fn poll_ready(
        &mut self,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: tonic::codegen::http::Request<B>) -> Self::Future {
        let method = request
            .uri()
            .path()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let metrics = self.metrics.clone();
        let call = self.inner.call(request);
        Box::pin(async move {
            let response = call.await?;
            let code = response
                .headers()
                .get("grpc-status")
                .map_or(tonic::Code::Ok, |value| {
                    tonic::Code::from_bytes(value.as_bytes())
                });
            metrics
                .grpc_calls
                .get_or_create(&GrpcLabels {
                    method,
                    code: format!("{code:?}"),
                })
                .inc();
            Ok(response)
        })
    }
}
