//! Git events end to end (issue 4): the shared corpus's real payloads, rewritten to a real
//! local repository's commits and signed, sent to a running coordinator; refusals that
//! change nothing; idempotency under concurrent redelivery; polling; auto-cancel of
//! interruptible jobs; commit statuses to stand-in forges.

mod webhooks_support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use esteira_tests::{
    Coordinator, GitRepo, IMAGE, docker_lock, ensure_image, files_under, leaks_under, wait_until,
};
use serde_json::{Value, json};
use webhooks_support::{Delivery, FakeForge, fixture, get, post, push_fixture, set};

const SECRET: &str = "s3cret-webhook";

/// The seed's pipeline, shortened: tests everywhere, release on master and devel, the
/// staging deploy from devel, production from master; plus a merge-request-only job and
/// one that runs when docs change.
const SEED_PIPELINE: &str = r#"
stages: [test, release, deploy]
image: busybox
test:
  stage: test
  script: [echo unit tests]
pep8:
  stage: test
  script: [echo style]
docs:
  stage: test
  script: [echo docs]
  rules:
    - changes: [docs/**/*]
mr-check:
  stage: test
  script: [echo merge request]
  rules:
    - if: $CI_PIPELINE_SOURCE == "merge_request_event"
release:
  stage: release
  script: [echo release]
  only: [master, devel]
deploy-staging:
  stage: deploy
  script: [echo staging]
  environment: {name: staging}
  only: [devel]
deploy-production:
  stage: deploy
  script: [echo production]
  environment: {name: production}
  only: [master]
# Jobs that show the event's variables reached the plan.
mr-into-main:
  stage: test
  script: [echo]
  rules:
    - if: $CI_MERGE_REQUEST_TARGET_BRANCH_NAME == "main" && $CI_MERGE_REQUEST_IID && $CI_MERGE_REQUEST_SOURCE_BRANCH_NAME == "feature/x"
has-before:
  stage: test
  script: [echo]
  rules:
    - if: $CI_COMMIT_BEFORE_SHA != "0000000000000000000000000000000000000000" && $CI_PIPELINE_SOURCE == "push"
docs-message:
  stage: test
  script: [echo]
  rules:
    - if: $CI_COMMIT_MESSAGE =~ /docs/
tagged:
  stage: test
  script: [echo]
  rules:
    - if: $CI_COMMIT_TAG == "v1.0.0"
"#;

/// The test repository: `main` (c1, tagged v1.0.0), `devel` (c2, changes docs/),
/// `feature/x` (c3, changes src/), `master` (c1).
struct Repo {
    repo: GitRepo,
    c1: String,
    c2: String,
    c3: String,
}

fn seed_repo(root: &std::path::Path) -> Repo {
    let repo = GitRepo::init(root.join("repo"));
    let c1 = repo.commit(
        &[
            (".gitlab-ci.yml", SEED_PIPELINE),
            ("README.md", "seed\n"),
            ("src/app.py", "print('hi')\n"),
        ],
        "first",
    );
    repo.git(&["tag", "v1.0.0"]);
    repo.git(&["branch", "master"]);
    repo.git(&["checkout", "--quiet", "-b", "devel"]);
    let c2 = repo.commit(&[("docs/guide.md", "guide\n")], "docs for devel");
    repo.git(&["checkout", "--quiet", "-b", "feature/x", &c1]);
    let c3 = repo.commit(
        &[("src/app.py", "print('hello')\n")],
        "feature x\n\nwith a body",
    );
    repo.git(&["checkout", "--quiet", "main"]);
    Repo { repo, c1, c2, c3 }
}

fn address(coordinator: &Coordinator) -> String {
    format!("127.0.0.1:{}", coordinator.http_port)
}

fn add_project(coordinator: &Coordinator, name: &str, forge: &str, repo: &GitRepo) {
    coordinator.cli_ok(&[
        "project",
        "add",
        name,
        "--repo",
        &repo.url(),
        "--forge",
        forge,
        "--webhook-secret",
        SECRET,
    ]);
}

fn pipelines(coordinator: &Coordinator, project: &str) -> Vec<Value> {
    let listed =
        coordinator.cli_json(&["pipeline", "list", "--project", project, "--limit", "500"]);
    listed.as_array().cloned().unwrap_or_default()
}

