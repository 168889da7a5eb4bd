//! `esteira-bench seed [RUNS]`: time from `git push` of the seed example to `devel` until
//! staging's `/version` answers the pushed commit, on the whole system of
//! `esteira_tests::seed::SeedStack` (polled remote, registry with a login, three agents).
//!
//! Each run commits one change and pushes it, after the previous run is deployed. The
//! total splits into: push → pipeline created (the poll, every second), test (pipeline
//! created → last test-stage job finished), release (→ image built and pushed), deploy
//! (→ staging answering the new version). Prints every run, then the medians; the first
//! run also pushes the base image's layers to the empty registry.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use esteira_tests::seed::SeedStack;
use esteira_tests::wait_until;

fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(since.as_millis()).expect("ms fit")
}

/// When the last of the pipeline's jobs in `stage` finished.
fn stage_finished(pipeline: &Value, stage: &str) -> i64 {
    pipeline["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter(|job| job["stage"] == stage)
        .filter_map(|job| job["finished_at"].as_i64())
        .max()
        .unwrap_or_else(|| panic!("no finished {stage} job in {pipeline}"))
}

fn median(values: &mut [i64]) -> i64 {
    values.sort_unstable();
    values[values.len() / 2]
}

pub fn run(runs: usize) {
    let root = tempfile::tempdir().expect("temp dir");
    let stack = SeedStack::start(root.path());
    let mut splits: Vec<[i64; 5]> = Vec::new();
    println!("run  poll_ms  test_ms  release_ms  deploy_ms  total_ms");
    for run in 1..=runs {
        stack
            .work
            .commit(&[("CHANGELOG.md", &format!("release {run}\n"))], "bench");
        let pushed_at = now_ms();
        let sha = stack.push("devel");
        wait_until(
            "staging to answer the pushed commit",
            Duration::from_secs(300),
            || (stack.version_on(stack.staging_port)? == sha).then_some(()),
        );
        let answered_at = now_ms();
        let (pipeline, passed) = stack.finish(&stack.pipeline_of(&sha, "devel"));
        assert!(passed, "the pipeline failed: {pipeline:#}");
        let created = pipeline["created_at"].as_i64().expect("created_at");
        let tested = stage_finished(&pipeline, "test");
        let released = stage_finished(&pipeline, "release");
        let split = [
            created - pushed_at,
            tested - created,
            released - tested,
            answered_at - released,
            answered_at - pushed_at,
        ];
        println!(
            "{run:>3}  {:>7}  {:>7}  {:>10}  {:>9}  {:>8}",
            split[0], split[1], split[2], split[3], split[4]
        );
        splits.push(split);
    }
    let medians: Vec<i64> = (0..5)
        .map(|column| median(&mut splits.iter().map(|split| split[column]).collect::<Vec<_>>()))
        .collect();
    println!(
        "median {:>5}  {:>7}  {:>10}  {:>9}  {:>8}",
        medians[0], medians[1], medians[2], medians[3], medians[4]
    );
}
