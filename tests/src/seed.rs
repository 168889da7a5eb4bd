//! The seed's whole system on one machine, for the end-to-end test and the benchmark of
//! `examples/seed-api`: a registry that wants a password, a coordinator, an agent per
//! role (build, staging, production, as the pipeline's `tags` ask), and a git remote the
//! coordinator polls, so that a `git push` is what starts each pipeline.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::{Agent, Coordinator, GitRepo, Process, ensure_image, free_port, wait_until};

/// The image the seed's jobs run in here (no image can be pulled).
pub const PYTHON_IMAGE: &str = "esteira-test/python:3.11";
/// The project's name on the coordinator.
pub const PROJECT: &str = "seed-api";
const REGISTRY_USER: &str = "seed-ci";
const REGISTRY_PASSWORD: &str = "Seed-registry-pw-7e1b";

/// Debian's `docker-registry` on a free loopback port with an htpasswd login; stopped when
/// dropped. `.ci/run` installs `docker-registry` and `apache2-utils`.
pub struct Registry {
    _process: Process,
    pub address: String,
}

impl Registry {
    pub fn start(dir: &Path, user: &str, password: &str) -> Registry {
        std::fs::create_dir_all(dir).expect("registry dir");
        let htpasswd = Command::new("htpasswd")
            .args(["-Bbn", user, password])
            .output()
            .expect("htpasswd (apt-get install apache2-utils)");
        assert!(htpasswd.status.success(), "htpasswd failed");
        std::fs::write(dir.join("htpasswd"), htpasswd.stdout).expect("write htpasswd");
        let address = format!("127.0.0.1:{}", free_port());
        let config = format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {root}/data\n\
             http:\n  addr: {address}\nauth:\n  htpasswd:\n    realm: esteira\n    path: {root}/htpasswd\n",
            root = dir.display()
        );
        std::fs::write(dir.join("config.yml"), config).expect("write registry config");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry (apt-get install docker-registry)");
        wait_until("the registry to listen", Duration::from_secs(20), || {
            TcpStream::connect(&address).ok()
        });
        Registry {
            _process: Process::from(child),
            address,
        }
    }
}

/// An HTTP GET on loopback: the status and body, `None` when nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let status = answer.split_whitespace().nth(1)?.parse().ok()?;
    let body = answer.split_once("\r\n\r\n").map(|(_, body)| body)?;
    Some((status, body.to_string()))
}

/// The whole system around `examples/seed-api`; see the module docs.
pub struct SeedStack {
    pub coordinator: Coordinator,
    pub registry: Registry,
    _agents: Vec<Agent>,
    /// The developer's clone, from which branches are pushed.
    pub work: GitRepo,
    pub staging_port: u16,
    pub production_port: u16,
}

impl SeedStack {
    /// Starts everything under `root`, with the example committed (not pushed) in
    /// [`Self::work`].
    pub fn start(root: &Path) -> SeedStack {
        ensure_image();
        remove_deployed_services();
        let registry = Registry::start(&root.join("registry"), REGISTRY_USER, REGISTRY_PASSWORD);
        let coordinator = Coordinator::start(root, 10);
        let agents = vec![
            coordinator.start_agent(root, "build", "build", 2),
            coordinator.start_agent(root, "staging", "staging", 1),
            coordinator.start_agent(root, "production", "production", 1),
        ];
        let remote = root.join("seed-api.git");
        let init = Command::new("git")
            .args(["init", "--quiet", "--bare", "--initial-branch=master"])
            .arg(&remote)
            .status()
            .expect("git init");
        assert!(init.success());
        let work = GitRepo::init(root.join("seed-api"));
        copy_example(&work.dir);
        work.git(&["add", "-A"]);
        work.git(&["commit", "--quiet", "-m", "The seed API"]);
        work.git(&["remote", "add", "origin", &remote.display().to_string()]);
        let stack = SeedStack {
            coordinator,
            registry,
            _agents: agents,
            work,
            staging_port: free_port(),
            production_port: free_port(),
        };
        stack.add_project(&remote);
        stack
    }

