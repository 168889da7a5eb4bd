//! The walking skeleton end to end (issue 2): a coordinator and agents as separate
//! processes, real gRPC, real Docker, real git repositories, driven by the real CLI.

use std::time::Duration;

use esteira_tests::{
    Coordinator, GitRepo, IMAGE, docker_lock, ensure_image, leftover_docker_objects, wait_until,
};
use serde_json::Value;

const LONG: Duration = Duration::from_secs(120);

fn setup() -> (tempfile::TempDir, std::sync::MutexGuard<'static, ()>) {
    let guard = docker_lock();
    ensure_image();
    (tempfile::tempdir().expect("temp dir"), guard)
}

fn add_project(coordinator: &Coordinator, name: &str, repo: &GitRepo) {
    coordinator.cli_ok(&["project", "add", name, "--repo", &repo.url()]);
}

fn wait_pipeline(coordinator: &Coordinator, id: &str) -> (bool, Value) {
    let output = coordinator.cli(&["pipeline", "wait", id]);
    (output.status.success(), coordinator.pipeline(id))
}

fn status(job: &Value) -> &str {
    job["status"].as_str().unwrap_or("?")
}

/// Nothing of the jobs of this coordinator's agents is left on the Docker engine.
fn assert_no_leftovers(coordinator: &Coordinator) {
    let left = wait_until(
        "job containers and networks to be removed",
        Duration::from_secs(30),
        || {
            let left = leftover_docker_objects(&coordinator.agent_suffix);
            left.is_empty().then_some(left)
        },
    );
    assert!(left.is_empty());
}

fn position(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[test]
fn three_stages_run_in_order_to_success() {
    let (root, _guard) = setup();
    let repo = GitRepo::init(root.path().join("repo"));
    let pipeline_file = format!(
        "stages: [build, test, deploy]\n\
         image: {IMAGE}\n\
         variables:\n  GREETING: hello\n\
         compile:\n  stage: build\n  script:\n    - echo \"$GREETING from $CI_JOB_NAME at $CI_COMMIT_SHORT_SHA\"\n    - ls README.md\n\
         lint:\n  stage: build\n  before_script: [echo preparing]\n  script: [echo linting]\n\
         unit:\n  stage: test\n  coverage: '/TOTAL.+ ([0-9]{{1,3}}%)/'\n  script: [echo testing, echo 'TOTAL 120 30 75%']\n\
         ship:\n  stage: deploy\n  script: [echo shipping]\n  only: [main]\n\
         never-here:\n  stage: deploy\n  script: [echo no]\n  except: [main]\n"
    );
    let sha = repo.commit(
        &[(".gitlab-ci.yml", &pipeline_file), ("README.md", "hi\n")],
        "first",
    );
    let coordinator = Coordinator::start(root.path(), 10);
    let _agent = coordinator.start_agent(root.path(), "a", "docker", 2);
    add_project(&coordinator, "demo", &repo);
    let id = coordinator.run_pipeline("demo", "main");

    let (succeeded, pipeline) = wait_pipeline(&coordinator, &id);
    assert!(
        succeeded,
        "pipeline failed: {pipeline:#}\n{}",
        coordinator.log()
    );
    assert_eq!(pipeline["status"], "success");
    assert_eq!(pipeline["sha"], sha.as_str());
    let names: Vec<&str> = pipeline["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["compile", "lint", "unit", "ship"],
        "except: [main] excludes never-here"
    );
    let time = |name: &str, field: &str| coordinator.job(&pipeline, name)[field].as_i64().unwrap();
    for (earlier, later) in [("compile", "unit"), ("lint", "unit"), ("unit", "ship")] {
        assert!(
            time(earlier, "finished_at") <= time(later, "started_at"),
            "{later} started before {earlier} finished"
        );
    }
    assert_eq!(
        coordinator.job(&pipeline, "unit")["coverage"],
        75.0,
        "read from the log"
    );
    assert_eq!(
        pipeline["coverage"], 75.0,
        "the mean of the jobs that report one"
    );
    let log = coordinator.job_log(&coordinator.job(&pipeline, "compile")["id"]);
    let log = String::from_utf8_lossy(&log);
    assert!(
        log.contains(&format!("hello from compile at {}", &sha[..8])),
        "{log}"
    );
    assert!(
        log.contains("$ echo \"$GREETING from $CI_JOB_NAME at $CI_COMMIT_SHORT_SHA\""),
        "{log}"
    );
    let lint_log = coordinator.job_log(&coordinator.job(&pipeline, "lint")["id"]);
    let lint_log = String::from_utf8_lossy(&lint_log);
    assert!(lint_log.find("preparing").unwrap() < lint_log.find("linting").unwrap());
    assert_no_leftovers(&coordinator);
}

/// 8 MiB of bytes with `\r`, invalid UTF-8 and no trailing newline.
fn awkward_bytes() -> Vec<u8> {
    let mut state: u32 = 0x2545_f491;
    let mut bytes = Vec::with_capacity(8 << 20);
    while bytes.len() < 8 << 20 {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let byte = (state & 0xff) as u8;
        // Keep some structure: line ends, carriage returns, invalid sequences.
        match byte {
            0..=9 => bytes.push(b'\n'),
            10..=19 => bytes.push(b'\r'),
            20..=29 => bytes.extend_from_slice(&[0xff, 0xfe, 0xc3]),
            _ => bytes.push(byte),
        }
    }
    bytes.truncate(8 << 20);
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
    }
    bytes
}

