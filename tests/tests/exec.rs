//! `esteira exec` (issue 18): a pipeline of a real git repository run on the local Docker
//! engine with no coordinator — stages in order, a `needs`, artifacts passed on, a cache,
//! a service, a manual job left out unless named, a failing `allow_failure` job — from the
//! working tree as it is (uncommitted changes included, the tree left untouched); exit 1
//! when a job fails, 2 for a usage error, 3 for a file that does not plan; rules and
//! workflow see `--ref` and `--var`; an interrupt
//! cancels the running job (its `after_script` runs) and leaves no Docker object behind.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use esteira_tests::{
    GitRepo, IMAGE, Process, binary, docker_lock, ensure_image, leftover_docker_objects,
};

/// An image serving `/www` over HTTP on an exposed port, for the pipeline's service.
const HTTPD: &str = "esteira-test/exec-cli-httpd:latest";

fn httpd_image(dir: &Path) {
    std::fs::create_dir_all(dir).expect("image dir");
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM {IMAGE}\nRUN mkdir -p /www && echo 'hello from the service' > /www/index.html\n\
             EXPOSE 8080\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n"
        ),
    )
    .expect("Dockerfile");
    let status = Command::new("docker")
        .args(["build", "--quiet", "--tag", HTTPD])
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("docker build");
    assert!(status.success(), "docker build of {HTTPD}");
}

const PIPELINE: &str = r#"
stages: [test, build, deploy]
image: esteira-test/busybox:latest
variables:
  TARGET: staging
unit:
  stage: test
  script:
    - echo "unit on $CI_COMMIT_BRANCH at $CI_COMMIT_SHORT_SHA"
    - cat message.txt
    - cat untracked.txt
    - test ! -e secret.env && echo "ignored files stay out"
lint:
  stage: test
  allow_failure: true
  script:
    - echo "lint complains"
    - exit 4
compile:
  stage: build
  script:
    - mkdir -p out deps
    - echo "binary of $(cat message.txt)" > out/app.txt
    - echo "from the cache" > deps/lib.txt
  artifacts:
    paths: [out/]
  cache:
    key: deps
    paths: [deps/]
package:
  stage: build
  needs: [compile]
  services:
    - name: esteira-test/exec-cli-httpd:latest
      alias: web
  script:
    - echo "package sees $(cat out/app.txt)"
    - wget -qO- http://web:8080/
deploy:
  stage: deploy
  cache:
    key: deps
    paths: [deps/]
    policy: pull
  script:
    - echo "deploy to $TARGET of $(cat out/app.txt)"
    - cat deps/lib.txt
release:
  stage: deploy
  when: manual
  needs: [compile]
  script:
    - echo "released $(cat out/app.txt)"
"#;

/// A repository holding the pipeline, committed on `main`.
fn repository(root: &Path, pipeline: &str) -> GitRepo {
    let repo = GitRepo::init(root.join("app"));
    repo.commit(
        &[(".gitlab-ci.yml", pipeline), ("message.txt", "committed\n")],
        "The pipeline",
    );
    repo
}

