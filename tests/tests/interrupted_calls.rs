//! Calls cut in the middle leave nothing stuck: a real coordinator process, an agent
//! simulated over gRPC whose calls carry a deadline the coordinator drops them at
//! (`grpc-timeout`), and an HTTP client that hangs up right after its request.
//!
//! - A completion cut mid-call, resent as an agent does, advances the pipeline: the
//!   resend of a completion already stored is a duplicate, so what follows from the
//!   first must have happened without it.
//! - A start or a log append cut mid-call is resent as an agent does, and the log holds
//!   each byte once.
//! - A cancel whose caller hung up still cancels.

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use esteira_proto::v1::JobAssignment;
use esteira_tests::sim_agent::{Session, SimAgent};
use esteira_tests::{Coordinator, GitRepo, wait_until};
use tonic::Code;
use tonic::transport::Channel;

/// Two stages of one job each, for an agent labelled `sim`; `parked` waits for a tag no
/// agent has.
const PIPELINE: &str = "stages: [first, second]
build:
  stage: first
  tags: [sim]
  script: [\"true\"]
test:
  stage: second
  tags: [sim]
  script: [\"true\"]
";

const PARKED: &str = "parked:
  tags: [nobody-has-this]
  script: [\"true\"]
";

/// Short enough that the coordinator is always still working on the call when it ends.
const CUT: Duration = Duration::from_micros(1);

/// How long the pipeline may take to go on after a cut: far more than it needs (a few
/// milliseconds), so a loaded machine does not fail the test.
const GOES_ON: Duration = Duration::from_secs(5);

fn coordinator(root: &Path, file: &str) -> Coordinator {
    let repo = GitRepo::init(root.join("repo"));
    repo.commit(&[(".gitlab-ci.yml", file)], "pipeline");
    let coordinator = Coordinator::start(root, 30);
    coordinator.cli_ok(&["project", "add", "app", "--repo", &repo.url()]);
    coordinator
}

/// A simulated agent labelled `sim` with one slot, and its session.
async fn sim_agent(coordinator: &Coordinator) -> (SimAgent, Session) {
    let channel = Channel::from_shared(coordinator.grpc_url())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let name = format!("sim{}", coordinator.agent_suffix);
    let agent = SimAgent::register(channel, &coordinator.registration_token, &name, &["sim"]).await;
    let session = agent.open_session(1, &["sim"]).await;
    (agent, session)
}

async fn assigned(session: &mut Session, what: &str) -> JobAssignment {
    let started = Instant::now();
    let assignment = session
        .assignment_within(GOES_ON)
        .await
        .unwrap_or_else(|| panic!("no assignment of {what} within {GOES_ON:?}"));
    eprintln!("{what} assigned after {:?}", started.elapsed());
    assignment
}

/// Runs the second stage's job as soon as it is assigned; the pipeline once it succeeded.
async fn run_test_job(
    coordinator: &Coordinator,
    id: &str,
    agent: &SimAgent,
    session: &mut Session,
) -> serde_json::Value {
    let test = assigned(session, "test").await;
    agent.start(test.lease).await.expect("start");
    agent.succeed(test.lease, 0).await.expect("complete");
    wait_until("the pipeline to succeed", GOES_ON, || {
        let pipeline = coordinator.pipeline(id);
        (pipeline["status"] == "success").then_some(pipeline)
    })
}

/// The call was dropped by the coordinator at its deadline (tonic answers `Cancelled`).
fn cut<T: std::fmt::Debug>(result: Result<T, tonic::Status>, call: &str) {
    match result {
        Err(status) if status.code() == Code::Cancelled => {}
        other => panic!("{call} was not cut by its deadline: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completion_cut_mid_call_still_advances_the_pipeline() {
    let root = tempfile::tempdir().expect("temp dir");
    let coordinator = coordinator(root.path(), PIPELINE);
    let (agent, mut session) = sim_agent(&coordinator).await;
    let id = coordinator.run_pipeline("app", "main");
    let build = assigned(&mut session, "build").await;
    agent.start(build.lease).await.expect("start");
    agent.append(build.lease, 0, b"built\n").await.expect("log");
    cut(
        agent.with_deadline(CUT).succeed(build.lease, 6).await,
        "CompleteJob",
    );
    // Whether the cut came before the call reached the scheduler or in the middle of it,
    // the agent resends; a stored completion makes the resend a duplicate that decides
    // nothing, so the pipeline goes on only if the first call's consequences happened.
    agent
        .succeed(build.lease, 6)
        .await
        .expect("the completion resent");
    let pipeline = run_test_job(&coordinator, &id, &agent, &mut session).await;
    let build_job = coordinator.job(&pipeline, "build");
    assert_eq!(build_job["attempt"], 1, "{pipeline}");
    assert_eq!(coordinator.job_log(&build_job["id"]), b"built\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_and_a_log_append_cut_mid_call_lose_nothing_when_resent() {
    let root = tempfile::tempdir().expect("temp dir");
    let coordinator = coordinator(root.path(), PIPELINE);
    let (agent, mut session) = sim_agent(&coordinator).await;
    let id = coordinator.run_pipeline("app", "main");
    let build = assigned(&mut session, "build").await;
    let cutting = agent.with_deadline(CUT);
    cut(cutting.start(build.lease).await, "StartJob");
    agent.start(build.lease).await.expect("StartJob resent");
    cut(cutting.append(build.lease, 0, b"one\n").await, "AppendLog");
    // Resent as the agent does: from the last acknowledged offset, which it never got.
    assert_eq!(
        agent
            .append(build.lease, 0, b"one\n")
            .await
            .expect("resent"),
        4
    );
    assert_eq!(
        agent.append(build.lease, 4, b"two\n").await.expect("more"),
        8
    );
    agent.succeed(build.lease, 8).await.expect("complete");
    let pipeline = run_test_job(&coordinator, &id, &agent, &mut session).await;
    let build_job = coordinator.job(&pipeline, "build");
    assert_eq!(coordinator.job_log(&build_job["id"]), b"one\ntwo\n");
    assert!(build_job["started_at"].is_i64(), "{build_job}");
}

#[test]
fn a_cancel_whose_caller_hung_up_still_cancels() {
    let root = tempfile::tempdir().expect("temp dir");
    let coordinator = coordinator(root.path(), PARKED);
    let id = coordinator.run_pipeline("app", "main");
    // The request promises a body it never sends: the handler (which reads none) runs,
    // and the connection is gone while it does.
    let mut client =
        TcpStream::connect(("127.0.0.1", coordinator.http_port)).expect("connect to HTTP");
    write!(
        client,
        "POST /api/v1/pipelines/{id}/cancel HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Authorization: Bearer {}\r\nContent-Length: 1\r\n\r\n",
        coordinator.admin_token
    )
    .expect("send the cancel");
    drop(client);
    let started = Instant::now();
    wait_until("the pipeline to be canceled", GOES_ON, || {
        let pipeline = coordinator.pipeline(&id);
        (pipeline["status"] == "canceled").then_some(())
    });
    eprintln!("canceled {:?} after the caller hung up", started.elapsed());
    let pipeline = coordinator.pipeline(&id);
    assert_eq!(coordinator.job(&pipeline, "parked")["status"], "canceled");
}
