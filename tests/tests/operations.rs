//! What ops meet when running the real binaries: a second agent on a work dir already in
//! use refuses to start and the first keeps working; logs written to a file carry no
//! terminal escape codes, and `--log-format json` gives one JSON object a line.

use std::process::{Command, Stdio};
use std::time::Duration;

use esteira_tests::{Coordinator, IMAGE, Process, Setup, binary, docker_lock, wait_until};

#[test]
fn a_second_agent_on_the_same_work_dir_refuses_and_the_first_keeps_working() {
    let file = format!("image: {IMAGE}\njob:\n  script: [echo ran on $CI_RUNNER_DESCRIPTION]\n");
    let setup = Setup::start("demo", &file, 1);
    let coordinator = &setup.coordinator;
    let first = &setup.agent;
    let first_pid = first.process.id().expect("the first agent runs");
    wait_until(
        "the first agent to connect",
        Duration::from_secs(30),
        || {
            let agents = coordinator.cli_json(&["agent", "list"]);
            (agents[0]["status"] == "idle").then_some(())
        },
    );

    let second_log = setup.root.path().join("second-agent.log");
    let second = Command::new(binary("esteira-agent"))
        .args(["--coordinator", &coordinator.grpc_url()])
        .args(["--registration-token", &coordinator.registration_token])
        .args(["--name", "second", "--default-image", IMAGE])
        .arg("--work-dir")
        .arg(&first.work_dir)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&second_log).expect("a log file"))
        .spawn()
        .expect("start a second esteira-agent");
    let mut second = Process::from(second);
    let exit = second
        .wait_exit(Duration::from_secs(10))
        .expect("the second agent exits at once");
    assert!(!exit.success(), "{exit:?}");
    let message = std::fs::read_to_string(&second_log).expect("the second agent's log");
    assert!(
        message.contains(&first.work_dir.display().to_string())
            && message.contains(&format!("(pid {first_pid})")),
        "the refusal names the work dir and the holder: {message}"
    );

    let agents = coordinator.cli_json(&["agent", "list"]);
    assert_eq!(agents.as_array().map(Vec::len), Some(1), "{agents}");
    assert_eq!(agents[0]["name"], first.name.as_str());
    let id = coordinator.run_pipeline("demo", "main");
    assert!(coordinator.cli(&["pipeline", "wait", &id]).status.success());
    let pipeline = coordinator.pipeline(&id);
    let log = coordinator.job_log(&coordinator.job(&pipeline, "job")["id"]);
    let expected = format!("ran on {}", first.name);
    assert!(
        String::from_utf8_lossy(&log).contains(&expected),
        "the first agent runs the next job"
    );
}

#[test]
fn logs_have_no_escape_codes_off_a_terminal_and_json_logs_are_one_object_a_line() {
    let _docker = docker_lock();
    let root = tempfile::tempdir().expect("temp dir");
    for dir in ["text", "json"] {
        std::fs::create_dir_all(root.path().join(dir)).expect("a coordinator's dir");
    }
    let text = Coordinator::start(&root.path().join("text"), 10);
    let json = Coordinator::start_with(
        &root.path().join("json"),
        10,
        None,
        &["--log-format", "json"],
    );
    for coordinator in [&text, &json] {
        wait_until("the coordinator to log", Duration::from_secs(30), || {
            coordinator
                .log()
                .contains("coordinator ready")
                .then_some(())
        });
    }
    let text_log = text.log();
    assert!(!text_log.contains('\u{1b}'), "{text_log:?}");

    let json_log = json.log();
    for line in json_log.lines() {
        let object: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|error| panic!("not JSON ({error}): {line}"));
        assert!(
            object["level"].is_string() && object["fields"].is_object(),
            "{line}"
        );
    }
    assert!(
        json_log.contains("\"message\":\"coordinator ready\""),
        "{json_log}"
    );
}