/// `esteira exec ARGS` in the repository; the output and the process id (which names the
/// run's Docker objects).
fn exec(repo: &GitRepo, args: &[&str]) -> (Output, u32) {
    let child = Command::new(binary("esteira"))
        .arg("exec")
        .args(args)
        .current_dir(&repo.dir)
        .env("ESTEIRA_DEFAULT_IMAGE", IMAGE)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run esteira exec");
    let pid = child.id();
    (child.wait_with_output().expect("esteira exec output"), pid)
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Asserts that each needle comes after the one before it in `haystack`.
fn in_order(haystack: &str, needles: &[&str]) {
    let mut from = 0;
    for needle in needles {
        match haystack[from..].find(needle) {
            Some(at) => from += at + needle.len(),
            None => panic!("{needle:?} after byte {from} of:\n{haystack}"),
        }
    }
}

/// The summary line of `job`, whitespace collapsed.
fn summary_row(stdout: &str, job: &str) -> String {
    stdout
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .find(|line| line.split(' ').nth(1) == Some(job) && !line.contains('|'))
        .unwrap_or_else(|| panic!("no summary row for {job} in:\n{stdout}"))
}

#[test]
fn a_three_stage_pipeline_runs_from_the_working_tree() {
    ensure_image();
    let _docker = docker_lock();
    let root = tempfile::tempdir().expect("temp dir");
    httpd_image(&root.path().join("httpd"));
    let repo = repository(root.path(), PIPELINE);
    // Not committed: what runs is the working tree as it is.
    std::fs::write(repo.dir.join("message.txt"), "uncommitted\n").expect("edit");
    std::fs::write(repo.dir.join("untracked.txt"), "not yet added to git\n").expect("new file");
    std::fs::write(repo.dir.join(".gitignore"), "secret.env\n").expect("ignore");
    std::fs::write(repo.dir.join("secret.env"), "TOKEN=local\n").expect("ignored file");
    let status_before = repo.git(&["status", "--porcelain"]);
    let head = repo.git(&["rev-parse", "HEAD"]);

    let (output, pid) = exec(&repo, &[]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    in_order(
        &stdout,
        &[
            "unit    | --- job unit (stage test) started",
            &format!("unit    | unit on main at {}", &head[..8]),
            "unit    | uncommitted",
            "unit    | not yet added to git",
            "unit    | ignored files stay out",
            "unit    | --- job unit success",
            "lint    | lint complains",
            "lint    | --- job lint failed (allowed): exit code 4",
            "compile | --- job compile success",
            "package | package sees binary of uncommitted",
            "package | hello from the service",
            "deploy  | deploy to staging of binary of uncommitted",
            "deploy  | from the cache",
            "deploy  | --- job deploy success",
        ],
    );
    assert!(!stdout.contains("released"), "{stdout}");
    assert!(!stdout.contains('\x1b'), "no terminal escapes in a pipe");
    let lint = summary_row(&stdout, "lint");
    assert!(
        lint.starts_with("test lint failed (allowed) ") && lint.ends_with("s exit code 4"),
        "{lint}"
    );
    assert!(
        summary_row(&stdout, "release").contains("not run - manual: run it with --job 'release'"),
        "{stdout}"
    );
    assert!(
        stdout.contains("pipeline succeeded (5 of 6 jobs run)"),
        "{stdout}"
    );

    // The working tree and the repository are as they were.
    assert_eq!(repo.git(&["status", "--porcelain"]), status_before);
    assert_eq!(repo.git(&["rev-parse", "HEAD"]), head);
    assert_eq!(
        std::fs::read_to_string(repo.dir.join("message.txt")).expect("read"),
        "uncommitted\n"
    );
    assert!(
        !repo.dir.join("out").exists(),
        "artifacts stay out of the tree"
    );
    assert_eq!(
        leftover_docker_objects(&format!("exec-{pid}")),
        Vec::<String>::new()
    );
}

#[test]
fn a_failing_job_fails_the_run_and_skips_what_follows() {
    ensure_image();
    let _docker = docker_lock();
    let root = tempfile::tempdir().expect("temp dir");
    let pipeline = format!(
        "image: {IMAGE}\nstages: [test, deploy]\n\
         unit:\n  stage: test\n  script: [echo testing, exit 3]\n\
         deploy:\n  stage: deploy\n  script: [echo deploying]\n\
         notify:\n  stage: deploy\n  when: on_failure\n  script: [echo the pipeline failed]\n"
    );
    let repo = repository(root.path(), &pipeline);
    let (output, pid) = exec(&repo, &[]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    in_order(
        &stdout,
        &[
            "unit   | testing",
            "unit   | --- job unit failed: exit code 3",
            "notify | the pipeline failed",
            "pipeline failed",
        ],
    );
    assert!(!stdout.contains("deploying"), "{stdout}");
    assert!(
        summary_row(&stdout, "deploy").contains("skipped - a job before it failed"),
        "{stdout}"
    );
    assert_eq!(
        leftover_docker_objects(&format!("exec-{pid}")),
        Vec::<String>::new()
    );
}

#[test]
fn job_selection_runs_the_named_jobs_and_what_they_need() {
    ensure_image();
    let _docker = docker_lock();
    let root = tempfile::tempdir().expect("temp dir");
    httpd_image(&root.path().join("httpd"));
    let repo = repository(root.path(), PIPELINE);

    let (planned, _) = exec(&repo, &["--job", "release", "--dry-run"]);
    let (plan, stderr) = text(&planned);
    assert_eq!(planned.status.code(), Some(0), "{plan}\n{stderr}");
    in_order(
        &plan,
        &[
            "stage test",
            "unit     out: not selected by --job or --stage",
            "stage build",
            "compile  runs: needed by 'release'",
            "stage deploy",
            "release  runs",
        ],
    );

    let (output, _) = exec(&repo, &["--job", "release"]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    in_order(
        &stdout,
        &[
            "compile | --- job compile success",
            "release | released binary of committed",
            "pipeline succeeded (2 of 6 jobs run)",
        ],
    );
    assert!(!stdout.contains("unit on"), "{stdout}");
}

#[test]
fn a_file_that_does_not_plan_exits_3_and_usage_errors_exit_2() {
    let root = tempfile::tempdir().expect("temp dir");
    let repo = repository(root.path(), "build:\n  stage: build\n  script: [echo a\n");
    let (output, _) = exec(&repo, &[]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(stderr.contains(".gitlab-ci.yml does not plan:"), "{stderr}");
    assert!(
        stderr.contains(".gitlab-ci.yml:"),
        "a FILE:LINE:COL error in {stderr}"
    );

    let valid = format!("image: {IMAGE}\nbuild:\n  script: [echo built]\n");
    std::fs::write(repo.dir.join(".gitlab-ci.yml"), valid).expect("fix the file");
    let (unknown, _) = exec(&repo, &["--job", "nope"]);
    let (_, stderr) = text(&unknown);
    assert_eq!(unknown.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the plan has no job 'nope'; it has: build"),
        "{stderr}"
    );

    let (missing, _) = exec(&repo, &["--file", "other.yml"]);
    let (_, stderr) = text(&missing);
    assert_eq!(missing.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no pipeline file at"), "{stderr}");
}

#[test]
fn an_interrupt_cancels_the_running_job_and_leaves_nothing_behind() {
    ensure_image();
    let _docker = docker_lock();
    let root = tempfile::tempdir().expect("temp dir");
    let pipeline = format!(
        "image: {IMAGE}\nstages: [test, deploy]\n\
         slow:\n  stage: test\n  script: ['echo \"started $((6 * 7))\"', sleep 60]\n\
         \x20 after_script: ['echo \"after_script: $CI_JOB_STATUS\"']\n\
         deploy:\n  stage: deploy\n  script: [echo deployed]\n"
    );
    let repo = repository(root.path(), &pipeline);
    let mut child = Command::new(binary("esteira"))
        .arg("exec")
        .current_dir(&repo.dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run esteira exec");
    let pid = child.id();
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut process = Process::from(child);
    let started = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|line| line == "slow   | started 42");
    assert!(started, "the job started");

    process.interrupt();
    let status = process
        .wait_exit(Duration::from_secs(60))
        .expect("esteira exec exits after the interrupt");
    let rest = lines.map_while(Result::ok).collect::<Vec<_>>().join("\n");
    assert_eq!(status.code(), Some(1), "{rest}");
    in_order(
        &rest,
        &[
            "slow   | after_script: canceled",
            "slow   | --- job slow canceled",
            "pipeline failed",
        ],
    );
    assert!(!rest.contains("deployed"), "{rest}");
    assert_eq!(
        leftover_docker_objects(&format!("exec-{pid}")),
        Vec::<String>::new()
    );
}

#[test]
fn rules_and_workflow_see_the_ref_and_the_variables_given() {
    let root = tempfile::tempdir().expect("temp dir");
    let pipeline = format!(
        "image: {IMAGE}\n\
         workflow:\n  rules:\n    - if: $CI_COMMIT_BRANCH =~ /^wip/\n      when: never\n    - when: always\n\
         unit:\n  script: [echo unit]\n\
         release:\n  script: [echo release]\n  rules:\n    - if: $CI_COMMIT_BRANCH == \"master\"\n\
         notify:\n  script: [echo notify]\n  rules:\n    - if: $NOTIFY == \"yes\"\n"
    );
    let repo = repository(root.path(), &pipeline);
    let plan = |args: &[&str]| {
        let (output, _) = exec(&repo, &[&["--dry-run"], args].concat());
        let (stdout, stderr) = text(&output);
        // Words only: the name column is as wide as the longest name planned.
        let words = stdout.split_whitespace().collect::<Vec<_>>().join(" ");
        (output.status.code(), words, stderr)
    };
    let (code, on_main, _) = plan(&[]);
    assert_eq!(code, Some(0), "{on_main}");
    assert!(on_main.contains("for ref main at "), "{on_main}");
    assert!(on_main.contains("unit runs"), "{on_main}");
    assert!(
        !on_main.contains("release") && !on_main.contains("notify"),
        "{on_main}"
    );

    let (code, on_master, _) = plan(&["--ref", "master", "--var", "NOTIFY=yes"]);
    assert_eq!(code, Some(0), "{on_master}");
    in_order(&on_master, &["unit runs", "release runs", "notify runs"]);

    let (code, _, refused) = plan(&["--ref", "wip/idea"]);
    assert_eq!(code, Some(3), "{refused}");
    assert!(
        refused.contains("no job of .gitlab-ci.yml runs for ref 'wip/idea'"),
        "{refused}"
    );
}
