//! Faults on the agent's side (issue 17): an agent SIGKILLed mid-job has its job's
//! container stopped by its watchdog well before the lease expires, so that the retry
//! never runs beside it; what a gone agent left is removed at its next start or by
//! `esteira-agent prune`; an assignment over the protocol's message size fails its job
//! with the reason and the agent goes on taking jobs.

use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use esteira_tests::{
    Coordinator, GitRepo, IMAGE, binary, docker_lock, ensure_image, leftover_docker_objects,
    wait_until,
};
use serde_json::Value;

const LONG: Duration = Duration::from_secs(120);

/// The Docker lock held, the test image built, a temp dir.
fn setup() -> (tempfile::TempDir, MutexGuard<'static, ()>) {
    let docker = docker_lock();
    ensure_image();
    (tempfile::tempdir().expect("temp dir"), docker)
}

fn add_project(coordinator: &Coordinator, name: &str, repo: &GitRepo) {
    coordinator.cli_ok(&["project", "add", name, "--repo", &repo.url()]);
}

/// The containers of the jobs of the agent named `agent`.
fn containers_of(agent: &str) -> Vec<String> {
    leftover_docker_objects(agent)
        .into_iter()
        .filter(|object| object.starts_with("container "))
        .collect()
}

/// The fields of `/proc/PID/stat` after the command's name: state, ppid, pgrp, session…
fn stat(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(") ")?;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// Whether process `pid` has exited (a zombie waiting for its reaper counts as exited).
fn exited(pid: u32) -> bool {
    stat(pid).is_none_or(|fields| fields[0] == "Z")
}

/// The session of process `pid`.
fn session(pid: u32) -> Option<String> {
    stat(pid)?.get(3).cloned()
}

#[test]
fn a_killed_agents_job_stops_before_its_lease_expires_and_never_runs_beside_its_retry() {
    let (root, _docker) = setup();
    let repo = GitRepo::init(root.path().join("repo"));
    // On the doomed agent the script writes `before` into its build directory (a bind
    // mount of the agent's work dir), sleeps less than the lease, then writes `after`.
    let pipeline_file = format!(
        "image: {IMAGE}\n\
         deploy:\n  retry: 1\n  script:\n    - echo before > $CI_BUILDS_DIR/marker\n    - case \"$CI_RUNNER_DESCRIPTION\" in doomed-*) sleep 6;; esac\n    - echo after >> $CI_BUILDS_DIR/marker\n    - echo \"done on $CI_RUNNER_DESCRIPTION\"\n"
    );
    repo.commit(&[(".gitlab-ci.yml", &pipeline_file)], "deploy");
    let lease_timeout = 15;
    let coordinator = Coordinator::start(root.path(), lease_timeout);
    let mut doomed = coordinator.start_agent(root.path(), "doomed", "", 1);
    add_project(&coordinator, "deploy", &repo);
    let id = coordinator.run_pipeline("deploy", "main");
    let (job_id, mut marker) = wait_until("the script to write its marker", LONG, || {
        let pipeline = coordinator.pipeline(&id);
        let job = coordinator.job(&pipeline, "deploy").clone();
        let path = doomed
            .work_dir
            .join("builds")
            .join(job["id"].to_string())
            .join("marker");
        // Held open: should the container write on, the bytes land in this file even
        // once its directory is removed.
        let mut file = std::fs::File::open(path).ok()?;
        let mut text = String::new();
        file.read_to_string(&mut text).ok()?;
        (text == "before\n").then_some((job["id"].clone(), file))
    });
    assert_eq!(containers_of(&doomed.name).len(), 1, "the job's container");
    let watchdog: u32 = std::fs::read_to_string(doomed.work_dir.join("watchdog.lock"))
        .expect("the watchdog's lock file")
        .trim()
        .parse()
        .expect("the watchdog's pid");
    assert_eq!(
        session(watchdog),
        Some(watchdog.to_string()),
        "the watchdog leads a session of its own"
    );
    assert_ne!(session(watchdog), doomed.process.id().and_then(session));

    doomed.process.kill();
    let killed = Instant::now();
    wait_until(
        "the dead agent's container to be gone",
        Duration::from_secs(10),
        || containers_of(&doomed.name).is_empty().then_some(()),
    );
    let stopped = killed.elapsed();
    eprintln!("the dead agent's container was gone {stopped:?} after the SIGKILL");
    let pipeline = coordinator.pipeline(&id);
    let first = coordinator.job(&pipeline, "deploy");
    assert_eq!(first["id"], job_id);
    assert_eq!(
        first["status"], "running",
        "the container is gone while the lease still runs"
    );
    wait_until("the watchdog to exit", Duration::from_secs(10), || {
        exited(watchdog).then_some(())
    });
    let agent_log = std::fs::read_to_string(doomed.work_dir.with_extension("log"))
        .expect("the doomed agent's log");
    assert!(
        agent_log.contains("the agent died: its jobs are stopped and removed"),
        "the watchdog says what it did: {agent_log}"
    );

    let rescuer = coordinator.start_agent(root.path(), "rescuer", "", 1);
    let waited = coordinator.cli(&["pipeline", "wait", &id]);
    let pipeline = coordinator.pipeline(&id);
    assert!(waited.status.success(), "{pipeline:#}");
    let lost = pipeline["jobs"]
        .as_array()
        .and_then(|jobs| jobs.iter().find(|job| job["id"] == job_id))
        .expect("the first attempt");
    assert_eq!(lost["status"], "lost", "{lost}");
    let retry = coordinator.job(&pipeline, "deploy");
    assert_eq!(retry["attempt"], 2);
    let log = String::from_utf8_lossy(&coordinator.job_log(&retry["id"])).into_owned();
    assert!(log.contains(&format!("done on {}", rescuer.name)), "{log}");
    // The retry ran to its end, later than the first script would have written `after`.
    let mut rest = String::new();
    marker.read_to_string(&mut rest).expect("the marker");
    assert_eq!(rest, "", "the first script wrote on after its agent died");
    assert!(
        !doomed
            .work_dir
            .join("builds")
            .join(job_id.to_string())
            .exists(),
        "the dead agent's build directory is removed"
    );
    wait_until(
        "the rescuer's job objects to be removed",
        Duration::from_secs(30),
        || {
            leftover_docker_objects(&coordinator.agent_suffix)
                .is_empty()
                .then_some(())
        },
    );
}

/// Sends `signal` (`STOP`, `CONT`) to process `pid`.
fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{signal} {pid}");
}

