//! The end-to-end harness: starts the real `esteira-coordinator` and `esteira-agent` as
//! processes on free loopback ports, drives them with the real `esteira` CLI, and makes
//! real git repositories. Every wait is on a condition with a deadline.
//!
//! The binaries are those cargo built next to this test (`target/<profile>/`); the
//! coordinator, agent and cli packages each have an integration test, so
//! `cargo test --workspace` builds them first.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod openmetrics;
pub mod pools;
pub mod seed;
pub mod sim_agent;

/// The image every test pipeline runs in, built by `.ci/images.sh`.
pub const IMAGE: &str = "esteira-test/busybox:latest";

/// Tests that run containers take this lock: two cores, and job ids repeat across the
/// coordinators of concurrent tests.
pub fn docker_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A built binary of the workspace, next to the running executable (a bench binary) or
/// one directory up (a test in `deps/`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let candidates = exe.ancestors().skip(1).take(2).map(|dir| dir.join(name));
    let found = candidates.clone().find(|path| path.exists());
    found.unwrap_or_else(|| {
        panic!(
            "{name} is not built next to {}: run `cargo build --workspace --bins`",
            exe.display()
        )
    })
}

/// Makes sure the test image exists (building it as CI does).
pub fn ensure_image() {
    static READY: std::sync::Once = std::sync::Once::new();
    READY.call_once(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/images.sh");
        let status = Command::new("bash")
            .arg(script)
            .status()
            .expect("run .ci/images.sh");
        assert!(status.success(), ".ci/images.sh failed");
    });
}

/// What tells this test run's agents from any other on the Docker engine: `ESTEIRA_TEST_RUN`
/// (set by `scripts/test`, which checks what the run left behind) or this process's id.
pub fn test_run() -> &'static str {
    static RUN: OnceLock<String> = OnceLock::new();
    RUN.get_or_init(|| {
        std::env::var("ESTEIRA_TEST_RUN")
            .ok()
            .filter(|run| !run.is_empty())
            .unwrap_or_else(|| std::process::id().to_string())
    })
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

