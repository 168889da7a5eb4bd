//! The `build:` extension against a real registry that wants a password (Debian's
//! `docker-registry` with an htpasswd file, on loopback): the image is built from the
//! checkout honouring `.dockerignore`, pushed under every tag, pulled back by the
//! reported digest; the password never shows in the log.

mod common;

use std::process::Stdio;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::RemoveImageOptions;
use common::*;
use esteira_executor::JobResult;
use esteira_pipeline::Build;

const USER: &str = "ci-user";
const PASSWORD: &str = "Registry-Pa55word";

/// A registry on a free loopback port, stopped when dropped.
struct Registry {
    _child: tokio::process::Child,
    _dir: tempfile::TempDir,
    address: String,
}

/// Debian's `docker-registry` with an htpasswd file; `.ci/run` installs both packages.
async fn start_registry() -> Registry {
    let installed = std::process::Command::new("docker-registry")
        .arg("--version")
        .output()
        .is_ok();
    assert!(
        installed,
        "docker-registry is not installed: apt-get install docker-registry apache2-utils"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let htpasswd = std::process::Command::new("htpasswd")
        .args(["-Bbn", USER, PASSWORD])
        .output()
        .expect("htpasswd runs");
    assert!(htpasswd.status.success());
    std::fs::write(dir.path().join("htpasswd"), htpasswd.stdout).expect("write");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let address = format!("127.0.0.1:{port}");
    let config = format!(
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {root}/data\n\
         http:\n  addr: {address}\nauth:\n  htpasswd:\n    realm: esteira-test\n    path: {root}/htpasswd\n",
        root = dir.path().display()
    );
    std::fs::write(dir.path().join("config.yml"), config).expect("write");
    let child = tokio::process::Command::new("docker-registry")
        .arg("serve")
        .arg(dir.path().join("config.yml"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("registry starts");
    let probe = address.clone();
    wait_until("the registry", Duration::from_secs(20), || {
        let probe = probe.clone();
        async move { tokio::net::TcpStream::connect(probe).await.is_ok() }
    })
    .await;
    Registry {
        _child: child,
        _dir: dir,
        address,
    }
}

#[tokio::test]
async fn builds_pushes_with_a_password_and_reports_the_digest() {
    let _slot = slot().await;
    let registry = start_registry().await;
    let repo = Repo::new(&[
        (
            "Dockerfile",
            b"FROM esteira-test/busybox:latest\n\
              ARG VERSION\n\
              COPY . /ctx\n\
              RUN test -e /ctx/app.txt && test ! -e /ctx/secret.txt && test ! -e /ctx/.git\n\
              RUN echo \"$VERSION\" > /version\n" as &[u8],
        ),
        (".dockerignore", b".git\nsecret.txt\n"),
        ("app.txt", b"the app\n"),
        ("secret.txt", b"not for the image\n"),
    ]);
    let h = Harness::new("build").await;
    let image = format!("{}/group/app", registry.address);
    let mut spec = spec(&[
        "echo \"password is $CI_REGISTRY_PASSWORD\"",
        "printf '%s' \"$CI_REGISTRY_PASSWORD\" | base64",
    ]);
    spec.build = Some(Build {
        context: ".".to_string(),
        dockerfile: "Dockerfile".to_string(),
        args: [("VERSION".to_string(), "$CI_COMMIT_SHORT_SHA".to_string())].into(),
        tags: vec![
            format!("{image}:$CI_COMMIT_SHORT_SHA"),
            format!("{image}:latest"),
        ],
        push: true,
        ..Build::default()
    });
    let short = repo.sha[..8].to_string();
    let mut job = h.job(&repo, 401, spec);
    job.env.extend([
        ("CI_COMMIT_SHORT_SHA".to_string(), short.clone()),
        ("CI_REGISTRY".to_string(), registry.address.clone()),
        ("CI_REGISTRY_USER".to_string(), USER.to_string()),
        ("CI_REGISTRY_PASSWORD".to_string(), PASSWORD.to_string()),
    ]);
    job.masked = vec![PASSWORD.to_string()];
    let (outcome, log) = h.run(job).await;
    let text = String::from_utf8_lossy(&log);

    assert_eq!(outcome.result, JobResult::Success, "{text}");
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(text.contains("password is [MASKED]\n"), "{text}");
    let digest = outcome.details["image_digest"]
        .as_str()
        .expect("a digest")
        .to_string();
    assert!(digest.starts_with("sha256:"), "{digest}");
    assert_eq!(outcome.details["images"].as_array().map(Vec::len), Some(2));

    // Gone locally: the next job has to pull it.
    let docker = Docker::connect_with_local_defaults().expect("docker");
    for tag in [format!("{image}:{short}"), format!("{image}:latest")] {
        docker
            .remove_image(
                &tag,
                Some(RemoveImageOptions {
                    force: true,
                    ..Default::default()
                }),
                None,
            )
            .await
            .expect("local tag removed");
    }
    // A later job runs in the image, pulled by digest with the registry's credentials.
    let by_digest = format!("{image}@{digest}");
    assert!(
        docker.inspect_image(&by_digest).await.is_err(),
        "not local any more"
    );
    let mut later = common::spec(&["cat /version"]);
    later.image = Some(esteira_pipeline::Image {
        name: by_digest.clone(),
        entrypoint: None,
    });
    let mut job = h.job(&repo, 403, later);
    job.env.extend([
        ("CI_REGISTRY".to_string(), registry.address.clone()),
        ("CI_REGISTRY_USER".to_string(), USER.to_string()),
        ("CI_REGISTRY_PASSWORD".to_string(), PASSWORD.to_string()),
    ]);
    let (outcome, log) = h.run(job).await;
    let text = String::from_utf8_lossy(&log);
    assert_eq!(outcome.result, JobResult::Success, "{text}");
    assert!(text.contains(&format!("\n{short}\n")), "{text}");
    docker
        .inspect_image(&by_digest)
        .await
        .expect("the pushed image");
    docker
        .remove_image(
            &by_digest,
            Some(RemoveImageOptions {
                force: true,
                ..Default::default()
            }),
            None,
        )
        .await
        .expect("removed");
    h.assert_nothing_left().await;
}

#[tokio::test]
async fn a_failing_dockerfile_fails_the_job_with_the_builders_message() {
    let _slot = slot().await;
    let repo = Repo::new(&[(
        "Dockerfile",
        b"FROM esteira-test/busybox:latest\nRUN exit 7\n" as &[u8],
    )]);
    let h = Harness::new("build-fails").await;
    let mut spec = spec(&[]);
    spec.build = Some(Build {
        context: ".".to_string(),
        dockerfile: "Dockerfile".to_string(),
        tags: vec!["esteira-test/never-built:1".to_string()],
        ..Build::default()
    });
    let (outcome, log) = h.run(h.job(&repo, 402, spec)).await;
    let failure = outcome.failure.expect("a failure");
    assert_eq!(failure.kind, esteira_executor::FailureKind::ScriptFailure);
    assert!(
        failure.message.starts_with("image build failed:"),
        "{}",
        failure.message
    );
    assert!(failure.message.contains("7"), "{}", failure.message);
    assert!(String::from_utf8_lossy(&log).contains("RUN exit 7"));
    h.assert_nothing_left().await;
}
