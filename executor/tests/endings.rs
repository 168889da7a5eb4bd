//! How jobs end other than by themselves: cancel, timeout, out of memory; and what the
//! log hides: masked values, also split across chunks or in base64, and in file variables.

mod common;

use std::time::{Duration, Instant};

use common::*;
use esteira_executor::{FailureKind, JobResult};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn cancel_stops_a_long_job_within_five_seconds_and_runs_after_script() {
    let _slot = slot().await;
    let repo = Repo::new(&[("a", b"a")]);
    let h = Harness::new("cancel").await;
    let mut spec = spec(&["echo started", "sleep 600"]);
    spec.after_script = vec!["echo after the $CI_JOB_STATUS".to_string()];
    let job = h.job(&repo, 201, spec);
    let (outcome, log, took) = h.run_canceled_at(job, b"started\n").await;
    let took = took.expect("the script started");
    let text = String::from_utf8_lossy(&log);

    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(outcome.result, JobResult::Canceled, "{text}");
    assert_eq!(
        outcome.failure.expect("a failure").kind,
        FailureKind::Canceled
    );
    assert!(text.contains("\nafter the canceled\n"), "{text}");
    h.assert_nothing_left().await;
}

#[tokio::test]
async fn cancel_before_the_script_ends_the_job_at_once() {
    let _slot = slot().await;
    let repo = Repo::new(&[("a", b"a")]);
    let h = Harness::new("cancel-early").await;
    let cancel = CancellationToken::new();
    cancel.cancel();
    let (outcome, _log) = h
        .run_with_cancel(h.job(&repo, 202, spec(&["echo hi"])), cancel)
        .await;
    assert_eq!(outcome.result, JobResult::Canceled);
    h.assert_nothing_left().await;
}

#[tokio::test]
async fn a_job_over_its_timeout_fails_as_a_timeout() {
    let _slot = slot().await;
    let repo = Repo::new(&[("a", b"a")]);
    // The agent's cap is lower than the job's own timeout.
    let h = Harness::with("timeout", |config| {
        config.max_timeout = Some(Duration::from_secs(3));
    })
    .await;
    let mut spec = spec(&["sleep 600"]);
    spec.timeout_secs = Some(3600);
    spec.after_script = vec!["echo after the timeout".to_string()];
    let started = Instant::now();
    let (outcome, log) = h.run(h.job(&repo, 203, spec)).await;
    let text = String::from_utf8_lossy(&log);

    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(outcome.result, JobResult::Failed, "{text}");
    let failure = outcome.failure.expect("a failure");
    assert_eq!(failure.kind, FailureKind::StuckOrTimeoutFailure);
    assert_eq!(failure.kind.as_str(), "stuck_or_timeout_failure");
    assert!(text.contains("after the timeout\n"), "{text}");
    h.assert_nothing_left().await;
}

#[tokio::test]
async fn going_over_the_memory_limit_is_reported_as_out_of_memory() {
    let _slot = slot().await;
    let repo = Repo::new(&[("a", b"a")]);
    let h = Harness::with("oom", |config| {
        config.memory_limit = Some(32 << 20);
        config.cpu_limit = Some(0.5);
    })
    .await;
    // Reading 256 MiB into one shell variable needs far more than 32 MiB.
    let (outcome, log) = h
        .run(h.job(
            &repo,
            204,
            spec(&["x=$(head -c 268435456 /dev/zero | tr '\\0' a)"]),
        ))
        .await;
    let text = String::from_utf8_lossy(&log);
    assert_eq!(outcome.result, JobResult::Failed, "{text}");
    let failure = outcome.failure.expect("a failure");
    assert_eq!(failure.kind, FailureKind::OutOfMemory, "{text}");
    h.assert_nothing_left().await;
}

#[tokio::test]
async fn masked_values_and_their_base64_never_reach_the_log() {
    let _slot = slot().await;
    let repo = Repo::new(&[("a", b"a")]);
    let h = Harness::new("mask").await;
    let secret = "hunter2-Secret";
    let mut job = h.job(
        &repo,
        205,
        spec(&[
            "echo \"plain $PASSWORD\"",
            "printf '%s' \"$PASSWORD\" | base64",
            // The value split over two writes, a second apart.
            "printf 'split hunter2-'; sleep 1; printf 'Secret done\\n'",
        ]),
    );
    job.env.push(("PASSWORD".to_string(), secret.to_string()));
    job.masked.push(secret.to_string());
    let (outcome, log) = h.run(job).await;
    let text = String::from_utf8_lossy(&log);

    assert_eq!(outcome.result, JobResult::Success, "{text}");
    assert!(!text.contains(secret), "{text}");
    assert!(!text.contains("aHVudGVyMi1TZWNyZXQ"), "{text}");
    assert!(text.contains("plain [MASKED]\n"), "{text}");
    assert!(text.contains("split [MASKED] done\n"), "{text}");
    assert_eq!(text.matches("[MASKED]").count(), 3, "{text}");
    h.assert_nothing_left().await;
}

