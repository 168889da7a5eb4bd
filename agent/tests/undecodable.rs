//! A session message the agent cannot decode (over `MAX_MESSAGE_BYTES`, issue 17 item 3):
//! against a fake coordinator that sends one on each of the first sessions, the agent
//! reconnects with waits that double, never in a hot loop, and takes the next job once
//! a session carries one it can read. Real agent code and real gRPC on loopback; Docker
//! is only listed (the agent's start-up sweep), no container runs.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use esteira_agent::Config;
use esteira_proto::MAX_MESSAGE_BYTES;
use esteira_proto::v1::agent_service_server::{AgentService, AgentServiceServer};
use esteira_proto::v1::{
    AppendLogRequest, AppendLogResponse, ArtifactChunk, CompleteJobRequest, CompleteJobResponse,
    DeregisterRequest, DeregisterResponse, DownloadArtifactsRequest, HeartbeatRequest,
    HeartbeatResponse, JobAssignment, Lease, OpenSessionRequest, RegisterRequest, RegisterResponse,
    ServerMessage, StartJobRequest, StartJobResponse, UploadArtifactsResponse, server_message,
};
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};

/// Sessions that carry an undecodable assignment before one that carries a readable one.
const UNDECODABLE_SESSIONS: usize = 4;

type Messages = Pin<Box<dyn Stream<Item = Result<ServerMessage, Status>> + Send>>;

struct Fake {
    opened: Arc<Mutex<Vec<Instant>>>,
    completed: mpsc::UnboundedSender<CompleteJobRequest>,
}

fn assignment(job_id: i64, spec_json: String) -> ServerMessage {
    ServerMessage {
        kind: Some(server_message::Kind::Assignment(JobAssignment {
            lease: Some(Lease { job_id, epoch: 1 }),
            project: "undecodable".to_string(),
            spec_json,
            heartbeat_interval_secs: 5,
            ..JobAssignment::default()
        })),
    }
}

#[tonic::async_trait]
impl AgentService for Fake {
    async fn register(
        &self,
        _: Request<RegisterRequest>,
    ) -> Result<Response<RegisterResponse>, Status> {
        Ok(Response::new(RegisterResponse {
            agent_id: 1,
            agent_token: "agent-token".to_string(),
        }))
    }

    type OpenSessionStream = Messages;

    async fn open_session(
        &self,
        _: Request<OpenSessionRequest>,
    ) -> Result<Response<Messages>, Status> {
        let session = {
            let mut opened = self.opened.lock().expect("sessions");
            opened.push(Instant::now());
            opened.len()
        };
        let message = if session <= UNDECODABLE_SESSIONS {
            assignment(1, "x".repeat(MAX_MESSAGE_BYTES + 1))
        } else {
            // Readable, but no job: the agent reports it failed, with the reason.
            assignment(2, "not a job".to_string())
        };
        let stream = futures::stream::iter([Ok(message)]).chain(futures::stream::pending());
        Ok(Response::new(Box::pin(stream)))
    }

    async fn start_job(
        &self,
        _: Request<StartJobRequest>,
    ) -> Result<Response<StartJobResponse>, Status> {
        Ok(Response::new(StartJobResponse {}))
    }

    async fn heartbeat(
        &self,
        _: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        Ok(Response::new(HeartbeatResponse::default()))
    }

    async fn append_log(
        &self,
        request: Request<AppendLogRequest>,
    ) -> Result<Response<AppendLogResponse>, Status> {
        let request = request.into_inner();
        Ok(Response::new(AppendLogResponse {
            acknowledged: request.offset + request.data.len() as u64,
        }))
    }

    async fn complete_job(
        &self,
        request: Request<CompleteJobRequest>,
    ) -> Result<Response<CompleteJobResponse>, Status> {
        let _ = self.completed.send(request.into_inner());
        Ok(Response::new(CompleteJobResponse {}))
    }

    async fn deregister(
        &self,
        _: Request<DeregisterRequest>,
    ) -> Result<Response<DeregisterResponse>, Status> {
        Ok(Response::new(DeregisterResponse {}))
    }

    async fn upload_artifacts(
        &self,
        _: Request<Streaming<ArtifactChunk>>,
    ) -> Result<Response<UploadArtifactsResponse>, Status> {
        Err(Status::unimplemented("no artifacts here"))
    }

    type DownloadArtifactsStream =
        Pin<Box<dyn Stream<Item = Result<ArtifactChunk, Status>> + Send>>;

    async fn download_artifacts(
        &self,
        _: Request<DownloadArtifactsRequest>,
    ) -> Result<Response<Self::DownloadArtifactsStream>, Status> {
        Err(Status::unimplemented("no artifacts here"))
    }
}

#[tokio::test]
async fn undecodable_session_messages_make_the_agent_back_off_and_it_takes_the_next_job() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let address = listener.local_addr().expect("the address");
    let opened = Arc::new(Mutex::new(Vec::new()));
    let (completed, mut completions) = mpsc::unbounded_channel();
    let fake = Fake {
        opened: opened.clone(),
        completed,
    };
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(AgentServiceServer::new(fake))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let work_dir = tempfile::tempdir().expect("temp dir");
    let config = Config {
        coordinator: format!("http://{address}"),
        registration_token: Some("registration".to_string()),
        name: format!("undecodable-{}", std::process::id()),
        labels: Vec::new(),
        concurrency: 1,
        work_dir: work_dir.path().to_path_buf(),
        ca_cert: None,
        default_image: "esteira-test/busybox:latest".to_string(),
        allow_docker_socket: false,
        network_per_job: false,
        max_timeout: None,
        max_jobs: None,
        idle_exit: None,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(esteira_agent::run(config, async {
        let _ = stopped.await;
    }));

    let completion = tokio::time::timeout(Duration::from_secs(60), completions.recv())
        .await
        .expect("the readable job to be reported within a minute")
        .expect("a completion");
    assert_eq!(completion.lease.map(|lease| lease.job_id), Some(2));
    assert!(
        completion
            .failure_message
            .contains("the job's specification is invalid"),
        "{completion:?}"
    );

    let opened = opened.lock().expect("sessions").clone();
    assert_eq!(
        opened.len(),
        UNDECODABLE_SESSIONS + 1,
        "one session per undecodable message, then the one that stays"
    );
    // Each wait is at least half its step, and steps double from 200 ms: 100, 200, 400,
    // 800 ms at the least (the old policy waited 200 ms after every one).
    for (n, pair) in opened.windows(2).enumerate() {
        let gap = pair[1] - pair[0];
        let least = Duration::from_millis(100 << n);
        assert!(
            gap >= least,
            "wait {n} after an undecodable message: {gap:?}, less than {least:?}"
        );
    }

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(30), agent)
        .await
        .expect("the agent to stop")
        .expect("the agent task")
        .expect("the agent's run");
}
