//! Environments end to end: deploy jobs record deployments, `env show` lists them in
//! order, `env rollback` runs an earlier deploy again; a manual job waits for `job play`.

use std::time::Duration;

use esteira_tests::{Coordinator, GitRepo, IMAGE, Setup, docker_lock, ensure_image, wait_until};
use serde_json::Value;

fn pipeline_file(message: &str) -> String {
    format!(
        "image: {IMAGE}\nstages: [test, deploy]\n\
         test:\n  stage: test\n  script: [echo \"{message}\"]\n\
         deploy-production:\n  stage: deploy\n  environment: {{name: production, url: \"http://127.0.0.1:18080\"}}\n  resource_group: production\n  script: [echo \"deploying $CI_COMMIT_SHORT_SHA\"]\n\
         smoke:\n  stage: deploy\n  when: manual\n  script: [echo smoke]\n"
    )
}

fn run_to_manual(coordinator: &Coordinator) -> (String, Value) {
    let id = coordinator.run_pipeline("app", "master");
    let waited = coordinator.cli(&["pipeline", "wait", &id]);
    assert!(
        waited.status.success(),
        "a manual job with allow_failure does not block"
    );
    (id.clone(), coordinator.pipeline(&id))
}

#[test]
fn deployments_are_recorded_listed_and_rolled_back() {
    let _guard = docker_lock();
    ensure_image();
    let root = tempfile::tempdir().unwrap();
    let repo = GitRepo::init(root.path().join("repo"));
    repo.git(&["checkout", "--quiet", "-b", "master"]);
    let first = repo.commit(&[(".gitlab-ci.yml", &pipeline_file("one"))], "first");
    let coordinator = Coordinator::start(root.path(), 10);
    let _agent = coordinator.start_agent(root.path(), "a", "", 1);
    coordinator.cli_ok(&["project", "add", "app", "--repo", &repo.url()]);

    let (_, pipeline) = run_to_manual(&coordinator);
    let smoke = coordinator.job(&pipeline, "smoke");
    assert_eq!(smoke["status"], "manual", "a manual job waits");
    coordinator.cli_ok(&["job", "play", &smoke["id"].to_string()]);
    let played = coordinator.cli(&["pipeline", "wait", &pipeline["id"].to_string()]);
    assert!(played.status.success());
    let pipeline = coordinator.pipeline(&pipeline["id"].to_string());
    assert_eq!(coordinator.job(&pipeline, "smoke")["status"], "success");

    let second = repo.commit(&[(".gitlab-ci.yml", &pipeline_file("two"))], "second");
    run_to_manual(&coordinator);
    let production = coordinator.cli_json(&["env", "show", "app", "production"]);
    assert_eq!(production["tier"], "production");
    assert_eq!(production["url"], "http://127.0.0.1:18080");
    let history: Vec<&str> = production["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["sha"].as_str().unwrap())
        .collect();
    assert_eq!(
        history,
        [second.as_str(), first.as_str()],
        "every deployment, newest first"
    );
    assert_eq!(production["current"]["sha"], second.as_str());

    coordinator.cli_ok(&["env", "rollback", "app", "production"]);
    let first_pipeline = coordinator.cli_json(&["pipeline", "list", "--project", "app"]);
    let oldest = first_pipeline.as_array().unwrap().last().unwrap()["id"].to_string();
    assert!(
        coordinator
            .cli(&["pipeline", "wait", &oldest])
            .status
            .success()
    );
    let production = coordinator.cli_json(&["env", "show", "app", "production"]);
    assert_eq!(
        production["history"].as_array().unwrap().len(),
        3,
        "the rollback is a new deployment"
    );
    assert_eq!(
        production["current"]["sha"],
        first.as_str(),
        "production runs the first commit again"
    );
    assert_eq!(production["current"]["triggered_by"], "rollback");
    let oldest = &production["history"][2]["triggered_by"];
    assert!(
        oldest.as_str().unwrap().starts_with("api by esteira tests"),
        "who started the first deployment: {oldest}"
    );
    let listed = coordinator.cli_ok(&["env", "list", "app"]);
    let mut lines = listed.lines();
    let header = lines.next().unwrap_or_default();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["NAME", "TIER", "CURRENT", "DEPLOYMENT"],
        "{listed}"
    );
    let row = lines.next().unwrap_or_default();
    assert!(row.starts_with("production  production  #"), "{listed}");
}

