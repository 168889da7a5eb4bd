//! Runner pools in tests and benchmarks: the agent image built from this build's binaries
//! (`deploy/docker/build.sh` on the base `.ci/images.sh` makes offline), a pools file,
//! `esteira autoscale` as a process, and the containers it started. The agent containers
//! use the host's network, so they reach the test's coordinator on loopback, and the
//! host's Docker socket for their jobs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{Coordinator, IMAGE, Process, binary, test_run, wait_until};

/// The agent image of this build, removed (with the coordinator image built beside it)
/// when dropped.
pub struct AgentImage {
    pub tag: String,
}

impl AgentImage {
    /// Builds `esteira-agent:autoscale-<run>-<purpose>`.
    pub fn build(purpose: &str) -> AgentImage {
        let repository = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let base = Command::new("bash")
            .arg(repository.join(".ci/images.sh"))
            .args(["busybox", "debian"])
            .status()
            .expect("run .ci/images.sh");
        assert!(base.success(), ".ci/images.sh failed");
        let bin_dir = binary("esteira-agent")
            .parent()
            .expect("the binaries' directory")
            .to_path_buf();
        let tag = format!("autoscale-{}-{purpose}", test_run());
        let output = Command::new(repository.join("deploy/docker/build.sh"))
            .arg("--bin-dir")
            .arg(&bin_dir)
            .args(["--base", "esteira-test/debian:bookworm", "--tag", &tag])
            .output()
            .expect("run deploy/docker/build.sh");
        assert!(
            output.status.success(),
            "deploy/docker/build.sh: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        AgentImage { tag }
    }

    pub fn name(&self) -> String {
        format!("esteira-agent:{}", self.tag)
    }
}

impl Drop for AgentImage {
    fn drop(&mut self) {
        for image in ["esteira-agent", "esteira-coordinator"] {
            let _ = Command::new("docker")
                .args(["rmi", &format!("{image}:{}", self.tag)])
                .output();
        }
    }
}

/// A pool as a test defines it.
pub struct PoolSpec {
    pub name: &'static str,
    pub labels: &'static [&'static str],
    pub min: u32,
    pub max: u32,
    pub idle_time: &'static str,
    pub cooldown: &'static str,
    /// More `esteira-agent` flags.
    pub args: &'static [&'static str],
}

impl PoolSpec {
    /// The `[[pool]]` table, agents from `image` with their work dirs under `work_root`
    /// and `mounts` (host paths) mounted read-only at the same place.
    pub fn toml(&self, image: &str, work_root: &Path, mounts: &[&Path]) -> String {
        let quoted = |items: &[String]| {
            items
                .iter()
                .map(|item| format!("{item:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let labels: Vec<String> = self.labels.iter().map(|l| l.to_string()).collect();
        let args: Vec<String> = self.args.iter().map(|a| a.to_string()).collect();
        let volumes: Vec<String> = mounts
            .iter()
            .map(|path| format!("{0}:{0}:ro", path.display()))
            .collect();
        format!(
            "[[pool]]\nname = {:?}\nlabels = [{}]\nmin = {}\nmax = {}\nidle_time = {:?}\n\
             cooldown = {:?}\n[pool.agent]\nimage = {image:?}\nnetwork = \"host\"\n\
             work_root = {:?}\nenv = {{ ESTEIRA_DEFAULT_IMAGE = {IMAGE:?} }}\nargs = [{}]\n\
             volumes = [{}]\n",
            self.name,
            quoted(&labels),
            self.min,
            self.max,
            self.idle_time,
            self.cooldown,
            work_root.display().to_string(),
            quoted(&args),
            quoted(&volumes),
        )
    }
}

/// `esteira autoscale` against a test's coordinator; its containers are removed when
/// dropped.
pub struct Autoscaler {
    /// Its `--id`: `as` and the coordinator's agent suffix, so that its agents' names
    /// (which end with the id) mark their jobs' Docker objects as this test run's.
    pub id: String,
    command: Vec<String>,
    process: Process,
    log: PathBuf,
}

impl Autoscaler {
    pub fn start(coordinator: &Coordinator, pools_file: &Path, log: PathBuf) -> Autoscaler {
        let id = format!("as{}", coordinator.agent_suffix);
        let command = [
            "--server",
            &coordinator.url(),
            "--token",
            &coordinator.admin_token,
            "autoscale",
            "--pools",
            &pools_file.display().to_string(),
            "--coordinator",
            &coordinator.grpc_url(),
            "--registration-token",
            &coordinator.registration_token,
            "--id",
            &id,
            "--interval",
            "1s",
        ]
        .map(str::to_string)
        .to_vec();
        let mut autoscaler = Autoscaler {
            id,
            command,
            process: Process(None),
            log,
        };
        autoscaler.restart();
        autoscaler
    }

    /// Starts the process again (after [`Self::kill`]).
    pub fn restart(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("autoscaler log file");
        let child = Command::new(binary("esteira"))
            .args(&self.command)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start esteira autoscale");
        self.process = Process(Some(child));
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The names of the containers it started, running or not.
    pub fn containers(&self) -> Vec<String> {
        self.docker_ps(&[])
    }

    /// The names of those of its containers that run.
    pub fn running_containers(&self) -> Vec<String> {
        self.docker_ps(&["--filter", "status=running"])
    }

    fn docker_ps(&self, filters: &[&str]) -> Vec<String> {
        let output = Command::new("docker")
            .args(["ps", "-a", "--format", "{{.Names}}", "--filter"])
            .arg(format!("label=esteira.autoscaler={}", self.id))
            .args(filters)
            .output()
            .expect("docker ps");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The coordinator's agents this autoscaler started (whatever their status).
    pub fn agents(&self, coordinator: &Coordinator) -> Vec<serde_json::Value> {
        let agents = coordinator.cli_json(&["agent", "list"]);
        agents
            .as_array()
            .into_iter()
            .flatten()
            .filter(|agent| {
                agent["name"]
                    .as_str()
                    .is_some_and(|name| name.ends_with(&self.id))
            })
            .cloned()
            .collect()
    }

    /// Waits until it has no container left and the coordinator none of its agents.
    pub fn wait_empty(&self, coordinator: &Coordinator, timeout: Duration) {
        wait_until(
            "the pool to be back to no agent and no container",
            timeout,
            || (self.containers().is_empty() && self.agents(coordinator).is_empty()).then_some(()),
        );
    }
}

impl Drop for Autoscaler {
    fn drop(&mut self) {
        self.process.kill();
        for container in self.containers() {
            let _ = Command::new("docker")
                .args(["rm", "-f", "-v", &container])
                .output();
        }
    }
}
