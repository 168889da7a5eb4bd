//! The behaviour every backend of the store must have, checked through the traits only.
//!
//! Each check is an `async fn(&Store)` and knows nothing of the backend behind the
//! handle: [`CHECKS`] is the suite, and [`run`] runs every check on a fresh store from a
//! backend's opener. A backend's test module calls `run` with its opener (SQLite's is at
//! the bottom); a second backend adds one such test and passes the same checks.

use std::future::Future;
use std::pin::Pin;

use super::Store;
use super::deliveries::{Claim, NewDelivery};
use super::deployments::NewDeployment;
use super::jobs::{Finisher, JobEnding, Transition};
use super::logs::LineStamp;
use super::pipelines::{NewJob, NewPipeline, PipelineFilter};
use super::projects::{Project, ProjectSettings};
use super::variables::SealedVariable;
use crate::model::{AgentId, JobId, JobStatus, PipelineId, PipelineStatus, ProcessMode};

type Check = for<'a> fn(&'a Store) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Every check of the suite, by name.
pub const CHECKS: &[(&str, Check)] = &[
    ("pipelines keep their jobs in plan order", |s| {
        Box::pin(pipelines_keep_their_jobs_in_plan_order(s))
    }),
    ("transitions are guarded by the status they leave", |s| {
        Box::pin(transitions_are_guarded_by_the_status_they_leave(s))
    }),
    ("a job is leased once, under a new epoch", |s| {
        Box::pin(a_job_is_leased_once_under_a_new_epoch(s))
    }),
    ("a finish is guarded by epoch, agent and log", |s| {
        Box::pin(a_finish_is_guarded_by_epoch_agent_and_log(s))
    }),
    ("leases are renewed, expire and answer cancels", |s| {
        Box::pin(leases_are_renewed_expire_and_answer_cancels(s))
    }),
    ("a log is the bytes printed, once each", |s| {
        Box::pin(a_log_is_the_bytes_printed_once_each(s))
    }),
    ("a line stamp is kept once, with its bytes", |s| {
        Box::pin(a_line_stamp_is_kept_once_with_its_bytes(s))
    }),
    ("a log past its limit ends with a marker", |s| {
        Box::pin(a_log_past_its_limit_ends_with_a_marker(s))
    }),
    ("a retry is a new attempt that replaces the old", |s| {
        Box::pin(a_retry_is_a_new_attempt_that_replaces_the_old(s))
    }),
    ("a delivery is claimed once", |s| {
        Box::pin(a_delivery_is_claimed_once(s))
    }),
    ("projects keep names unique and secrets sealed", |s| {
        Box::pin(projects_keep_names_unique_and_secrets_sealed(s))
    }),
    ("variables are read as last written", |s| {
        Box::pin(variables_are_read_as_last_written(s))
    }),
    ("a removed agent's credential names nobody", |s| {
        Box::pin(a_removed_agents_credential_names_nobody(s))
    }),
    ("artifacts expire once", |s| {
        Box::pin(artifacts_expire_once(s))
    }),
    ("deployments list newest first", |s| {
        Box::pin(deployments_list_newest_first(s))
    }),
    ("resource group modes are kept per project", |s| {
        Box::pin(resource_group_modes_are_kept_per_project(s))
    }),
];

/// Runs every check, each on a store of its own from `open`.
pub async fn run<B, F>(open: impl Fn() -> F)
where
    F: Future<Output = (Store, B)>,
{
    for (name, check) in CHECKS {
        let (store, backend) = open().await;
        eprintln!("conformance: {name}");
        check(&store).await;
        store.close().await;
        drop(backend);
    }
}

async fn project(store: &Store, name: &str) -> Project {
    store
        .insert_project(name, "https://forge.example/app.git", ".gitlab-ci.yml")
        .await
        .unwrap()
        .expect("a new project")
}

