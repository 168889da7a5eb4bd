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