fn deliveries(coordinator: &Coordinator, project: &str) -> Value {
    let answer = get(
        &address(coordinator),
        &format!("/api/v1/projects/{project}/deliveries"),
        &coordinator.admin_token,
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json()
}

fn job_names(pipeline: &Value) -> Vec<String> {
    let mut names: Vec<String> = pipeline["jobs"]
        .as_array()
        .map(|jobs| {
            jobs.iter()
                .filter_map(|j| j["name"].as_str())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Sends a delivery, expects a new pipeline, and returns it.
fn created(coordinator: &Coordinator, delivery: &Delivery) -> Value {
    let answer = delivery.send(&address(coordinator));
    assert_eq!(answer.status, 201, "{}\n{}", answer.body, coordinator.log());
    let json = answer.json();
    assert_eq!(json["outcome"], "created", "{json}");
    coordinator.pipeline(&json["pipeline"].to_string())
}

fn names(list: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = list.iter().map(|n| n.to_string()).collect();
    names.sort();
    names
}

#[test]
fn gitlab_payloads_start_the_right_pipelines() {
    let root = tempfile::tempdir().expect("temp dir");
    let r = seed_repo(root.path());
    let coordinator = Coordinator::start(root.path(), 10);
    add_project(&coordinator, "gl", "gitlab", &r.repo);

    // A push to devel: tests, the docs job (docs/ changed), release and the staging deploy.
    let mut push = push_fixture(
        "gitlab-push-1.json",
        "refs/heads/devel",
        Some(r.c1.as_str()),
        r.c2.as_str(),
    );
    set(&mut push, "/checkout_sha", r.c2.as_str());
    set(&mut push, "/commits/0/id", r.c2.as_str());
    let delivery = Delivery::new("gitlab", "gl", "Push Hook", "gl-1", SECRET, &push);
    let pipeline = created(&coordinator, &delivery);
    assert_eq!(pipeline["git_ref"], "devel");
    assert_eq!(pipeline["sha"], r.c2.as_str());
    assert_eq!(pipeline["source"], "push");
    assert_eq!(
        job_names(&pipeline),
        names(&[
            "test",
            "pep8",
            "docs",
            "has-before",
            "docs-message",
            "release",
            "deploy-staging",
        ])
    );

    // A merge request from feature/x: the merge-request job, no release, and its variables.
    let mut mr = fixture("gitlab-merge_request-1.json");
    set(&mut mr, "/object_attributes/source_branch", "feature/x");
    set(&mut mr, "/object_attributes/target_branch", "main");
    set(&mut mr, "/object_attributes/last_commit/id", r.c3.as_str());
    let delivery = Delivery::new("gitlab", "gl", "Merge Request Hook", "gl-2", SECRET, &mr);
    let pipeline = created(&coordinator, &delivery);
    assert_eq!(pipeline["git_ref"], "feature/x");
    assert_eq!(pipeline["source"], "merge_request_event");
    let jobs = job_names(&pipeline);
    assert!(jobs.contains(&"mr-check".to_string()), "{jobs:?}");
    assert!(!jobs.contains(&"release".to_string()), "{jobs:?}");
    assert!(
        !jobs.contains(&"docs".to_string()),
        "docs/ did not change: {jobs:?}"
    );
    assert!(jobs.contains(&"mr-into-main".to_string()), "{jobs:?}");
    assert!(!jobs.contains(&"has-before".to_string()), "{jobs:?}");

    // A tag push.
    let mut tag = fixture("gitlab-tag_push-1.json");
    set(&mut tag, "/after", r.c1.as_str());
    set(&mut tag, "/checkout_sha", r.c1.as_str());
    let delivery = Delivery::new("gitlab", "gl", "Tag Push Hook", "gl-3", SECRET, &tag);
    let pipeline = created(&coordinator, &delivery);
    assert_eq!(
        (pipeline["git_ref"].as_str(), pipeline["ref_kind"].as_str()),
        (Some("v1.0.0"), Some("tag"))
    );
    assert!(job_names(&pipeline).contains(&"tagged".to_string()));

    // Branch and tag deletions: answered 200, nothing started.
    for (file, event, id) in [
        ("gitlab-push-4.json", "Push Hook", "gl-4"),
        ("gitlab-tag_push-4.json", "Tag Push Hook", "gl-5"),
    ] {
        let before = pipelines(&coordinator, "gl").len();
        let answer = Delivery::new("gitlab", "gl", event, id, SECRET, &fixture(file))
            .send(&address(&coordinator));
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.json()["outcome"], "ignored");
        assert_eq!(pipelines(&coordinator, "gl").len(), before);
    }
}

#[test]
fn github_gitea_and_forgejo_payloads_start_the_right_pipelines() {
    let root = tempfile::tempdir().expect("temp dir");
    let r = seed_repo(root.path());
    let coordinator = Coordinator::start(root.path(), 10);
    add_project(&coordinator, "gh", "github", &r.repo);
    add_project(&coordinator, "gt", "gitea", &r.repo);
    add_project(&coordinator, "fj", "forgejo", &r.repo);

    // GitHub: a push to a feature branch runs only the tests.
    let mut push = push_fixture(
        "github-push-2.json",
        "refs/heads/feature/x",
        Some(r.c1.as_str()),
        r.c3.as_str(),
    );
    set(&mut push, "/head_commit/id", r.c3.as_str());
    set(&mut push, "/commits/0/id", r.c3.as_str());
    let pipeline = created(
        &coordinator,
        &Delivery::new("github", "gh", "push", "gh-1", SECRET, &push),
    );
    assert_eq!(pipeline["git_ref"], "feature/x");
    assert_eq!(job_names(&pipeline), names(&["test", "pep8", "has-before"]));

    // GitHub: a pull request synchronized.
    let mut pr = fixture("github-pull_request-2.json");
    set(&mut pr, "/pull_request/head/ref", "feature/x");
    set(&mut pr, "/pull_request/head/sha", r.c3.as_str());
    set(&mut pr, "/pull_request/base/ref", "main");
    set(&mut pr, "/pull_request/base/sha", r.c1.as_str());
    let pipeline = created(
        &coordinator,
        &Delivery::new("github", "gh", "pull_request", "gh-2", SECRET, &pr),
    );
    assert_eq!(pipeline["source"], "merge_request_event");
    assert!(job_names(&pipeline).contains(&"mr-into-main".to_string()));

    // Gitea: a push to devel plans release and the staging deploy.
    let push = push_fixture(
        "gitea-push-1.json",
        "refs/heads/devel",
        Some(r.c1.as_str()),
        r.c2.as_str(),
    );
    let pipeline = created(
        &coordinator,
        &Delivery::new("gitea", "gt", "push", "gt-1", SECRET, &push),
    );
    let jobs = job_names(&pipeline);
    assert!(
        jobs.contains(&"release".to_string()) && jobs.contains(&"deploy-staging".to_string()),
        "{jobs:?}"
    );
    assert!(!jobs.contains(&"deploy-production".to_string()), "{jobs:?}");

    // Gitea: a tag arrives as `create` and as a push of refs/tags: one pipeline.
    let mut create = fixture("gitea-create_tag-1.json");
    set(&mut create, "/sha", r.c1.as_str());
    let pipeline = created(
        &coordinator,
        &Delivery::new("gitea", "gt", "create", "gt-2", SECRET, &create),
    );
    assert_eq!(pipeline["ref_kind"], "tag");
    let mut tag_push = fixture("gitea-push-1.json");
    set(&mut tag_push, "/ref", "refs/tags/v1.0.0");
    set(
        &mut tag_push,
        "/before",
        "0000000000000000000000000000000000000000",
    );
    set(&mut tag_push, "/after", r.c1.as_str());
    let answer = Delivery::new("gitea", "gt", "push", "gt-3", SECRET, &tag_push)
        .send(&address(&coordinator));
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["outcome"], "duplicate");
    assert_eq!(answer.json()["pipeline"], pipeline["id"]);

    // Forgejo: a push to master plans the production deploy; a pull request.
    let push = push_fixture(
        "forgejo-push-1.json",
        "refs/heads/master",
        Some("0000000000000000000000000000000000000000"),
        r.c1.as_str(),
    );
    let pipeline = created(
        &coordinator,
        &Delivery::new("forgejo", "fj", "push", "fj-1", SECRET, &push),
    );
    let jobs = job_names(&pipeline);
    assert!(jobs.contains(&"deploy-production".to_string()), "{jobs:?}");
    assert!(
        !jobs.contains(&"has-before".to_string()),
        "a new branch: {jobs:?}"
    );
    let mut pr = fixture("forgejo-pull_request-1.json");
    set(&mut pr, "/pull_request/head/ref", "feature/x");
    set(&mut pr, "/pull_request/head/sha", r.c3.as_str());
    set(&mut pr, "/pull_request/base/ref", "main");
    set(&mut pr, "/pull_request/base/sha", r.c1.as_str());
    let pipeline = created(
        &coordinator,
        &Delivery::new("forgejo", "fj", "pull_request", "fj-2", SECRET, &pr),
    );
    assert_eq!(pipeline["git_ref"], "feature/x");
    assert!(job_names(&pipeline).contains(&"mr-into-main".to_string()));
}

#[test]
fn refused_deliveries_change_nothing() {
    let root = tempfile::tempdir().expect("temp dir");
    let r = seed_repo(root.path());
    let coordinator = Coordinator::start(root.path(), 10);
    add_project(&coordinator, "gh", "github", &r.repo);
    let at = address(&coordinator);
    let push = push_fixture("github-push-2.json", "refs/heads/main", None, r.c1.as_str());
    let good = Delivery::new("github", "gh", "push", "d-1", SECRET, &push);
    let state = |c: &Coordinator| (pipelines(c, "gh"), deliveries(c, "gh"));
    let before = state(&coordinator);

    let mut wrong = good.clone();
    wrong.headers =
        webhooks_support::forge_headers("github", "push", "d-1", "not-the-secret", &good.body);
    assert_eq!(wrong.send(&at).status, 401);
    let mut missing = good.clone();
    missing
        .headers
        .retain(|(name, _)| name != "X-Hub-Signature-256");
    assert_eq!(missing.send(&at).status, 401);
    let mut tampered = good.clone();
    tampered.body.push(b' ');
    assert_eq!(tampered.send(&at).status, 401);
    // A GitLab token on a GitHub project is no signature.
    let gitlab_style = vec![
        ("X-Gitlab-Event".to_string(), "Push Hook".to_string()),
        ("X-Gitlab-Token".to_string(), SECRET.to_string()),
    ];
    assert_eq!(
        post(&at, "/hooks/github/gh", &gitlab_style, &good.body, false).status,
        401
    );

    let bad_json = b"{\"ref\": \"refs/heads/main\", ".to_vec();
    let malformed = Delivery {
        headers: webhooks_support::forge_headers("github", "push", "d-2", SECRET, &bad_json),
        body: bad_json,
        path: good.path.clone(),
    };
    assert_eq!(malformed.send(&at).status, 400);
    assert_eq!(
        post(&at, "/hooks/github/nope", &good.headers, &good.body, false).status,
        404
    );
    assert_eq!(
        post(&at, "/hooks/bitbucket/gh", &good.headers, &good.body, false).status,
        404
    );
    let huge = vec![b' '; 6 * 1024 * 1024];
    let headers = webhooks_support::forge_headers("github", "push", "d-3", SECRET, &huge);
    assert_eq!(
        post(&at, "/hooks/github/gh", &headers, &huge, true).status,
        413
    );
    assert_eq!(
        state(&coordinator),
        before,
        "a refused delivery changed stored state"
    );

    // An event kind esteira does not handle: 2xx, recorded as ignored, no pipeline.
    let issue = Delivery::new(
        "github",
        "gh",
        "issues",
        "d-4",
        SECRET,
        &json!({"action": "opened"}),
    );
    let answer = issue.send(&at);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["outcome"], "ignored");
    assert_eq!(pipelines(&coordinator, "gh"), before.0);
    let recorded = deliveries(&coordinator, "gh");
    assert_eq!(recorded.as_array().map(Vec::len), Some(1), "{recorded}");
    assert_eq!(recorded[0]["outcome"], "ignored");
    assert_eq!(recorded[0]["delivery_id"], "d-4");
}

#[test]
fn a_delivery_sent_twenty_times_at_once_creates_one_pipeline() {
    let root = tempfile::tempdir().expect("temp dir");
    let r = seed_repo(root.path());
    let coordinator = Coordinator::start(root.path(), 10);
    add_project(&coordinator, "gh", "github", &r.repo);
    let push = push_fixture(
        "github-push-2.json",
        "refs/heads/devel",
        Some(r.c1.as_str()),
        r.c2.as_str(),
    );
    let delivery = Delivery::new("github", "gh", "push", "same-delivery", SECRET, &push);
    let at = address(&coordinator);
    let answers: Vec<_> = std::thread::scope(|scope| {
        let sends: Vec<_> = (0..20)
            .map(|_| scope.spawn(|| delivery.send(&at)))
            .collect();
        sends
            .into_iter()
            .map(|s| s.join().expect("sender"))
            .collect()
    });
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{answers:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 200),
        "{answers:?}"
    );
    assert_eq!(pipelines(&coordinator, "gh").len(), 1);
    // Another delivery of the same push (a forge retry under a new id) is the same event.
    let again = Delivery::new("github", "gh", "push", "other-delivery", SECRET, &push);
    let answer = again.send(&at);
    assert_eq!(answer.json()["outcome"], "duplicate", "{}", answer.body);
    assert_eq!(pipelines(&coordinator, "gh").len(), 1);
}

