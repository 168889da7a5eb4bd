//! Artifacts end to end: made by a first-stage job, uploaded through the coordinator,
//! extracted for the jobs that want them (and not for one that says `artifacts: false`),
//! and downloadable with the CLI; deleted once `expire_in` has passed, except those of
//! the latest successful pipeline of a ref.

use std::time::Duration;

use esteira_tests::{Coordinator, GitRepo, IMAGE, Setup, docker_lock, ensure_image, wait_until};

#[test]
fn artifacts_flow_to_the_jobs_that_need_them() {
    let file = format!(
        "image: {IMAGE}\nstages: [make, use]\n\
         make:\n  stage: make\n  script:\n    - mkdir -p out\n    - echo \"made at $CI_COMMIT_SHORT_SHA\" > out/result.txt\n    - echo scratch > out/skip.tmp\n  artifacts:\n    paths: [out/]\n    exclude: [\"out/*.tmp\"]\n\
         consume:\n  stage: use\n  script:\n    - cat out/result.txt\n    - test ! -e out/skip.tmp\n\
         without:\n  stage: use\n  needs: [{{job: make, artifacts: false}}]\n  script:\n    - test ! -e out/result.txt\n    - echo no artifacts here\n"
    );
    let setup = Setup::start("arts", &file, 1);
    let (coordinator, sha) = (&setup.coordinator, &setup.sha);
    let id = coordinator.run_pipeline("arts", "main");
    let waited = coordinator.cli(&["pipeline", "wait", &id]);
    let pipeline = coordinator.pipeline(&id);
    assert!(waited.status.success(), "{pipeline:#}");
    let consume = coordinator.job_log(&coordinator.job(&pipeline, "consume")["id"]);
    assert!(String::from_utf8_lossy(&consume).contains(&format!("made at {}", &sha[..8])));
    let without = coordinator.job_log(&coordinator.job(&pipeline, "without")["id"]);
    assert!(String::from_utf8_lossy(&without).contains("no artifacts here"));

    let make = coordinator.job(&pipeline, "make");
    assert!(make["artifacts_size"].as_i64().unwrap() > 0);
    let output = setup.root.path().join("downloaded");
    coordinator.cli_ok(&[
        "job",
        "artifacts",
        &make["id"].to_string(),
        "--output",
        output.to_str().unwrap(),
    ]);
    let result = std::fs::read_to_string(output.join("out/result.txt")).unwrap();
    assert_eq!(result, format!("made at {}\n", &sha[..8]));
    assert!(
        !output.join("out/skip.tmp").exists(),
        "excluded files stay out"
    );
    let none = coordinator.cli(&[
        "job",
        "artifacts",
        &coordinator.job(&pipeline, "consume")["id"].to_string(),
    ]);
    assert!(
        !none.status.success(),
        "a job without artifacts answers 404"
    );
}

#[test]
fn expired_artifacts_are_deleted_except_the_latest_successful_pipelines() {
    let _guard = docker_lock();
    ensure_image();
    let root = tempfile::tempdir().unwrap();
    let repo = GitRepo::init(root.path().join("repo"));
    // `use` fails on any branch but main: a pipeline of `other` fails, and is swept.
    let file = format!(
        "image: {IMAGE}\nstages: [make, use]\n\
         make:\n  stage: make\n  script:\n    - mkdir -p out\n    - echo \"from pipeline $CI_PIPELINE_ID\" > out/id.txt\n  artifacts:\n    paths: [out/]\n    expire_in: 1 sec\n\
         keep:\n  stage: make\n  script:\n    - mkdir -p kept && echo kept > kept/k.txt\n  artifacts:\n    paths: [kept/]\n    expire_in: never\n\
         use:\n  stage: use\n  needs: [make]\n  script:\n    - cat out/id.txt\n    - test \"$CI_COMMIT_REF_NAME\" = main\n"
    );
    repo.commit(&[(".gitlab-ci.yml", &file)], "expiring artifacts");
    repo.git(&["branch", "other"]);
    let coordinator =
        Coordinator::start_with(root.path(), 10, None, &["--artifacts-sweep-interval", "1"]);
    let _agent = coordinator.start_agent(root.path(), "a", "", 1);
    coordinator.cli_ok(&["project", "add", "expiry", "--repo", &repo.url()]);
    let run = |git_ref: &str, succeeds: bool| {
        let id = coordinator.run_pipeline("expiry", git_ref);
        let waited = coordinator.cli(&["pipeline", "wait", &id]);
        assert_eq!(
            waited.status.success(),
            succeeds,
            "{:#}",
            coordinator.pipeline(&id)
        );
        id
    };
    let job_of = |pipeline: &str, name: &str| {
        coordinator
            .job(&coordinator.pipeline(pipeline), name)
            .clone()
    };
    let archive = |job: &serde_json::Value| {
        coordinator
            .data_dir
            .join("artifacts")
            .join(format!("{}.tar.gz", job["id"]))
    };

    let first = run("main", true);
    let second = run("main", true);
    let used = coordinator.job_log(&job_of(&second, "use")["id"]);
    assert!(
        String::from_utf8_lossy(&used).contains(&format!("from pipeline {second}")),
        "a later pipeline's dependent job gets its own fresh artifacts"
    );

    // The first pipeline is no longer the latest success of main: its archive goes.
    let expired = wait_until(
        "the first pipeline's artifacts to expire",
        Duration::from_secs(30),
        || {
            let make = job_of(&first, "make");
            (make["artifacts_expired"] == true).then_some(make)
        },
    );
    assert!(
        !archive(&expired).exists(),
        "the archive is deleted from the data dir"
    );
    assert!(
        expired["artifacts_size"].as_i64().unwrap() > 0,
        "the size stays on record"
    );
    let refused = coordinator.cli(&["job", "artifacts", &expired["id"].to_string()]);
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("expired") && message.contains("HTTP 410"),
        "{message}"
    );
    let never = job_of(&first, "keep");
    assert_eq!(
        never["artifacts_expired"], false,
        "expire_in: never keeps them"
    );
    assert!(never["artifacts_expire_at"].is_null());
    assert!(archive(&never).exists());

    // A failed pipeline of another ref: swept by a sweep that runs after the second
    // pipeline's artifacts expired too — and kept those, the latest success of main.
    let failed = run("other", false);
    let swept = wait_until(
        "the failed pipeline's artifacts to expire",
        Duration::from_secs(30),
        || {
            let make = job_of(&failed, "make");
            (make["artifacts_expired"] == true).then_some(make)
        },
    );
    let latest = job_of(&second, "make");
    assert!(
        latest["artifacts_expire_at"].as_i64() < swept["artifacts_expire_at"].as_i64(),
        "{latest} expired before {swept}"
    );
    assert_eq!(
        latest["artifacts_expired"], false,
        "the latest success keeps its artifacts"
    );
    assert!(archive(&latest).exists());
    coordinator.cli_ok(&[
        "job",
        "artifacts",
        &latest["id"].to_string(),
        "--output",
        root.path().join("latest").to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(root.path().join("latest/out/id.txt")).unwrap(),
        format!("from pipeline {second}\n")
    );
}