    fn add_project(&self, remote: &Path) {
        let repo = format!("file://{}", remote.display());
        self.coordinator.cli_ok(&[
            "project",
            "add",
            PROJECT,
            "--repo",
            &repo,
            "--default-branch",
            "master",
            "--protected-branches",
            "master,devel",
            "--poll",
            "1",
        ]);
        let image = format!("{}/{PROJECT}", self.registry.address);
        let staging = self.staging_port.to_string();
        let production = self.production_port.to_string();
        let variables: [(&str, &str, &[&str]); 7] = [
            ("CI_REGISTRY", &self.registry.address, &[]),
            ("CI_REGISTRY_IMAGE", &image, &[]),
            ("CI_REGISTRY_USER", REGISTRY_USER, &["--protected"]),
            (
                "CI_REGISTRY_PASSWORD",
                REGISTRY_PASSWORD,
                &["--protected", "--masked"],
            ),
            ("PYTHON_IMAGE", PYTHON_IMAGE, &[]),
            ("STAGING_PORT", &staging, &[]),
            ("PRODUCTION_PORT", &production, &[]),
        ];
        for (key, value, flags) in variables {
            let mut args = vec![PROJECT, key];
            args.extend_from_slice(flags);
            let output = self.coordinator.set_variable(&args, value);
            assert!(output.status.success(), "variable set {key}: {output:?}");
        }
    }

    /// Pushes the developer's `HEAD` to `branch`; returns the pushed commit.
    pub fn push(&self, branch: &str) -> String {
        self.work.git(&[
            "push",
            "--quiet",
            "--force",
            "origin",
            &format!("HEAD:refs/heads/{branch}"),
        ]);
        self.work.git(&["rev-parse", "HEAD"])
    }

    /// The pipeline the poll started for `sha` on `branch`, once it exists.
    pub fn pipeline_of(&self, sha: &str, branch: &str) -> Value {
        wait_until(
            &format!("a pipeline for {sha} on {branch}"),
            Duration::from_secs(30),
            || {
                let listed = self
                    .coordinator
                    .cli_json(&["pipeline", "list", "--project", PROJECT]);
                listed
                    .as_array()?
                    .iter()
                    .find(|p| p["sha"] == sha && p["git_ref"] == branch)
                    .cloned()
            },
        )
    }

    /// Waits for the pipeline to finish; returns it with its jobs and whether it passed.
    pub fn finish(&self, pipeline: &Value) -> (Value, bool) {
        let id = pipeline["id"].to_string();
        let waited = self.coordinator.cli(&["pipeline", "wait", &id]);
        (self.coordinator.pipeline(&id), waited.status.success())
    }

    /// The version the API deployed on `port` answers with, if it answers.
    pub fn version_on(&self, port: u16) -> Option<String> {
        let (status, body) = http_get(port, "/version")?;
        let body: Value = serde_json::from_str(&body).ok()?;
        (status == 200).then(|| body["version"].as_str().map(str::to_string))?
    }
}

impl Drop for SeedStack {
    fn drop(&mut self) {
        remove_deployed_services();
    }
}

/// The deployed API containers outlive their jobs by design; the stack removes them (those
/// of the example's two services only, not other deployments on the engine).
fn remove_deployed_services() {
    let mut ids = Vec::new();
    for service in ["seed-api-staging", "seed-api-production"] {
        let listed = Command::new("docker")
            .args(["ps", "-aq", "--filter"])
            .arg(format!("label=esteira.deploy.service={service}"))
            .output()
            .expect("docker ps");
        ids.extend(
            String::from_utf8_lossy(&listed.stdout)
                .split_whitespace()
                .map(str::to_string),
        );
    }
    if !ids.is_empty() {
        let _ = Command::new("docker")
            .args(["rm", "-f"])
            .args(&ids)
            .stdout(Stdio::null())
            .status();
    }
}

/// Copies `examples/seed-api` (files only, no caches) into `dir`.
fn copy_example(dir: &Path) {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/seed-api");
    for entry in std::fs::read_dir(&example).expect("examples/seed-api") {
        let entry = entry.expect("example entry");
        let name = entry.file_name();
        let skip = ["__pycache__", ".coverage"].iter().any(|s| name == *s);
        if entry.file_type().expect("file type").is_file() && !skip {
            std::fs::copy(entry.path(), dir.join(&name)).expect("copy example file");
        }
    }
}