#[test]
fn a_commit_pushed_to_a_polled_repository_starts_one_pipeline() {
    let root = tempfile::tempdir().expect("temp dir");
    let r = seed_repo(root.path());
    let coordinator = Coordinator::start(root.path(), 10);
    coordinator.cli_ok(&[
        "project",
        "add",
        "polled",
        "--repo",
        &r.repo.url(),
        "--poll",
        "1",
    ]);
    // The first poll builds the default branch once.
    let first = wait_until("the first poll's pipeline", Duration::from_secs(20), || {
        pipelines(&coordinator, "polled").first().cloned()
    });
    assert_eq!(first["git_ref"], "main");
    assert_eq!(first["sha"], r.c1.as_str());

    let pushed_at = Instant::now();
    let c4 = r
        .repo
        .commit(&[("docs/new.md", "new\n")], "a polled change");
    let found = wait_until(
        "a pipeline for the new commit",
        Duration::from_secs(20),
        || {
            pipelines(&coordinator, "polled")
                .into_iter()
                .find(|p| p["sha"] == c4.as_str())
        },
    );
    let took = pushed_at.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "took {took:?} with a 1 s interval"
    );
    assert_eq!(found["git_ref"], "main");
    assert_eq!(found["source"], "push");
    let pipeline = coordinator.pipeline(&found["id"].to_string());
    assert!(job_names(&pipeline).contains(&"has-before".to_string()));
    assert!(
        job_names(&pipeline).contains(&"docs".to_string()),
        "docs/ changed since c1"
    );

    // A new branch and a new tag: one pipeline each; then nothing more.
    r.repo.git(&["branch", "hotfix", &c4]);
    r.repo.git(&["tag", "v2.0.0", &c4]);
    wait_until(
        "pipelines for the branch and the tag",
        Duration::from_secs(20),
        || {
            let all = pipelines(&coordinator, "polled");
            let on = |name: &str| all.iter().filter(|p| p["git_ref"] == name).count();
            (on("hotfix") == 1 && on("v2.0.0") == 1).then_some(())
        },
    );
    // Later polls change nothing for the refs already built: once a poll has seen a new
    // branch (at an older commit), every other ref was compared again and none restarted.
    r.repo.git(&["branch", "sentinel", &r.c1]);
    wait_until(
        "the sentinel branch's pipeline",
        Duration::from_secs(20),
        || {
            let all = pipelines(&coordinator, "polled");
            all.iter().any(|p| p["git_ref"] == "sentinel").then_some(())
        },
    );
    let all = pipelines(&coordinator, "polled");
    assert_eq!(all.len(), 5, "{all:#?}");
    assert_eq!(all.iter().filter(|p| p["sha"] == c4.as_str()).count(), 3);
}

