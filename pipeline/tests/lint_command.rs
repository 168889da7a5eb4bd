//! `esteira lint` as a user runs it: exit codes, `FILE:LINE:COL` errors, plans as text and
//! JSON, includes resolved from the file's directory.

use esteira_pipeline::lint_command::{EXIT_INVALID, EXIT_USAGE, EXIT_VALID, LintOptions, run_lint};

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

fn options(file: &str) -> LintOptions {
    LintOptions {
        file: file.into(),
        ..LintOptions::default()
    }
}

#[test]
fn valid_file_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, ".gitlab-ci.yml", "include: ci/jobs.yml\n");
    write(&dir, "ci/jobs.yml", "test:\n  script: [make test]\n");
    let outcome = run_lint(&options(&file));
    assert_eq!(outcome.code, EXIT_VALID, "{}", outcome.stderr);
}

#[test]
fn invalid_file_exits_one_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, ".gitlab-ci.yml", "test:\n  scirpt: [make]\n");
    let outcome = run_lint(&options(&file));
    assert_eq!(outcome.code, EXIT_INVALID);
    assert!(
        outcome.stderr.contains(&format!(
            "{file}:2:3: job 'test': unknown job keyword 'scirpt' (did you mean 'script'?)"
        )),
        "{}",
        outcome.stderr
    );
}

#[test]
fn usage_errors_exit_two() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        run_lint(&options("/nonexistent/.gitlab-ci.yml")).code,
        EXIT_USAGE
    );
    let file = write(&dir, ".gitlab-ci.yml", "test:\n  script: [x]\n");
    let bad_event = LintOptions {
        plan: true,
        event: Some("carrier-pigeon".into()),
        ..options(&file)
    };
    assert_eq!(run_lint(&bad_event).code, EXIT_USAGE);
    let bad_var = LintOptions {
        plan: true,
        variables: vec!["NOEQUALS".into()],
        ..options(&file)
    };
    assert_eq!(run_lint(&bad_var).code, EXIT_USAGE);
}

#[test]
fn plan_as_text_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        ".gitlab-ci.yml",
        "build:\n  stage: build\n  script: [make]\ndeploy:\n  stage: deploy\n  script: [ship]\n  needs: [build]\n  when: manual\n  rules:\n    - if: $CI_COMMIT_TAG\n    - if: $FORCE == 'yes'\n",
    );
    let text = run_lint(&LintOptions {
        plan: true,
        git_ref: Some("main".into()),
        ..options(&file)
    });
    assert_eq!(text.code, EXIT_VALID, "{}", text.stderr);
    assert_eq!(text.stdout, "stage build\n  build  (when: on_success)\n");
    let tagged = run_lint(&LintOptions {
        plan: true,
        tag: Some("v1".into()),
        ..options(&file)
    });
    assert!(
        tagged
            .stdout
            .contains("stage deploy\n  deploy  (when: manual; allow_failure)\n    needs: build\n"),
        "{}",
        tagged.stdout
    );
    let forced = run_lint(&LintOptions {
        plan: true,
        variables: vec!["FORCE=yes".into()],
        json: true,
        ..options(&file)
    });
    let json: serde_json::Value = serde_json::from_str(&forced.stdout).unwrap();
    assert_eq!(json["jobs"][1]["name"], "deploy");
    assert_eq!(json["stages"], serde_json::json!(["build", "deploy"]));
}
