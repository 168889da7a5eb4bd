//! Figures, not assertions (run with `--ignored --nocapture`): the per-job overhead of one
//! service and a 10 MiB artifact, and the artifact packing/unpacking throughput.

mod common;

use std::time::{Duration, Instant};

use common::*;
use esteira_executor::JobResult;
use esteira_pipeline::{Artifacts, PlannedJob, Service};

const RUNS: usize = 5;

async fn median_run(h: &Harness, repo: &Repo, first_id: i64, spec: &PlannedJob) -> Duration {
    let mut times = Vec::new();
    for run in 0..RUNS {
        let started = Instant::now();
        let (outcome, log) = h
            .run(h.job(repo, first_id + run as i64, spec.clone()))
            .await;
        times.push(started.elapsed());
        assert_eq!(
            outcome.result,
            JobResult::Success,
            "{}",
            String::from_utf8_lossy(&log)
        );
        if let Some(archive) = outcome.artifacts {
            std::fs::remove_file(archive).expect("remove");
        }
    }
    times.sort();
    times[RUNS / 2]
}

#[tokio::test]
#[ignore = "a benchmark: run with --ignored --nocapture"]
async fn overhead_of_a_service_and_a_ten_mebibyte_artifact() {
    let _slot = slot().await;
    build_test_image(
        "esteira-test/exec-httpd-bench:latest",
        "FROM esteira-test/busybox:latest\nRUN mkdir /www\nEXPOSE 8080\n\
         CMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
        &[],
    )
    .await;
    let repo = Repo::new(&[("a", b"a")]);
    let h = Harness::new("overhead").await;
    let plain = spec(&["head -c 10485760 /dev/urandom > blob"]);
    let mut full = plain.clone();
    full.services = vec![Service {
        name: "esteira-test/exec-httpd-bench:latest".to_string(),
        aliases: vec![],
        entrypoint: None,
        command: None,
        variables: vec![],
    }];
    full.artifacts = Some(Artifacts {
        paths: vec!["blob".to_string()],
        when: "on_success".to_string(),
        ..Artifacts::default()
    });
    let base = median_run(&h, &repo, 500, &plain).await;
    let with = median_run(&h, &repo, 600, &full).await;
    println!(
        "median of {RUNS}: plain job {base:?}, with one service and a 10 MiB artifact {with:?} \
         (+{:?}, {:.2}x)",
        with.saturating_sub(base),
        with.as_secs_f64() / base.as_secs_f64()
    );

    // Throughput of artifacts: 200 MiB packed and extracted.
    let mut big = spec(&["head -c 209715200 /dev/urandom > big.bin"]);
    big.artifacts = Some(Artifacts {
        paths: vec!["big.bin".to_string()],
        when: "on_success".to_string(),
        ..Artifacts::default()
    });
    let without = median_once(
        &h,
        &repo,
        700,
        spec(&["head -c 209715200 /dev/urandom > big.bin"]),
    )
    .await;
    let (with_artifact, archive) = {
        let started = Instant::now();
        let (outcome, _) = h.run(h.job(&repo, 701, big)).await;
        (started.elapsed(), outcome.artifacts.expect("archive"))
    };
    let pack = with_artifact.saturating_sub(without);
    let mut job = h.job(&repo, 702, spec(&["true"]));
    job.artifacts_in = vec![archive.clone()];
    let started = Instant::now();
    let (outcome, _) = h.run(job).await;
    let with_extract = started.elapsed();
    assert_eq!(outcome.result, JobResult::Success);
    let plain_true = median_once(&h, &repo, 703, spec(&["true"])).await;
    let unpack = with_extract.saturating_sub(plain_true);
    std::fs::remove_file(archive).expect("remove");
    println!(
        "200 MiB artifact: collect {pack:?} ({:.0} MiB/s), extract {unpack:?} ({:.0} MiB/s)",
        200.0 / pack.as_secs_f64(),
        200.0 / unpack.as_secs_f64()
    );
    h.assert_nothing_left().await;
}

async fn median_once(h: &Harness, repo: &Repo, id: i64, spec: PlannedJob) -> Duration {
    let started = Instant::now();
    let (outcome, _) = h.run(h.job(repo, id, spec)).await;
    assert_eq!(outcome.result, JobResult::Success);
    started.elapsed()
}

#[tokio::test]
#[ignore = "a benchmark: run with --ignored --nocapture"]
async fn a_plain_job_against_docker_run() {
    let _slot = slot().await;
    let repo = Repo::new(&[("a", b"a")]);
    let h = Harness::new("plain").await;
    let job = median_run(&h, &repo, 800, &spec(&["true"])).await;
    let mut times = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let status = tokio::process::Command::new("docker")
            .args(["run", "--rm", IMAGE, "true"])
            .status()
            .await
            .expect("docker runs");
        assert!(status.success());
        times.push(started.elapsed());
    }
    times.sort();
    let docker_run = times[RUNS / 2];
    println!(
        "median of {RUNS}: executor job {job:?}, docker run --rm {docker_run:?} ({:.2}x)",
        job.as_secs_f64() / docker_run.as_secs_f64()
    );
    h.assert_nothing_left().await;
}