/// A pipeline of `jobs` jobs (`job-0`, `job-1`, …) in one stage; returns its id and the
/// jobs' ids.
async fn pipeline(store: &Store, project: &Project, jobs: usize) -> (PipelineId, Vec<JobId>) {
    let id = store.reserve_pipeline_id().await.unwrap();
    let new = NewPipeline {
        id,
        project_id: project.id,
        git_ref: "main".into(),
        ref_kind: "branch",
        sha: "0123456789abcdef0123456789abcdef01234567".into(),
        commit_title: Some("a commit".into()),
        commit_author: None,
        source: "push".into(),
        stages: vec!["test".into()],
        variables: vec![("GIVEN".into(), "1".into())],
        jobs: (0..jobs)
            .map(|n| NewJob {
                name: format!("job-{n}"),
                stage: "test".into(),
                stage_index: 0,
                spec_json: r#"{"tags":["linux"]}"#.into(),
            })
            .collect(),
    };
    let ids = store.insert_pipeline(&new).await.unwrap();
    (id, ids)
}

/// A job moved from `created` to `pending` and leased to `agent` until 500 ms after the
/// epoch (long expired by the clock, so a check decides when it is); its epoch.
async fn leased(store: &Store, job: JobId, agent: AgentId) -> i64 {
    assert!(
        store
            .transition_job(job, &[JobStatus::Created], JobStatus::Pending)
            .await
            .unwrap()
    );
    let epochs = store.lease_jobs(&[(job, agent)], 500).await.unwrap();
    epochs[0].expect("leased")
}

async fn agent(store: &Store, name: &str) -> AgentId {
    store
        .insert_agent(name, &format!("hash-of-{name}"), &["linux".into()], "1")
        .await
        .unwrap()
}

async fn pipelines_keep_their_jobs_in_plan_order(store: &Store) {
    let app = project(store, "app").await;
    let (first, _) = pipeline(store, &app, 1).await;
    let (id, jobs) = pipeline(store, &app, 3).await;
    assert!(id > first, "ids grow: {first} then {id}");
    let stored = store.pipeline_jobs(id).await.unwrap();
    let names: Vec<_> = stored.iter().map(|job| job.name.as_str()).collect();
    assert_eq!(names, ["job-0", "job-1", "job-2"]);
    assert_eq!(stored.iter().map(|job| job.id).collect::<Vec<_>>(), jobs);
    assert!(stored.iter().all(|job| job.status == JobStatus::Created));
    let row = store.pipeline(id).await.unwrap().expect("stored");
    assert_eq!(row.project, "app");
    assert_eq!(row.status, PipelineStatus::Created);
    assert!(store.unfinished_pipelines().await.unwrap().contains(&id));
    store
        .set_pipeline_status(id, PipelineStatus::Success)
        .await
        .unwrap();
    assert!(!store.unfinished_pipelines().await.unwrap().contains(&id));
    let listed = store
        .pipelines(&PipelineFilter {
            project: Some("app".into()),
            limit: 10,
            ..PipelineFilter::default()
        })
        .await
        .unwrap();
    let listed: Vec<_> = listed.iter().map(|pipeline| pipeline.id).collect();
    assert_eq!(listed, [id, first], "newest first");
    let finished = store.latest_finished_pipeline("app", "main").await.unwrap();
    assert_eq!(finished.map(|pipeline| pipeline.id), Some(id));
}

async fn transitions_are_guarded_by_the_status_they_leave(store: &Store) {
    let app = project(store, "app").await;
    let (_, jobs) = pipeline(store, &app, 2).await;
    assert!(
        !store
            .transition_job(jobs[0], &[JobStatus::Pending], JobStatus::Skipped)
            .await
            .unwrap(),
        "a created job is not pending"
    );
    let moved = store
        .transition_jobs(&[
            Transition {
                job: jobs[0],
                from: vec![JobStatus::Created],
                to: JobStatus::Pending,
            },
            Transition {
                job: jobs[1],
                from: vec![JobStatus::Manual],
                to: JobStatus::Pending,
            },
        ])
        .await
        .unwrap();
    assert_eq!(moved, [true, false]);
    let pending: Vec<_> = store.pending_jobs().await.unwrap();
    assert_eq!(
        pending.iter().map(|job| job.id).collect::<Vec<_>>(),
        [jobs[0]]
    );
    let waiting = store.waiting_jobs().await.unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].tags.as_deref(), Some(r#"["linux"]"#));
    assert!(store.skip_pending_job(jobs[0], "outdated").await.unwrap());
    assert!(!store.skip_pending_job(jobs[0], "twice").await.unwrap());
    let skipped = store.job(jobs[0]).await.unwrap().expect("job");
    assert_eq!(skipped.status, JobStatus::Skipped);
    let counts = store.job_counts().await.unwrap();
    assert!(counts.contains(&("skipped".to_string(), 1)), "{counts:?}");
    assert!(counts.contains(&("created".to_string(), 1)), "{counts:?}");
}

