//! `esteira-bench webhooks [DELIVERIES] [SENDERS]`: a real coordinator process and a real
//! git repository with one branch per delivery; each delivery is a signed GitHub push
//! (the corpus's `github-push-2.json` rewritten to the branch) that creates a pipeline.
//!
//! - latency: DELIVERIES (default 500) deliveries one after the other, from sending the
//!   request to the coordinator's answer naming the created pipeline (the answer is sent
//!   once the pipeline is planned and stored): p50, p99, max.
//! - throughput: DELIVERIES more deliveries from SENDERS (default 16) concurrent senders:
//!   deliveries per second, each creating its pipeline.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use esteira_tests::{Coordinator, GitRepo};

const SECRET: &str = "bench-secret";

pub fn run(args: &[String]) {
    let number = |index: usize, default: usize| {
        args.get(index)
            .and_then(|text| text.parse().ok())
            .unwrap_or(default)
    };
    let deliveries = number(0, 500).max(1);
    let senders = number(1, 16).max(1);
    let root = tempfile::tempdir().expect("temp dir");
    let repo = GitRepo::init(root.path().join("repo"));
    let sha = repo.commit(
        &[(
            ".gitlab-ci.yml",
            "stages: [test]\ntest:\n  stage: test\n  script: [echo test]\n",
        )],
        "bench",
    );
    let mut refs = String::new();
    for index in 0..deliveries * 2 {
        refs.push_str(&format!("create refs/heads/b{index} {sha}\n"));
    }
    let mut child = std::process::Command::new("git")
        .arg("-C")
        .arg(&repo.dir)
        .args(["update-ref", "--stdin"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("git update-ref");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(refs.as_bytes())
        .expect("refs");
    assert!(child.wait().expect("git").success());

    let coordinator = Coordinator::start(root.path(), 30);
    coordinator.cli_ok(&[
        "project",
        "add",
        "bench",
        "--repo",
        &repo.url(),
        "--forge",
        "github",
        "--webhook-secret",
        SECRET,
    ]);
    let address = format!("127.0.0.1:{}", coordinator.http_port);
    let delivery = |index: usize| {
        let push = crate::webhooks_support::push_fixture(
            "github-push-2.json",
            &format!("refs/heads/b{index}"),
            Some("0000000000000000000000000000000000000000"),
            sha.as_str(),
        );
        crate::webhooks_support::Delivery::new(
            "github",
            "bench",
            "push",
            &format!("bench-{index}"),
            SECRET,
            &push,
        )
    };
    let send = |index: usize| {
        let prepared = delivery(index);
        let started = Instant::now();
        let answer = prepared.send(&address);
        let took = started.elapsed();
        assert_eq!(answer.status, 201, "delivery {index}: {}", answer.body);
        took
    };
    // The first delivery clones the mirror; not measured.
    let _ = send(deliveries * 2 - 1);

    let mut latencies: Vec<Duration> = (0..deliveries).map(send).collect();
    latencies.sort();
    let at = |fraction: f64| {
        let index = ((latencies.len() as f64 - 1.0) * fraction).round() as usize;
        latencies[index].as_secs_f64() * 1000.0
    };
    println!(
        "webhook received -> pipeline created over {deliveries} deliveries: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        at(0.5),
        at(0.99),
        at(1.0)
    );

    let next = AtomicUsize::new(deliveries);
    let last = deliveries * 2 - 1;
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..senders {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::SeqCst);
                    if index >= last {
                        return;
                    }
                    send(index);
                }
            });
        }
    });
    let elapsed = started.elapsed().as_secs_f64();
    let count = last - deliveries;
    println!(
        "{count} deliveries from {senders} concurrent senders in {elapsed:.2} s: {:.0} deliveries/s",
        count as f64 / elapsed
    );
    let listed =
        coordinator.cli_json(&["pipeline", "list", "--project", "bench", "--limit", "500"]);
    assert!(listed.as_array().is_some_and(|all| !all.is_empty()));
}
