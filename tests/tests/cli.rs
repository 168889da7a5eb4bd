//! The `esteira` CLI's messages and exit codes against a real coordinator (issue 18): a
//! missing token and a refused one say different things and exit 3; the API's own message
//! shows when it refuses a request (exit 1); usage errors stay clap's exit 2; cancelling a
//! finished pipeline says so and exits 1; `pipeline retry` retries the failed jobs (one
//! request, `POST /api/v1/pipelines/{id}/retry`); the pipeline list has stages and
//! durations; `env list`, `variable list` and `resource-group list` have a header.

use std::process::{Command, Output};
use std::time::Duration;

use esteira_tests::{Coordinator, GitRepo, IMAGE, Setup, binary, wait_until};

/// `esteira ARGS` against `coordinator` with `token` (none: no token at all).
fn esteira(coordinator: &Coordinator, token: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new(binary("esteira"));
    command
        .env_remove("ESTEIRA_TOKEN")
        .args(["--server", &coordinator.url()]);
    if let Some(token) = token {
        command.args(["--token", token]);
    }
    command.args(args).output().expect("run esteira")
}

/// Asserts the exit code and that stderr holds each of `needles`; returns stderr.
fn fails(output: &Output, code: i32, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.code(),
        Some(code),
        "exit code; stderr: {stderr}"
    );
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} in {stderr:?}");
    }
    stderr
}

#[test]
fn errors_say_what_went_wrong_with_distinct_exit_codes() {
    let root = tempfile::tempdir().expect("temp dir");
    let repo = GitRepo::init(root.path().join("repo"));
    repo.commit(
        &[(
            ".gitlab-ci.yml",
            &format!("image: {IMAGE}\nbuild:\n  script: [echo built]\n"),
        )],
        "A pipeline no agent runs",
    );
    let coordinator = Coordinator::start(root.path(), 10);
    let add = ["project", "add", "cli", "--repo", &repo.url()];

    let missing = esteira(&coordinator, None, &add);
    let missing = fails(
        &missing,
        3,
        &["this needs a token: pass --token or set ESTEIRA_TOKEN"],
    );
    let wrong = esteira(&coordinator, Some("not-the-token"), &add);
    let wrong = fails(
        &wrong,
        3,
        &["the coordinator refused the token given by --token or ESTEIRA_TOKEN"],
    );
    assert_ne!(missing, wrong);
    coordinator.cli_ok(&add);

    // The API's own message, listing the statuses it knows.
    let bogus = coordinator.cli(&["pipeline", "list", "--status", "bogus"]);
    let bogus = fails(&bogus, 1, &["bogus", "running", "(HTTP 400)"]);
    assert!(!bogus.contains("no details"), "{bogus}");
    let unknown = coordinator.cli(&["pipeline", "run", "nowhere", "--ref", "main"]);
    fails(
        &unknown,
        1,
        &["project 'nowhere' does not exist (HTTP 404)"],
    );

    // Usage errors are clap's, exit 2.
    let usage = coordinator.cli(&["pipeline", "show", "not-a-number"]);
    fails(&usage, 2, &["invalid value 'not-a-number'"]);

    // Cancelling: once, then it is finished.
    let id = coordinator.run_pipeline("cli", "main");
    assert_eq!(
        coordinator.cli_ok(&["pipeline", "cancel", &id]),
        format!("pipeline {id}: cancel requested\n")
    );
    wait_until("the pipeline canceled", Duration::from_secs(30), || {
        (coordinator.pipeline(&id)["status"] == "canceled").then_some(())
    });
    let again = coordinator.cli(&["pipeline", "cancel", &id]);
    fails(
        &again,
        1,
        &[&format!(
            "pipeline {id} already finished (canceled): nothing to cancel"
        )],
    );
    let retry = coordinator.cli(&["pipeline", "retry", &id]);
    fails(&retry, 1, &["has no failed jobs to retry (it is canceled)"]);

    // Tables have a header, even empty.
    let listed = coordinator.cli_ok(&["env", "list", "cli"]);
    assert_eq!(listed, "NAME  TIER  CURRENT DEPLOYMENT\n");
    let listed = coordinator.cli_ok(&["variable", "list", "cli"]);
    assert_eq!(listed, "KEY  FLAGS\n");
    let listed = coordinator.cli_ok(&["resource-group", "list", "cli"]);
    assert_eq!(listed, "NAME  PROCESS MODE\n");
    let listed = coordinator.cli_json(&["resource-group", "list", "cli"]);
    assert_eq!(listed, serde_json::json!([]));
}

#[test]
fn pipeline_retry_runs_the_failed_jobs_again() {
    let setup = Setup::start(
        "retry",
        &format!("image: {IMAGE}\nfine:\n  script: [echo fine]\nbroken:\n  script: [exit 4]\n"),
        2,
    );
    let coordinator = &setup.coordinator;
    let id = coordinator.run_pipeline("retry", "main");
    let wait = coordinator.cli(&["pipeline", "wait", &id]);
    fails(&wait, 1, &[&format!("pipeline {id}: failed")]);
    // The list gives each pipeline's stages and the time its jobs ran: at least the
    // longest job, at most all of them one after the other.
    let listed = coordinator.cli_json(&["pipeline", "list"]);
    let item = listed
        .as_array()
        .and_then(|all| all.iter().find(|p| p["id"].as_i64() == id.parse().ok()))
        .unwrap_or_else(|| panic!("pipeline {id} in {listed}"));
    assert_eq!(item["stages"], serde_json::json!(["test"]), "{item}");
    let ran: Vec<i64> = coordinator.pipeline(&id)["jobs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|job| Some(job["finished_at"].as_i64()? - job["started_at"].as_i64()?))
        .collect();
    let duration = item["duration_ms"].as_i64().unwrap_or(-1);
    let longest = ran.iter().copied().max().unwrap_or(0);
    assert!(
        ran.len() == 2 && (longest..=ran.iter().sum()).contains(&duration),
        "{duration} ms for jobs of {ran:?} ms"
    );
    let pipeline = coordinator.pipeline(&id);
    let broken = coordinator.job(&pipeline, "broken")["id"].to_string();
    let retried = coordinator.cli_ok(&["pipeline", "retry", &id]);
    let pipeline = coordinator.pipeline(&id);
    let again = coordinator.job(&pipeline, "broken");
    assert_eq!(again["attempt"], 2, "{pipeline}");
    assert_eq!(
        retried,
        format!("job {broken} (broken) retried as job {}\n", again["id"])
    );
    let attempts = pipeline["jobs"]
        .as_array()
        .map(|jobs| jobs.iter().filter(|job| job["name"] == "fine").count());
    assert_eq!(attempts, Some(1), "the passed job is not retried");
}
