//! `deploy/` as ops use it: the systemd units pass `systemd-analyze verify`, the
//! Kubernetes base renders offline, the compose file is valid, and the images build from the built binaries (on a
//! base made offline) and run: the coordinator container answers `/healthz` and an agent
//! container registers with it over a Docker network the test makes. Nothing but what
//! the test creates is touched.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use esteira_tests::{binary, docker_lock, test_run, wait_until};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(command: &mut Command) -> Output {
    let output = command.output().expect("run a command");
    assert!(
        output.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// `unit` from `deploy/systemd/` with `/usr/local/bin/` replaced by `bin_dir`, in `dir`.
fn render_unit(unit: &str, bin_dir: &Path, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(repository().join("deploy/systemd").join(unit))
        .expect("read the unit");
    let rendered = dir.join(unit);
    let bin_dir = format!("{}/", bin_dir.display());
    std::fs::write(&rendered, text.replace("/usr/local/bin/", &bin_dir)).expect("write the unit");
    rendered
}

#[test]
fn the_systemd_units_pass_systemd_analyze_verify() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bin_dir = binary("esteira-coordinator")
        .parent()
        .expect("the binaries' directory")
        .to_path_buf();
    let units = ["esteira-coordinator.service", "esteira-agent.service"]
        .map(|unit| render_unit(unit, &bin_dir, dir.path()));
    run(Command::new("systemd-analyze").arg("verify").args(&units));

    // The check is real: a unit whose program is missing fails it.
    let missing = tempfile::tempdir().expect("temp dir");
    let broken = render_unit("esteira-agent.service", missing.path(), missing.path());
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&broken)
        .output()
        .expect("systemd-analyze");
    assert!(!output.status.success(), "{output:?}");
}

#[test]
fn the_kubernetes_base_renders_offline() {
    let rendered = run(Command::new("kubectl")
        .arg("kustomize")
        .arg(repository().join("deploy/kubernetes/base")));
    let text = stdout(&rendered);
    let documents: Vec<&str> = text.split("\n---\n").collect();
    let kinds: Vec<&str> = documents
        .iter()
        .filter_map(|document| {
            document
                .lines()
                .find_map(|line| line.strip_prefix("kind: "))
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "Service",
            "PersistentVolumeClaim",
            "Deployment",
            "Deployment"
        ],
        "{text}"
    );
    for document in &documents {
        assert!(
            document.contains("app.kubernetes.io/part-of: esteira"),
            "every resource carries the common label: {document}"
        );
    }
    // What refers to something names what is there.
    assert!(
        text.contains("claimName: esteira-coordinator-data"),
        "{text}"
    );
    assert!(text.contains("name: esteira-coordinator-data\n"), "{text}");
    assert!(
        text.contains("value: http://esteira-coordinator:9090"),
        "{text}"
    );
    assert!(text.contains("image: esteira-coordinator:latest"), "{text}");
    assert!(text.contains("image: esteira-agent:latest"), "{text}");
}

#[test]
fn the_compose_file_is_valid_with_the_example_settings() {
    let dir = tempfile::tempdir().expect("temp dir");
    let compose = repository().join("deploy/compose");
    std::fs::copy(
        compose.join("docker-compose.yml"),
        dir.path().join("docker-compose.yml"),
    )
    .expect("copy the compose file");
    std::fs::copy(compose.join("env.example"), dir.path().join(".env")).expect("copy the env");
    let config = run(Command::new("docker-compose")
        .current_dir(dir.path())
        .arg("config"));
    let text = stdout(&config);
    assert!(
        text.contains("ESTEIRA_COORDINATOR: http://coordinator:9090"),
        "{text}"
    );
    assert!(text.contains("condition: service_healthy"), "{text}");
    assert!(
        text.contains("/var/run/docker.sock:/var/run/docker.sock"),
        "{text}"
    );
}

/// Docker objects the image test made, removed when dropped (even when it fails).
struct Made {
    containers: Vec<String>,
    network: String,
    images: Vec<String>,
}

impl Drop for Made {
    fn drop(&mut self) {
        let quiet = |args: &[&str]| {
            let _ = Command::new("docker").args(args).output();
        };
        for container in &self.containers {
            quiet(&["rm", "-f", "-v", container]);
        }
        quiet(&["network", "rm", &self.network]);
        for image in &self.images {
            quiet(&["rmi", image]);
        }
    }
}

