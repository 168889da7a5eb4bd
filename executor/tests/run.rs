//! The core path with real Docker and real git: checkout, script, log, exit code,
//! after_script, missing image, cleanup.

mod common;

use common::*;
use esteira_executor::{FailureKind, JobResult};

#[tokio::test]
async fn runs_the_script_in_the_checked_out_commit_and_streams_exact_bytes() {
    let _slot = slot().await;
    let repo = Repo::new(&[("hello.txt", b"from the repo\n")]);
    let h = Harness::new("exact").await;
    let mut spec = spec(&[
        "cat hello.txt",
        // Invalid UTF-8, a carriage return, no trailing newline.
        "printf 'a\\377b\\r\\ncd\\200'",
        "printf 'err\\n' >&2",
    ]);
    spec.before_script = vec!["echo \"$GREETING from $CI_PROJECT_DIR\"".to_string()];
    spec.after_script = vec!["echo after ran".to_string()];
    let mut job = h.job(&repo, 101, spec);
    job.env.push(("GREETING".to_string(), "hello".to_string()));
    let (outcome, log) = h.run(job).await;

    assert_eq!(
        outcome.result,
        JobResult::Success,
        "{}",
        String::from_utf8_lossy(&log)
    );
    assert_eq!(outcome.exit_code, Some(0));
    let expected: &[u8] = b"\x1b[32;1m$ echo \"$GREETING from $CI_PROJECT_DIR\"\x1b[0;m\n\
        hello from /builds/demo\n\
        \x1b[32;1m$ cat hello.txt\x1b[0;m\n\
        from the repo\n\
        \x1b[32;1m$ printf 'a\\377b\\r\\ncd\\200'\x1b[0;m\n\
        a\xffb\r\ncd\x80\
        \x1b[32;1m$ printf 'err\\n' >&2\x1b[0;m\nerr\n";
    assert!(
        find(&log, expected).is_some(),
        "{}",
        String::from_utf8_lossy(&log)
    );
    assert!(find(&log, b"Checking out").is_some());
    assert!(find(&log, b"\nafter ran\n").is_some());
    assert!(find(&log, b"Job succeeded").is_some());
    h.assert_nothing_left().await;
    assert!(!h.builds_dir().join("101").exists());
}

#[tokio::test]
async fn a_failing_command_stops_the_script_and_reports_its_exit_code() {
    let _slot = slot().await;
    let repo = Repo::new(&[("a", b"a")]);
    let h = Harness::new("fail").await;
    let mut spec = spec(&["echo one", "sh -c 'exit 3'", "echo never"]);
    spec.after_script = vec![
        "echo \"cleaning up after $CI_JOB_STATUS\"".to_string(),
        "false".to_string(),
    ];
    let (outcome, log) = h.run(h.job(&repo, 102, spec)).await;
    let text = String::from_utf8_lossy(&log);

    assert_eq!(outcome.result, JobResult::Failed, "{text}");
    assert_eq!(outcome.exit_code, Some(3));
    let failure = outcome.failure.expect("a failure");
    assert_eq!(failure.kind, FailureKind::ScriptFailure);
    assert_eq!(failure.message, "exit code 3");
    assert!(!text.contains("$ echo never"), "{text}");
    assert!(text.contains("\ncleaning up after failed\n"), "{text}");
    assert!(
        text.contains("WARNING: after_script failed: exit code 1"),
        "{text}"
    );
    assert!(text.contains("ERROR: Job failed: exit code 3"), "{text}");
    h.assert_nothing_left().await;
}

#[tokio::test]
async fn a_missing_image_fails_with_its_name() {
    let _slot = slot().await;
    let repo = Repo::new(&[("a", b"a")]);
    let h = Harness::new("noimage").await;
    let mut spec = spec(&["echo hi"]);
    spec.image = Some(esteira_pipeline::Image {
        name: "esteira-test/does-not-exist:1".to_string(),
        entrypoint: None,
    });
    let (outcome, log) = h.run(h.job(&repo, 103, spec)).await;
    let failure = outcome.failure.expect("a failure");
    assert_eq!(failure.kind, FailureKind::ImageNotFound);
    assert_eq!(
        failure.message,
        "image not found: esteira-test/does-not-exist:1"
    );
    assert!(
        String::from_utf8_lossy(&log)
            .contains("ERROR: Job failed: image not found: esteira-test/does-not-exist:1")
    );
    h.assert_nothing_left().await;
}