async fn a_job_is_leased_once_under_a_new_epoch(store: &Store) {
    let app = project(store, "app").await;
    let (_, jobs) = pipeline(store, &app, 2).await;
    let runner = agent(store, "runner").await;
    let epoch = leased(store, jobs[0], runner).await;
    let again = store
        .lease_jobs(&[(jobs[0], runner), (jobs[1], runner)], i64::MAX)
        .await
        .unwrap();
    assert_eq!(
        again,
        [None, None],
        "running and created jobs are not leased"
    );
    let job = store.job(jobs[0]).await.unwrap().expect("job");
    assert_eq!(job.status, JobStatus::Running);
    assert_eq!((job.agent_id, job.lease_epoch), (Some(runner), epoch));
    assert!(store.mark_started(jobs[0], runner, epoch).await.unwrap());
    assert!(
        !store
            .mark_started(jobs[0], runner, epoch + 1)
            .await
            .unwrap()
    );
    let running = store.running_jobs_of(runner).await.unwrap();
    assert_eq!(
        running.iter().map(|job| job.id).collect::<Vec<_>>(),
        [jobs[0]]
    );
    // A lease that never started goes back to the queue; the next one has a new epoch.
    store.requeue_job(jobs[0], epoch).await.unwrap();
    let next = store
        .lease_jobs(&[(jobs[0], runner)], i64::MAX)
        .await
        .unwrap();
    assert!(next[0].is_some_and(|next| next > epoch), "{next:?}");
}

async fn a_finish_is_guarded_by_epoch_agent_and_log(store: &Store) {
    let app = project(store, "app").await;
    let (_, jobs) = pipeline(store, &app, 1).await;
    let runner = agent(store, "runner").await;
    let other = agent(store, "other").await;
    let epoch = leased(store, jobs[0], runner).await;
    store
        .append_log(jobs[0], runner, epoch, 0, b"hello\n", &[], u64::MAX)
        .await
        .unwrap()
        .expect("appended");
    let ending = JobEnding::success();
    let refused = [
        (epoch + 1, Finisher::Coordinator),
        (
            epoch,
            Finisher::Agent {
                agent: other,
                log_size: 6,
            },
        ),
        (
            epoch,
            Finisher::Agent {
                agent: runner,
                log_size: 7,
            },
        ),
    ];
    for (epoch, by) in refused {
        let finished = store.finish_job(jobs[0], epoch, &ending, by).await.unwrap();
        assert!(
            finished.is_none(),
            "{by:?} under epoch {epoch} finished the job"
        );
    }
    let by = Finisher::Agent {
        agent: runner,
        log_size: 6,
    };
    let job = store.finish_job(jobs[0], epoch, &ending, by).await.unwrap();
    let job = job.expect("finished");
    assert_eq!((job.status, job.exit_code), (JobStatus::Success, Some(0)));
    assert!(job.finished_at.is_some());
    let twice = store.finish_job(jobs[0], epoch, &ending, by).await.unwrap();
    assert!(twice.is_none(), "a finished job is not finished again");
}