#[test]
fn large_binary_log_is_stored_byte_for_byte() {
    let (root, _guard) = setup();
    let repo = GitRepo::init(root.path().join("repo"));
    let data = awkward_bytes();
    std::fs::create_dir_all(&repo.dir).unwrap();
    std::fs::write(repo.dir.join("data.bin"), &data).unwrap();
    let pipeline_file = format!(
        "noisy:\n  image: {IMAGE}\n  script:\n    - cat data.bin\n    - printf 'no newline at the end'\n"
    );
    repo.commit(&[(".gitlab-ci.yml", &pipeline_file)], "data");
    let coordinator = Coordinator::start(root.path(), 10);
    let _agent = coordinator.start_agent(root.path(), "a", "", 1);
    add_project(&coordinator, "noisy", &repo);
    let id = coordinator.run_pipeline("noisy", "main");
    let (succeeded, pipeline) = wait_pipeline(&coordinator, &id);
    assert!(succeeded, "{pipeline:#}");
    let log = coordinator.job_log(&coordinator.job(&pipeline, "noisy")["id"]);
    let at = position(&log, &data).expect("the 8 MiB output stands in the log unchanged");
    assert_eq!(
        log[..at].iter().filter(|&&b| b == 0xff).count(),
        0,
        "nothing of the data before it"
    );
    let after = &log[at + data.len()..];
    let tail = position(after, b"no newline at the end").expect("the second command's output");
    assert_eq!(
        position(&log[at + 1..], &data[..4096]),
        None,
        "the data appears once"
    );
    assert!(
        position(&after[..tail], b"$ printf").is_some(),
        "the second command is echoed"
    );
    let follow = coordinator.cli(&[
        "job",
        "log",
        "--follow",
        &coordinator.job(&pipeline, "noisy")["id"].to_string(),
    ]);
    assert_eq!(
        follow.stdout, log,
        "a finished job's followed log is the same bytes"
    );
    assert_no_leftovers(&coordinator);
}

