//! The coordinator's own cost of dispatching, with simulated agents speaking the real
//! protocol over gRPC from this process (no Docker):
//!
//! - `dispatch [JOBS] [AGENTS] [SLOTS]`: one pipeline of JOBS no-op jobs in one stage
//!   (default 2,000); AGENTS agents (default 100) with SLOTS slots each (default 4).
//! - `dispatch-pipelines [PIPELINES] [JOBS]`: PIPELINES pipelines (default 200) of JOBS
//!   jobs (default 10), 100 agents x 4.
//! - `dispatch-backlog [PENDING]`: PENDING jobs (default 1,000; pipelines of 1,000) for
//!   one agent with 4 slots; the first 400 completions measured, so the cost per
//!   dispatched job is seen against a long queue.
//! - `idle [AGENTS]`: see [`idle`].
//!
//! A real coordinator process runs the pipelines; the agents register and open sessions. Each agent answers an assignment at once: `StartJob`, one `AppendLog`
//! chunk, `CompleteJob`. Prints the jobs per second from `pipeline run` to the last
//! completion, the coordinator's CPU time per job (from `/proc/<pid>/stat`), its RSS,
//! the time `pipeline run` took to answer, the wait from a job becoming runnable to its
//! assignment arriving (p50/p99), and how many agent calls the coordinator refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use esteira_tests::sim_agent::SimAgent;
use esteira_tests::{Coordinator, GitRepo, wait_until};
use tokio::sync::Mutex;
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
    let agent = SimAgent::register(channel, &registration, &format!("sim{index}"), &[]).await;
    let mut session = agent.open_session(slots, &[]).await;
    while let Some(assignment) = session.next_assignment().await {
        tally
            .assigned_at
            .lock()
            .await
            .push((assignment.lease.map_or(0, |l| l.job_id), now_ms()));
        let (agent, tally) = (agent.clone(), tally.clone());
        tokio::spawn(async move {
            let lease = assignment.lease;
            let data = b"ok\n";
            let calls = [
                agent.start(lease).await.err(),
                agent.append(lease, 0, data).await.err(),
                agent.succeed(lease, data.len() as u64).await.err(),
            ];
            for refused in calls.into_iter().flatten() {
                tally.refused.fetch_add(1, Ordering::Relaxed);
                eprintln!("refused: {refused}");
            }
            tally.done.fetch_add(1, Ordering::Relaxed);
        });
    }
}

/// What one run of the benchmark sets up and measures.
pub struct Scenario {
    /// Pipelines run, one after the other, each of `jobs` jobs in one stage.
    pub pipelines: usize,
    pub jobs: usize,
    pub agents: usize,
    pub slots: u32,
    /// Completions measured (CPU, wall time): every job, counted from the first
    /// pipeline's `run` (its planning included); or, when fewer, the first ones after the
    /// last pipeline was created, while the rest of the queue stays pending.
    pub measured: usize,
}

impl Scenario {
    /// One pipeline of `jobs` jobs, every job measured.
    pub fn one_pipeline(jobs: usize, agents: usize, slots: u32) -> Scenario {
        Scenario {
            pipelines: 1,
            jobs,
            agents,
            slots,
            measured: jobs,
        }
    }
}

/// The coordinator, its simulated agents and what they count.
struct Bench {
    coordinator: Coordinator,
    pid: u32,
    runtime: tokio::runtime::Runtime,
    tally: Arc<Tally>,
    _root: tempfile::TempDir,
}

impl Bench {
    /// A coordinator with project `bench` (pipelines of `jobs` no-op jobs) and `agents`
    /// simulated agents of `slots` slots each, all connected and idle.
    fn start(jobs: usize, agents: usize, slots: u32) -> Bench {
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
        wait_until("the agents to connect", Duration::from_secs(120), || {
            let listed = coordinator.cli_json(&["agent", "list"]);
            let idle = listed
                .as_array()?
                .iter()
                .filter(|a| a["status"] == "idle")
                .count();
            (idle == agents).then_some(())
        });
        Bench {
            coordinator,
            pid,
            runtime,
            tally,
            _root: root,
        }
    }

    fn done(&self) -> usize {
        self.tally.done.load(Ordering::Relaxed)
    }

