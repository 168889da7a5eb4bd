//! `esteira-bench`: the walking skeleton's figures, measured on real processes and Docker.
//!
//! - `pickup [JOBS] [AGENTS]`: a pipeline of JOBS one-job stages (default 200) with AGENTS
//!   idle agents (default 4); for each job, the time from becoming runnable (queued) to
//!   the agent confirming its start. Prints p50, p99 and max.
//! - `overhead [RUNS]`: wall time of a one-job pipeline (`esteira pipeline run` to
//!   `esteira pipeline wait` returning) against `docker run --rm` of the same image and
//!   command, RUNS times each (default 20). Prints the medians and their ratio.
//! - `artifacts [RUNS] [MIB]`: through the coordinator and an agent, RUNS times each
//!   (default 5): the wall time of a one-job pipeline with one service and a 10 MiB
//!   artifact against the same job without them; and of a two-stage pipeline passing a
//!   MIB (default 100) MiB artifact against the same pipeline making the file without
//!   keeping it. The difference of the second pair is the artifact's whole way (collect,
//!   upload, store, download, extract); MIB over it is the throughput. Prints medians.
//! - `webhooks [DELIVERIES] [SENDERS]`: see `webhooks.rs`.
//! - `dispatch [JOBS] [AGENTS] [SLOTS]`, `dispatch-pipelines`, `dispatch-backlog`, `idle`:
//!   the coordinator's cost per job with simulated agents (see `dispatch.rs`).
//! - `autoscale [RUNS]`: runner pools from an empty pool and against agents already
//!   running (see `autoscale.rs`; default 10 runs).
//! - `seed [RUNS]`: `git push` of the seed example to staging answering, split into
//!   test, release and deploy (see `seed.rs`; default 5 runs).
//!
//! Build with `cargo build --release --workspace --bins` and run
//! `target/release/esteira-bench pickup` / `overhead` / `artifacts` / `webhooks` / `seed`.

mod autoscale;
mod dispatch;
mod seed;
mod webhooks;
#[path = "../../../tests/webhooks_support/mod.rs"]
mod webhooks_support;

use std::process::Command;
use std::time::{Duration, Instant};

use esteira_tests::{Coordinator, GitRepo, IMAGE, ensure_image, wait_until};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |index: usize, default: usize| {
        args.get(index)
            .and_then(|text| text.parse().ok())
            .unwrap_or(default)
    };
    ensure_image();
    match args.first().map(String::as_str) {
        Some("pickup") => pickup(number(1, 200), number(2, 4)),
        Some("overhead") => overhead(number(1, 20)),
        Some("artifacts") => artifacts(number(1, 5), number(2, 100)),
        Some("webhooks") => webhooks::run(&args[1..]),
        Some("seed") => seed::run(number(1, 5)),
        Some("autoscale") => autoscale::run(number(1, 10)),
        Some("dispatch") => dispatch::run(&dispatch::Scenario::one_pipeline(
            number(1, 2000),
            number(2, 100),
            number(3, 4) as u32,
        )),
        Some("dispatch-pipelines") => dispatch::run(&dispatch::Scenario {
            pipelines: number(1, 200),
            jobs: number(2, 10),
            agents: 100,
            slots: 4,
            measured: number(1, 200) * number(2, 10),
        }),
        Some("dispatch-backlog") => {
            let pending = number(1, 1000);
            dispatch::run(&dispatch::Scenario {
                pipelines: pending.div_ceil(1000),
                jobs: pending.min(1000),
                agents: 1,
                slots: 4,
                measured: 400,
            })
        }
        Some("idle") => dispatch::idle(number(1, 1000)),
        _ => {
            eprintln!(
                "usage: esteira-bench pickup [JOBS] [AGENTS] | overhead [RUNS] \
                 | artifacts [RUNS] [MIB] | webhooks [DELIVERIES] [SENDERS] | seed [RUNS] \
                 | dispatch [JOBS] [AGENTS] [SLOTS] | dispatch-pipelines [PIPELINES] [JOBS] \
                 | dispatch-backlog [PENDING] | idle [AGENTS] | autoscale [RUNS]"
            );
            std::process::exit(2);
        }
    }
}

fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn pickup(jobs: usize, agents: usize) {
    let root = tempfile::tempdir().expect("temp dir");
    let repo = GitRepo::init(root.path().join("repo"));
    let mut file = format!("image: {IMAGE}\nstages:\n");
    for index in 0..jobs {
        file.push_str(&format!("  - s{index}\n"));
    }
    for index in 0..jobs {
        file.push_str(&format!(
            "job{index}:\n  stage: s{index}\n  script: [\"true\"]\n"
        ));
    }
    repo.commit(&[(".gitlab-ci.yml", &file)], "many stages");
    let coordinator = Coordinator::start(root.path(), 30);
    let _agents: Vec<_> = (0..agents)
        .map(|index| coordinator.start_agent(root.path(), &format!("bench{index}"), "", 1))
        .collect();
    wait_until("the agents to connect", Duration::from_secs(60), || {
        let listed = coordinator.cli_json(&["agent", "list"]);
        let online = listed
            .as_array()?
            .iter()
            .filter(|a| a["status"] == "idle")
            .count();
        (online == agents).then_some(())
    });
    coordinator.cli_ok(&["project", "add", "bench", "--repo", &repo.url()]);
    let id = coordinator.run_pipeline("bench", "main");
    let waited = coordinator.cli(&["pipeline", "wait", &id]);
    assert!(waited.status.success(), "the benchmark pipeline failed");
    let pipeline = coordinator.pipeline(&id);
    let mut latencies: Vec<f64> = pipeline["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter_map(|job| Some((job["started_at"].as_i64()? - job["queued_at"].as_i64()?) as f64))
        .collect();
    latencies.sort_by(f64::total_cmp);
    println!(
        "pickup latency over {} jobs with {agents} idle agents: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0.0)
    );
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn overhead(runs: usize) {
    let root = tempfile::tempdir().expect("temp dir");
    let repo = GitRepo::init(root.path().join("repo"));
    let command = "echo hello";
    let file = format!("job:\n  image: {IMAGE}\n  script: [\"{command}\"]\n");
    repo.commit(&[(".gitlab-ci.yml", &file)], "one job");
    let coordinator = Coordinator::start(root.path(), 30);
    let _agent = coordinator.start_agent(root.path(), "bench", "", 1);
    coordinator.cli_ok(&["project", "add", "bench", "--repo", &repo.url()]);
    // Warm up both paths once (mirror clone, image cache).
    let warm = coordinator.run_pipeline("bench", "main");
    coordinator.cli(&["pipeline", "wait", &warm]);
    docker_run(command);

    let mut pipelines = Vec::new();
    let mut dockers = Vec::new();
    for _ in 0..runs {
        pipelines.push(time_pipeline(&coordinator, "bench"));
        let start = Instant::now();
        docker_run(command);
        dockers.push(start.elapsed());
    }
    let (pipeline, docker) = (median(pipelines), median(dockers));
    println!(
        "one-job pipeline: median {:.0} ms; docker run --rm: median {:.0} ms; ratio {:.2}x (over {runs} runs each)",
        pipeline.as_secs_f64() * 1000.0,
        docker.as_secs_f64() * 1000.0,
        pipeline.as_secs_f64() / docker.as_secs_f64()
    );
}

/// The wall time of one pipeline of `project` on main, from `pipeline run` to `pipeline
/// wait` returning; it must succeed.
fn time_pipeline(coordinator: &Coordinator, project: &str) -> Duration {
    let start = Instant::now();
    let id = coordinator.run_pipeline(project, "main");
    let waited = coordinator.cli(&["pipeline", "wait", &id]);
    let elapsed = start.elapsed();
    assert!(waited.status.success(), "pipeline {id} of {project} failed");
    elapsed
}

fn artifacts(runs: usize, mib: usize) {
    let root = tempfile::tempdir().expect("temp dir");
    let coordinator = Coordinator::start(root.path(), 30);
    let _agent = coordinator.start_agent(root.path(), "bench", "", 1);
    let make = |name: &str, mib: usize| {
        format!(
            "mkdir -p out && dd if=/dev/urandom of=out/{name} bs=1048576 count={mib} 2>/dev/null"
        )
    };
    let service = format!(
        "  services:\n    - name: {IMAGE}\n      alias: svc\n      command: [\"httpd\", \"-f\", \"-p\", \"8080\"]\n"
    );
    let projects = [
        (
            "plain",
            format!(
                "job:\n  image: {IMAGE}\n  script: [\"{}\"]\n",
                make("blob", 10)
            ),
        ),
        (
            "full",
            format!(
                "job:\n  image: {IMAGE}\n{service}  script: [\"{}\", \"wget -q -O /dev/null http://svc:8080/ || true\"]\n  artifacts:\n    paths: [out/]\n",
                make("blob", 10)
            ),
        ),
        (
            "unkept",
            format!(
                "image: {IMAGE}\nstages: [make, use]\nmake:\n  stage: make\n  script: [\"{}\"]\nuse:\n  stage: use\n  script: [\"ls out || true\"]\n",
                make("big", mib)
            ),
        ),
        (
            "kept",
            format!(
                "image: {IMAGE}\nstages: [make, use]\nmake:\n  stage: make\n  script: [\"{}\"]\n  artifacts:\n    paths: [out/]\nuse:\n  stage: use\n  script: [\"ls -l out/big\"]\n",
                make("big", mib)
            ),
        ),
    ];
    for (name, file) in &projects {
        let repo = GitRepo::init(root.path().join(name));
        repo.commit(&[(".gitlab-ci.yml", file)], name);
        coordinator.cli_ok(&["project", "add", name, "--repo", &repo.url()]);
        // Warm up: mirror clone, image cache.
        time_pipeline(&coordinator, name);
    }
    let medians: Vec<Duration> = projects
        .iter()
        .map(|(name, _)| {
            median(
                (0..runs)
                    .map(|_| time_pipeline(&coordinator, name))
                    .collect(),
            )
        })
        .collect();
    let ms = |duration: Duration| duration.as_secs_f64() * 1000.0;
    println!(
        "one job: median {:.0} ms; with one service and a 10 MiB artifact: median {:.0} ms; overhead {:+.0} ms (over {runs} runs each)",
        ms(medians[0]),
        ms(medians[1]),
        ms(medians[1]) - ms(medians[0])
    );
    let transfer = medians[3].saturating_sub(medians[2]);
    println!(
        "{mib} MiB artifact between two stages: median {:.0} ms against {:.0} ms without; {:.0} ms for collect, upload, download and extract: {:.1} MiB/s",
        ms(medians[3]),
        ms(medians[2]),
        ms(transfer),
        mib as f64 / transfer.as_secs_f64()
    );
}

fn docker_run(command: &str) {
    let status = Command::new("docker")
        .args(["run", "--rm", IMAGE, "sh", "-c", command])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("docker run");
    assert!(status.success());
}
