//! The `deploy:` extension: a service rolled on the host, replaced by the next version,
//! and rolled back when a version fails its health check.

mod common;

use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::RemoveContainerOptions;
use common::*;
use esteira_executor::{FailureKind, JobResult};
use esteira_pipeline::{Deploy, HealthCheck};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn version_image(version: &str, cmd: &str) -> String {
    let tag = format!("esteira-test/exec-deploy:{version}");
    build_test_image(
        &tag,
        &format!(
            "FROM esteira-test/busybox:latest\n\
             RUN mkdir /www && echo {version} > /www/health\n\
             EXPOSE 8000\nCMD {cmd}\n"
        ),
        &[],
    )
    .await;
    tag
}

/// The body of `GET /health` on the port, or `None` while nothing answers there (the
/// Docker proxy accepts connections before the container listens, then resets them).
async fn try_get(port: u16) -> Option<String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    stream
        .write_all(b"GET /health HTTP/1.0\r\nHost: x\r\n\r\n")
        .await
        .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.ok()?;
    answer.rsplit("\r\n\r\n").next().map(str::to_string)
}

async fn get(port: u16) -> String {
    try_get(port).await.expect("the service answers")
}

#[tokio::test]
async fn deploys_replaces_and_rolls_back_a_service() {
    let _slot = slot().await;
    let serve = r#"["httpd", "-f", "-p", "8000", "-h", "/www"]"#;
    let v1 = version_image("v1", serve).await;
    let v2 = version_image("v2", serve).await;
    let broken = version_image(
        "broken",
        r#"["sh", "-c", "echo broken-start; exec sleep 600"]"#,
    )
    .await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let repo = Repo::new(&[("a", b"a")]);
    let h = Harness::new("deploy").await;
    let service = format!("esteira-test-deploy-{}", std::process::id());
    let deploy = |image: &str, timeout_secs: u64| {
        let mut spec = spec(&[]);
        spec.deploy = Some(Deploy {
            image: image.to_string(),
            service: service.clone(),
            ports: vec![format!("127.0.0.1:{port}:8000")],
            env: [("APP_ENV".to_string(), "$CI_ENVIRONMENT_NAME".to_string())].into(),
            restart: None,
            health: Some(HealthCheck {
                http: Some(format!("http://127.0.0.1:{port}/health")),
                command: None,
                timeout_secs,
                retries: 0,
            }),
        });
        spec
    };

    let (first, log) = h.run(h.job(&repo, 501, deploy(&v1, 20))).await;
    assert_eq!(
        first.result,
        JobResult::Success,
        "{}",
        String::from_utf8_lossy(&log)
    );
    assert_eq!(first.details["deploy"]["image"], v1.as_str());
    assert_eq!(get(port).await, "v1\n");

    let (second, log) = h.run(h.job(&repo, 502, deploy(&v2, 20))).await;
    assert_eq!(
        second.result,
        JobResult::Success,
        "{}",
        String::from_utf8_lossy(&log)
    );
    assert_eq!(second.details["deploy"]["previous_image"], v1.as_str());
    assert_eq!(get(port).await, "v2\n");

    let (third, log) = h.run(h.job(&repo, 503, deploy(&broken, 2))).await;
    let text = String::from_utf8_lossy(&log);
    let failure = third.failure.expect("a failure");
    assert_eq!(failure.kind, FailureKind::ScriptFailure, "{text}");
    assert!(
        failure.message.contains(&format!("rolled back to {v2}")),
        "{}",
        failure.message
    );
    assert!(text.contains("broken-start\n"), "{text}");
    let docker = Docker::connect_with_local_defaults().expect("docker");
    let running = docker
        .inspect_container(&service, None)
        .await
        .expect("the service runs");
    assert_eq!(
        running.config.and_then(|c| c.image).as_deref(),
        Some(v2.as_str())
    );
    wait_until("v2 to answer again", Duration::from_secs(10), || async {
        try_get(port).await.as_deref() == Some("v2\n")
    })
    .await;

    docker
        .remove_container(
            &service,
            Some(RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        )
        .await
        .expect("removed");
    h.assert_nothing_left().await;
}