/// Waits until `condition` holds, panicking with `what` after `timeout`.
pub fn wait_until<T>(what: &str, timeout: Duration, mut condition: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = condition() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A child process killed when dropped.
pub struct Process(Option<Child>);

impl From<Child> for Process {
    fn from(child: Child) -> Process {
        Process(Some(child))
    }
}

impl Process {
    /// The process id, while it runs.
    pub fn id(&self) -> Option<u32> {
        self.0.as_ref().map(Child::id)
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, as `systemctl stop` or Ctrl-C would: the process decides what follows.
    pub fn interrupt(&self) {
        if let Some(pid) = self.id().and_then(|pid| i32::try_from(pid).ok()) {
            // SAFETY: sending a signal to our own child process.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
    }

    /// Waits for the process to exit by itself, up to `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let child = self.0.as_mut()?;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                self.0 = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A coordinator process with its own data dir and ports.
pub struct Coordinator {
    pub data_dir: PathBuf,
    pub http_port: u16,
    pub grpc_port: u16,
    pub lease_timeout_secs: u64,
    pub admin_token: String,
    pub registration_token: String,
    /// Serve both ports over TLS with this certificate.
    pub tls: Option<Tls>,
    /// More command-line flags for the process (kept across restarts).
    pub flags: Vec<String>,
    /// Ends the name of every agent this coordinator's test starts (`-t<run>-<n>`), so that
    /// their Docker objects (labelled with the agent's name) are told from any other's.
    pub agent_suffix: String,
    process: Process,
    log: PathBuf,
}

/// A test CA and a certificate for 127.0.0.1 signed by it, made with `openssl`.
#[derive(Clone)]
pub struct Tls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Tls {
    pub fn generate(dir: &Path) -> Tls {
        std::fs::create_dir_all(dir).expect("tls dir");
        let run = |args: &[&str]| {
            let output = Command::new("openssl")
                .current_dir(dir)
                .args(args)
                .output()
                .expect("openssl");
            assert!(
                output.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        };
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=esteira test CA",
        ]);
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        std::fs::write(
            dir.join("san.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .expect("san file");
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ]);
        Tls {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        }
    }
}

impl Coordinator {
    pub fn start(root: &Path, lease_timeout_secs: u64) -> Coordinator {
        Coordinator::start_with_tls(root, lease_timeout_secs, None)
    }

    pub fn start_with_tls(root: &Path, lease_timeout_secs: u64, tls: Option<Tls>) -> Coordinator {
        Coordinator::start_with(root, lease_timeout_secs, tls, &[])
    }

    /// Starts a coordinator given extra `flags` (e.g. `--read-token-required`).
    pub fn start_with(
        root: &Path,
        lease_timeout_secs: u64,
        tls: Option<Tls>,
        flags: &[&str],
    ) -> Coordinator {
        let mut coordinator = Coordinator {
            data_dir: root.join("coordinator"),
            http_port: free_port(),
            grpc_port: free_port(),
            lease_timeout_secs,
            admin_token: "test-admin-token".to_string(),
            registration_token: "test-registration-token".to_string(),
            tls,
            flags: flags.iter().map(|flag| flag.to_string()).collect(),
            agent_suffix: {
                static STARTED: AtomicU32 = AtomicU32::new(0);
                let n = STARTED.fetch_add(1, Ordering::Relaxed);
                format!("-t{}-{n}", test_run())
            },
            process: Process(None),
            log: root.join("coordinator.log"),
        };
        coordinator.restart();
        coordinator
    }

    /// Starts the process again on the same data dir and ports (after [`Self::kill`]).
    pub fn restart(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("coordinator log file");
        let mut command = Command::new(binary("esteira-coordinator"));
        if let Some(tls) = &self.tls {
            command
                .arg("--tls-cert")
                .arg(&tls.cert)
                .arg("--tls-key")
                .arg(&tls.key);
        }
        let child = command
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--http", &format!("127.0.0.1:{}", self.http_port)])
            .args(["--grpc", &format!("127.0.0.1:{}", self.grpc_port)])
            .args(["--lease-timeout", &self.lease_timeout_secs.to_string()])
            .args(&self.flags)
            .env("ESTEIRA_ADMIN_TOKEN", &self.admin_token)
            .env("ESTEIRA_REGISTRATION_TOKEN", &self.registration_token)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start esteira-coordinator");
        self.process = Process(Some(child));
        let address = format!("127.0.0.1:{}", self.http_port);
        wait_until("the coordinator to answer", Duration::from_secs(30), || {
            std::net::TcpStream::connect(&address).ok()
        });
    }

    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// The coordinator's process id.
    pub fn pid(&self) -> Option<u32> {
        self.process.id()
    }

    fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    pub fn url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme(), self.http_port)
    }

    pub fn grpc_url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme(), self.grpc_port)
    }

    /// The coordinator's own log so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs `esteira ARGS` against this coordinator with the admin token.
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut command = Command::new(binary("esteira"));
        if let Some(tls) = &self.tls {
            command.arg("--ca-cert").arg(&tls.ca);
        }
        command
            .args(["--server", &self.url(), "--token", &self.admin_token])
            .args(args)
            .output()
            .expect("run esteira")
    }

    /// Runs `esteira ARGS`, asserting success, and returns stdout as text.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let output = self.cli(args);
        assert!(
            output.status.success(),
            "esteira {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    pub fn cli_json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        serde_json::from_str(&self.cli_ok(&all)).expect("JSON from esteira")
    }

    pub fn pipeline(&self, id: &str) -> Value {
        self.cli_json(&["pipeline", "show", id])
    }

    /// Adds a project and runs a pipeline on `git_ref`; returns the pipeline id.
    pub fn run_pipeline(&self, project: &str, git_ref: &str) -> String {
        self.cli_ok(&["pipeline", "run", project, "--ref", git_ref])
            .trim()
            .to_string()
    }

    /// The job of a pipeline named `name` (its latest attempt).
    pub fn job<'a>(&self, pipeline: &'a Value, name: &str) -> &'a Value {
        pipeline["jobs"]
            .as_array()
            .and_then(|jobs| jobs.iter().rev().find(|job| job["name"] == name))
            .unwrap_or_else(|| panic!("no job {name} in {pipeline}"))
    }

    pub fn job_log(&self, id: &Value) -> Vec<u8> {
        let output = self.cli(&["job", "log", &id.to_string()]);
        assert!(
            output.status.success(),
            "job log failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }

    /// `esteira variable set ARGS` with `value` on stdin.
    pub fn set_variable(&self, args: &[&str], value: &str) -> Output {
        let mut child = Command::new(binary("esteira"))
            .args(["--server", &self.url(), "--token", &self.admin_token])
            .args(["variable", "set"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run esteira");
        let mut stdin = child.stdin.take().expect("stdin");
        std::io::Write::write_all(&mut stdin, value.as_bytes()).expect("write the value");
        drop(stdin);
        child.wait_with_output().expect("esteira variable set")
    }

    pub fn start_agent(&self, root: &Path, name: &str, labels: &str, concurrency: u32) -> Agent {
        Agent::start(
            self,
            root.join(format!("agent-{name}")),
            name,
            labels,
            concurrency,
        )
    }
}

/// An agent process with its own work dir.
pub struct Agent {
    pub process: Process,
    /// The name it registered with: the test's name and the coordinator's agent suffix.
    pub name: String,
    pub work_dir: PathBuf,
}

impl Agent {
    pub fn start(
        coordinator: &Coordinator,
        work_dir: PathBuf,
        name: &str,
        labels: &str,
        concurrency: u32,
    ) -> Agent {
        Agent::start_with(coordinator, work_dir, name, labels, concurrency, &[])
    }

    /// Starts an agent given more `flags` (e.g. `--once`).
    pub fn start_with(
        coordinator: &Coordinator,
        work_dir: PathBuf,
        name: &str,
        labels: &str,
        concurrency: u32,
        flags: &[&str],
    ) -> Agent {
        std::fs::create_dir_all(&work_dir).expect("agent work dir");
        let log = std::fs::File::create(work_dir.with_extension("log")).expect("agent log");
        let name = format!("{name}{}", coordinator.agent_suffix);
        let mut command = Command::new(binary("esteira-agent"));
        if let Some(tls) = &coordinator.tls {
            command.arg("--ca-cert").arg(&tls.ca);
        }
        let child = command
            .args(["--coordinator", &coordinator.grpc_url()])
            .args(["--registration-token", &coordinator.registration_token])
            .args(["--name", &name, "--labels", labels])
            .args(["--concurrency", &concurrency.to_string()])
            .arg("--work-dir")
            .arg(&work_dir)
            .args(["--default-image", IMAGE])
            .args(flags)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start esteira-agent");
        Agent {
            process: Process(Some(child)),
            name,
            work_dir,
        }
    }
}

/// What most end-to-end tests start from: the Docker lock held, the test image built, a
/// temp dir, a git repository whose `main` holds `pipeline_file` as `.gitlab-ci.yml`, a
/// coordinator, one agent (`a`, no labels) and the project on that repository.
pub struct Setup {
    pub coordinator: Coordinator,
    pub agent: Agent,
    pub repo: GitRepo,
    /// The commit holding the pipeline file.
    pub sha: String,
    pub root: tempfile::TempDir,
    _docker: MutexGuard<'static, ()>,
}

impl Setup {
    pub fn start(project: &str, pipeline_file: &str, concurrency: u32) -> Setup {
        let docker = docker_lock();
        ensure_image();
        let root = tempfile::tempdir().expect("temp dir");
        let repo = GitRepo::init(root.path().join("repo"));
        let sha = repo.commit(&[(".gitlab-ci.yml", pipeline_file)], "the pipeline");
        let coordinator = Coordinator::start(root.path(), 10);
        let agent = coordinator.start_agent(root.path(), "a", "", concurrency);
        coordinator.cli_ok(&["project", "add", project, "--repo", &repo.url()]);
        Setup {
            coordinator,
            agent,
            repo,
            sha,
            root,
            _docker: docker,
        }
    }
}

/// A git repository made by the test.
pub struct GitRepo {
    pub dir: PathBuf,
}

impl GitRepo {
    pub fn init(dir: PathBuf) -> GitRepo {
        std::fs::create_dir_all(&dir).expect("repo dir");
        let repo = GitRepo { dir };
        repo.git(&["init", "--quiet", "--initial-branch=main"]);
        repo.git(&["config", "user.email", "test@esteira.invalid"]);
        repo.git(&["config", "user.name", "esteira tests"]);
        repo
    }

    pub fn git(&self, args: &[&str]) -> String {
        let output = Command::new("git")
            .arg("-C")
            .arg(&self.dir)
            .args(args)
            .output()
            .expect("run git");
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// Writes files and commits them; returns the commit.
    pub fn commit(&self, files: &[(&str, &str)], message: &str) -> String {
        for (path, content) in files {
            let path = self.dir.join(path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("dirs");
            }
            std::fs::write(path, content).expect("write file");
        }
        self.git(&["add", "-A"]);
        self.git(&["commit", "--quiet", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }

    pub fn url(&self) -> String {
        format!("file://{}", self.dir.display())
    }
}

/// Every file under `dir` (none when it does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Each file under `dir` holding one of `needles`, as "FILE holds NEEDLE": for secrets
/// that must not be on disk in clear.
pub fn leaks_under(dir: &Path, needles: &[&str]) -> Vec<String> {
    let mut leaks = Vec::new();
    for file in files_under(dir) {
        let bytes = std::fs::read(&file).unwrap_or_default();
        for needle in needles {
            if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                leaks.push(format!("{} holds {needle}", file.display()));
            }
        }
    }
    leaks
}

/// Containers, networks and volumes of jobs run by the agents whose name ends with
/// `agent_suffix` (see [`Coordinator::agent_suffix`]), whatever other agents run on the engine.
pub fn leftover_docker_objects(agent_suffix: &str) -> Vec<String> {
    let mut found = Vec::new();
    let kinds: [(&str, &[&str], &str); 3] = [
        ("container", &["ps", "-a"], "{{.Names}}"),
        ("network", &["network", "ls"], "{{.Name}}"),
        ("volume", &["volume", "ls"], "{{.Name}}"),
    ];
    for (kind, list, name) in kinds {
        let output = Command::new("docker")
            .args(list)
            .args(["--filter", "label=esteira.job"])
            .arg("--format")
            .arg(format!("{{{{.Label \"esteira.instance\"}}}} {name}"))
            .output()
            .expect("docker");
        found.extend(
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .filter_map(|line| line.split_once(' '))
                .filter(|(instance, _)| instance.ends_with(agent_suffix))
                .map(|(_, name)| format!("{kind} {name}")),
        );
    }
    found
}