#[test]
fn a_failing_job_fails_the_pipeline_and_skips_later_stages() {
    let (root, _guard) = setup();
    let repo = GitRepo::init(root.path().join("repo"));
    let pipeline_file = format!(
        "image: {IMAGE}\nstages: [test, release]\n\
         broken:\n  stage: test\n  script:\n    - echo about to fail\n    - exit 3\n    - echo never printed\n\
         release:\n  stage: release\n  script: [echo released]\n"
    );
    repo.commit(&[(".gitlab-ci.yml", &pipeline_file)], "broken");
    let coordinator = Coordinator::start(root.path(), 10);
    let _agent = coordinator.start_agent(root.path(), "a", "", 1);
    add_project(&coordinator, "broken", &repo);
    let id = coordinator.run_pipeline("broken", "main");
    let (succeeded, pipeline) = wait_pipeline(&coordinator, &id);
    assert!(!succeeded, "pipeline wait must exit 1");
    assert_eq!(pipeline["status"], "failed");
    let broken = coordinator.job(&pipeline, "broken");
    assert_eq!(status(broken), "failed");
    assert_eq!(broken["exit_code"], 3);
    let release = coordinator.job(&pipeline, "release");
    assert_eq!(status(release), "skipped");
    assert!(release["started_at"].is_null(), "a skipped job never ran");
    let log = String::from_utf8_lossy(&coordinator.job_log(&broken["id"])).into_owned();
    assert!(
        log.contains("$ exit 3"),
        "the failing command is shown: {log}"
    );
    assert!(log.contains("exit code 3"), "the exit code is shown: {log}");
    assert!(!log.contains("never printed"));
    assert_no_leftovers(&coordinator);
}

#[test]
fn a_killed_agent_loses_its_job_and_another_agent_runs_the_retry() {
    let (root, _guard) = setup();
    let repo = GitRepo::init(root.path().join("repo"));
    let pipeline_file = format!(
        "image: {IMAGE}\n\
         flaky:\n  retry: 1\n  script:\n    - echo \"on $CI_RUNNER_DESCRIPTION\"\n    - case \"$CI_RUNNER_DESCRIPTION\" in first-*) sleep 600;; esac\n\
         after:\n  stage: deploy\n  script: [echo after]\n"
    );
    repo.commit(&[(".gitlab-ci.yml", &pipeline_file)], "flaky");
    let lease_timeout = 3;
    let coordinator = Coordinator::start(root.path(), lease_timeout);
    let mut first = coordinator.start_agent(root.path(), "first", "", 1);
    add_project(&coordinator, "flaky", &repo);
    let id = coordinator.run_pipeline("flaky", "main");
    let job_id = wait_until("the first agent to run the job", LONG, || {
        let pipeline = coordinator.pipeline(&id);
        let job = coordinator.job(&pipeline, "flaky").clone();
        let log = coordinator.job_log(&job["id"]);
        String::from_utf8_lossy(&log)
            .contains("on first")
            .then_some(job["id"].clone())
    });
    first.process.kill();
    let killed_at = std::time::Instant::now();
    let _second = coordinator.start_agent(root.path(), "second", "", 1);
    let lost = wait_until("the job to be lost", LONG, || {
        let pipeline = coordinator.pipeline(&id);
        let job = pipeline["jobs"]
            .as_array()?
            .iter()
            .find(|j| j["id"] == job_id)?
            .clone();
        (job["status"] == "lost").then_some(job)
    });
    assert!(
        killed_at.elapsed() < Duration::from_secs(lease_timeout * 3 + 5),
        "lost after {:?}",
        killed_at.elapsed()
    );
    assert!(
        lost["failure_message"]
            .as_str()
            .unwrap()
            .contains("lease expired"),
        "{lost}"
    );
    let (succeeded, pipeline) = wait_pipeline(&coordinator, &id);
    assert!(succeeded, "{pipeline:#}");
    let retry = coordinator.job(&pipeline, "flaky");
    assert_eq!(retry["attempt"], 2);
    assert_ne!(
        retry["agent_id"], lost["agent_id"],
        "the retry ran on the second agent"
    );
    let log = String::from_utf8_lossy(&coordinator.job_log(&retry["id"])).into_owned();
    assert!(log.contains("on second"), "{log}");
    // The first agent's leftover container goes when that agent comes back.
    let _first_again = coordinator.start_agent(root.path(), "first", "", 1);
    assert_no_leftovers(&coordinator);
}