/// The pipeline of the status tests: two jobs that succeed, a manual one left unplayed
/// and an `on_failure` one that ends skipped.
fn status_pipeline() -> String {
    format!(
        "image: {IMAGE}\n\
         stages: [test, deploy]\n\
         unit:\n  stage: test\n  script: [echo unit]\n\
         lint:\n  stage: test\n  script: [echo lint]\n\
         deploy:\n  stage: deploy\n  script: [echo deploy]\n  when: manual\n\
         cleanup:\n  stage: deploy\n  script: [echo cleanup]\n  when: on_failure\n"
    )
}

/// One forge's statuses as its stand-in received and accepted them: (context, state,
/// request) in arrival order.
fn accepted_statuses(
    forge: &FakeForge,
    prefix: &str,
) -> Vec<(String, String, webhooks_support::Received)> {
    forge
        .received()
        .into_iter()
        .filter(|r| r.answered == 201 && r.path.starts_with(prefix))
        .map(|r| {
            let context = r.body["context"]
                .as_str()
                .or(r.body["name"].as_str())
                .unwrap_or_default()
                .to_string();
            let state = r.body["state"].as_str().unwrap_or_default().to_string();
            (context, state, r)
        })
        .collect()
}

#[test]
fn commit_statuses_survive_a_forge_down_for_a_minute_and_arrive_in_order() {
    let _guard = docker_lock();
    ensure_image();
    let root = tempfile::tempdir().expect("temp dir");
    let repo = GitRepo::init(root.path().join("repo"));
    let sha = repo.commit(&[(".gitlab-ci.yml", &status_pipeline())], "statuses");
    let coordinator = Coordinator::start(root.path(), 10);
    let _agent = coordinator.start_agent(root.path(), "a", "docker", 2);
    let forge = FakeForge::start();
    // (project, forge, API prefix, pipeline context, job context prefix)
    let apis = [
        ("gl", "gitlab", "/api/v4", "esteira", ""),
        ("gh", "github", "/github", "esteira/pipeline", "esteira/"),
        (
            "gt",
            "gitea",
            "/gitea/api/v1",
            "esteira/pipeline",
            "esteira/",
        ),
        (
            "fj",
            "forgejo",
            "/forgejo/api/v1",
            "esteira/pipeline",
            "esteira/",
        ),
    ];
    for (name, kind, prefix, _, _) in apis {
        coordinator.cli_ok(&[
            "project",
            "add",
            name,
            "--repo",
            &repo.url(),
            "--forge",
            kind,
            "--forge-api",
            &format!("{}{prefix}", forge.url()),
            "--forge-token",
            &format!("token-{name}"),
            "--forge-project",
            "group/app",
        ]);
    }
    // The token is never shown.
    let shown = coordinator.cli_ok(&["project", "show", "gl"]);
    assert!(!shown.contains("token-gl"), "{shown}");
    assert!(shown.contains("***"), "{shown}");

    // The forge answers 500 for a minute; the pipelines run to their end meanwhile.
    let outage = Duration::from_secs(60);
    let outage_ends = Instant::now() + outage;
    forge.fail_for(outage);
    let mut ids = HashMap::new();
    for (name, _, _, _, _) in apis {
        ids.insert(name, coordinator.run_pipeline(name, "main"));
    }
    for (name, _, _, _, _) in apis {
        let output = coordinator.cli(&["pipeline", "wait", &ids[name]]);
        assert!(
            output.status.success(),
            "{}",
            coordinator.pipeline(&ids[name])
        );
    }
    assert!(
        Instant::now() < outage_ends,
        "the pipelines waited for the forge"
    );
    assert!(
        forge.received().iter().all(|r| r.answered == 500),
        "the forge accepted a status during its outage"
    );

    // Once it is back, every status arrives: the pipeline's last.
    let finals = |name: &str, pipeline_context: &str, job_prefix: &str| -> Vec<(String, String)> {
        let gitlab = name == "gl";
        vec![
            (format!("{job_prefix}unit"), "success".to_string()),
            (format!("{job_prefix}lint"), "success".to_string()),
            (
                format!("{job_prefix}deploy"),
                if gitlab { "skipped" } else { "pending" }.to_string(),
            ),
            (
                format!("{job_prefix}cleanup"),
                if gitlab { "skipped" } else { "success" }.to_string(),
            ),
            (pipeline_context.to_string(), "success".to_string()),
        ]
    };
    // After the outage, the retries (backoff doubling up to 10 s) get through within
    // seconds; then the queue behind them empties.
    wait_until(
        "the pipelines' final statuses after the outage",
        outage + Duration::from_secs(60),
        || {
            apis.iter()
                .all(|(_, _, prefix, pipeline_context, _)| {
                    let got = accepted_statuses(&forge, prefix);
                    got.last().map(|(c, s, _)| (c.as_str(), s.as_str()))
                        == Some((pipeline_context, "success"))
                })
                .then_some(())
        },
    );
    let all = forge.received();
    let first_accepted = all.iter().find(|r| r.answered == 201).expect("accepted");
    assert!(first_accepted.at >= outage_ends);
    let last_accepted = all
        .iter()
        .rev()
        .find(|r| r.answered == 201)
        .expect("accepted");
    println!(
        "forge down {outage:?}: {} refused tries; first status {:?} and last {:?} after it was back",
        all.iter().filter(|r| r.answered == 500).count(),
        first_accepted.at - outage_ends,
        last_accepted.at - outage_ends,
    );
    let refused = |prefix: &str| {
        all.iter()
            .filter(|r| r.answered == 500 && r.path.starts_with(prefix))
            .count()
    };

    let pipeline_of = |name: &str| coordinator.pipeline(&ids[name]);
    for (name, kind, prefix, pipeline_context, job_prefix) in apis {
        let got = accepted_statuses(&forge, prefix);
        // The first status was tried again and again through the minute (backoff up to
        // 10 s), not once.
        assert!(refused(prefix) >= 6, "{kind}: {} tries", refused(prefix));
        // Per subject, the states only move forward; each ends on its final state and
        // the pipeline's final status comes after every job's.
        let order: &[&str] = if kind == "gitlab" {
            &["pending", "running", "skipped", "success"]
        } else {
            &["pending", "success"]
        };
        let pipeline = pipeline_of(name);
        for (context, final_state) in finals(name, pipeline_context, job_prefix) {
            let states: Vec<&str> = got
                .iter()
                .filter(|(c, _, _)| *c == context)
                .map(|(_, s, _)| s.as_str())
                .collect();
            assert_eq!(
                states.last(),
                Some(&final_state.as_str()),
                "{kind} {context}: {states:?}"
            );
            let ranks: Vec<usize> = states
                .iter()
                .map(|s| order.iter().position(|o| o == s).unwrap_or(usize::MAX))
                .collect();
            assert!(
                ranks.windows(2).all(|w| w[0] <= w[1]),
                "{kind} {context} out of order: {states:?}"
            );
        }
        assert_eq!(
            got.last().map(|(c, _, _)| c.as_str()),
            Some(pipeline_context),
            "{kind}"
        );
        // The documented request shape.
        let url = coordinator.url();
        for (context, _, request) in &got {
            assert_eq!(request.path, format!("{prefix}{}", status_path(kind, &sha)));
            let target = request.body["target_url"].as_str().unwrap_or_default();
            if context == pipeline_context {
                assert_eq!(target, format!("{url}/pipelines/{}", ids[name]));
            } else {
                let job = coordinator.job(&pipeline, &context[job_prefix.len()..]);
                assert_eq!(target, format!("{url}/jobs/{}", job["id"]));
            }
            if kind == "gitlab" {
                assert_eq!(request.header("PRIVATE-TOKEN"), Some("token-gl"));
                assert_eq!(request.body["ref"], "main");
            } else {
                let scheme = if kind == "github" { "Bearer" } else { "token" };
                assert_eq!(
                    request.header("Authorization"),
                    Some(format!("{scheme} token-{name}").as_str())
                );
            }
        }
        if kind == "gitlab" {
            // The first status names no pipeline; GitLab's answer named one, and every
            // later status goes to it.
            assert!(
                got[0].2.body.get("pipeline_id").is_none(),
                "{:?}",
                got[0].2.body
            );
            assert!(
                got[1..]
                    .iter()
                    .all(|(_, _, r)| r.body["pipeline_id"]
                        == json!(webhooks_support::FORGE_PIPELINE_ID)),
                "{got:#?}"
            );
        }
    }
}