fn health(container: &str) -> String {
    let output = Command::new("docker")
        .args(["inspect", "--format", "{{.State.Health.Status}}", container])
        .output()
        .expect("docker inspect");
    stdout(&output)
}

fn wait_healthy(container: &str) {
    wait_until(
        &format!("{container} to be healthy"),
        Duration::from_secs(90),
        || (health(container) == "healthy").then_some(()),
    );
}

#[test]
fn the_images_build_offline_and_an_agent_container_registers_with_a_coordinator_container() {
    let _docker = docker_lock();
    let script = repository().join(".ci/images.sh");
    run(Command::new("bash").arg(script).arg("debian"));
    let bin_dir = binary("esteira-coordinator")
        .parent()
        .expect("the binaries' directory")
        .to_path_buf();
    let run_id = format!("deploy-test-{}", test_run());
    let mut made = Made {
        containers: Vec::new(),
        network: format!("esteira-{run_id}"),
        images: vec![
            format!("esteira-coordinator:{run_id}"),
            format!("esteira-agent:{run_id}"),
        ],
    };
    run(Command::new(repository().join("deploy/docker/build.sh"))
        .arg("--bin-dir")
        .arg(&bin_dir)
        .args(["--base", "esteira-test/debian:bookworm", "--tag", &run_id]));
    run(Command::new("docker").args(["network", "create", &made.network]));

    let coordinator = format!("esteira-coordinator-{run_id}");
    made.containers.push(coordinator.clone());
    let admin_token = "deploy-test-admin-token";
    let registration_token = "deploy-test-registration-token";
    run(Command::new("docker").args([
        "run",
        "--detach",
        "--init",
        "--name",
        &coordinator,
        "--network",
        &made.network,
        "--network-alias",
        "coordinator",
        "--publish",
        "127.0.0.1::8080",
        "--env",
        "ESTEIRA_INSECURE_PLAINTEXT=true",
        "--env",
        &format!("ESTEIRA_ADMIN_TOKEN={admin_token}"),
        "--env",
        &format!("ESTEIRA_REGISTRATION_TOKEN={registration_token}"),
        &made.images[0],
    ]));
    wait_healthy(&coordinator);
    let published = stdout(&run(Command::new("docker").args([
        "port",
        &coordinator,
        "8080/tcp",
    ])));
    let server = format!("http://{}", published.lines().next().unwrap_or_default());
    let healthz = run(Command::new("curl").args(["-fsS", &format!("{server}/healthz")]));
    assert_eq!(stdout(&healthz), "ok");
    let user = stdout(&run(Command::new("docker").args([
        "exec",
        &coordinator,
        "id",
        "-un",
    ])));
    assert_eq!(user, "esteira", "the coordinator does not run as root");

    // The agent's work dir is at the same path in the container as on the host: Docker
    // resolves the jobs' bind mounts on the host.
    let work = tempfile::tempdir().expect("temp dir");
    let work_dir = work.path().display().to_string();
    let agent = format!("esteira-agent-{run_id}");
    made.containers.push(agent.clone());
    run(Command::new("docker").args([
        "run",
        "--detach",
        "--init",
        "--name",
        &agent,
        "--network",
        &made.network,
        "--volume",
        "/var/run/docker.sock:/var/run/docker.sock",
        "--volume",
        &format!("{work_dir}:{work_dir}"),
        "--env",
        &format!("ESTEIRA_AGENT_WORK_DIR={work_dir}"),
        "--env",
        "ESTEIRA_COORDINATOR=http://coordinator:9090",
        "--env",
        &format!("ESTEIRA_REGISTRATION_TOKEN={registration_token}"),
        &made.images[1],
        "--name",
        &agent,
        "--labels",
        "docker,linux",
    ]));
    let cli = || {
        let output = run(Command::new(binary("esteira")).args([
            "--server",
            &server,
            "--token",
            admin_token,
            "agent",
            "list",
            "--json",
        ]));
        serde_json::from_slice::<serde_json::Value>(&output.stdout).expect("JSON agent list")
    };
    let registered = wait_until(
        "the agent container to register and open its session",
        Duration::from_secs(60),
        || {
            let agents = cli();
            let found = agents
                .as_array()?
                .iter()
                .find(|a| a["name"] == agent)?
                .clone();
            (found["status"] == "idle").then_some(found)
        },
    );
    assert_eq!(registered["labels"], serde_json::json!(["docker", "linux"]));
    wait_healthy(&agent);
    assert!(
        work.path().join("credentials.json").exists(),
        "the agent keeps its credential in the host's work dir"
    );
}
