//! The project esteira was made for, end to end: `examples/seed-api` and its pipeline
//! (test → release → deploy) pushed with git to a polled remote, built and pushed to a
//! registry that wants a password, deployed by the staging and production agents, with
//! a failed health check, a rollback, and the coverage figure on the pipeline.

use std::time::Duration;

use esteira_tests::seed::{PROJECT, SeedStack, http_get};
use esteira_tests::{docker_lock, wait_until};
use serde_json::Value;

fn job_names(pipeline: &Value) -> Vec<String> {
    let mut names: Vec<String> = pipeline["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|job| job["name"].as_str().unwrap_or("?").to_string())
        .collect();
    names.sort();
    names
}

/// Pushes `HEAD` to `branch` and waits for the pipeline that push started.
fn push_and_finish(stack: &SeedStack, branch: &str) -> (String, Value, bool) {
    let sha = stack.push(branch);
    let started = stack.pipeline_of(&sha, branch);
    let (pipeline, passed) = stack.finish(&started);
    (sha, pipeline, passed)
}

fn deployments(stack: &SeedStack, env: &str) -> Vec<(String, String)> {
    let shown = stack.coordinator.cli_json(&["env", "show", PROJECT, env]);
    shown["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|d| {
            (
                d["sha"].as_str().unwrap_or("?").to_string(),
                d["status"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect()
}

#[test]
fn the_seed_pipeline_tests_releases_deploys_and_rolls_back() {
    let _guard = docker_lock();
    let root = tempfile::tempdir().unwrap();
    let stack = SeedStack::start(root.path());
    let coordinator = &stack.coordinator;

    // A feature branch only tests, and the test job's coverage is on the pipeline.
    let (_, feature, passed) = push_and_finish(&stack, "feature/items");
    assert!(passed, "{feature:#}\n{}", coordinator.log());
    assert_eq!(job_names(&feature), ["style", "unit-tests"]);
    let coverage = feature["coverage"].as_f64().expect("pipeline coverage");
    assert!(
        (50.0..=100.0).contains(&coverage),
        "coverage {coverage} read from `coverage report`"
    );
    let tests_log = coordinator.job_log(&coordinator.job(&feature, "unit-tests")["id"]);
    assert!(String::from_utf8_lossy(&tests_log).contains("TOTAL"));
    let (status, badge) = http_get(
        coordinator.http_port,
        &format!("/badges/{PROJECT}/coverage.svg?ref=feature/items"),
    )
    .expect("the coverage badge");
    assert_eq!(status, 200);
    assert!(
        badge.contains(&format!("{coverage:.2}%")),
        "the badge shows {coverage:.2}%: {badge}"
    );

    // devel: test, release and the staging deploy; staging answers with the commit.
    let (devel_sha, devel, passed) = push_and_finish(&stack, "devel");
    assert!(passed, "{devel:#}\n{}", coordinator.log());
    assert_eq!(
        job_names(&devel),
        ["deploy-staging", "release", "style", "unit-tests"]
    );
    assert_eq!(
        stack.version_on(stack.staging_port).as_deref(),
        Some(devel_sha.as_str())
    );
    assert_eq!(
        http_get(stack.production_port, "/version"),
        None,
        "nothing deployed to production yet"
    );
    let release_log = coordinator.job_log(&coordinator.job(&devel, "release")["id"]);
    assert!(
        !String::from_utf8_lossy(&release_log).contains("Seed-registry-pw"),
        "the registry password never reaches a log"
    );

    // master, a newer commit: production gets it, staging keeps devel's.
    stack
        .work
        .commit(&[("CHANGELOG.md", "items API\n")], "Add a changelog");
    let (first_sha, master, passed) = push_and_finish(&stack, "master");
    assert!(passed, "{master:#}");
    assert!(job_names(&master).contains(&"deploy-production".to_string()));
    assert_eq!(
        stack.version_on(stack.production_port).as_deref(),
        Some(first_sha.as_str())
    );
    assert_eq!(
        stack.version_on(stack.staging_port).as_deref(),
        Some(devel_sha.as_str()),
        "staging untouched by master"
    );

    // A release whose service never becomes healthy: production keeps serving.
    let dockerfile = std::fs::read_to_string(stack.work.dir.join("Dockerfile")).unwrap();
    let broken = dockerfile.replace(
        "CMD [\"python3\", \"/app/api.py\"]",
        "CMD [\"python3\", \"/app/missing.py\"]",
    );
    assert_ne!(broken, dockerfile);
    stack
        .work
        .commit(&[("Dockerfile", &broken)], "Start the wrong file");
    let (broken_sha, failed, passed) = push_and_finish(&stack, "master");
    assert!(!passed, "an unhealthy deploy fails the pipeline");
    let deploy = coordinator.job(&failed, "deploy-production");
    assert_eq!(deploy["status"], "failed");
    let reason = deploy["failure_message"].as_str().unwrap_or_default();
    assert!(
        reason.contains("health"),
        "the health check's reason: {reason}"
    );
    assert_eq!(
        stack.version_on(stack.production_port).as_deref(),
        Some(first_sha.as_str()),
        "the previous version still serves"
    );

    // A good release after it, then `env rollback` back to the one before.
    stack
        .work
        .commit(&[("Dockerfile", &dockerfile)], "Start the right file again");
    let (second_sha, _, passed) = push_and_finish(&stack, "master");
    assert!(passed);
    assert_eq!(
        stack.version_on(stack.production_port).as_deref(),
        Some(second_sha.as_str())
    );
    coordinator.cli_ok(&["env", "rollback", PROJECT, "production"]);
    wait_until(
        "production to run the first release again",
        Duration::from_secs(120),
        || (stack.version_on(stack.production_port)? == first_sha).then_some(()),
    );
    let expected = [
        (first_sha.clone(), "success".to_string()),
        (second_sha, "success".to_string()),
        (broken_sha, "failed".to_string()),
        (first_sha, "success".to_string()),
    ];
    wait_until(
        "the rollback recorded as a deployment",
        Duration::from_secs(30),
        || (deployments(&stack, "production") == expected).then_some(()),
    );
    assert_eq!(
        deployments(&stack, "staging"),
        [(devel_sha, "success".to_string())]
    );
}