#[tokio::test]
async fn an_unknown_commit_fails_the_checkout() {
    let _slot = slot().await;
    let repo = Repo::new(&[("a", b"a")]);
    // Every job gets a network here: git fails while Docker still creates it, and the
    // network must not outlive the job.
    let h = Harness::with("nocommit", |config| config.network_per_job = true).await;
    for job_id in 104..109 {
        let mut job = h.job(&repo, job_id, spec(&["echo hi"]));
        job.sha = "0123456789abcdef0123456789abcdef01234567".to_string();
        let (outcome, _log) = h.run(job).await;
        let failure = outcome.failure.expect("a failure");
        assert_eq!(failure.kind, FailureKind::RunnerSystemFailure);
        assert!(
            failure.message.contains("commit 0123456789abcdef"),
            "{}",
            failure.message
        );
        h.assert_nothing_left().await;
    }
}

#[tokio::test]
async fn the_mirror_is_reused_and_updated_for_a_later_commit() {
    let _slot = slot().await;
    let mut repo = Repo::new(&[("v", b"one\n")]);
    let h = Harness::new("mirror").await;
    let (first, log) = h.run(h.job(&repo, 105, spec(&["cat v"]))).await;
    assert_eq!(
        first.result,
        JobResult::Success,
        "{}",
        String::from_utf8_lossy(&log)
    );
    repo.commit(&[("v", b"two\n")]);
    let (second, log) = h.run(h.job(&repo, 106, spec(&["cat v"]))).await;
    assert_eq!(second.result, JobResult::Success);
    assert!(find(&log, b"\ntwo\n").is_some());
    let mirrors = std::fs::read_dir(h.work.path().join("mirrors"))
        .expect("mirrors dir")
        .count();
    assert_eq!(mirrors, 1);
    h.assert_nothing_left().await;
}

#[tokio::test]
async fn eight_mebibytes_of_random_bytes_reach_the_log_unchanged() {
    use std::io::Read;

    let _slot = slot().await;
    let repo = Repo::new(&[("a", b"a")]);
    let h = Harness::new("big").await;
    let mut spec = spec(&["head -c 8388608 /dev/urandom > blob", "cat blob"]);
    spec.artifacts = Some(esteira_pipeline::Artifacts {
        paths: vec!["blob".to_string()],
        when: "on_success".to_string(),
        ..Default::default()
    });
    let mut job = h.job(&repo, 107, spec);
    // The masker is on the path, with nothing to mask in the blob.
    job.masked = vec!["a-value-that-random-bytes-will-not-hold".to_string()];
    let (outcome, log) = h.run(job).await;
    assert_eq!(outcome.result, JobResult::Success);

    let archive = outcome.artifacts.expect("the blob as artifact");
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(
        std::fs::File::open(&archive).expect("open"),
    ));
    let mut blob = Vec::new();
    tar.entries()
        .expect("entries")
        .next()
        .expect("one entry")
        .expect("entry")
        .read_to_end(&mut blob)
        .expect("read");
    std::fs::remove_file(archive).expect("remove");
    assert_eq!(blob.len(), 8 << 20);
    let echo = b"\x1b[32;1m$ cat blob\x1b[0;m\n";
    let start = find(&log, echo).expect("the echoed command") + echo.len();
    assert!(
        log[start..].starts_with(&blob),
        "the log holds the blob byte for byte"
    );
    h.assert_nothing_left().await;
}

#[tokio::test]
async fn two_jobs_of_one_repository_with_one_cache_key_run_at_once() {
    let _slot = slot().await;
    let repo = Repo::new(&[("a", b"a")]);
    let h = Harness::new("concurrent").await;
    let cache = esteira_pipeline::Cache {
        key: "shared".to_string(),
        paths: vec!["deps/".to_string()],
        policy: "pull-push".to_string(),
        when: "on_success".to_string(),
        ..Default::default()
    };
    let job = |id: i64| {
        let mut spec = spec(&["mkdir -p deps && head -c 1048576 /dev/urandom > deps/blob"]);
        spec.cache = vec![cache.clone()];
        h.job(&repo, id, spec)
    };
    let ((a, log_a), (b, log_b)) = tokio::join!(h.run(job(108)), h.run(job(109)));
    assert_eq!(
        a.result,
        JobResult::Success,
        "{}",
        String::from_utf8_lossy(&log_a)
    );
    assert_eq!(
        b.result,
        JobResult::Success,
        "{}",
        String::from_utf8_lossy(&log_b)
    );
    let (c, log) = h
        .run(h.job(&repo, 110, {
            let mut spec = spec(&["test $(wc -c < deps/blob) -eq 1048576"]);
            spec.cache = vec![cache.clone()];
            spec
        }))
        .await;
    assert_eq!(
        c.result,
        JobResult::Success,
        "{}",
        String::from_utf8_lossy(&log)
    );
    h.assert_nothing_left().await;
}