    /// The runnable → assigned waits of the pipeline's jobs, sorted.
    fn pickups(&self, pipeline: &str) -> Vec<f64> {
        let pipeline = self.coordinator.pipeline(pipeline);
        let assigned = self
            .runtime
            .block_on(async { self.tally.assigned_at.lock().await.clone() });
        let assigned: std::collections::HashMap<i64, i64> = assigned.into_iter().collect();
        let mut pickups: Vec<f64> = pipeline["jobs"]
            .as_array()
            .expect("jobs")
            .iter()
            .filter_map(|job| {
                let queued = job["queued_at"].as_i64()?;
                let at = assigned.get(&job["id"].as_i64()?)?;
                Some((at - queued) as f64)
            })
            .collect();
        pickups.sort_by(f64::total_cmp);
        pickups
    }
}

pub fn run(scenario: &Scenario) {
    let Scenario {
        pipelines,
        jobs,
        agents,
        slots,
        measured,
    } = *scenario;
    let bench = Bench::start(jobs, agents, slots);
    let every_job = measured == pipelines * jobs;
    let (mut cpu_before, mut started) = (cpu_ms(bench.pid), Instant::now());
    let ids: Vec<String> = (0..pipelines)
        .map(|_| bench.coordinator.run_pipeline("bench", "main"))
        .collect();
    let answered = started.elapsed() / u32::try_from(pipelines).unwrap_or(1);
    let mut done_before = 0;
    if !every_job {
        (cpu_before, started, done_before) = (cpu_ms(bench.pid), Instant::now(), bench.done());
    }
    wait_until(
        "the measured jobs to complete",
        Duration::from_secs(900),
        || (bench.done() >= done_before + measured).then_some(()),
    );
    let elapsed = started.elapsed();
    let cpu = cpu_ms(bench.pid) - cpu_before;
    let mut pickups = Vec::new();
    if every_job {
        for id in &ids {
            let waited = bench.coordinator.cli(&["pipeline", "wait", id]);
            assert!(waited.status.success(), "a benchmark pipeline failed");
            pickups.extend(bench.pickups(id));
        }
        pickups.sort_by(f64::total_cmp);
    }
    let pickup = if pickups.is_empty() {
        String::new()
    } else {
        format!(
            ", runnable -> assigned p50 {:.0} ms p99 {:.0} ms",
            percentile(&pickups, 0.5),
            percentile(&pickups, 0.99)
        )
    };
    println!(
        "dispatch: {pipelines} x {jobs} jobs ({measured} measured), {agents} agents x {slots} \
         slots: {:.0} jobs/s, {:.3} CPU-ms of coordinator per job, RSS {:.0} MiB, `pipeline \
         run` answered in {} ms{pickup}, {} agent calls refused",
        measured as f64 / elapsed.as_secs_f64(),
        cpu / measured as f64,
        rss_mib(bench.pid),
        answered.as_millis(),
        bench.tally.refused.load(Ordering::Relaxed),
    );
    bench.runtime.shutdown_background();
}

/// `idle [AGENTS]`: AGENTS agents connected and idle: the coordinator's RSS and CPU per
/// second over ten seconds, then the CPU of a one-job pipeline among them and its pickup.
pub fn idle(agents: usize) {
    let bench = Bench::start(1, agents, 4);
    let window = Duration::from_secs(10);
    let cpu_before = cpu_ms(bench.pid);
    std::thread::sleep(window);
    let idle_cpu = (cpu_ms(bench.pid) - cpu_before) / window.as_secs_f64();
    let cpu_before = cpu_ms(bench.pid);
    let id = bench.coordinator.run_pipeline("bench", "main");
    wait_until("the job to complete", Duration::from_secs(60), || {
        (bench.done() >= 1).then_some(())
    });
    let job_cpu = cpu_ms(bench.pid) - cpu_before;
    let waited = bench.coordinator.cli(&["pipeline", "wait", &id]);
    assert!(waited.status.success(), "the benchmark pipeline failed");
    let pickups = bench.pickups(&id);
    println!(
        "idle: {agents} agents connected: RSS {:.0} MiB, {idle_cpu:.1} CPU-ms per second idle; \
         a one-job pipeline: {job_cpu:.1} CPU-ms (with `pipeline run`), pickup {:.0} ms",
        rss_mib(bench.pid),
        percentile(&pickups, 0.5),
    );
    bench.runtime.shutdown_background();
}