async fn leases_are_renewed_expire_and_answer_cancels(store: &Store) {
    let app = project(store, "app").await;
    let (_, jobs) = pipeline(store, &app, 2).await;
    let runner = agent(store, "runner").await;
    let first = leased(store, jobs[0], runner).await;
    let second = leased(store, jobs[1], runner).await;
    store.request_cancel(jobs[1]).await.unwrap();
    let renewed = store
        .renew_leases(
            runner,
            &[(jobs[0], first), (jobs[1], second), (jobs[0], first + 5)],
            1_000,
        )
        .await
        .unwrap();
    assert_eq!(renewed, [Some(false), Some(true), None]);
    let expired = store.expired_leases(1_001).await.unwrap();
    let mut expired: Vec<_> = expired.iter().map(|job| job.id).collect();
    expired.sort();
    assert_eq!(expired, [jobs[0], jobs[1]]);
    assert!(store.expired_leases(999).await.unwrap().is_empty());
    store.extend_all_leases(5_000).await.unwrap();
    assert!(store.expired_leases(4_999).await.unwrap().is_empty());
}

async fn a_log_is_the_bytes_printed_once_each(store: &Store) {
    let app = project(store, "app").await;
    let (_, jobs) = pipeline(store, &app, 1).await;
    let runner = agent(store, "runner").await;
    let epoch = leased(store, jobs[0], runner).await;
    let append = |offset: u64, data: &'static [u8]| {
        store.append_log(jobs[0], runner, epoch, offset, data, &[], u64::MAX)
    };
    let first = append(0, b"one\n").await.unwrap().expect("lease");
    assert_eq!((first.acknowledged, first.grew), (4, true));
    // A resend overlapping what is stored adds only what is new.
    let resent = append(2, b"e\ntwo\n").await.unwrap().expect("lease");
    assert_eq!((resent.acknowledged, resent.grew), (8, true));
    let same = append(4, b"two\n").await.unwrap().expect("lease");
    assert_eq!((same.acknowledged, same.grew), (8, false));
    // A gap is not stored: the agent is told where the log ends.
    let gap = append(20, b"lost").await.unwrap().expect("lease");
    assert_eq!((gap.acknowledged, gap.grew), (8, false));
    let stale = store
        .append_log(jobs[0], runner, epoch + 1, 8, b"x", &[], u64::MAX)
        .await
        .unwrap();
    assert!(stale.is_none(), "another lease writes nothing");
    let bytes: &[u8] = &[0xff, 0xfe, b'\n', 0];
    append(8, bytes).await.unwrap().expect("lease");
    let (log, next) = store.read_log(jobs[0], 0, usize::MAX).await.unwrap();
    assert_eq!(log, [b"one\ntwo\n".as_slice(), bytes].concat());
    assert_eq!(next, 12);
    let (tail, _) = store.read_log(jobs[0], 5, usize::MAX).await.unwrap();
    assert_eq!(tail, [b"wo\n".as_slice(), bytes].concat());
    assert_eq!(store.job(jobs[0]).await.unwrap().expect("job").log_size, 12);
}

async fn a_line_stamp_is_kept_once_with_its_bytes(store: &Store) {
    let app = project(store, "app").await;
    let (_, jobs) = pipeline(store, &app, 1).await;
    let runner = agent(store, "runner").await;
    let epoch = leased(store, jobs[0], runner).await;
    let stamp = |offset: u64, at_ms: i64| LineStamp { offset, at_ms };
    let first = [stamp(0, 10), stamp(4, 20)];
    store
        .append_log(jobs[0], runner, epoch, 0, b"one\ntwo", &first, u64::MAX)
        .await
        .unwrap()
        .expect("lease");
    // Resent with the rest of its line: the stamp of a stored line is not kept twice.
    let resent = [stamp(4, 21), stamp(8, 30)];
    store
        .append_log(jobs[0], runner, epoch, 4, b"two\nsix\n", &resent, u64::MAX)
        .await
        .unwrap()
        .expect("lease");
    let stamps = store.log_stamps(jobs[0], 0, 100).await.unwrap();
    assert_eq!(stamps, [stamp(0, 10), stamp(4, 20), stamp(8, 30)]);
    let later = store.log_stamps(jobs[0], 5, 100).await.unwrap();
    assert_eq!(later, [stamp(8, 30)]);
    let (log, _) = store.read_log(jobs[0], 0, usize::MAX).await.unwrap();
    assert_eq!(log, b"one\ntwo\nsix\n", "stamps are not log bytes");
}