/// The status path under a forge's API prefix.
fn status_path(kind: &str, sha: &str) -> String {
    if kind == "gitlab" {
        format!("/projects/group%2Fapp/statuses/{sha}")
    } else {
        format!("/repos/group/app/statuses/{sha}")
    }
}

#[test]
fn a_newer_push_cancels_the_interruptible_jobs_of_older_pipelines() {
    let _guard = docker_lock();
    ensure_image();
    let root = tempfile::tempdir().expect("temp dir");
    let repo = GitRepo::init(root.path().join("repo"));
    let file = format!(
        "image: {IMAGE}\n\
         stages: [test]\n\
         lint:\n  stage: test\n  interruptible: true\n  script: [sleep 60]\n\
         migrate:\n  stage: test\n  script: [sleep 3]\n"
    );
    let first = repo.commit(&[(".gitlab-ci.yml", &file)], "first");
    let coordinator = Coordinator::start(root.path(), 10);
    let _agent = coordinator.start_agent(root.path(), "a", "docker", 4);
    add_project(&coordinator, "app", "github", &repo);
    let push = |before: &str, after: &str, id: &str| {
        let push = push_fixture("github-push-2.json", "refs/heads/main", Some(before), after);
        created(
            &coordinator,
            &Delivery::new("github", "app", "push", id, SECRET, &push),
        )
    };
    let older = push("0000000000000000000000000000000000000000", &first, "p-1");
    let older_id = older["id"].to_string();
    wait_until(
        "both jobs of the first pipeline to run",
        Duration::from_secs(60),
        || {
            let p = coordinator.pipeline(&older_id);
            (coordinator.job(&p, "lint")["status"] == "running"
                && coordinator.job(&p, "migrate")["status"] == "running")
                .then_some(())
        },
    );
    let second = repo.commit(&[("README.md", "more\n")], "second");
    let newer = push(&first, &second, "p-2");
    let p = wait_until(
        "the interruptible job to be canceled",
        Duration::from_secs(30),
        || {
            let p = coordinator.pipeline(&older_id);
            (coordinator.job(&p, "lint")["status"] == "canceled").then_some(p)
        },
    );
    assert_ne!(coordinator.job(&p, "migrate")["status"], "canceled");
    let output = coordinator.cli(&["pipeline", "wait", &older_id]);
    let done = coordinator.pipeline(&older_id);
    assert!(!output.status.success());
    assert_eq!(
        coordinator.job(&done, "migrate")["status"],
        "success",
        "{done:#}"
    );
    // The newer pipeline runs on; stop it.
    let newer_id = newer["id"].to_string();
    assert_ne!(
        coordinator.job(&coordinator.pipeline(&newer_id), "lint")["status"],
        "canceled"
    );
    coordinator.cli_ok(&["pipeline", "cancel", &newer_id]);
    let _ = coordinator.cli(&["pipeline", "wait", &newer_id]);
}

