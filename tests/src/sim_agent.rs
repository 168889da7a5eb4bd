//! A simulated agent: the real protocol over gRPC from this process, no Docker. It
//! registers, opens a session and makes each agent call on demand, so a benchmark can
//! complete jobs at once and a test can cut a call in the middle.

use std::time::Duration;

use esteira_proto::v1::agent_service_client::AgentServiceClient;
use esteira_proto::v1::{
    AppendLogRequest, CompleteJobRequest, JobAssignment, JobResult, Lease, OpenSessionRequest,
    RegisterRequest, StartJobRequest, server_message,
};
use esteira_proto::{AUTHORIZATION, PROTOCOL_VERSION};
use tonic::transport::Channel;
use tonic::{Request, Status, Streaming};

use esteira_proto::v1::ServerMessage;

/// A registered agent's client and credential.
#[derive(Clone)]
pub struct SimAgent {
    client: AgentServiceClient<Channel>,
    token: String,
    /// Each call is given this deadline (`grpc-timeout`), if any.
    deadline: Option<Duration>,
}

impl SimAgent {
    /// Registers an agent named `name` with `labels` through `channel`.
    pub async fn register(
        channel: Channel,
        registration_token: &str,
        name: &str,
        labels: &[&str],
    ) -> SimAgent {
        let mut client = AgentServiceClient::new(channel);
        let registered = client
            .register(RegisterRequest {
                protocol_version: PROTOCOL_VERSION,
                registration_token: registration_token.to_string(),
                name: name.to_string(),
                labels: labels.iter().map(|label| label.to_string()).collect(),
                version: "simulated".into(),
            })
            .await
            .expect("register")
            .into_inner();
        SimAgent {
            client,
            token: registered.agent_token,
            deadline: None,
        }
    }

    /// The same agent, each of its calls given `deadline` (`grpc-timeout`): the coordinator
    /// drops a call that outlasts it, wherever the call is.
    pub fn with_deadline(&self, deadline: Duration) -> SimAgent {
        SimAgent {
            deadline: Some(deadline),
            ..self.clone()
        }
    }

    fn authorized<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        let value = format!("Bearer {}", self.token)
            .parse()
            .expect("token header");
        request.metadata_mut().insert(AUTHORIZATION, value);
        if let Some(deadline) = self.deadline {
            // Only the coordinator enforces it: the whole call reaches it first.
            let micros = format!("{}u", deadline.as_micros().max(1));
            let value = micros.parse().expect("grpc-timeout header");
            request.metadata_mut().insert("grpc-timeout", value);
        }
        request
    }

    /// Opens the session with `slots` slots and `labels`.
    pub async fn open_session(&self, slots: u32, labels: &[&str]) -> Session {
        let open = OpenSessionRequest {
            protocol_version: PROTOCOL_VERSION,
            concurrency: slots,
            labels: labels.iter().map(|label| label.to_string()).collect(),
            version: "simulated".into(),
            running: vec![],
        };
        let stream = self
            .client
            .clone()
            .open_session(self.authorized(open))
            .await
            .expect("session")
            .into_inner();
        Session(stream)
    }

    pub async fn start(&self, lease: Option<Lease>) -> Result<(), Status> {
        let request = self.authorized(StartJobRequest { lease });
        self.client.clone().start_job(request).await.map(drop)
    }

    /// Appends `data` at `offset`; answers the acknowledged offset.
    pub async fn append(
        &self,
        lease: Option<Lease>,
        offset: u64,
        data: &[u8],
    ) -> Result<u64, Status> {
        let request = self.authorized(AppendLogRequest {
            lease,
            offset,
            data: data.to_vec(),
            stamps: Vec::new(),
        });
        let response = self.client.clone().append_log(request).await?;
        Ok(response.into_inner().acknowledged)
    }

    /// Reports the job a success with `log_size` bytes of log.
    pub async fn succeed(&self, lease: Option<Lease>, log_size: u64) -> Result<(), Status> {
        let request = self.authorized(CompleteJobRequest {
            lease,
            result: JobResult::Success.into(),
            exit_code: Some(0),
            log_size,
            ..CompleteJobRequest::default()
        });
        self.client.clone().complete_job(request).await.map(drop)
    }
}

/// An open session: the assignments the coordinator pushes.
pub struct Session(Streaming<ServerMessage>);

impl Session {
    /// The next assignment, or `None` when the session ended.
    pub async fn next_assignment(&mut self) -> Option<JobAssignment> {
        while let Ok(Some(message)) = self.0.message().await {
            if let Some(server_message::Kind::Assignment(assignment)) = message.kind {
                return Some(assignment);
            }
        }
        None
    }

    /// The next assignment within `timeout`.
    pub async fn assignment_within(&mut self, timeout: Duration) -> Option<JobAssignment> {
        tokio::time::timeout(timeout, self.next_assignment())
            .await
            .ok()
            .flatten()
    }
}