async fn a_log_past_its_limit_ends_with_a_marker(store: &Store) {
    let app = project(store, "app").await;
    let (_, jobs) = pipeline(store, &app, 1).await;
    let runner = agent(store, "runner").await;
    let epoch = leased(store, jobs[0], runner).await;
    let appended = store
        .append_log(jobs[0], runner, epoch, 0, b"0123456789", &[], 4)
        .await
        .unwrap()
        .expect("lease");
    assert_eq!(
        appended.acknowledged, 10,
        "bytes past the limit are acknowledged"
    );
    store
        .append_log(jobs[0], runner, epoch, 10, b"more", &[], 4)
        .await
        .unwrap()
        .expect("lease");
    let (log, _) = store.read_log(jobs[0], 0, usize::MAX).await.unwrap();
    let text = String::from_utf8_lossy(&log);
    assert!(text.starts_with("0123\n"), "{text:?}");
    assert!(text.contains("exceeded its limit of 4 bytes"), "{text:?}");
    assert!(!text.contains("more"), "{text:?}");
    let job = store.job(jobs[0]).await.unwrap().expect("job");
    assert!(job.log_truncated);
}

async fn a_retry_is_a_new_attempt_that_replaces_the_old(store: &Store) {
    let app = project(store, "app").await;
    let (id, jobs) = pipeline(store, &app, 1).await;
    let retry = store.insert_retry(jobs[0]).await.unwrap();
    assert_ne!(retry, jobs[0]);
    let stored = store.pipeline_jobs(id).await.unwrap();
    let old = stored.iter().find(|job| job.id == jobs[0]).expect("old");
    let new = stored.iter().find(|job| job.id == retry).expect("new");
    assert!(old.retried && !new.retried);
    assert_eq!((new.name.as_str(), new.attempt), ("job-0", old.attempt + 1));
    assert_eq!(new.status, JobStatus::Created);
    let counts = store.job_counts().await.unwrap();
    assert_eq!(counts, [("created".to_string(), 1)], "latest attempts only");
}

async fn a_delivery_is_claimed_once(store: &Store) {
    let app = project(store, "app").await;
    let delivery = |id: &'static str, key: &'static str| NewDelivery {
        project_id: app.id,
        forge: "gitlab",
        delivery_id: Some(id),
        event_key: Some(key),
        event: "push",
        outcome: "processing",
        message: None,
    };
    let Claim::New(first) = store.claim_delivery(&delivery("d1", "k1")).await.unwrap() else {
        panic!("a new delivery was seen before");
    };
    for again in [delivery("d1", "k2"), delivery("d2", "k1")] {
        let Claim::Seen(seen) = store.claim_delivery(&again).await.unwrap() else {
            panic!("the same delivery or event was claimed twice");
        };
        assert_eq!(seen.id, first.id);
    }
    store
        .finish_delivery(first.id, "created", None, Some("done"))
        .await
        .unwrap();
    let row = store.delivery(first.id).await.unwrap().expect("row");
    assert_eq!(
        (row.outcome.as_str(), row.message.as_deref()),
        ("created", Some("done"))
    );
    let other = delivery("d3", "k3");
    let Claim::New(released) = store.claim_delivery(&other).await.unwrap() else {
        panic!("new");
    };
    store.release_delivery(released.id).await.unwrap();
    assert!(matches!(
        store.claim_delivery(&other).await.unwrap(),
        Claim::New(_)
    ));
    assert_eq!(store.deliveries(app.id, 10).await.unwrap().len(), 2);
    let refs = vec![("main".to_string(), "abc".to_string())];
    store.set_polled_refs(app.id, &refs).await.unwrap();
    assert_eq!(store.polled_refs(app.id).await.unwrap(), refs);
}

