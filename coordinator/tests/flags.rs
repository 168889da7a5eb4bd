//! The coordinator binary's command line: documented flags and refusals.

use std::process::Command;

fn coordinator() -> Command {
    Command::new(env!("CARGO_BIN_EXE_esteira-coordinator"))
}

#[test]
fn help_lists_the_contract_flags_with_their_environment_twins() {
    let output = coordinator().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--data-dir",
        "ESTEIRA_DATA_DIR",
        "--http",
        "--grpc",
        "--database-url",
        "--lease-timeout",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[test]
fn plain_text_grpc_off_loopback_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let output = coordinator()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--grpc", "0.0.0.0:0", "--http", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("refusing plain-text gRPC"), "{stderr}");
}

/// `GET path` over HTTP/1.0 with extra header lines; returns the status code.
fn status_of(port: u16, path: &str, headers: &str) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: x\r\n{headers}\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

#[test]
fn with_the_read_token_required_reads_need_it_and_the_page_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let grpc = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = coordinator()
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "--http",
            &format!("127.0.0.1:{port}"),
            "--grpc",
            &format!("127.0.0.1:{grpc}"),
        ])
        .arg("--read-token-required")
        .env("ESTEIRA_ADMIN_TOKEN", "reader-token")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the coordinator did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let without = status_of(port, "/api/v1/pipelines", "");
    let bearer = status_of(
        port,
        "/api/v1/pipelines",
        "Authorization: Bearer reader-token\r\n",
    );
    let cookie = status_of(
        port,
        "/api/v1/agents",
        "Cookie: theme=dark; esteira_token=reader-token\r\n",
    );
    let wrong = status_of(port, "/api/v1/agents", "Authorization: Bearer nope\r\n");
    let page = status_of(port, "/", "");
    let health = status_of(port, "/healthz", "");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!((without, bearer, cookie, wrong), (401, 200, 200, 401));
    assert_eq!(
        (page, health),
        (200, 200),
        "the page stays public so it can ask for the token"
    );
}