#[tokio::test]
async fn the_images_entrypoint_wraps_the_script_unless_overridden() {
    let _slot = slot().await;
    build_test_image(
        "esteira-test/exec-entrypoint:latest",
        "FROM esteira-test/busybox:latest\n\
         ENTRYPOINT [\"sh\", \"-c\", \"echo wrapped-by-entrypoint; exec \\\"$@\\\"\", \"--\"]\n",
        &[],
    )
    .await;
    let repo = Repo::new(&[("a", b"a")]);
    let h = Harness::new("entrypoint").await;
    let with_image = |entrypoint: Option<Vec<String>>| {
        let mut spec = spec(&["echo script-ran"]);
        spec.image = Some(esteira_pipeline::Image {
            name: "esteira-test/exec-entrypoint:latest".to_string(),
            entrypoint,
        });
        spec
    };
    let (outcome, log) = h.run(h.job(&repo, 111, with_image(None))).await;
    let text = String::from_utf8_lossy(&log);
    assert_eq!(outcome.result, JobResult::Success, "{text}");
    assert!(text.contains("wrapped-by-entrypoint\n"), "{text}");
    assert!(text.contains("\nscript-ran\n"), "{text}");

    let (outcome, log) = h
        .run(h.job(&repo, 112, with_image(Some(vec![String::new()]))))
        .await;
    let text = String::from_utf8_lossy(&log);
    assert_eq!(outcome.result, JobResult::Success, "{text}");
    assert!(!text.contains("wrapped-by-entrypoint"), "{text}");
    assert!(text.contains("\nscript-ran\n"), "{text}");
    h.assert_nothing_left().await;
}

#[tokio::test]
async fn fetches_from_the_fetch_url_while_the_job_sees_the_repository_url() {
    let _slot = slot().await;
    let repo = Repo::new(&[("private.txt", b"behind a token\n")]);
    let h = Harness::new("fetchurl").await;
    let spec = spec(&["cat private.txt", "grep 'url = ' .git/config"]);
    let mut job = h.job(&repo, 131, spec);
    // The repository URL alone does not answer; the credentials' URL does.
    job.fetch_url = Some(job.repo_url.clone());
    job.repo_url = "https://git.example.invalid/team/private.git".to_string();
    let (outcome, log) = h.run(job).await;
    let text = String::from_utf8_lossy(&log);
    assert_eq!(outcome.result, JobResult::Success, "{text}");
    assert!(text.contains("\nbehind a token\n"), "{text}");
    assert!(
        text.contains("url = https://git.example.invalid/team/private.git"),
        "the job's origin is the repository URL: {text}"
    );
    h.assert_nothing_left().await;
}

#[tokio::test]
async fn only_jobs_with_services_get_a_network_unless_every_job_should() {
    let _slot = slot().await;
    let repo = Repo::new(&[("a", b"a")]);
    // On a network of its own, a container resolves names through Docker's embedded DNS
    // (127.0.0.11); on the default bridge it has the host's resolvers.
    let script = ["echo \"embedded-dns=$(grep -c 127.0.0.11 /etc/resolv.conf)\""];
    for (isolate, name, expected) in [(false, "shared", "0"), (true, "isolated", "1")] {
        let h = Harness::with(name, |config| config.network_per_job = isolate).await;
        let (outcome, log) = h.run(h.job(&repo, 141, spec(&script))).await;
        let text = String::from_utf8_lossy(&log);
        assert!(
            text.contains(&format!("\nembedded-dns={expected}\n")),
            "network_per_job={isolate}: {text}"
        );
        assert_eq!(outcome.result, JobResult::Success, "{text}");
        h.assert_nothing_left().await;
    }
}
