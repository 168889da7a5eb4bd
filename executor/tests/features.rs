//! Services, artifacts, cache, the Docker-socket policy and leftover removal, with real
//! Docker and real git.

mod common;

use std::collections::HashMap;

use bollard::Docker;
use common::*;
use esteira_executor::{FailureKind, JobResult};
use esteira_pipeline::{Artifacts, Cache, Service, Variable};

const HTTPD: &str = "esteira-test/exec-httpd:latest";

async fn httpd_image() {
    build_test_image(
        HTTPD,
        "FROM esteira-test/busybox:latest\n\
         RUN mkdir -p /www && echo \"${GREETING:-hello} from the service\" > /www/index.html\n\
         EXPOSE 8080\n\
         CMD [\"sh\", \"-c\", \"echo \\\"$GREETING from the service\\\" > /www/index.html; exec httpd -f -p 8080 -h /www\"]\n",
        &[],
    )
    .await;
}

fn service(name: &str) -> Service {
    Service {
        name: name.to_string(),
        aliases: Vec::new(),
        entrypoint: None,
        command: None,
        variables: Vec::new(),
    }
}

#[tokio::test]
async fn a_job_reaches_its_service_by_alias_and_default_alias() {
    let _slot = slot().await;
    httpd_image().await;
    let repo = Repo::new(&[("a", b"a")]);
    let h = Harness::new("services").await;
    // Image names may hold variables.
    let mut web = service("${SERVICE_IMAGE}");
    web.aliases = vec!["web".to_string()];
    web.variables = vec![Variable {
        key: "GREETING".to_string(),
        value: "bonjour".to_string(),
    }];
    let mut spec = spec(&[
        "wget -qO- http://web:8080/",
        "wget -qO- http://esteira-test__exec-httpd:8080/",
        "wget -qO- http://esteira-test-exec-httpd:8080/",
    ]);
    spec.services = vec![web];
    spec.image = Some(esteira_pipeline::Image {
        name: "$JOB_IMAGE".to_string(),
        entrypoint: None,
    });
    let mut job = h.job(&repo, 301, spec);
    job.env.extend([
        ("SERVICE_IMAGE".to_string(), HTTPD.to_string()),
        ("JOB_IMAGE".to_string(), IMAGE.to_string()),
    ]);
    let (outcome, log) = h.run(job).await;
    let text = String::from_utf8_lossy(&log);
    assert_eq!(outcome.result, JobResult::Success, "{text}");
    assert_eq!(
        text.matches("\nbonjour from the service\n").count(),
        3,
        "{text}"
    );
    h.assert_nothing_left().await;
}

#[tokio::test]
async fn a_service_that_dies_has_its_log_in_the_job_log() {
    let _slot = slot().await;
    httpd_image().await;
    let repo = Repo::new(&[("a", b"a")]);
    let h = Harness::new("service-dies").await;
    let mut broken = service(HTTPD);
    broken.command = Some(vec![
        "sh".to_string(),
        "-c".to_string(),
        "echo service-broke-down >&2; exit 4".to_string(),
    ]);
    let mut spec = spec(&["echo job-still-runs"]);
    spec.services = vec![broken];
    let (outcome, log) = h.run(h.job(&repo, 302, spec)).await;
    let text = String::from_utf8_lossy(&log);
    assert_eq!(outcome.result, JobResult::Success, "{text}");
    assert!(text.contains("exited with code 4"), "{text}");
    assert!(text.contains("service-broke-down\n"), "{text}");
    h.assert_nothing_left().await;
}