#[test]
fn forge_secrets_are_stored_encrypted_and_webhooks_still_verify() {
    let root = tempfile::tempdir().expect("temp dir");
    let r = seed_repo(root.path());
    let mut coordinator = Coordinator::start(root.path(), 10);
    let secret = "hook-secret-5f0c2a91";
    let token = "forge-token-8d41b7e3";
    let repo_token = "repo-token-77aa01c9";
    let key_body = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAAB";
    let key_file = root.path().join("id_ed25519");
    std::fs::write(
        &key_file,
        format!(
            "-----BEGIN OPENSSH PRIVATE KEY-----\n{key_body}\n-----END OPENSSH PRIVATE KEY-----\n"
        ),
    )
    .expect("key file");
    coordinator.cli_ok(&[
        "project",
        "add",
        "sec",
        "--repo",
        &r.repo.url(),
        "--forge",
        "github",
        "--webhook-secret",
        secret,
        "--forge-token",
        token,
        "--repo-token",
        repo_token,
        "--ssh-key-file",
        &key_file.to_string_lossy(),
    ]);
    let shown = coordinator.cli_ok(&["project", "show", "sec"]);
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with("ssh_key") && l.ends_with("***")),
        "{shown}"
    );
    // Not a key: refused before anything is sent.
    let refused = coordinator.cli(&[
        "project",
        "edit",
        "sec",
        "--ssh-key-file",
        &r.repo.dir.join("README.md").to_string_lossy(),
    ]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("is not a private key"));

    // A signed delivery verifies against the sealed secret (and the fetch with the key
    // leaves no key file behind).
    let mut push = push_fixture("github-push-2.json", "refs/heads/main", None, r.c1.as_str());
    created(
        &coordinator,
        &Delivery::new("github", "sec", "push", "s-1", secret, &push),
    );
    let wrong = Delivery::new("github", "sec", "push", "s-2", "not-it", &push);
    assert_eq!(wrong.send(&address(&coordinator)).status, 401);

    let data_dir = root.path().join("coordinator");
    let needles = [secret, token, repo_token, key_body];
    assert_eq!(leaks_under(&data_dir, &needles), Vec::<String>::new());
    let keys_left: Vec<_> = files_under(&data_dir.join("repos"))
        .into_iter()
        .filter(|f| {
            f.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("key-"))
        })
        .collect();
    assert!(keys_left.is_empty(), "{keys_left:?}");

    // After a restart the sealed secret still verifies.
    coordinator.kill();
    coordinator.restart();
    set(&mut push, "/ref", "refs/heads/devel");
    set(&mut push, "/before", r.c1.as_str());
    set(&mut push, "/after", r.c2.as_str());
    created(
        &coordinator,
        &Delivery::new("github", "sec", "push", "s-3", secret, &push),
    );
    assert_eq!(leaks_under(&data_dir, &needles), Vec::<String>::new());
}

