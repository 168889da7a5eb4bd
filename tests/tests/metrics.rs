//! The coordinator's `/metrics` end to end (issue 13): a real coordinator and agents run
//! a pipeline in Docker; the scrape parses as Prometheus text and its series follow what
//! happened: jobs leased and finished, their queue wait, HTTP requests and gRPC calls, and
//! the queue of a tag set that no agent serves until one starts.

use std::time::Duration;

use esteira_tests::openmetrics::{Sample, parse, value};
use esteira_tests::seed::http_get;
use esteira_tests::{Coordinator, IMAGE, Setup, wait_until};

const LONG: Duration = Duration::from_secs(120);

fn scrape(coordinator: &Coordinator) -> Vec<Sample> {
    let (status, body) = http_get(coordinator.http_port, "/metrics").expect("GET /metrics");
    assert_eq!(status, 200, "{body}");
    parse(&body).unwrap_or_else(|error| panic!("/metrics is not Prometheus text: {error}\n{body}"))
}

#[test]
fn metrics_follow_jobs_agents_and_the_queue() {
    let pipeline_file = format!(
        "image: {IMAGE}\n\
         plain:\n  script: [echo plain]\n\
         on-gpu:\n  tags: [gpu]\n  script: [echo gpu]\n"
    );
    let setup = Setup::start("metered", &pipeline_file, 1);
    let coordinator = &setup.coordinator;
    let id = coordinator.run_pipeline("metered", "main");

    let pending_gpu =
        |samples: &[Sample]| value(samples, "esteira_queue_pending_jobs", &[("tags", "gpu")]);
    let samples = wait_until("the plain job to finish, the gpu one to wait", LONG, || {
        let samples = scrape(coordinator);
        let finished = value(
            &samples,
            "esteira_jobs_finished_total",
            &[("result", "success")],
        );
        (finished == Some(1.0) && pending_gpu(&samples) == Some(1.0)).then_some(samples)
    });
    let oldest = value(
        &samples,
        "esteira_queue_oldest_pending_seconds",
        &[("tags", "gpu")],
    );
    assert!(oldest.is_some_and(|seconds| seconds >= 0.0), "{samples:?}");
    assert_eq!(value(&samples, "esteira_agents_connected", &[]), Some(1.0));
    assert_eq!(
        value(&samples, "esteira_agents", &[("state", "idle")]),
        Some(1.0)
    );
    assert_eq!(
        value(&samples, "esteira_jobs", &[("status", "pending")]),
        Some(1.0)
    );

    let _gpu_agent = coordinator.start_agent(setup.root.path(), "gpu", "gpu", 1);
    let waited = coordinator.cli(&["pipeline", "wait", &id]);
    assert!(
        waited.status.success(),
        "{:#}\n{}",
        coordinator.pipeline(&id),
        coordinator.log()
    );

    let samples = scrape(coordinator);
    let series = |name: &str, labels: &[(&str, &str)]| value(&samples, name, labels);
    assert_eq!(
        series("esteira_jobs_finished_total", &[("result", "success")]),
        Some(2.0)
    );
    assert_eq!(series("esteira_jobs_leased_total", &[]), Some(2.0));
    assert_eq!(
        series("esteira_job_queue_wait_seconds_count", &[]),
        Some(2.0)
    );
    assert_eq!(series("esteira_job_duration_seconds_count", &[]), Some(2.0));
    assert_eq!(series("esteira_jobs", &[("status", "success")]), Some(2.0));
    assert_eq!(pending_gpu(&samples), None, "the gpu queue is empty again");
    assert_eq!(series("esteira_agents_connected", &[]), Some(2.0));
    assert_eq!(
        series(
            "esteira_grpc_calls_total",
            &[("method", "CompleteJob"), ("code", "Ok")]
        ),
        Some(2.0)
    );
    let scrapes = series(
        "esteira_http_requests_total",
        &[("route", "/metrics"), ("status", "200")],
    );
    assert!(scrapes.is_some_and(|count| count >= 1.0), "{samples:?}");
    let project_added = series(
        "esteira_http_requests_total",
        &[("route", "/api/v1/projects"), ("status", "201")],
    );
    assert_eq!(project_added, Some(1.0), "{samples:?}");
    assert_eq!(series("esteira_leases_expired_total", &[]), Some(0.0));
    assert_eq!(series("esteira_database_errors_total", &[]), Some(0.0));
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        series("esteira_build_info", &[("version", version)]),
        Some(1.0)
    );
}
