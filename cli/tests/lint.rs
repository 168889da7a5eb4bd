//! `esteira lint` as a user runs it.

use std::process::Command;

fn lint(content: &str, extra: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(".gitlab-ci.yml");
    std::fs::write(&file, content).unwrap();
    Command::new(env!("CARGO_BIN_EXE_esteira"))
        .arg("lint")
        .arg(&file)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn a_valid_file_exits_zero() {
    let output = lint("test:\n  script: [echo hi]\n", &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn an_invalid_file_exits_one_with_file_line_and_column() {
    let output = lint("test:\n  script: [echo hi]\n  scirpt: [oops]\n", &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(".gitlab-ci.yml:3:"), "{stderr}");
}

#[test]
fn plan_shows_the_jobs_for_the_ref() {
    let file =
        "build:\n  script: [make]\ndeploy:\n  stage: deploy\n  script: [ship]\n  only: [master]\n";
    let feature =
        String::from_utf8_lossy(&lint(file, &["--ref", "feature/x", "--plan"]).stdout).into_owned();
    let master =
        String::from_utf8_lossy(&lint(file, &["--ref", "master", "--plan"]).stdout).into_owned();
    assert!(
        feature.contains("build") && !feature.contains("deploy:") && !feature.contains("ship"),
        "{feature}"
    );
    assert!(master.contains("deploy"), "{master}");
}