#[test]
fn an_agent_cut_off_from_the_coordinator_stops_its_job_before_the_lease_expires() {
    let (root, _docker) = setup();
    let repo = GitRepo::init(root.path().join("repo"));
    let pipeline_file =
        format!("image: {IMAGE}\nlong:\n  script:\n    - echo started\n    - sleep 120\n");
    repo.commit(&[(".gitlab-ci.yml", &pipeline_file)], "long");
    // Heartbeats every 2 s: the agent gives up after 4 s without a renewal.
    let lease_timeout = 6;
    let coordinator = Coordinator::start(root.path(), lease_timeout);
    let agent = coordinator.start_agent(root.path(), "cutoff", "", 1);
    add_project(&coordinator, "long", &repo);
    let id = coordinator.run_pipeline("long", "main");
    wait_until("the job's container to run", LONG, || {
        let pipeline = coordinator.pipeline(&id);
        let running = coordinator.job(&pipeline, "long")["started_at"].is_i64();
        (running && containers_of(&agent.name).len() == 1).then_some(())
    });
    // A frozen coordinator: the connection stays up and answers nothing, a black hole.
    let pid = coordinator.pid().expect("coordinator pid");
    signal(pid, "STOP");
    let frozen = Instant::now();
    let gone = wait_until(
        "the cut-off agent to stop its job",
        Duration::from_secs(30),
        || {
            containers_of(&agent.name)
                .is_empty()
                .then(|| frozen.elapsed())
        },
    );
    signal(pid, "CONT");
    eprintln!("the cut-off agent stopped its job {gone:?} after the coordinator froze");
    assert!(
        gone < Duration::from_secs(lease_timeout),
        "the job ran on past its lease ({gone:?}): its retry could have run beside it"
    );
    let job = wait_until("the job to be given up", LONG, || {
        let pipeline = coordinator.pipeline(&id);
        let job = coordinator.job(&pipeline, "long").clone();
        (job["status"] == "lost").then_some(job)
    });
    assert_eq!(job["attempt"], 1, "{job}");
}

