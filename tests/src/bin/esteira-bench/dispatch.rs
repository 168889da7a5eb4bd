//! `dispatch [JOBS] [AGENTS] [SLOTS]`: the coordinator's own cost of dispatching, with
//! simulated agents speaking the real protocol over gRPC from this process (no Docker).
//!
//! A real coordinator process gets one pipeline of JOBS no-op jobs in one stage (default
//! 2,000); AGENTS agents (default 100) register and open sessions with SLOTS slots each
//! (default 4). Each agent answers an assignment at once: `StartJob`, one `AppendLog`
//! chunk, `CompleteJob`. Prints the jobs per second from `pipeline run` to the last
//! completion, the coordinator's CPU time per job (from `/proc/<pid>/stat`), its RSS,
//! the time `pipeline run` took to answer, the wait from a job becoming runnable to its
//! assignment arriving (p50/p99), and how many agent calls the coordinator refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use esteira_proto::v1::agent_service_client::AgentServiceClient;
use esteira_proto::v1::{
    AppendLogRequest, CompleteJobRequest, JobResult, OpenSessionRequest, RegisterRequest,
    StartJobRequest, server_message,
};
use esteira_proto::{AUTHORIZATION, PROTOCOL_VERSION};
use esteira_tests::{Coordinator, GitRepo, wait_until};
use tokio::sync::Mutex;
use tonic::Request;
use tonic::transport::Channel;

use super::percentile;

/// The coordinator's CPU time so far, in milliseconds.
fn cpu_ms(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("stat")
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 =
        fields[11].parse::<f64>().expect("utime") + fields[12].parse::<f64>().expect("stime");
    let hertz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks * 1000.0 / hertz
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn authorized<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    let value = format!("Bearer {token}").parse().expect("token header");
    request.metadata_mut().insert(AUTHORIZATION, value);
    request
}

#[derive(Default)]
struct Tally {
    done: AtomicUsize,
    refused: AtomicUsize,
    assigned_at: Mutex<Vec<(i64, i64)>>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as i64)
}

/// One simulated agent: registers, opens a session and completes every job at once.
async fn agent(
    channel: Channel,
    registration: String,
    index: usize,
    slots: u32,
    tally: Arc<Tally>,
) {
    let mut client = AgentServiceClient::new(channel);
    let registered = client
        .register(RegisterRequest {
            protocol_version: PROTOCOL_VERSION,
            registration_token: registration,
            name: format!("sim{index}"),
            labels: vec![],
            version: "bench".into(),
        })
        .await
        .expect("register")
        .into_inner();
    let token = registered.agent_token;
    let open = OpenSessionRequest {
        protocol_version: PROTOCOL_VERSION,
        concurrency: slots,
        labels: vec![],
        version: "bench".into(),
        running: vec![],
    };
    let mut session = client
        .open_session(authorized(open, &token))
        .await
        .expect("session")
        .into_inner();
    while let Ok(Some(message)) = session.message().await {
        let Some(server_message::Kind::Assignment(assignment)) = message.kind else {
            continue;
        };
        tally
            .assigned_at
            .lock()
            .await
            .push((assignment.lease.map_or(0, |l| l.job_id), now_ms()));
        let (mut client, token, tally) = (client.clone(), token.clone(), tally.clone());
        tokio::spawn(async move {
            let lease = assignment.lease;
            let data = b"ok\n".to_vec();
            let calls = [
                client
                    .start_job(authorized(StartJobRequest { lease }, &token))
                    .await
                    .err(),
                client
                    .append_log(authorized(
                        AppendLogRequest {
                            lease,
                            offset: 0,
                            data: data.clone(),
                            stamps: Vec::new(),
                        },
                        &token,
                    ))
                    .await
                    .err(),
                client
                    .complete_job(authorized(
                        CompleteJobRequest {
                            lease,
                            result: JobResult::Success.into(),
                            exit_code: Some(0),
                            log_size: data.len() as u64,
                            ..CompleteJobRequest::default()
                        },
                        &token,
                    ))
                    .await
                    .err(),
            ];
            for refused in calls.into_iter().flatten() {
                tally.refused.fetch_add(1, Ordering::Relaxed);
                eprintln!("refused: {refused}");
            }
            tally.done.fetch_add(1, Ordering::Relaxed);
        });
    }
}

pub fn run(jobs: usize, agents: usize, slots: u32) {
    let root = tempfile::tempdir().expect("temp dir");
    let repo = GitRepo::init(root.path().join("repo"));
    let mut file = String::from("stages: [only]\n");
    for index in 0..jobs {
        file.push_str(&format!(
            "job{index}:\n  stage: only\n  script: [\"true\"]\n"
        ));
    }
    repo.commit(&[(".gitlab-ci.yml", &file)], "many jobs");
    let coordinator = Coordinator::start(root.path(), 30);
    coordinator.cli_ok(&["project", "add", "bench", "--repo", &repo.url()]);
    let pid = coordinator.pid().expect("coordinator pid");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let tally = Arc::new(Tally::default());
    let channel = runtime.block_on(async {
        Channel::from_shared(coordinator.grpc_url())
            .expect("url")
            .connect()
            .await
            .expect("connect")
    });
    for index in 0..agents {
        let task = agent(
            channel.clone(),
            coordinator.registration_token.clone(),
            index,
            slots,
            tally.clone(),
        );
        runtime.spawn(task);
    }
    wait_until("the agents to connect", Duration::from_secs(60), || {
        let listed = coordinator.cli_json(&["agent", "list"]);
        let idle = listed
            .as_array()?
            .iter()
            .filter(|a| a["status"] == "idle")
            .count();
        (idle == agents).then_some(())
    });
    let (cpu_before, started) = (cpu_ms(pid), Instant::now());
    let id = coordinator.run_pipeline("bench", "main");
    let answered = started.elapsed();
    wait_until("every job to complete", Duration::from_secs(900), || {
        (tally.done.load(Ordering::Relaxed) >= jobs).then_some(())
    });
    let elapsed = started.elapsed();
    let cpu = cpu_ms(pid) - cpu_before;
    let waited = coordinator.cli(&["pipeline", "wait", &id]);
    assert!(waited.status.success(), "the benchmark pipeline failed");
    let pipeline = coordinator.pipeline(&id);
    let assigned = runtime.block_on(async { tally.assigned_at.lock().await.clone() });
    let mut pickups: Vec<f64> = pipeline["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter_map(|job| {
            let queued = job["queued_at"].as_i64()?;
            let id = job["id"].as_i64()?;
            let at = assigned.iter().find(|(job, _)| *job == id)?.1;
            Some((at - queued) as f64)
        })
        .collect();
    pickups.sort_by(f64::total_cmp);
    println!(
        "dispatch: {jobs} jobs, {agents} agents x {slots} slots: {:.0} jobs/s, {:.3} CPU-ms of \
         coordinator per job, RSS {:.0} MiB, `pipeline run` answered in {} ms, runnable -> \
         assigned p50 {:.0} ms p99 {:.0} ms, {} agent calls refused",
        jobs as f64 / elapsed.as_secs_f64(),
        cpu / jobs as f64,
        rss_mib(pid),
        answered.as_millis(),
        percentile(&pickups, 0.5),
        percentile(&pickups, 0.99),
        tally.refused.load(Ordering::Relaxed),
    );
    runtime.shutdown_background();
}
