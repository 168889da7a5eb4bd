//! The scheduler with a real store, fake sessions (channels) and a manual clock: leases
//! expire when the test says so, never by waiting.

use std::sync::Arc;
use std::time::Duration;

use esteira_pipeline::{PlannedJob, Retry};
use tokio::sync::mpsc;

use super::clock::ManualClock;
use super::{LeaseRef, Scheduler, SchedulerConfig, SchedulerError, SessionMessage};
use crate::events::Events;
use crate::model::{AgentId, JobStatus, PipelineStatus};
use crate::secrets::SecretBox;
use crate::store::Store;
use crate::store::jobs::JobEnding;
use crate::store::pipelines::{NewJob, NewPipeline};

const LEASE: Duration = Duration::from_secs(30);

struct Harness {
    _dir: tempfile::TempDir,
    store: Store,
    clock: Arc<ManualClock>,
    scheduler: Arc<Scheduler>,
}

impl Harness {
    async fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.sqlite").to_string_lossy(), None)
            .await
            .unwrap();
        let clock = Arc::new(ManualClock::starting_now());
        let config = SchedulerConfig {
            lease_timeout: LEASE,
            log_limit: u64::MAX,
            server_url: "http://esteira.invalid".into(),
            artifacts: crate::artifacts::ArtifactStore::new(dir.path().join("a"), u64::MAX),
            max_assignment_bytes: 4 << 20,
            metrics: Default::default(),
        };
        let secrets = SecretBox::load_or_create(&dir.path().join("key")).unwrap();
        let scheduler =
            Scheduler::with_clock(store.clone(), secrets, Events::new(), config, clock.clone());
        scheduler.recover().await.unwrap();
        Harness {
            _dir: dir,
            store,
            clock,
            scheduler,
        }
    }

    /// A pipeline of one job that `retry:` retries once.
    async fn pipeline(&self) -> crate::model::PipelineId {
        let project = self
            .store
            .insert_project("p", "file:///nowhere", ".gitlab-ci.yml")
            .await
            .unwrap()
            .unwrap();
        let spec = PlannedJob {
            name: "deploy".into(),
            stage: "deploy".into(),
            script: vec!["true".into()],
            retry: Retry {
                max: 1,
                when: vec![],
                exit_codes: vec![],
            },
            ..PlannedJob::default()
        };
        let created = self
            .scheduler
            .create_pipeline(move |id| {
                Ok::<_, String>(NewPipeline {
                    id,
                    project_id: project.id,
                    git_ref: "main".into(),
                    ref_kind: "branch",
                    sha: "0".repeat(40),
                    commit_title: None,
                    commit_author: None,
                    source: "api".into(),
                    stages: vec!["deploy".into()],
                    variables: vec![],
                    jobs: vec![NewJob {
                        name: spec.name.clone(),
                        stage: spec.stage.clone(),
                        stage_index: 0,
                        spec_json: serde_json::to_string(&spec).unwrap(),
                    }],
                })
            })
            .await
            .unwrap();
        created.unwrap()
    }

    /// A registered agent with an open session: its id, the session's messages and id.
    async fn agent(&self, name: &str) -> (AgentId, mpsc::UnboundedReceiver<SessionMessage>, u64) {
        let id = self
            .store
            .insert_agent(name, &format!("{name}-hash"), &[], "0")
            .await
            .unwrap();
        let (sender, receiver) = mpsc::unbounded_channel();
        let session = self
            .scheduler
            .connect(id, vec![], 1, vec![], sender)
            .await
            .unwrap();
        (id, receiver, session)
    }
}

fn assigned(receiver: &mut mpsc::UnboundedReceiver<SessionMessage>) -> LeaseRef {
    match receiver.try_recv() {
        Ok(SessionMessage::Assign(assignment)) => assignment.lease,
        other => panic!("expected an assignment, got {other:?}"),
    }
}

#[tokio::test]
async fn an_expired_lease_is_retried_elsewhere_and_the_old_agent_is_fenced() {
    let harness = Harness::new().await;
    let (first, mut first_session, first_id) = harness.agent("first").await;
    let pipeline = harness.pipeline().await;
    let lease = assigned(&mut first_session);
    harness.scheduler.start_job(first, lease).await.unwrap();
    let (second, mut second_session, _) = harness.agent("second").await;
    assert!(second_session.try_recv().is_err(), "nothing to run yet");
    // The first agent goes silent: its session closes, its lease runs on.
    harness.scheduler.disconnect(first, first_id).await;

    harness.scheduler.expire_leases().await.unwrap();
    let job = harness.store.job(lease.job).await.unwrap().unwrap();
    assert_eq!(
        job.status,
        JobStatus::Running,
        "the lease has not expired yet"
    );

    harness.clock.advance(LEASE.as_millis() as i64 + 1);
    harness.scheduler.expire_leases().await.unwrap();
    let lost = harness.store.job(lease.job).await.unwrap().unwrap();
    assert_eq!(lost.status, JobStatus::Lost);
    assert!(lost.retried);
    assert!(
        lost.failure_message
            .as_deref()
            .is_some_and(|message| message.contains("lease expired on agent"))
    );

    let retry = assigned(&mut second_session);
    assert_ne!(retry.job, lease.job);
    let late = harness
        .scheduler
        .complete(first, lease, 0, JobEnding::success())
        .await;
    assert!(matches!(late, Err(SchedulerError::Fenced(_))), "{late:?}");
    let stale_log = harness
        .scheduler
        .append_log(first, lease, 0, b"late".to_vec(), Vec::new())
        .await;
    assert!(matches!(stale_log, Err(SchedulerError::Fenced(_))));

    harness.scheduler.start_job(second, retry).await.unwrap();
    harness
        .scheduler
        .complete(second, retry, 0, JobEnding::success())
        .await
        .unwrap();
    let finished = harness.store.pipeline(pipeline).await.unwrap().unwrap();
    assert_eq!(finished.status, PipelineStatus::Success);
}

#[tokio::test]
async fn a_completion_whose_caller_goes_away_still_moves_the_pipeline_on() {
    let harness = Harness::new().await;
    let (agent, mut session, _) = harness.agent("only").await;
    let pipeline = harness.pipeline().await;
    let lease = assigned(&mut session);
    harness.scheduler.start_job(agent, lease).await.unwrap();
    // The caller drops the call at its first await: the completion runs on regardless.
    let call = harness
        .scheduler
        .complete(agent, lease, 0, JobEnding::success());
    let dropped = tokio::time::timeout(Duration::ZERO, call).await;
    assert!(dropped.is_err(), "the call was cut before it answered");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let status = harness
            .store
            .pipeline(pipeline)
            .await
            .unwrap()
            .unwrap()
            .status;
        if status == PipelineStatus::Success {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "pipeline stuck at {status}"
        );
        tokio::task::yield_now().await;
    }
}