#[test]
fn a_killed_coordinator_resumes_the_pipeline_without_losing_or_repeating_anything() {
    let (root, _guard) = setup();
    let repo = GitRepo::init(root.path().join("repo"));
    let pipeline_file = format!(
        "image: {IMAGE}\nstages: [first, second]\n\
         slow:\n  stage: first\n  script:\n    - for i in $(seq 1 60); do echo \"line $i\"; sleep 0.1; done\n\
         next:\n  stage: second\n  script: [echo next ran]\n"
    );
    repo.commit(&[(".gitlab-ci.yml", &pipeline_file)], "slow");
    let mut coordinator = Coordinator::start(root.path(), 10);
    let _agent = coordinator.start_agent(root.path(), "a", "", 1);
    add_project(&coordinator, "slow", &repo);
    let id = coordinator.run_pipeline("slow", "main");
    let job_id = wait_until("the slow job to print", LONG, || {
        let pipeline = coordinator.pipeline(&id);
        let job = coordinator.job(&pipeline, "slow").clone();
        let log = coordinator.job_log(&job["id"]);
        String::from_utf8_lossy(&log)
            .contains("line 5\n")
            .then_some(job["id"].clone())
    });
    coordinator.kill();
    coordinator.restart();
    let (succeeded, pipeline) = wait_pipeline(&coordinator, &id);
    assert!(succeeded, "{pipeline:#}\n{}", coordinator.log());
    let jobs = pipeline["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2, "no job ran twice: {pipeline:#}");
    assert_eq!(coordinator.job(&pipeline, "slow")["id"], job_id);
    let log = String::from_utf8_lossy(&coordinator.job_log(&job_id)).into_owned();
    let lines: Vec<&str> = log
        .lines()
        .filter(|line| line.starts_with("line "))
        .collect();
    let expected: Vec<String> = (1..=60).map(|i| format!("line {i}")).collect();
    assert_eq!(
        lines, expected,
        "the log is complete, in order, nothing doubled"
    );
    assert_no_leftovers(&coordinator);
}

#[test]
fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let (root, _guard) = setup();
    let repo = GitRepo::init(root.path().join("repo"));
    repo.commit(
        &[(
            ".gitlab-ci.yml",
            "job:\n  image: esteira-test/no-such-image:1\n  script: [echo hi]\n",
        )],
        "missing image",
    );
    repo.git(&["checkout", "--quiet", "-b", "broken-yaml"]);
    repo.commit(
        &[(".gitlab-ci.yml", "job:\n  script: [echo hi\n  stage: [\n")],
        "bad yaml",
    );
    let coordinator = Coordinator::start(root.path(), 10);
    add_project(&coordinator, "bad", &repo);

    let unknown = coordinator.cli(&["pipeline", "run", "nope", "--ref", "main"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("project 'nope' does not exist"));
    let no_ref = coordinator.cli(&["pipeline", "run", "bad", "--ref", "no-such-branch"]);
    assert!(!no_ref.status.success());
    assert!(
        String::from_utf8_lossy(&no_ref.stderr).contains("ref 'no-such-branch' does not exist")
    );
    let unparsable = coordinator.cli(&["pipeline", "run", "bad", "--ref", "broken-yaml"]);
    assert!(!unparsable.status.success());
    let message = String::from_utf8_lossy(&unparsable.stderr);
    assert!(
        message.contains(".gitlab-ci.yml:"),
        "the error names the file and line: {message}"
    );
    let listed = coordinator.cli_json(&["pipeline", "list"]);
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(0),
        "no pipeline was stored"
    );

    // A wrong registration token: refused, nothing stored.
    let refused = std::process::Command::new(esteira_tests::binary("esteira-agent"))
        .args([
            "--coordinator",
            &coordinator.grpc_url(),
            "--registration-token",
            "wrong",
        ])
        .args(["--name", "intruder", "--work-dir"])
        .arg(root.path().join("intruder"))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("wrong registration token"));
    assert_eq!(
        coordinator
            .cli_json(&["agent", "list"])
            .as_array()
            .map(Vec::len),
        Some(0)
    );

    // An image that does not exist: the job fails naming it.
    let _agent = coordinator.start_agent(root.path(), "a", "", 1);
    let id = coordinator.run_pipeline("bad", "main");
    let (succeeded, pipeline) = wait_pipeline(&coordinator, &id);
    assert!(!succeeded);
    let job = coordinator.job(&pipeline, "job");
    assert_eq!(status(job), "failed");
    let reason = job["failure_message"].as_str().unwrap_or_default();
    assert!(
        reason.contains("esteira-test/no-such-image:1"),
        "reason: {reason}"
    );
    assert_no_leftovers(&coordinator);
}
