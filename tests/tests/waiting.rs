//! Why a job waits, through the whole system: `GET /api/v1/jobs/{id}` (as `esteira job
//! show --json` prints it) and `esteira job show` name what holds each job back — a tag no
//! online agent has (until such an agent starts and runs it), the resource group's
//! holder, the unfinished jobs it needs, its earlier stages, a manual action.

use std::time::Duration;

use esteira_tests::{IMAGE, Setup, wait_until};
use serde_json::Value;

#[test]
fn a_job_that_has_not_started_says_what_it_waits_for() {
    let file = format!(
        "image: {IMAGE}\n\
         stages: [build, deploy]\n\
         lock-a:\n  stage: build\n  needs: []\n  resource_group: lock\n  script: [sleep 600]\n\
         lock-b:\n  stage: build\n  needs: []\n  resource_group: lock\n  script: [sleep 600]\n\
         gpu:\n  stage: build\n  needs: []\n  tags: [gpu]\n  script: [echo on the gpu agent]\n\
         approve:\n  stage: build\n  needs: []\n  when: manual\n  script: [echo approved]\n\
         package:\n  stage: deploy\n  needs: [lock-a, lock-b]\n  script: [echo packaged]\n\
         report:\n  stage: deploy\n  script: [echo reported]\n"
    );
    let setup = Setup::start("waits", &file, 2);
    let coordinator = &setup.coordinator;
    let pipeline_id = coordinator.run_pipeline("waits", "main");
    let job_id = |name: &str| {
        let pipeline = coordinator.pipeline(&pipeline_id);
        coordinator.job(&pipeline, name)["id"].to_string()
    };
    let show = |name: &str| coordinator.cli_json(&["job", "show", &job_id(name)]);
    let shown = |name: &str| coordinator.cli_ok(&["job", "show", &job_id(name)]);

    let (holder, other) = wait_until(
        "one job of the resource group to run",
        Duration::from_secs(60),
        || {
            let a = show("lock-a");
            let b = show("lock-b");
            match (a["status"].as_str(), b["status"].as_str()) {
                (Some("running"), _) => Some((a, b)),
                (_, Some("running")) => Some((b, a)),
                _ => None,
            }
        },
    );
    assert_eq!(holder["waiting"], Value::Null);
    let waiting = &other["waiting"];
    assert_eq!(waiting["reason"], "resource_group", "{other}");
    assert_eq!(waiting["group"], "lock");
    assert_eq!(waiting["holder"]["job"]["id"], holder["id"]);
    assert_eq!(waiting["holder"]["pipeline"].to_string(), pipeline_id);
    let text = shown(other["name"].as_str().unwrap_or_default());
    let expected = format!(
        "waiting: resource group lock, held by job #{} {} (running) of pipeline {pipeline_id}",
        holder["id"],
        holder["name"].as_str().unwrap_or_default()
    );
    assert!(text.contains(&expected), "{text}");

    let gpu = show("gpu");
    assert_eq!(gpu["status"], "pending");
    assert_eq!(gpu["waiting"]["reason"], "no_online_agent", "{gpu}");
    assert_eq!(gpu["waiting"]["tags"], serde_json::json!(["gpu"]));
    assert_eq!(gpu["waiting"]["offline"], serde_json::json!([]));
    let text = shown("gpu");
    assert!(
        text.contains(
            "waiting: no online agent with the tags gpu, and no registered agent would take it"
        ),
        "{text}"
    );

    let package = show("package");
    assert_eq!(package["waiting"]["reason"], "needs", "{package}");
    let needed: Vec<&str> = package["waiting"]["jobs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|job| job["name"].as_str())
        .collect();
    assert_eq!(needed, ["lock-a", "lock-b"]);
    let text = shown("package");
    assert!(text.contains("waiting: the jobs it needs, #"), "{text}");
    assert!(
        text.contains(" lock-a (") && text.contains(" lock-b ("),
        "{text}"
    );

    let report = show("report");
    assert_eq!(report["waiting"]["reason"], "stage", "{report}");
    let text = shown("report");
    assert!(
        text.contains("waiting: the earlier stages' jobs #"),
        "{text}"
    );
    assert!(text.contains(" gpu (pending)"), "{text}");

    let approve = show("approve");
    assert_eq!(approve["status"], "manual");
    assert_eq!(approve["waiting"]["reason"], "manual", "{approve}");
    let text = shown("approve");
    assert!(
        text.contains(&format!(
            "waiting: someone to start this manual job (esteira job play {})",
            approve["id"]
        )),
        "{text}"
    );

    let _gpu_agent = coordinator.start_agent(setup.root.path(), "gpu", "gpu", 1);
    let gpu = wait_until(
        "the gpu job to run on the agent that has the tag",
        Duration::from_secs(60),
        || {
            let gpu = show("gpu");
            (gpu["status"] == "success").then_some(gpu)
        },
    );
    assert_eq!(gpu["waiting"], Value::Null);

    coordinator.cli_ok(&["pipeline", "cancel", &pipeline_id]);
    let waited = coordinator.cli(&["pipeline", "wait", &pipeline_id]);
    assert!(!waited.status.success());
}
