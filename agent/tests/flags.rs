//! The agent binary's command line: documented flags and refusals.

use std::process::Command;

#[test]
fn an_unregistered_agent_without_a_registration_token_says_what_it_needs() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_esteira-agent"))
        .args(["--coordinator", "http://127.0.0.1:1", "--work-dir"])
        .arg(dir.path())
        .env_remove("ESTEIRA_REGISTRATION_TOKEN")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--registration-token"), "{stderr}");
}

#[test]
fn help_lists_the_contract_flags() {
    let output = Command::new(env!("CARGO_BIN_EXE_esteira-agent"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--coordinator",
        "--registration-token",
        "--name",
        "--labels",
        "--concurrency",
        "--work-dir",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[test]
fn ephemeral_flags_are_checked_before_anything_starts() {
    let refused = |args: &[&str], expected: &str| {
        let output = Command::new(env!("CARGO_BIN_EXE_esteira-agent"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    };
    refused(&["--once", "--max-jobs", "3"], "cannot be used with");
    refused(&["--max-jobs", "0"], "--max-jobs");
    refused(&["--idle-exit", "0s"], "at least one second");
    refused(&["--idle-exit", "soon"], "--idle-exit");
}
