//! Draining an agent: SIGTERM makes it take no new job, lets the running one finish and
//! report, shows it as `draining` meanwhile, and then it exits; the next job waits for
//! another agent.

use std::time::Duration;

use esteira_tests::{IMAGE, Setup, wait_until};

#[test]
fn sigterm_drains_the_agent_its_job_finishes_and_no_new_one_starts() {
    let file = format!(
        "image: {IMAGE}\nstages: [one, two]\n\
         long:\n  stage: one\n  script: [echo started, sleep 3, echo finished]\n\
         next:\n  stage: two\n  script: [echo next]\n"
    );
    let mut setup = Setup::start("drain", &file, 1);
    let coordinator = &setup.coordinator;
    let id = coordinator.run_pipeline("drain", "main");
    let job_of = |name: &str| coordinator.job(&coordinator.pipeline(&id), name).clone();
    wait_until("the long job to start", Duration::from_secs(60), || {
        let log = coordinator.job_log(&job_of("long")["id"]);
        String::from_utf8_lossy(&log)
            .contains("\nstarted\n")
            .then_some(())
    });

    setup.agent.process.interrupt();
    wait_until(
        "the agent to show as draining",
        Duration::from_secs(30),
        || {
            let agents = coordinator.cli_json(&["agent", "list"]);
            (agents[0]["status"] == "draining").then_some(())
        },
    );
    let exit = setup.agent.process.wait_exit(Duration::from_secs(60));
    assert!(
        exit.is_some_and(|status| status.success()),
        "the agent exits once its job is done: {exit:?}"
    );
    let long = job_of("long");
    assert_eq!(long["status"], "success", "{long}");
    let log = String::from_utf8_lossy(&coordinator.job_log(&long["id"])).into_owned();
    assert!(log.contains("\nfinished\n"), "{log}");
    assert_eq!(
        job_of("next")["status"],
        "pending",
        "no new job on a draining agent"
    );
    let agents = coordinator.cli_json(&["agent", "list"]);
    assert_eq!(agents[0]["status"], "offline");

    let _second = coordinator.start_agent(setup.root.path(), "b", "", 1);
    assert!(coordinator.cli(&["pipeline", "wait", &id]).status.success());
    assert_eq!(job_of("next")["status"], "success");
}
