//! `autoscale [RUNS]`: runner pools with `esteira autoscale` and the Docker provider, on
//! the agent image of this build (`deploy/docker`), one coordinator, three pools:
//!
//! - `cold` (min 0, max 1): RUNS times (default 10), one job queued for the empty pool;
//!   the time from the job queued to its agent starting it (container start, agent
//!   registration and session, assignment). Between runs the pool goes back to empty.
//! - `burst` (min 0, max 3): the wall time of 30 one-line jobs from `pipeline run` to
//!   the last one done, starting from no agent;
//! - `warm` (min 3, max 3): the same 30 jobs against 3 agents already running.

use std::time::{Duration, Instant};

use esteira_tests::pools::{AgentImage, Autoscaler, PoolSpec};
use esteira_tests::{Coordinator, GitRepo, IMAGE, wait_until};

use crate::percentile;

const POOLS: [PoolSpec; 3] = [
    PoolSpec {
        name: "cold",
        labels: &["cold"],
        min: 0,
        max: 1,
        idle_time: "1s",
        cooldown: "0s",
        args: &[],
    },
    PoolSpec {
        name: "burst",
        labels: &["burst"],
        min: 0,
        max: 3,
        idle_time: "1s",
        cooldown: "0s",
        args: &[],
    },
    PoolSpec {
        name: "warm",
        labels: &["warm"],
        min: 3,
        max: 3,
        idle_time: "1s",
        cooldown: "0s",
        args: &[],
    },
];

pub fn run(runs: usize) {
    let image = AgentImage::build("bench");
    let root = tempfile::tempdir().expect("temp dir");
    let repo = GitRepo::init(root.path().join("repo"));
    repo.commit(&[("README", "pools")], "start");
    for (branch, jobs) in [("cold", 1), ("burst", 30), ("warm", 30)] {
        let mut file = format!("image: {IMAGE}\n");
        for n in 0..jobs {
            file.push_str(&format!(
                "job-{n:02}:\n  tags: [{branch}]\n  script: [\"true\"]\n"
            ));
        }
        repo.git(&["checkout", "--quiet", "-b", branch, "main"]);
        repo.commit(&[(".gitlab-ci.yml", &file)], branch);
    }
    let coordinator = Coordinator::start(root.path(), 30);
    coordinator.cli_ok(&["project", "add", "pools", "--repo", &repo.url()]);
    let pools: String = POOLS
        .iter()
        .map(|pool| pool.toml(&image.name(), &root.path().join("pools"), &[&repo.dir]))
        .collect();
    let pools_file = root.path().join("pools.toml");
    std::fs::write(&pools_file, pools).expect("write the pools file");
    let autoscaler = Autoscaler::start(
        &coordinator,
        &pools_file,
        root.path().join("autoscaler.log"),
    );
    let pool_agents = |pool: &str| {
        autoscaler
            .agents(&coordinator)
            .into_iter()
            .filter(|agent| agent["name"].as_str().is_some_and(|n| n.starts_with(pool)))
            .filter(|agent| agent["status"] == "idle")
            .count()
    };
    wait_until("the warm pool's 3 agents", Duration::from_secs(120), || {
        (pool_agents("warm-") == 3).then_some(())
    });

    let mut cold: Vec<f64> = (0..runs)
        .map(|_| {
            let id = coordinator.run_pipeline("pools", "cold");
            assert!(coordinator.cli(&["pipeline", "wait", &id]).status.success());
            let pipeline = coordinator.pipeline(&id);
            let job = coordinator.job(&pipeline, "job-00");
            let waited =
                job["started_at"].as_i64().unwrap_or(0) - job["queued_at"].as_i64().unwrap_or(0);
            wait_until(
                "the cold pool to be empty again",
                Duration::from_secs(60),
                || {
                    let containers = autoscaler.containers();
                    (!containers.iter().any(|name| name.starts_with("cold-"))).then_some(())
                },
            );
            waited as f64
        })
        .collect();
    cold.sort_by(f64::total_cmp);
    println!(
        "queued for an empty pool → its agent running it, {runs} runs: p50 {:.0} ms, min {:.0} ms, max {:.0} ms",
        percentile(&cold, 0.5),
        cold[0],
        cold[cold.len() - 1]
    );

    let burst = |branch: &str| {
        let start = Instant::now();
        let id = coordinator.run_pipeline("pools", branch);
        assert!(coordinator.cli(&["pipeline", "wait", &id]).status.success());
        start.elapsed()
    };
    let from_empty = burst("burst");
    let warm = burst("warm");
    println!(
        "30 jobs, pool of max 3 from no agent: {:.1} s; against 3 agents already running: {:.1} s",
        from_empty.as_secs_f64(),
        warm.as_secs_f64()
    );
}