#[tokio::test]
async fn file_variables_are_private_files_and_masked_ones_stay_masked() {
    let _slot = slot().await;
    let repo = Repo::new(&[("a", b"a")]);
    let h = Harness::new("filevars").await;
    let secret = "hunter2-File-Secret";
    let mut spec = spec(&[
        "echo \"config=$APP_CONFIG token=$TOKEN_FILE\"",
        "cat \"$APP_CONFIG\"",
        "echo \"token: $(cat \"$TOKEN_FILE\")\"",
        "stat -c 'mode %a' \"$TOKEN_FILE\"",
        "git status --porcelain --untracked-files=all | wc -l | sed 's/^ */untracked: /'",
    ]);
    spec.after_script = vec!["test -f \"$APP_CONFIG\" && echo after_script reads it".to_string()];
    let mut job = h.job(&repo, 206, spec);
    job.env.extend([
        (
            "APP_CONFIG".to_string(),
            "first line\nsecond line\n".to_string(),
        ),
        ("TOKEN_FILE".to_string(), secret.to_string()),
    ]);
    job.masked.push(secret.to_string());
    job.file_variables = vec!["APP_CONFIG".to_string(), "TOKEN_FILE".to_string()];
    let (outcome, log) = h.run(job).await;
    let text = String::from_utf8_lossy(&log);

    assert_eq!(outcome.result, JobResult::Success, "{text}");
    assert!(
        text.contains("config=/builds/demo.tmp/APP_CONFIG token=/builds/demo.tmp/TOKEN_FILE\n"),
        "the variables are paths: {text}"
    );
    assert!(text.contains("first line\nsecond line\n"), "{text}");
    assert!(text.contains("token: [MASKED]\n"), "{text}");
    assert!(!text.contains(secret), "{text}");
    assert!(text.contains("mode 600\n"), "{text}");
    assert!(
        text.contains("untracked: 0\n"),
        "not in the checkout: {text}"
    );
    assert!(text.contains("after_script reads it\n"), "{text}");
    h.assert_nothing_left().await;
    assert!(
        !h.builds_dir().join("206").exists(),
        "the files go with the build directory"
    );
}

#[tokio::test]
async fn a_job_given_up_midway_is_cleaned_up_all_the_same() {
    let _slot = slot().await;
    let repo = Repo::new(&[("a", b"a")]);
    let h = Harness::new("dropped").await;
    let job = h.job(&repo, 206, spec(&["echo started", "sleep 600"]));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(64);
    let run = h.executor.run(job, tx, CancellationToken::new());
    let started = async {
        let mut log = Vec::new();
        while let Some(chunk) = rx.recv().await {
            log.extend_from_slice(&chunk);
            if find(&log, b"started\n").is_some() {
                return;
            }
        }
    };
    // The agent drops the run (its lease is gone) once the script runs.
    tokio::select! {
        _ = run => panic!("the job cannot end by itself"),
        () = started => {}
    }
    let instance = h.instance.clone();
    wait_until(
        "the abandoned job's removal",
        Duration::from_secs(20),
        || {
            let instance = instance.clone();
            async move { leftovers(&instance).await.is_empty() }
        },
    )
    .await;
    let build = h.builds_dir().join("206");
    wait_until(
        "the build directory's removal",
        Duration::from_secs(5),
        || {
            let gone = !build.exists();
            async move { gone }
        },
    )
    .await;
}

#[tokio::test]
async fn cancel_during_after_script_stops_it() {
    let _slot = slot().await;
    let repo = Repo::new(&[("a", b"a")]);
    let h = Harness::new("cancel-after").await;
    let mut spec = spec(&["true"]);
    spec.after_script = vec!["echo after-started".to_string(), "sleep 600".to_string()];
    let job = h.job(&repo, 207, spec);
    let (outcome, log, took) = h.run_canceled_at(job, b"\nafter-started\n").await;
    let took = took.expect("after_script started");
    let text = String::from_utf8_lossy(&log);
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(outcome.result, JobResult::Canceled, "{text}");
    assert!(text.contains("WARNING: after_script canceled"), "{text}");
    h.assert_nothing_left().await;
}
