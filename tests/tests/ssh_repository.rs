//! A private repository over SSH: a real `sshd` on a loopback port serves a bare git
//! repository to one key only. The project's deploy key (`--ssh-key-file`) lets the
//! coordinator fetch its mirror and the agent its checkout, without either host having
//! SSH credentials of its own, and the key is nowhere on disk once the fetches are done.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use esteira_tests::{
    Coordinator, GitRepo, IMAGE, Process, docker_lock, ensure_image, free_port, leaks_under,
};

/// `ssh-keygen` an ed25519 key pair without a passphrase at `path` (and `path.pub`).
fn key_pair(path: &Path) {
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", ""])
        .arg("-f")
        .arg(path)
        .status()
        .expect("ssh-keygen (apt-get install openssh-client)");
    assert!(made.success());
}

/// Debian's sshd on `port`, accepting `client_key.pub` for the current user only.
fn start_sshd(dir: &Path, port: u16) -> Process {
    key_pair(&dir.join("host_key"));
    key_pair(&dir.join("client_key"));
    std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).unwrap();
    // sshd's privilege separation directory.
    let _ = std::fs::create_dir_all("/run/sshd");
    let config = format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {dir}/host_key\n\
         AuthorizedKeysFile {dir}/authorized_keys\nPasswordAuthentication no\n\
         KbdInteractiveAuthentication no\nUsePAM no\nPermitRootLogin prohibit-password\n\
         StrictModes no\nPidFile {dir}/sshd.pid\n",
        dir = dir.display()
    );
    std::fs::write(dir.join("sshd_config"), config).unwrap();
    let sshd = Path::new("/usr/sbin/sshd");
    assert!(
        sshd.exists(),
        "sshd is not installed: apt-get install openssh-server"
    );
    let child = Command::new(sshd)
        .args(["-D", "-e", "-f"])
        .arg(dir.join("sshd_config"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("sshd.log")).unwrap())
        .spawn()
        .expect("start sshd");
    esteira_tests::wait_until("sshd to listen", Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    Process::from(child)
}

#[test]
fn a_deploy_key_fetches_a_private_ssh_repository_for_the_coordinator_and_the_agent() {
    let _guard = docker_lock();
    ensure_image();
    let root = tempfile::tempdir().unwrap();
    let ssh_dir = root.path().join("sshd");
    std::fs::create_dir_all(&ssh_dir).unwrap();
    let port = free_port();
    let _sshd = start_sshd(&ssh_dir, port);

    let source = GitRepo::init(root.path().join("source"));
    let file = format!("read:\n  image: {IMAGE}\n  script: [cat secret-plan.txt]\n");
    source.commit(
        &[
            (".gitlab-ci.yml", &file),
            ("secret-plan.txt", "only for the deploy key\n"),
        ],
        "private",
    );
    let bare = root.path().join("private.git");
    source.git(&[
        "clone",
        "--quiet",
        "--bare",
        ".",
        &bare.display().to_string(),
    ]);
    let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_string();
    let url = format!("ssh://{user}@127.0.0.1:{port}{}", bare.display());

    let coordinator = Coordinator::start(root.path(), 10);
    let agent_dir = root.path().join("agent-a");
    let _agent = coordinator.start_agent(root.path(), "a", "", 1);
    let key_file = ssh_dir.join("client_key").display().to_string();
    coordinator.cli_ok(&[
        "project",
        "add",
        "private",
        "--repo",
        &url,
        "--ssh-key-file",
        &key_file,
    ]);
    let id = coordinator.run_pipeline("private", "main");
    let waited = coordinator.cli(&["pipeline", "wait", &id]);
    let pipeline = coordinator.pipeline(&id);
    assert!(
        waited.status.success(),
        "{pipeline:#}\n{}",
        std::fs::read_to_string(ssh_dir.join("sshd.log")).unwrap_or_default()
    );
    let log = coordinator.job_log(&coordinator.job(&pipeline, "read")["id"]);
    let log = String::from_utf8_lossy(&log);
    assert!(log.contains("\nonly for the deploy key\n"), "{log}");

    let key = std::fs::read_to_string(&key_file).unwrap();
    let secret_line = key.lines().nth(1).expect("a key body line");
    assert!(!log.contains(secret_line), "the key never reaches the log");
    for dir in [root.path().join("coordinator"), agent_dir] {
        assert_eq!(
            leaks_under(&dir, &[secret_line]),
            Vec::<String>::new(),
            "no copy of the key is left"
        );
    }
}
