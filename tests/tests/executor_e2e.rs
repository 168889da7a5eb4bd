//! The Docker executor through the whole system (coordinator and agent processes, real
//! git and Docker, the CLI): the cache across pipelines, `retry:` with `when` and
//! `exit_codes`, and a 200 MiB artifact between stages without either process's memory
//! growing with it.

use std::time::Duration;

use esteira_tests::{Coordinator, IMAGE, Setup, wait_until};
use serde_json::Value;

/// Runs a pipeline on main to its end; returns it and whether `pipeline wait` succeeded.
fn run(coordinator: &Coordinator) -> (Value, bool) {
    let id = coordinator.run_pipeline("demo", "main");
    let waited = coordinator.cli(&["pipeline", "wait", &id]);
    (coordinator.pipeline(&id), waited.status.success())
}

fn log_text(coordinator: &Coordinator, pipeline: &Value, job: &str) -> String {
    String::from_utf8_lossy(&coordinator.job_log(&coordinator.job(pipeline, job)["id"]))
        .into_owned()
}

#[test]
fn a_second_pipeline_restores_the_cache_the_first_saved() {
    let file = format!(
        "cached:\n  image: {IMAGE}\n  cache: {{key: k, paths: [c/]}}\n  script:\n    - if [ -f c/stamp ]; then echo \"restored $(cat c/stamp)\"; else echo \"no cache yet\"; fi\n    - mkdir -p c && echo \"pipeline $CI_PIPELINE_ID\" > c/stamp\n"
    );
    let setup = Setup::start("demo", &file, 1);
    let coordinator = &setup.coordinator;

    let (first, ok) = run(coordinator);
    assert!(ok, "{first:#}");
    assert!(log_text(coordinator, &first, "cached").contains("no cache yet"));
    let (second, ok) = run(coordinator);
    assert!(ok, "{second:#}");
    let text = log_text(coordinator, &second, "cached");
    assert!(
        text.contains(&format!("restored pipeline {}", first["id"])),
        "{text}"
    );
}

#[test]
fn retry_follows_when_and_exit_codes() {
    let file = format!(
        "image: {IMAGE}\n\
         script_failure:\n  script: [\"exit 3\"]\n  retry: {{max: 2, when: script_failure}}\n\
         runner_only:\n  script: [\"exit 3\"]\n  retry: {{max: 2, when: runner_system_failure}}\n\
         other_code:\n  script: [\"exit 4\"]\n  retry: {{max: 2, exit_codes: [5]}}\n\
         listed_code:\n  script: [\"exit 5\"]\n  retry: {{max: 1, exit_codes: [5]}}\n"
    );
    let setup = Setup::start("demo", &file, 1);
    let coordinator = &setup.coordinator;

    let (pipeline, ok) = run(coordinator);
    assert!(!ok, "every job fails: {pipeline:#}");
    let attempts = |name: &str| -> Vec<(i64, String)> {
        pipeline["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|job| job["name"] == name)
            .map(|job| {
                (
                    job["exit_code"].as_i64().unwrap_or(-1),
                    job["failure_kind"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    let script_failure = (3, "script_failure".to_string());
    assert_eq!(
        attempts("script_failure"),
        vec![script_failure.clone(); 3],
        "max: 2 is three attempts, then it stops"
    );
    assert_eq!(
        attempts("runner_only"),
        vec![script_failure],
        "a script failure is not a runner failure"
    );
    assert_eq!(attempts("other_code").len(), 1, "exit code 4 is not listed");
    assert_eq!(attempts("listed_code").len(), 2, "exit code 5 is listed");
}

/// The peak resident set size (VmHWM) of a process, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let line = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .expect("VmHWM in /proc/PID/status");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|number| number.parse().ok())
        .expect("VmHWM in kB");
    kib * 1024
}

#[test]
fn a_200_mib_artifact_crosses_stages_without_memory_growing_with_it() {
    let file = format!(
        "image: {IMAGE}\nstages: [make, check]\n\
         make:\n  stage: make\n  script:\n    - mkdir -p big\n    - dd if=/dev/urandom of=big/blob bs=1048576 count=200 2>/dev/null\n    - sha256sum big/blob > big/blob.sha256\n    - cat big/blob.sha256\n  artifacts:\n    paths: [big/]\n\
         check:\n  stage: check\n  script:\n    - sha256sum -c big/blob.sha256\n    - echo \"size $(stat -c %s big/blob)\"\n"
    );
    let setup = Setup::start("demo", &file, 1);
    let coordinator = &setup.coordinator;
    let agent_pid = setup.agent.process.id().expect("the agent runs");
    let coordinator_pid = coordinator.pid().expect("the coordinator runs");
    wait_until("the agent to connect", Duration::from_secs(30), || {
        let agents = coordinator.cli_json(&["agent", "list"]);
        (agents.as_array()?.len() == 1).then_some(())
    });
    let before = (peak_rss(agent_pid), peak_rss(coordinator_pid));

    let (pipeline, ok) = run(coordinator);
    assert!(ok, "{pipeline:#}");
    let after = (peak_rss(agent_pid), peak_rss(coordinator_pid));
    let made = log_text(coordinator, &pipeline, "make");
    let checked = log_text(coordinator, &pipeline, "check");
    assert!(checked.contains("big/blob: OK"), "{checked}");
    assert!(checked.contains("size 209715200\n"), "{checked}");
    let sum = made
        .lines()
        .find(|line| line.ends_with("  big/blob"))
        .expect("the checksum in the log");
    assert_eq!(sum.len(), 64 + "  big/blob".len(), "{sum}");
    let archive = coordinator.job(&pipeline, "make")["artifacts_size"]
        .as_i64()
        .unwrap();
    assert!(
        archive > 200 << 20,
        "random bytes do not compress: {archive}"
    );

    const LIMIT: u64 = 100 << 20;
    let growth = (after.0 - before.0, after.1 - before.1);
    eprintln!(
        "peak RSS growth: agent {} KiB, coordinator {} KiB",
        growth.0 >> 10,
        growth.1 >> 10
    );
    assert!(
        growth.0 < LIMIT,
        "the agent's peak RSS grew by {} bytes",
        growth.0
    );
    assert!(
        growth.1 < LIMIT,
        "the coordinator's peak RSS grew by {} bytes",
        growth.1
    );
}