async fn projects_keep_names_unique_and_secrets_sealed(store: &Store) {
    let app = project(store, "app").await;
    let taken = store
        .insert_project("app", "https://elsewhere.example/x.git", "ci.yml")
        .await
        .unwrap();
    assert!(taken.is_none(), "a name is taken once");
    let settings = ProjectSettings {
        forge_token: Some("forge-token-1".into()),
        protected_branches: Some(vec!["main".into(), "release/*".into()]),
        ..ProjectSettings::default()
    };
    store
        .update_project(app.id, &settings)
        .await
        .unwrap()
        .expect("edited");
    // Read after the write: never an answer from before it.
    let read = store.project(app.id).await.unwrap().expect("project");
    assert_eq!(read.forge_token.as_deref(), Some("forge-token-1"));
    assert_eq!(read.protected_branches(), ["main", "release/*"]);
    assert_eq!(read.view()["forge_token"], "***");
    let by_name = store
        .project_by_name("app")
        .await
        .unwrap()
        .expect("by name");
    assert_eq!(by_name.id, app.id);
    assert!(store.remove_project(app.id).await.unwrap());
    assert!(store.project_by_name("app").await.unwrap().is_none());
    assert!(store.projects().await.unwrap().is_empty());
    assert!(
        store.project(app.id).await.unwrap().is_some(),
        "kept for its pipelines"
    );
    project(store, "app").await;
}

async fn variables_are_read_as_last_written(store: &Store) {
    let app = project(store, "app").await;
    let variable = |key: &str, ciphertext: &[u8], protected: bool| SealedVariable {
        key: key.into(),
        nonce: vec![1; 12],
        ciphertext: ciphertext.to_vec(),
        masked: true,
        protected,
        file: false,
    };
    store
        .put_variable(app.id, &variable("B", b"b1", false))
        .await
        .unwrap();
    store
        .put_variable(app.id, &variable("A", b"a1", true))
        .await
        .unwrap();
    let keys = |variables: Vec<SealedVariable>| {
        variables
            .into_iter()
            .map(|v| (v.key, v.ciphertext, v.protected))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        keys(store.sealed_variables(app.id).await.unwrap()),
        [
            ("A".into(), b"a1".to_vec(), true),
            ("B".into(), b"b1".to_vec(), false)
        ]
    );
    store
        .put_variable(app.id, &variable("B", b"b2", true))
        .await
        .unwrap();
    assert!(store.remove_variable(app.id, "A").await.unwrap());
    assert!(!store.remove_variable(app.id, "A").await.unwrap());
    assert_eq!(
        keys(store.sealed_variables(app.id).await.unwrap()),
        [("B".into(), b"b2".to_vec(), true)]
    );
    let infos = store.variable_infos(app.id).await.unwrap();
    assert_eq!(infos.len(), 1);
    assert!(infos[0].masked && infos[0].protected);
}

async fn a_removed_agents_credential_names_nobody(store: &Store) {
    let runner = agent(store, "runner").await;
    let found = store.agent_by_token_hash("hash-of-runner").await.unwrap();
    assert_eq!(found.map(|agent| agent.id), Some(runner));
    store
        .update_agent_session(runner, &["linux".into(), "docker".into()], 4, "2")
        .await
        .unwrap();
    assert!(store.set_agent_paused(runner, true).await.unwrap());
    let listed = store.agents().await.unwrap();
    let row = listed
        .iter()
        .find(|agent| agent.id == runner)
        .expect("listed");
    assert_eq!((row.concurrency, row.paused), (4, true));
    assert_eq!(row.labels(), ["linux", "docker"]);
    store.touch_agent(runner).await.unwrap();
    assert!(store.remove_agent(runner).await.unwrap());
    assert!(!store.remove_agent(runner).await.unwrap());
    assert!(
        store
            .agent_by_token_hash("hash-of-runner")
            .await
            .unwrap()
            .is_none()
    );
}

