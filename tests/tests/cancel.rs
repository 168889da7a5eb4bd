//! Cancel through the whole system: `esteira job cancel` on a running job reaches the
//! agent within a second, the script is stopped, `after_script` runs, the job ends as
//! canceled and the pipeline with it.

use std::time::{Duration, Instant};

use esteira_tests::{IMAGE, Setup, wait_until};

#[test]
fn a_canceled_job_stops_within_seconds_and_runs_its_after_script() {
    let file = format!(
        "image: {IMAGE}\n\
         long:\n  script:\n    - echo started\n    - sleep 600\n  after_script:\n    - echo after script ran\n\
         later:\n  stage: deploy\n  script: [echo never]\n"
    );
    let setup = Setup::start("long", &file, 1);
    let coordinator = &setup.coordinator;
    let id = coordinator.run_pipeline("long", "main");
    let job = wait_until(
        "the job to start its script",
        Duration::from_secs(60),
        || {
            let pipeline = coordinator.pipeline(&id);
            let job = coordinator.job(&pipeline, "long").clone();
            let log = coordinator.job_log(&job["id"]);
            String::from_utf8_lossy(&log)
                .contains("\nstarted\n")
                .then_some(job["id"].clone())
        },
    );
    let asked = Instant::now();
    coordinator.cli_ok(&["job", "cancel", &job.to_string()]);
    let waited = coordinator.cli(&["pipeline", "wait", &id]);
    let elapsed = asked.elapsed();
    assert!(!waited.status.success());
    assert!(
        elapsed < Duration::from_secs(10),
        "the job took {elapsed:?} to end"
    );
    let pipeline = coordinator.pipeline(&id);
    assert_eq!(pipeline["status"], "canceled");
    assert_eq!(coordinator.job(&pipeline, "long")["status"], "canceled");
    assert_eq!(coordinator.job(&pipeline, "later")["status"], "skipped");
    let log = String::from_utf8_lossy(&coordinator.job_log(&job)).into_owned();
    assert!(log.contains("after script ran"), "{log}");
}