#[tokio::test]
async fn artifacts_are_collected_reported_and_extracted_for_a_later_job() {
    let _slot = slot().await;
    let repo = Repo::new(&[("a", b"a")]);
    let h = Harness::new("artifacts").await;
    let junit = r#"<testsuite><testcase classname="t" name="ok"/><testcase classname="t" name="bad"><failure message="boom"/></testcase></testsuite>"#;
    let mut first = spec(&[
        "mkdir -p dist/sub && printf 'binary\\377' > dist/sub/app.bin && echo noise > dist/tmp.log",
        &format!("printf '%s' '{junit}' > report.xml"),
    ]);
    first.artifacts = Some(Artifacts {
        paths: vec!["dist/".to_string()],
        exclude: vec!["**/*.log".to_string()],
        when: "on_success".to_string(),
        junit: vec!["report.xml".to_string()],
        ..Artifacts::default()
    });
    let (outcome, log) = h.run(h.job(&repo, 303, first)).await;
    assert_eq!(
        outcome.result,
        JobResult::Success,
        "{}",
        String::from_utf8_lossy(&log)
    );
    let archive = outcome.artifacts.clone().expect("an archive");
    assert!(archive.exists());
    assert_eq!(outcome.details["junit"]["tests"], 2);
    assert_eq!(outcome.details["junit"]["failures"], 1);
    assert_eq!(outcome.details["junit"]["failed"][0]["name"], "bad");

    let mut job = h.job(
        &repo,
        304,
        spec(&[
            "printf 'binary\\377' | cmp - dist/sub/app.bin",
            "test ! -e dist/tmp.log",
        ]),
    );
    job.artifacts_in = vec![archive.clone()];
    let (second, log) = h.run(job).await;
    assert_eq!(
        second.result,
        JobResult::Success,
        "{}",
        String::from_utf8_lossy(&log)
    );
    std::fs::remove_file(archive).expect("caller deletes the archive");

    let mut missing = h.job(&repo, 305, spec(&["true"]));
    missing.artifacts_in = vec![h.work.path().join("no-such.tar.gz")];
    let (third, _) = h.run(missing).await;
    assert_eq!(
        third.failure.expect("a failure").kind,
        FailureKind::MissingDependency
    );
    h.assert_nothing_left().await;
}

#[tokio::test]
async fn artifacts_over_the_limit_fail_the_job() {
    let _slot = slot().await;
    let repo = Repo::new(&[("a", b"a")]);
    let h = Harness::with("artifacts-limit", |config| config.max_artifacts_size = 4096).await;
    let mut spec = spec(&["head -c 200000 /dev/urandom > big.bin"]);
    spec.artifacts = Some(Artifacts {
        paths: vec!["big.bin".to_string()],
        when: "on_success".to_string(),
        ..Artifacts::default()
    });
    let (outcome, log) = h.run(h.job(&repo, 306, spec)).await;
    let failure = outcome.failure.expect("a failure");
    assert_eq!(
        failure.kind,
        FailureKind::ArtifactTooLarge,
        "{}",
        String::from_utf8_lossy(&log)
    );
    assert!(failure.message.contains("4096"), "{}", failure.message);
    assert!(outcome.artifacts.is_none());
    h.assert_nothing_left().await;
}

#[tokio::test]
async fn a_second_job_restores_the_cache_the_first_saved() {
    let _slot = slot().await;
    let repo = Repo::new(&[("a", b"a")]);
    let h = Harness::new("cache").await;
    let cache = Cache {
        key: "deps-$CI_COMMIT_REF_NAME".to_string(),
        paths: vec!["deps/".to_string()],
        policy: "pull-push".to_string(),
        when: "on_success".to_string(),
        ..Cache::default()
    };
    let with_ref = |mut job: esteira_executor::JobRun| {
        job.env
            .push(("CI_COMMIT_REF_NAME".to_string(), "main".to_string()));
        job
    };
    let mut first = spec(&[
        "test ! -e deps/x",
        "mkdir -p deps && echo cached-bytes > deps/x",
    ]);
    first.cache = vec![cache.clone()];
    let (outcome, log) = h.run(with_ref(h.job(&repo, 307, first))).await;
    assert_eq!(
        outcome.result,
        JobResult::Success,
        "{}",
        String::from_utf8_lossy(&log)
    );
    assert_eq!(outcome.details["cache_saved"][0], "deps-main");
    assert!(
        h.work
            .path()
            .join("cache/demo/deps-main/cache.tar.gz")
            .exists()
    );

    let mut second = spec(&["cat deps/x"]);
    second.cache = vec![Cache {
        policy: "pull".to_string(),
        ..cache
    }];
    let (outcome, log) = h.run(with_ref(h.job(&repo, 308, second))).await;
    assert_eq!(
        outcome.result,
        JobResult::Success,
        "{}",
        String::from_utf8_lossy(&log)
    );
    assert!(find(&log, b"\ncached-bytes\n").is_some());
    assert!(outcome.details.get("cache_saved").is_none());
    h.assert_nothing_left().await;
}

