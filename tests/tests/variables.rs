//! Project variables end to end: encrypted at rest, masked in logs (their base64 too),
//! protected ones only on protected branches; file variables as paths of files holding
//! their values.

use esteira_tests::{Coordinator, GitRepo, IMAGE, Setup, docker_lock, ensure_image};

const SECRET: &str = "s3cr3t-Value-42";

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
    let set =
        coordinator.set_variable(&["vars", "DEPLOY_TOKEN", "--masked", "--protected"], SECRET);
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let refused = coordinator.set_variable(&["vars", "GREETING", "--masked"], "short");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("at least 8 characters"));
    let set = coordinator.set_variable(&["vars", "GREETING"], "hello-there\n");
    assert!(set.status.success());

    let listed = coordinator.cli_ok(&["variable", "list", "vars"]);
    assert!(
        has_row(&listed, &["DEPLOY_TOKEN", "masked,protected"]),
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

#[test]
fn file_variables_are_paths_to_files_holding_the_value() {
    let file = format!(
        "show:\n  image: {IMAGE}\n  script:\n    - echo \"path=$APP_CONFIG\"\n    - cat \"$APP_CONFIG\"\n    - echo \"key=$(cat \"$SIGNING_KEY\").\"\n"
    );
    let setup = Setup::start("files", &file, 1);
    let coordinator = &setup.coordinator;
    let set = coordinator.set_variable(
        &["files", "APP_CONFIG", "--file"],
        "listen: 8080\nmode: test\n",
    );
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let set = coordinator.set_variable(&["files", "SIGNING_KEY", "--file", "--masked"], SECRET);
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let listed = coordinator.cli_ok(&["variable", "list", "files"]);
    assert!(has_row(&listed, &["APP_CONFIG", "file"]), "{listed}");
    assert!(
        has_row(&listed, &["SIGNING_KEY", "masked,file"]),
        "{listed}"
    );

    let id = coordinator.run_pipeline("files", "main");
    assert!(coordinator.cli(&["pipeline", "wait", &id]).status.success());
    let pipeline = coordinator.pipeline(&id);
    let log = coordinator.job_log(&coordinator.job(&pipeline, "show")["id"]);
    let text = String::from_utf8_lossy(&log);
    assert!(
        text.contains("path=/builds/files.tmp/APP_CONFIG\n"),
        "{text}"
    );
    // One trailing newline of stdin is dropped.
    assert!(text.contains("listen: 8080\nmode: test\x1b"), "{text}");
    assert!(text.contains("key=[MASKED]."), "{text}");
    assert!(!contains(&log, SECRET.as_bytes()));
}

/// Whether the table `listed` has a row of these cells (under its `KEY FLAGS` header).
fn has_row(listed: &str, cells: &[&str]) -> bool {
    listed.starts_with("KEY ")
        && listed
            .lines()
            .any(|line| line.split_whitespace().eq(cells.iter().copied()))
}
