//! TLS between every part: the coordinator serves gRPC and HTTP with a certificate, the
//! agent and the CLI verify it against a CA file.

use esteira_tests::{Coordinator, GitRepo, IMAGE, Tls, docker_lock, ensure_image};

#[test]
fn a_pipeline_runs_with_tls_everywhere_and_plain_text_is_refused() {
    let _guard = docker_lock();
    ensure_image();
    let root = tempfile::tempdir().unwrap();
    let tls = Tls::generate(&root.path().join("tls"));
    let repo = GitRepo::init(root.path().join("repo"));
    repo.commit(
        &[(
            ".gitlab-ci.yml",
            &format!("job:\n  image: {IMAGE}\n  script: [echo over tls]\n"),
        )],
        "tls",
    );
    let coordinator = Coordinator::start_with_tls(root.path(), 10, Some(tls.clone()));
    let _agent = coordinator.start_agent(root.path(), "secure", "", 1);
    coordinator.cli_ok(&["project", "add", "tls", "--repo", &repo.url()]);
    let id = coordinator.run_pipeline("tls", "main");
    let waited = coordinator.cli(&["pipeline", "wait", &id]);
    assert!(waited.status.success(), "{}", coordinator.log());
    let pipeline = coordinator.pipeline(&id);
    let log = coordinator.job_log(&coordinator.job(&pipeline, "job")["id"]);
    assert!(String::from_utf8_lossy(&log).contains("over tls"));

    // Without the CA the certificate is not trusted; over plain HTTP nothing answers.
    let untrusted = std::process::Command::new(esteira_tests::binary("esteira"))
        .args(["--server", &coordinator.url(), "agent", "list"])
        .output()
        .unwrap();
    assert!(!untrusted.status.success());
    let plain = std::process::Command::new(esteira_tests::binary("esteira"))
        .args([
            "--server",
            &format!("http://127.0.0.1:{}", coordinator.http_port),
            "agent",
            "list",
        ])
        .output()
        .unwrap();
    assert!(!plain.status.success());
}
