//! Scaling runners with real Docker and real processes: ephemeral agents (`--once`,
//! `--idle-exit`) leave nothing behind in the agent list, and `esteira autoscale` grows a
//! pool of agent containers from the queue, never past `max`, adopts its agents after a
//! restart, replaces a killed one, never removes a busy one, and shrinks back to `min`.
//! Only what each test created is looked at: its coordinator's agents and the containers
//! labelled with its autoscaler's id.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use esteira_tests::pools::{AgentImage, Autoscaler, PoolSpec};
use esteira_tests::{
    Agent, Coordinator, GitRepo, IMAGE, docker_lock, ensure_image, leftover_docker_objects,
    wait_until,
};
use serde_json::Value;

/// A pipeline of `count` jobs tagged `tag`, each running `script`.
fn tagged_jobs(count: usize, tag: &str, script: &str) -> String {
    let mut file = format!("image: {IMAGE}\n");
    for n in 0..count {
        file.push_str(&format!(
            "job-{n:02}:\n  tags: [{tag}]\n  script: [\"{script}\"]\n"
        ));
    }
    file
}

fn statuses(pipeline: &Value) -> Vec<String> {
    pipeline["jobs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|job| job["status"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// A coordinator with a project whose `main` holds `pipeline_file`.
fn coordinator_with(root: &Path, project: &str, pipeline_file: &str) -> (Coordinator, GitRepo) {
    let repo = GitRepo::init(root.join("repo"));
    repo.commit(&[(".gitlab-ci.yml", pipeline_file)], "the pipeline");
    let coordinator = Coordinator::start(root, 10);
    coordinator.cli_ok(&["project", "add", project, "--repo", &repo.url()]);
    (coordinator, repo)
}

#[test]
fn an_agent_started_with_once_runs_one_job_deregisters_and_exits_0() {
    let _docker = docker_lock();
    ensure_image();
    let root = tempfile::tempdir().expect("temp dir");
    let (coordinator, _repo) =
        coordinator_with(root.path(), "once", &tagged_jobs(2, "once", "echo hello"));
    let pipeline = coordinator.run_pipeline("once", "main");
    let start = |name: &str, flags: &[&str]| {
        Agent::start_with(&coordinator, root.path().join(name), name, "once", 2, flags)
    };

    let mut first = start("first", &["--once"]);
    let exit = first.process.wait_exit(Duration::from_secs(60));
    assert!(
        exit.is_some_and(|status| status.success()),
        "exit {exit:?}: {}",
        std::fs::read_to_string(first.work_dir.with_extension("log")).unwrap_or_default()
    );
    let mut jobs = statuses(&coordinator.pipeline(&pipeline));
    jobs.sort();
    assert_eq!(jobs, ["pending", "success"], "one job, and only one, ran");
    let agents = coordinator.cli_json(&["agent", "list"]);
    assert_eq!(agents, serde_json::json!([]), "nothing of it stays listed");
    assert!(
        !first.work_dir.join("credentials.json").exists(),
        "its credential is gone with it"
    );

    // The same work dir again: a new registration, the other job.
    let mut second = start("first", &["--max-jobs", "1"]);
    assert!(
        second
            .process
            .wait_exit(Duration::from_secs(60))
            .is_some_and(|status| status.success())
    );
    assert_eq!(statuses(&coordinator.pipeline(&pipeline)), ["success"; 2]);

    // Nothing to do: it leaves after its idle time.
    let mut idle = start("idle", &["--idle-exit", "1s"]);
    assert!(
        idle.process
            .wait_exit(Duration::from_secs(30))
            .is_some_and(|status| status.success())
    );
    assert_eq!(
        coordinator.cli_json(&["agent", "list"]),
        serde_json::json!([])
    );
    assert_eq!(
        leftover_docker_objects(&coordinator.agent_suffix),
        [] as [String; 0]
    );
}

#[test]
fn autoscale_refuses_a_bad_pools_file_naming_the_pool_and_the_key() {
    let root = tempfile::tempdir().expect("temp dir");
    let pools = root.path().join("pools.toml");
    std::fs::write(
        &pools,
        "[[pool]]\nname = \"burst\"\nmin = 4\nmax = 3\n[pool.agent]\nimage = \"agent\"\n",
    )
    .expect("write the pools file");
    let output = std::process::Command::new(esteira_tests::binary("esteira"))
        .args([
            "--server",
            "http://127.0.0.1:1",
            "--token",
            "t",
            "autoscale",
            "--pools",
        ])
        .arg(&pools)
        .args([
            "--coordinator",
            "http://127.0.0.1:1",
            "--registration-token",
            "r",
        ])
        .args(["--id", "refused"])
        .output()
        .expect("run esteira autoscale");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("pools.toml: pool 'burst': `min` (4) is above `max` (3)"),
        "{stderr}"
    );
}

/// What the pool tests start from: the Docker lock, the agent image, a coordinator with a
/// project of `pipeline_file`, a pools file of `pool`, and the autoscaler on it.
struct PoolSetup {
    autoscaler: Autoscaler,
    coordinator: Coordinator,
    _image: AgentImage,
    _repo: GitRepo,
    _root: tempfile::TempDir,
    _docker: std::sync::MutexGuard<'static, ()>,
}

impl PoolSetup {
    fn start(project: &str, pipeline_file: &str, pool: &PoolSpec) -> PoolSetup {
        let docker = docker_lock();
        let image = AgentImage::build(project);
        let root = tempfile::tempdir().expect("temp dir");
        let (coordinator, repo) = coordinator_with(root.path(), project, pipeline_file);
        let pools = root.path().join("pools.toml");
        let toml = pool.toml(&image.name(), &root.path().join("pools"), &[&repo.dir]);
        std::fs::write(&pools, toml).expect("write the pools file");
        let autoscaler =
            Autoscaler::start(&coordinator, &pools, root.path().join("autoscaler.log"));
        PoolSetup {
            autoscaler,
            coordinator,
            _image: image,
            _repo: repo,
            _root: root,
            _docker: docker,
        }
    }

    /// The pool's state as `esteira pool list` shows it.
    fn pool(&self) -> Value {
        let pools = self.coordinator.cli_json(&["pool", "list"]);
        pools
            .as_array()
            .into_iter()
            .flatten()
            .find(|pool| pool["autoscaler"] == self.autoscaler.id.as_str())
            .cloned()
            .unwrap_or(Value::Null)
    }

    fn context(&self) -> String {
        format!(
            "autoscaler log:\n{}\ncoordinator log:\n{}",
            self.autoscaler.log(),
            self.coordinator.log()
        )
    }
}

#[test]
fn a_burst_of_30_jobs_grows_the_pool_to_max_3_survives_an_autoscaler_restart_and_shrinks_to_0() {
    let pool = PoolSpec {
        name: "burst",
        labels: &["burst"],
        min: 0,
        max: 3,
        idle_time: "3s",
        cooldown: "1s",
        args: &[],
    };
    let mut setup = PoolSetup::start("burst", &tagged_jobs(30, "burst", "echo burst"), &pool);
    let coordinator = &setup.coordinator;
    let pipeline = coordinator.run_pipeline("burst", "main");
    let mut seen = BTreeSet::new();
    let mut watch = |setup: &PoolSetup| {
        let containers = setup.autoscaler.containers();
        assert!(
            containers.len() <= 3,
            "{} agent containers: {containers:?}\n{}",
            containers.len(),
            setup.context()
        );
        seen.extend(containers);
    };

    let adopted = wait_until("three pool agents online", Duration::from_secs(90), || {
        watch(&setup);
        let agents = setup.autoscaler.agents(&setup.coordinator);
        let online = agents
            .iter()
            .filter(|a| a["status"] == "busy" || a["status"] == "idle");
        (online.count() == 3).then(|| setup.autoscaler.containers())
    });
    let report = setup.pool();
    assert_eq!(report["desired"], 3, "{report}");
    assert!(report["pending"].as_u64().is_some(), "{report}");
    let metrics = std::process::Command::new("curl")
        .args(["-fsS", &format!("{}/metrics", setup.coordinator.url())])
        .output()
        .expect("curl /metrics");
    let metrics = String::from_utf8_lossy(&metrics.stdout);
    let desired = format!(
        "esteira_pool_agents{{autoscaler=\"{}\",pool=\"burst\",state=\"desired\"}} 3\n",
        setup.autoscaler.id
    );
    assert!(metrics.contains(&desired), "{desired:?} not in\n{metrics}");

    // Killed and restarted mid-burst: the same three containers go on, none is added.
    setup.autoscaler.kill();
    setup.autoscaler.restart();
    wait_until(
        "the restarted autoscaler to report",
        Duration::from_secs(30),
        || {
            watch(&setup);
            (setup.pool()["age_ms"].as_i64()? < 1_000).then_some(())
        },
    );
    let done = wait_until("the burst to finish", Duration::from_secs(120), || {
        watch(&setup);
        let jobs = statuses(&setup.coordinator.pipeline(&pipeline));
        jobs.iter()
            .all(|status| status != "pending" && status != "running")
            .then_some(jobs)
    });
    assert_eq!(done, vec!["success"; 30], "{}", setup.context());
    let after: BTreeSet<String> = seen.clone();
    assert_eq!(
        after,
        adopted.iter().cloned().collect(),
        "the restarted autoscaler adopted its three agents and started no other"
    );

    setup.wait_back_to_nothing();
}

impl PoolSetup {
    /// Waits until the pool has no container, the coordinator none of its agents, and the
    /// pool's report says so; then checks that its jobs left nothing in Docker.
    fn wait_back_to_nothing(&self) {
        self.autoscaler
            .wait_empty(&self.coordinator, Duration::from_secs(60));
        wait_until(
            "the pool to report 0 agents",
            Duration::from_secs(10),
            || {
                let report = self.pool();
                (report["desired"] == 0 && report["current"] == 0).then_some(())
            },
        );
        assert_eq!(
            leftover_docker_objects(&self.coordinator.agent_suffix),
            [] as [String; 0]
        );
    }

    fn job(&self, pipeline: &str, name: &str) -> Value {
        let shown = self.coordinator.pipeline(pipeline);
        self.coordinator.job(&shown, name).clone()
    }

    fn attempts(&self, pipeline: &str, name: &str) -> usize {
        let shown = self.coordinator.pipeline(pipeline);
        shown["jobs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|job| job["name"] == name)
            .count()
    }
}

#[test]
fn scale_in_removes_the_idle_agent_and_keeps_the_one_running_a_long_job() {
    let pool = PoolSpec {
        name: "keep",
        labels: &["keep"],
        min: 0,
        max: 2,
        idle_time: "2s",
        cooldown: "1s",
        args: &[],
    };
    let file = format!(
        "image: {IMAGE}\n\
         long:\n  tags: [keep]\n  script: [echo started, sleep 15, echo finished]\n\
         short:\n  tags: [keep]\n  script: [echo short]\n"
    );
    let setup = PoolSetup::start("keep", &file, &pool);
    let pipeline = setup.coordinator.run_pipeline("keep", "main");
    wait_until("two agents, one per job", Duration::from_secs(90), || {
        (setup.autoscaler.agents(&setup.coordinator).len() == 2).then_some(())
    });
    wait_until(
        "the short job's agent removed while the long job runs",
        Duration::from_secs(60),
        || {
            let long = setup.job(&pipeline, "long");
            assert_ne!(
                long["status"], "success",
                "the long job ended before any scale-in"
            );
            let scaled_in = setup.job(&pipeline, "short")["status"] == "success"
                && long["status"] == "running"
                && setup.autoscaler.containers().len() == 1
                && setup.autoscaler.agents(&setup.coordinator).len() == 1;
            scaled_in.then_some(())
        },
    );
    let long = wait_until("the long job to end", Duration::from_secs(60), || {
        let long = setup.job(&pipeline, "long");
        (long["status"] != "running").then_some(long)
    });
    assert_eq!(long["status"], "success", "{long}\n{}", setup.context());
    assert_eq!(
        setup.attempts(&pipeline, "long"),
        1,
        "never lost, never retried"
    );
    let log = String::from_utf8_lossy(&setup.coordinator.job_log(&long["id"])).into_owned();
    assert!(log.contains("\nfinished\n"), "{log}");
    setup.wait_back_to_nothing();
}

#[test]
fn a_killed_pool_agent_loses_its_job_which_is_retried_on_its_replacement() {
    let pool = PoolSpec {
        name: "crash",
        labels: &["crash"],
        min: 0,
        max: 1,
        idle_time: "2s",
        cooldown: "1s",
        args: &[],
    };
    let file = format!(
        "image: {IMAGE}\n\
         victim:\n  tags: [crash]\n  retry: {{max: 1, when: [runner_system_failure]}}\n\
         \x20 script: [echo started, sleep 5, echo finished]\n"
    );
    let setup = PoolSetup::start("crash", &file, &pool);
    let pipeline = setup.coordinator.run_pipeline("crash", "main");
    let first = wait_until(
        "the job to start on a pool agent",
        Duration::from_secs(90),
        || {
            let job = setup.job(&pipeline, "victim");
            let log = setup.coordinator.job_log(&job["id"]);
            String::from_utf8_lossy(&log)
                .contains("started")
                .then(|| setup.autoscaler.containers())
        },
    );
    assert_eq!(first.len(), 1);
    let kill = std::process::Command::new("docker")
        .args(["kill", "--signal", "KILL", &first[0]])
        .output()
        .expect("docker kill");
    assert!(kill.status.success(), "{kill:?}");

    let retried = wait_until("the retry to succeed", Duration::from_secs(90), || {
        let job = setup.job(&pipeline, "victim");
        let containers = setup.autoscaler.containers();
        assert!(containers.len() <= 1, "{containers:?}");
        (job["status"] == "success").then_some(job)
    });
    assert_eq!(
        setup.attempts(&pipeline, "victim"),
        2,
        "{}",
        setup.context()
    );
    let shown = setup.coordinator.pipeline(&pipeline);
    let lost = &shown["jobs"][0];
    assert_eq!(lost["status"], "lost", "{shown}");
    assert_ne!(retried["id"], lost["id"]);
    assert!(
        !setup.autoscaler.containers().contains(&first[0]),
        "the killed agent's container is gone"
    );
    setup.wait_back_to_nothing();
}