#[test]
fn deploys_of_one_resource_group_run_one_after_the_other() {
    let file = format!(
        "deploy:\n  image: {IMAGE}\n  resource_group: production\n  script: [echo deploying, sleep 2]\n"
    );
    let setup = Setup::start("app", &file, 2);
    let coordinator = &setup.coordinator;
    let first = coordinator.run_pipeline("app", "main");
    let second = coordinator.run_pipeline("app", "main");
    // `--progress` follows the pipeline's live stream: each status of the job as it comes.
    let followed = coordinator.cli(&["pipeline", "wait", &first, "--progress"]);
    assert!(followed.status.success());
    let statuses: Vec<String> = String::from_utf8_lossy(&followed.stdout)
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            (words.get(1) == Some(&"deploy")).then(|| words[2].to_string())
        })
        .collect();
    assert_eq!(
        statuses.last().map(String::as_str),
        Some("success"),
        "{statuses:?}"
    );
    assert!(statuses.contains(&"running".to_string()), "{statuses:?}");
    assert!(
        coordinator
            .cli(&["pipeline", "wait", &second])
            .status
            .success()
    );
    let deploy = |id: &str| coordinator.job(&coordinator.pipeline(id), "deploy").clone();
    let (a, b) = (deploy(&first), deploy(&second));
    assert!(
        a["finished_at"].as_i64().unwrap() <= b["started_at"].as_i64().unwrap(),
        "the second deploy started before the first finished: {a} {b}"
    );
}

#[test]
fn newest_first_deploys_the_newest_pipeline_and_skips_the_outdated_one() {
    let file = format!(
        "deploy:\n  image: {IMAGE}\n  environment: production\n  resource_group: production\n  \
         script: [echo deploying, sleep 3]\n"
    );
    let setup = Setup::start("app", &file, 3);
    let coordinator = &setup.coordinator;
    coordinator.cli_ok(&[
        "resource-group",
        "set",
        "app",
        "production",
        "--process-mode",
        "newest_first",
    ]);
    assert_eq!(
        coordinator.cli_ok(&["resource-group", "list", "app"]),
        "NAME        PROCESS MODE\nproduction  newest_first\n"
    );
    let deploy = |id: &str| coordinator.job(&coordinator.pipeline(id), "deploy").clone();
    let first = coordinator.run_pipeline("app", "main");
    wait_until("the first deploy to run", Duration::from_secs(30), || {
        (deploy(&first)["status"] == "running").then_some(())
    });
    let older = coordinator.run_pipeline("app", "main");
    let newest = coordinator.run_pipeline("app", "main");
    for id in [&first, &newest] {
        assert!(coordinator.cli(&["pipeline", "wait", id]).status.success());
    }
    coordinator.cli(&["pipeline", "wait", &older]);
    assert_eq!(
        coordinator.pipeline(&older)["status"],
        "skipped",
        "a pipeline whose only job was skipped"
    );
    let (a, b, c) = (deploy(&first), deploy(&older), deploy(&newest));
    assert_eq!(a["status"], "success");
    assert_eq!(
        c["status"], "success",
        "the newest pipeline's deploy goes next"
    );
    assert!(
        a["finished_at"].as_i64() <= c["started_at"].as_i64(),
        "one at a time: {a} {c}"
    );
    assert_eq!(b["status"], "skipped", "{b}");
    let reason = b["failure_message"].as_str().unwrap_or_default();
    assert!(reason.contains("outdated deployment"), "{reason}");
    let production = coordinator.cli_json(&["env", "show", "app", "production"]);
    let deployed: Vec<String> = production["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["pipeline_id"].to_string())
        .collect();
    assert_eq!(
        deployed,
        [newest, first],
        "the skipped deploy deployed nothing"
    );
}