/// Makes a container, a network and a volume labelled as a job of the agent `agent`
/// (as the executor labels them), as a crash would leave them.
fn fake_orphans(agent: &str) {
    let labels = [
        "--label",
        "esteira.managed=true",
        "--label",
        &format!("esteira.instance={agent}"),
        "--label",
        "esteira.job=1717",
    ];
    let run = |args: &[&str]| {
        let output = Command::new("docker").args(args).output().expect("docker");
        assert!(
            output.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let name = format!("esteira-{agent}-1717");
    run(&[
        &["run", "-d", "--name", &name][..],
        &labels,
        &[IMAGE, "sleep", "600"],
    ]
    .concat());
    run(&[
        &["network", "create"][..],
        &labels,
        &[&format!("{name}-net")],
    ]
    .concat());
    run(&[
        &["volume", "create"][..],
        &labels,
        &[&format!("{name}-vol")],
    ]
    .concat());
}

fn prune(agent: &str, work_dir: &Path) -> std::process::Output {
    Command::new(binary("esteira-agent"))
        .args(["prune", "--name", agent, "--work-dir"])
        .arg(work_dir)
        .output()
        .expect("run esteira-agent prune")
}

#[test]
fn an_agent_removes_its_orphans_before_taking_work_and_prune_removes_a_gone_agents() {
    let (root, _docker) = setup();
    let coordinator = Coordinator::start(root.path(), 10);
    let returning = format!("returning{}", coordinator.agent_suffix);
    let gone = format!("gone{}", coordinator.agent_suffix);
    fake_orphans(&returning);
    fake_orphans(&gone);
    assert_eq!(leftover_docker_objects(&returning).len(), 3);

    let agent = coordinator.start_agent(root.path(), "returning", "", 1);
    assert_eq!(agent.name, returning);
    wait_until("the agent to register", LONG, || {
        let agents = coordinator.cli_json(&["agent", "list"]);
        let listed = agents.as_array()?.iter().any(|a| a["name"] == returning);
        listed.then_some(())
    });
    assert_eq!(
        leftover_docker_objects(&returning),
        Vec::<String>::new(),
        "orphans are removed before the agent registers"
    );
    assert_eq!(
        leftover_docker_objects(&gone).len(),
        3,
        "another agent's objects are not touched"
    );

    let refused = prune(&returning, &agent.work_dir);
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("already runs on the work dir"),
        "{message}"
    );

    let gone_work_dir = root.path().join("agent-gone");
    let pruned = prune(&gone, &gone_work_dir);
    assert!(
        pruned.status.success(),
        "{}",
        String::from_utf8_lossy(&pruned.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&pruned.stdout).trim(),
        format!("removed 3 Docker objects of the agent {gone}'s jobs")
    );
    assert_eq!(leftover_docker_objects(&gone), Vec::<String>::new());
}

#[test]
fn an_assignment_over_the_message_limit_fails_its_job_and_the_agent_runs_the_next() {
    let (root, _docker) = setup();
    let repo = GitRepo::init(root.path().join("repo"));
    repo.commit(
        &[(
            ".gitlab-ci.yml",
            &format!("image: {IMAGE}\nnormal:\n  script: [echo normal ran]\n"),
        )],
        "normal",
    );
    repo.git(&["checkout", "--quiet", "-b", "huge"]);
    let huge = "x".repeat(5 << 20);
    repo.commit(
        &[(
            ".gitlab-ci.yml",
            &format!(
                "image: {IMAGE}\nhuge:\n  variables:\n    HUGE: {huge}\n  script: [echo never]\n"
            ),
        )],
        "huge",
    );
    let coordinator = Coordinator::start(root.path(), 10);
    let agent = coordinator.start_agent(root.path(), "a", "", 1);
    add_project(&coordinator, "limits", &repo);

    let id = coordinator.run_pipeline("limits", "huge");
    let waited = coordinator.cli(&["pipeline", "wait", &id]);
    let pipeline = coordinator.pipeline(&id);
    assert!(!waited.status.success(), "{pipeline:#}");
    let job = coordinator.job(&pipeline, "huge");
    assert_eq!(job["status"], "failed");
    let reason = job["failure_message"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&format!(
            "over the limit of {} bytes an agent accepts",
            esteira_proto::MAX_MESSAGE_BYTES
        )),
        "{job}"
    );

    let id = coordinator.run_pipeline("limits", "main");
    let waited = coordinator.cli(&["pipeline", "wait", &id]);
    let pipeline = coordinator.pipeline(&id);
    assert!(waited.status.success(), "{pipeline:#}");
    let normal: &Value = coordinator.job(&pipeline, "normal");
    let log = String::from_utf8_lossy(&coordinator.job_log(&normal["id"])).into_owned();
    assert!(log.contains("normal ran"), "{log}");
    let agent_log =
        std::fs::read_to_string(agent.work_dir.with_extension("log")).unwrap_or_default();
    assert_eq!(
        agent_log.matches("session open").count(),
        1,
        "one session all along: {agent_log}"
    );
}
