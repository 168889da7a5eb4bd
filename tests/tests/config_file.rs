//! The coordinator's `--config` file (issue 13): a file setting every key runs the
//! coordinator as it says, a flag and an environment variable win over it, and an
//! unknown key or a bad value stops the coordinator with a message naming the key and
//! the file.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use esteira_tests::seed::http_get;
use esteira_tests::{Process, binary, free_port, wait_until};

const ADMIN_TOKEN: &str = "admin-from-the-file";

/// A file with every key the coordinator takes.
fn every_key(dir: &Path, http: u16, grpc: u16) -> String {
    let data = dir.join("data");
    format!(
        "data_dir = {data:?}\n\
         http = \"127.0.0.1:{http}\"\n\
         grpc = \"127.0.0.1:{grpc}\"\n\
         database_url = {database:?}\n\
         lease_timeout = 12\n\
         log_limit = 1048576\n\
         artifacts_limit = 2097152\n\
         artifacts_sweep_interval = 60\n\
         public_url = \"http://ci.example.test\"\n\
         read_token_required = true\n\
         insecure_plaintext = false\n\
         registration_token = \"registration-from-the-file\"\n\
         admin_token = \"{ADMIN_TOKEN}\"\n\
         log_format = \"json\"\n\
         log_level = \"info,sqlx=warn\"\n",
        database = data.join("esteira.db"),
    )
}

fn refused(dir: &Path, file: &str) -> Output {
    let path = dir.join("esteira.toml");
    std::fs::write(&path, file).expect("write the config file");
    Command::new(binary("esteira-coordinator"))
        .arg("--config")
        .arg(&path)
        .env_remove("ESTEIRA_ADMIN_TOKEN")
        .output()
        .expect("run esteira-coordinator")
}

#[test]
fn a_file_with_every_key_runs_and_flags_and_environment_win() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (file_http, file_grpc) = (free_port(), free_port());
    let (flag_http, env_grpc) = (free_port(), free_port());
    let path = dir.path().join("esteira.toml");
    std::fs::write(&path, every_key(dir.path(), file_http, file_grpc)).expect("write");
    let log = std::fs::File::create(dir.path().join("coordinator.log")).expect("log");
    let _coordinator = Process::from(
        Command::new(binary("esteira-coordinator"))
            .arg("--config")
            .arg(&path)
            .args(["--http", &format!("127.0.0.1:{flag_http}")])
            .env("ESTEIRA_GRPC", format!("127.0.0.1:{env_grpc}"))
            .env_remove("ESTEIRA_ADMIN_TOKEN")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start esteira-coordinator"),
    );
    // read_token_required from the file: the API answers 401 without the token.
    let (status, _) = wait_until(
        "the coordinator on the flag's port",
        Duration::from_secs(30),
        || http_get(flag_http, "/api/v1/projects"),
    );
    assert_eq!(status, 401);
    assert!(
        TcpStream::connect(("127.0.0.1", env_grpc)).is_ok(),
        "gRPC on the env's port"
    );
    assert!(
        http_get(file_http, "/healthz").is_none(),
        "the file's HTTP port was overridden"
    );
    let listed = Command::new(binary("esteira"))
        .args(["--server", &format!("http://127.0.0.1:{flag_http}")])
        .args(["--token", ADMIN_TOKEN, "project", "list", "--json"])
        .output()
        .expect("run esteira");
    assert!(
        listed.status.success(),
        "the file's admin token is refused: {}",
        String::from_utf8_lossy(&listed.stderr)
    );
    assert!(
        dir.path().join("data/esteira.db").exists(),
        "the file's database"
    );
    let logged = std::fs::read_to_string(dir.path().join("coordinator.log")).expect("log");
    let ready = logged
        .lines()
        .find(|line| line.contains("coordinator ready"))
        .unwrap_or_else(|| panic!("no ready line: {logged}"));
    let line: serde_json::Value =
        serde_json::from_str(ready).unwrap_or_else(|_| panic!("not JSON (log_format): {ready}"));
    assert_eq!(line["level"], "INFO");
}

#[test]
fn an_unknown_key_is_refused_with_its_name_and_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = refused(dir.path(), "lease_timeout = 5\ncolour = \"red\"\n");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("colour"), "{stderr}");
    assert!(stderr.contains("esteira.toml"), "{stderr}");
}

#[test]
fn a_bad_value_is_refused_with_its_key_and_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (file, key) in [
        ("lease_timeout = \"soon\"\n", "lease_timeout"),
        ("http = \"nowhere\"\n", "http"),
        ("log_level = \"loud\"\n", "log_level"),
        ("tls_cert = \"/x.pem\"\n", "tls_key"),
    ] {
        let output = refused(dir.path(), file);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{file} accepted");
        assert!(stderr.contains(key), "{file}: {stderr}");
        assert!(stderr.contains("esteira.toml"), "{file}: {stderr}");
    }
}
