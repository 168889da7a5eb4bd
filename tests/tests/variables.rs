//! Project variables end to end: encrypted at rest, masked in logs (their base64 too),
//! protected ones only on protected branches.

use std::io::Write;
use std::process::{Command, Stdio};

use esteira_tests::{Coordinator, GitRepo, IMAGE, binary, docker_lock, ensure_image};

const SECRET: &str = "s3cr3t-Value-42";

/// `esteira variable set ARGS` with `value` on stdin; returns its output.
fn set_variable(coordinator: &Coordinator, args: &[&str], value: &str) -> std::process::Output {
    let mut child = Command::new(binary("esteira"))
        .args([
            "--server",
            &coordinator.url(),
            "--token",
            &coordinator.admin_token,
            "variable",
            "set",
        ])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(value.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[test]
fn secrets_are_encrypted_masked_and_protected() {
    let _guard = docker_lock();
    ensure_image();
    let root = tempfile::tempdir().unwrap();
    let repo = GitRepo::init(root.path().join("repo"));
    repo.git(&["checkout", "--quiet", "-b", "master"]);
    let file = format!(
        "show:\n  image: {IMAGE}\n  script:\n    - echo \"secret=$DEPLOY_TOKEN.\"\n    - echo \"encoded=$(printf %s \"$DEPLOY_TOKEN\" | base64)\"\n    - echo \"plain=$GREETING.\"\n"
    );
    repo.commit(&[(".gitlab-ci.yml", &file)], "show variables");
    repo.git(&["checkout", "--quiet", "-b", "feature/x"]);
    let coordinator = Coordinator::start(root.path(), 10);
    let _agent = coordinator.start_agent(root.path(), "a", "", 1);
    coordinator.cli_ok(&[
        "project",
        "add",
        "vars",
        "--repo",
        &repo.url(),
        "--protected-branches",
        "master",
    ]);
    let set = set_variable(
        &coordinator,
        &["vars", "DEPLOY_TOKEN", "--masked", "--protected"],
        SECRET,
    );
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let refused = set_variable(&coordinator, &["vars", "GREETING", "--masked"], "short");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("at least 8 characters"));
    let set = set_variable(&coordinator, &["vars", "GREETING"], "hello-there\n");
    assert!(set.status.success());

    let listed = coordinator.cli_ok(&["variable", "list", "vars"]);
    assert!(
        listed.contains("DEPLOY_TOKEN\tmasked,protected"),
        "{listed}"
    );
    assert!(!listed.contains(SECRET));

    let on_master = coordinator.run_pipeline("vars", "master");
    assert!(
        coordinator
            .cli(&["pipeline", "wait", &on_master])
            .status
            .success()
    );
    let pipeline = coordinator.pipeline(&on_master);
    let log = coordinator.job_log(&coordinator.job(&pipeline, "show")["id"]);
    let text = String::from_utf8_lossy(&log);
    assert!(text.contains("secret=[MASKED]."), "{text}");
    assert!(
        text.contains("encoded=[MASKED]"),
        "the base64 form is masked too: {text}"
    );
    assert!(!contains(&log, SECRET.as_bytes()));
    assert!(
        text.contains("plain=hello-there."),
        "a plain variable reaches the job: {text}"
    );

    let on_feature = coordinator.run_pipeline("vars", "feature/x");
    assert!(
        coordinator
            .cli(&["pipeline", "wait", &on_feature])
            .status
            .success()
    );
    let pipeline = coordinator.pipeline(&on_feature);
    let log = coordinator.job_log(&coordinator.job(&pipeline, "show")["id"]);
    assert!(
        String::from_utf8_lossy(&log).contains("secret=."),
        "protected: absent on a feature branch"
    );

    for entry in std::fs::read_dir(&coordinator.data_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !contains(&bytes, SECRET.as_bytes()),
                "{} holds the secret in clear",
                path.display()
            );
        }
    }
}