#[test]
fn requests_from_forks_run_their_head_without_protected_variables() {
    let _guard = docker_lock();
    ensure_image();
    let root = tempfile::tempdir().expect("temp dir");
    let repo = GitRepo::init(root.path().join("repo"));
    let file = format!(
        "image: {IMAGE}\n\
         stages: [test]\n\
         show:\n  stage: test\n  rules:\n    - if: $CI_PIPELINE_SOURCE == \"merge_request_event\"\n    - if: $CI_COMMIT_BRANCH\n  script:\n    - echo \"ref=$CI_COMMIT_REF_NAME protected=[${{DEPLOY_KEY:-none}}] open=[${{OPEN_VAR:-none}}]\"\n"
    );
    let main = repo.commit(&[(".gitlab-ci.yml", &file)], "main");
    // The fork's commits exist in the project only under the forge's merge request refs
    // (as GitHub and GitLab keep them); the fork's branch is even called `main`.
    repo.git(&["checkout", "--quiet", "-b", "fork-main"]);
    let github_head = repo.commit(&[("fork.txt", "from a fork\n")], "fork change");
    let gitlab_head = repo.commit(&[("fork.txt", "more\n")], "fork change 2");
    repo.git(&["checkout", "--quiet", "main"]);
    repo.git(&["update-ref", "refs/pull/2/head", &github_head]);
    repo.git(&["update-ref", "refs/merge-requests/1/head", &gitlab_head]);
    repo.git(&["branch", "--quiet", "-D", "fork-main"]);

    let coordinator = Coordinator::start(root.path(), 10);
    let _agent = coordinator.start_agent(root.path(), "a", "docker", 2);
    for (name, forge) in [("gh", "github"), ("gl", "gitlab")] {
        add_project(&coordinator, name, forge, &repo);
        coordinator.cli_ok(&["project", "edit", name, "--protected-branches", "main"]);
        for (args, value) in [
            (
                [name, "DEPLOY_KEY", "--protected"].as_slice(),
                "deploy-secret",
            ),
            (&[name, "OPEN_VAR"], "visible"),
        ] {
            let set = coordinator.set_variable(args, value);
            assert!(set.status.success(), "{set:?}");
        }
    }
    let log_of = |id: &str| -> String {
        let output = coordinator.cli(&["pipeline", "wait", id]);
        let pipeline = coordinator.pipeline(id);
        assert!(output.status.success(), "{pipeline:#}");
        String::from_utf8_lossy(&coordinator.job_log(&coordinator.job(&pipeline, "show")["id"]))
            .into_owned()
    };

    // GitHub: a pull request whose head repository is a fork.
    let mut pr = fixture("github-pull_request-fork.json");
    set(&mut pr, "/pull_request/head/ref", "main");
    set(&mut pr, "/pull_request/head/sha", github_head.as_str());
    set(&mut pr, "/pull_request/base/ref", "main");
    set(&mut pr, "/pull_request/base/sha", main.as_str());
    let pipeline = created(
        &coordinator,
        &Delivery::new("github", "gh", "pull_request", "f-1", SECRET, &pr),
    );
    assert_eq!(pipeline["git_ref"], "refs/pull/2/head");
    assert_eq!(pipeline["sha"], github_head.as_str());
    assert_eq!(pipeline["source"], "merge_request_event");
    let log = log_of(&pipeline["id"].to_string());
    assert!(
        log.contains("ref=refs/pull/2/head protected=[none] open=[none]"),
        "{log}"
    );

    // GitLab: a merge request whose source project is a fork.
    let mut mr = fixture("gitlab-merge_request-fork.json");
    set(&mut mr, "/object_attributes/source_branch", "main");
    set(&mut mr, "/object_attributes/target_branch", "main");
    set(
        &mut mr,
        "/object_attributes/last_commit/id",
        gitlab_head.as_str(),
    );
    let pipeline = created(
        &coordinator,
        &Delivery::new("gitlab", "gl", "Merge Request Hook", "f-2", SECRET, &mr),
    );
    assert_eq!(pipeline["git_ref"], "refs/merge-requests/1/head");
    assert_eq!(pipeline["sha"], gitlab_head.as_str());
    let log = log_of(&pipeline["id"].to_string());
    assert!(log.contains("protected=[none] open=[none]"), "{log}");

    // The project's own protected branch does get the protected variable.
    let id = coordinator.run_pipeline("gh", "main");
    let log = log_of(&id);
    assert!(log.contains("ref=main protected=[deploy-secret]"), "{log}");
}