async fn artifacts_expire_once(store: &Store) {
    let app = project(store, "app").await;
    let (id, jobs) = pipeline(store, &app, 2).await;
    store
        .set_artifacts(jobs[0], 100, Some(1_000))
        .await
        .unwrap();
    store.set_artifacts(jobs[1], 200, None).await.unwrap();
    let kept = store.jobs_with_artifacts(id).await.unwrap();
    assert_eq!(kept.iter().map(|job| job.id).collect::<Vec<_>>(), jobs);
    assert!(
        store.expired_artifacts(1_001).await.unwrap().is_empty(),
        "a pipeline that runs keeps its artifacts"
    );
    store
        .set_pipeline_status(id, PipelineStatus::Failed)
        .await
        .unwrap();
    assert_eq!(store.expired_artifacts(1_001).await.unwrap(), [jobs[0]]);
    assert!(store.expired_artifacts(999).await.unwrap().is_empty());
    store.mark_artifacts_expired(jobs[0]).await.unwrap();
    assert!(store.expired_artifacts(1_001).await.unwrap().is_empty());
    // Still listed: a job that needs them learns at download that they expired.
    let listed = store.jobs_with_artifacts(id).await.unwrap();
    assert_eq!(listed.iter().map(|job| job.id).collect::<Vec<_>>(), jobs);
    let job = store.job(jobs[0]).await.unwrap().expect("job");
    assert!(job.artifacts_expired);
}

async fn deployments_list_newest_first(store: &Store) {
    let app = project(store, "app").await;
    let (first, jobs) = pipeline(store, &app, 1).await;
    let (second, more) = pipeline(store, &app, 1).await;
    let deployment = |pipeline: PipelineId, job: JobId, status: &'static str| NewDeployment {
        project: app.id,
        environment: "production",
        tier: "production",
        url: None,
        job,
        pipeline,
        sha: "0123456789abcdef0123456789abcdef01234567",
        git_ref: "main",
        status,
        image_digest: None,
        started_at: Some(1),
        finished_at: 2,
    };
    store
        .insert_deployment(&deployment(first, jobs[0], "success"))
        .await
        .unwrap();
    store
        .insert_deployment(&deployment(second, more[0], "failed"))
        .await
        .unwrap();
    let listed = store.deployments(app.id).await.unwrap();
    let pipelines: Vec<_> = listed.iter().map(|d| d.pipeline_id).collect();
    assert_eq!(pipelines, [second, first]);
    let newest = store
        .newest_successful_deploy(app.id, "production")
        .await
        .unwrap();
    assert_eq!(newest, Some(first));
    let none = store
        .newest_successful_deploy(app.id, "staging")
        .await
        .unwrap();
    assert_eq!(none, None);
}

async fn resource_group_modes_are_kept_per_project(store: &Store) {
    let app = project(store, "app").await;
    let other = project(store, "other").await;
    assert!(store.resource_group_modes(app.id).await.unwrap().is_empty());
    let mode = ProcessMode::OldestFirst;
    store
        .set_resource_group_mode(app.id, "prod", mode)
        .await
        .unwrap();
    store
        .set_resource_group_mode(app.id, "prod", ProcessMode::NewestFirst)
        .await
        .unwrap();
    let modes = store.resource_group_modes(app.id).await.unwrap();
    assert_eq!(modes, [("prod".to_string(), ProcessMode::NewestFirst)]);
    assert!(
        store
            .resource_group_modes(other.id)
            .await
            .unwrap()
            .is_empty()
    );
}

/// The suite on SQLite, each check on a database of its own in a temporary directory.
#[tokio::test]
async fn sqlite_passes_the_conformance_suite() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let secrets = crate::secrets::SecretBox::load_or_create(&dir.path().join("key")).unwrap();
        let path = dir.path().join("db.sqlite");
        let store = Store::open(&path.to_string_lossy(), Some(secrets))
            .await
            .unwrap();
        (store, dir)
    })
    .await;
}

/// The suite is the backend's whole contract: it names no backend type, only the
/// handle, so every check runs unchanged on any [`super::Storage`].
#[test]
fn the_suite_names_no_backend() {
    let source = include_str!("conformance.rs");
    let suite = &source[..source.find("/// The suite on SQLite").expect("suite")];
    for backend in ["Sqlite", "sqlx", "sqlite::"] {
        assert!(!suite.contains(backend), "the suite names {backend}");
    }
}