#[tokio::test]
async fn docker_access_is_refused_unless_allowed() {
    let repo = Repo::new(&[("a", b"a")]);
    let h = Harness::new("policy").await;
    let mut spec = spec(&["docker info"]);
    spec.services = vec![service("docker:24-dind")];
    let (outcome, log) = h.run(h.job(&repo, 309, spec)).await;
    let failure = outcome.failure.expect("a failure");
    assert_eq!(failure.kind, FailureKind::RunnerUnsupported);
    assert!(
        failure.message.contains("--allow-docker-socket"),
        "{}",
        failure.message
    );
    assert!(
        String::from_utf8_lossy(&log).contains("service docker:24-dind needs the Docker daemon")
    );

    let mut job = h.job(&repo, 310, common::spec(&["true"]));
    job.env
        .push(("DOCKER_HOST".to_string(), "tcp://docker:2375".to_string()));
    let (outcome, _) = h.run(job).await;
    assert_eq!(
        outcome.failure.expect("a failure").kind,
        FailureKind::RunnerUnsupported
    );
    h.assert_nothing_left().await;
}

#[tokio::test]
async fn leftovers_of_jobs_not_running_are_removed() {
    use bollard::models::{ContainerCreateBody, NetworkCreateRequest, VolumeCreateRequest};
    use bollard::query_parameters::CreateContainerOptions;

    let _slot = slot().await;
    let h = Harness::new("leftovers").await;
    let docker = Docker::connect_with_local_defaults().expect("docker");
    let labels = |job: i64| {
        HashMap::from([
            ("esteira.job".to_string(), job.to_string()),
            ("esteira.managed".to_string(), "true".to_string()),
            ("esteira.instance".to_string(), h.instance.clone()),
        ])
    };
    for job in [901, 902] {
        docker
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(format!("{}-{job}-crashed", h.instance)),
                    ..Default::default()
                }),
                ContainerCreateBody {
                    image: Some(IMAGE.to_string()),
                    cmd: Some(vec!["sleep".to_string(), "600".to_string()]),
                    labels: Some(labels(job)),
                    ..Default::default()
                },
            )
            .await
            .expect("container");
        docker
            .create_network(NetworkCreateRequest {
                name: format!("{}-{job}-net", h.instance),
                labels: Some(labels(job)),
                ..Default::default()
            })
            .await
            .expect("network");
        docker
            .create_volume(VolumeCreateRequest {
                name: Some(format!("{}-{job}-vol", h.instance)),
                labels: Some(labels(job)),
                ..Default::default()
            })
            .await
            .expect("volume");
    }
    std::fs::create_dir_all(h.builds_dir().join("901/demo")).expect("mkdir");

    // 902 still runs: only 901's three objects and build directory go.
    let removed = h.executor.remove_leftovers(&[902]).await.expect("removed");
    assert_eq!(removed, 3);
    assert!(!h.builds_dir().join("901").exists());
    assert_eq!(leftovers(&h.instance).await.len(), 3);
    assert_eq!(h.executor.remove_leftovers(&[]).await.expect("removed"), 3);
    h.assert_nothing_left().await;
}

#[tokio::test]
async fn the_docker_socket_is_mounted_only_when_allowed() {
    let _slot = slot().await;
    let repo = Repo::new(&[("a", b"a")]);
    let denied = Harness::new("no-socket").await;
    let (outcome, log) = denied
        .run(denied.job(&repo, 311, spec(&["test ! -e /var/run/docker.sock"])))
        .await;
    assert_eq!(
        outcome.result,
        JobResult::Success,
        "{}",
        String::from_utf8_lossy(&log)
    );
    denied.assert_nothing_left().await;

    let allowed = Harness::with("socket", |config| config.allow_docker_socket = true).await;
    let mut job = allowed.job(&repo, 312, spec(&["test -S /var/run/docker.sock"]));
    job.env.push((
        "DOCKER_HOST".to_string(),
        "unix:///var/run/docker.sock".to_string(),
    ));
    let (outcome, log) = allowed.run(job).await;
    assert_eq!(
        outcome.result,
        JobResult::Success,
        "{}",
        String::from_utf8_lossy(&log)
    );
    allowed.assert_nothing_left().await;
}
