//! Artifacts end to end: made by a first-stage job, uploaded through the coordinator,
//! extracted for the jobs that want them (and not for one that says `artifacts: false`),
//! and downloadable with the CLI.

use esteira_tests::{Coordinator, GitRepo, IMAGE, docker_lock, ensure_image};

#[test]
fn artifacts_flow_to_the_jobs_that_need_them() {
    let _guard = docker_lock();
    ensure_image();
    let root = tempfile::tempdir().unwrap();
    let repo = GitRepo::init(root.path().join("repo"));
    let file = format!(
        "image: {IMAGE}\nstages: [make, use]\n\
         make:\n  stage: make\n  script:\n    - mkdir -p out\n    - echo \"made at $CI_COMMIT_SHORT_SHA\" > out/result.txt\n    - echo scratch > out/skip.tmp\n  artifacts:\n    paths: [out/]\n    exclude: [\"out/*.tmp\"]\n\
         consume:\n  stage: use\n  script:\n    - cat out/result.txt\n    - test ! -e out/skip.tmp\n\
         without:\n  stage: use\n  needs: [{{job: make, artifacts: false}}]\n  script:\n    - test ! -e out/result.txt\n    - echo no artifacts here\n"
    );
    let sha = repo.commit(&[(".gitlab-ci.yml", &file)], "artifacts");
    let coordinator = Coordinator::start(root.path(), 10);
    let _agent = coordinator.start_agent(root.path(), "a", "", 1);
    coordinator.cli_ok(&["project", "add", "arts", "--repo", &repo.url()]);
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
    let output = root.path().join("downloaded");
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
