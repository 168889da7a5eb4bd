//! The agent's life: register once, then hold a session with the coordinator, reconnecting
//! with backoff whenever it drops, without touching the jobs that run meanwhile.
//!
//! Heartbeats renew the leases of running jobs (and bring cancels and abandons a dropped
//! session might have missed). On shutdown the agent closes its session, so it takes no
//! more jobs, and waits for the running ones to finish; so does an ephemeral agent whose
//! [`Lifetime`] is over, which then deregisters.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use esteira_executor::{Executor, ExecutorConfig};
use esteira_proto::PROTOCOL_VERSION;
use esteira_proto::v1::agent_service_client::AgentServiceClient;
use esteira_proto::v1::{
    HeartbeatRequest, Lease, OpenSessionRequest, RegisterRequest, server_message,
};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use crate::backoff::Backoff;
use crate::client::{self, Client};
use crate::config::Config;
use crate::credentials::{self, Credentials};
use crate::job::{self, RunningJob};
use crate::lifetime::{self, Lifetime};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A session that stayed open this long was healthy: the reconnect after it starts from
/// the shortest wait. One that ends sooner (say, on a message the agent cannot decode)
/// makes the next wait longer, up to the cap.
const HEALTHY_SESSION: Duration = Duration::from_secs(10);

/// The jobs this agent runs now, by job id.
#[derive(Clone, Default)]
struct Running(Arc<Mutex<HashMap<i64, RunningJob>>>);

impl Running {
    fn leases(&self) -> Vec<Lease> {
        self.lock().values().map(|job| job.lease).collect()
    }

    fn get(&self, job_id: i64) -> Option<RunningJob> {
        self.lock().get(&job_id).cloned()
    }

    /// Stops every running job without reporting it: their leases are as good as gone.
    fn abandon_all(&self) {
        for job in self.lock().values() {
            job.abandon.cancel();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, RunningJob>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Runs the agent until `shutdown` resolves and its running jobs have finished.
pub async fn run(mut config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.work_dir)
        .with_context(|| format!("cannot create the work dir {}", config.work_dir.display()))?;
    // Docker bind-mounts need absolute paths.
    config.work_dir = std::path::absolute(&config.work_dir)?;
    let executor = Arc::new(
        Executor::connect(ExecutorConfig {
            instance: config.name.clone(),
            work_dir: config.work_dir.clone(),
            allow_docker_socket: config.allow_docker_socket,
            network_per_job: config.network_per_job,
            max_timeout: config.max_timeout,
            default_image: config.default_image.clone(),
            ..ExecutorConfig::default()
        })
        .await
        .context("cannot reach the Docker engine")?,
    );
    // Before taking work: no job survives a restart (see `orphans`).
    let removed = executor.remove_leftovers(&[]).await?;
    if removed > 0 {
        info!(
            removed,
            "removed what earlier jobs of this agent left behind"
        );
    }
    let channel = client::channel(&config.coordinator, config.ca_cert.as_ref())?;
    let credentials = register(&config, &channel).await?;
    let mut client = client::authenticated(channel, &credentials.token)?;
    let running = Running::default();
    let lifetime = Arc::new(Lifetime::new(config.max_jobs, config.idle_exit));
    let heartbeat_secs = Arc::new(AtomicU32::new(5));
    let stop = CancellationToken::new();

    let heartbeats = tokio::spawn(heartbeat(
        client.clone(),
        running.clone(),
        heartbeat_secs.clone(),
    ));
    let sessions = sessions(
        &config,
        client.clone(),
        executor.clone(),
        running.clone(),
        heartbeat_secs,
        stop.clone(),
        lifetime.clone(),
    );
    tokio::select! {
        result = sessions => result?,
        () = shutdown => info!("shutting down: no new jobs; waiting for running ones"),
        over = lifetime.over() => info!(%over, "no new jobs; waiting for running ones"),
    }
    stop.cancel();
    while !running.lock().is_empty() {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    heartbeats.abort();
    executor.wait_for_cleanups().await;
    if lifetime.is_ephemeral() {
        lifetime::deregister(&mut client, &config.work_dir).await?;
    }
    Ok(())
}

/// The stored credential, or a new one from registration.
async fn register(
    config: &Config,
    channel: &tonic::transport::Channel,
) -> anyhow::Result<Credentials> {
    if let Some(existing) = credentials::load(&config.work_dir) {
        return Ok(existing);
    }
    let token = config.registration_token.clone().context(
        "this agent is not registered yet: give --registration-token (ESTEIRA_REGISTRATION_TOKEN)",
    )?;
    let mut backoff = Backoff::default();
    let response = loop {
        let request = RegisterRequest {
            protocol_version: PROTOCOL_VERSION,
            registration_token: token.clone(),
            name: config.name.clone(),
            labels: config.labels.clone(),
            version: VERSION.to_string(),
        };
        match AgentServiceClient::new(channel.clone())
            .register(request)
            .await
        {
            Ok(response) => break response.into_inner(),
            Err(status) if fatal(&status) => {
                anyhow::bail!("registration refused: {}", status.message())
            }
            Err(status) => {
                warn!(error = %status.message(), "coordinator unreachable; retrying registration");
                backoff.wait().await;
            }
        }
    };
    let credentials = Credentials {
        agent_id: response.agent_id,
        token: response.agent_token,
    };
    credentials::save(&config.work_dir, &credentials)
        .context("cannot store the agent credential")?;
    info!(agent_id = credentials.agent_id, "registered");
    Ok(credentials)
}

/// Errors no retry will mend.
fn fatal(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unauthenticated
            | tonic::Code::FailedPrecondition
            | tonic::Code::InvalidArgument
    )
}

/// Holds the session, reconnecting until `stop`; returns an error only when the
/// coordinator refuses this agent for good.
async fn sessions(
    config: &Config,
    mut client: Client,
    executor: Arc<Executor>,
    running: Running,
    heartbeat_secs: Arc<AtomicU32>,
    stop: CancellationToken,
    lifetime: Arc<Lifetime>,
) -> anyhow::Result<()> {
    let runner = Arc::new(vec![
        ("CI_RUNNER_DESCRIPTION".to_string(), config.name.clone()),
        ("CI_RUNNER_TAGS".to_string(), config.labels.join(",")),
        ("CI_RUNNER_VERSION".to_string(), VERSION.to_string()),
    ]);
    let mut backoff = Backoff::default();
    loop {
        let request = OpenSessionRequest {
            protocol_version: PROTOCOL_VERSION,
            concurrency: config.concurrency,
            labels: config.labels.clone(),
            version: VERSION.to_string(),
            running: running.leases(),
        };
        let mut stream = match client.open_session(request).await {
            Ok(response) => response.into_inner(),
            Err(status) if fatal(&status) => {
                if status.code() == tonic::Code::Unauthenticated {
                    credentials::forget(&config.work_dir)?;
                }
                anyhow::bail!("the coordinator refused this agent: {}", status.message());
            }
            Err(status) => {
                warn!(error = %status.message(), "coordinator unreachable; reconnecting");
                backoff.wait().await;
                continue;
            }
        };
        info!("session open");
        let opened = Instant::now();
        loop {
            let message = tokio::select! {
                message = stream.message() => message,
                () = stop.cancelled() => return Ok(()),
            };
            let kind = match message {
                Ok(Some(message)) => message.kind,
                Ok(None) => break,
                Err(status) => {
                    warn!(code = ?status.code(), error = %status.message(), "session lost; reconnecting");
                    break;
                }
            };
            match kind {
                Some(server_message::Kind::Assignment(assignment)) => {
                    let Some(lease) = assignment.lease else {
                        continue;
                    };
                    heartbeat_secs
                        .store(assignment.heartbeat_interval_secs.max(1), Ordering::Relaxed);
                    let job = RunningJob {
                        lease,
                        cancel: CancellationToken::new(),
                        abandon: CancellationToken::new(),
                    };
                    running.lock().insert(lease.job_id, job.clone());
                    lifetime.job_taken();
                    let (client, executor, running) =
                        (client.clone(), executor.clone(), running.clone());
                    let (runner, lifetime) = (runner.clone(), lifetime.clone());
                    let span = info_span!(
                        "job",
                        job_id = lease.job_id,
                        pipeline_id = assignment.pipeline_id
                    );
                    tokio::spawn(
                        async move {
                            job::run(client, executor, assignment, job, &runner).await;
                            running.lock().remove(&lease.job_id);
                            lifetime.job_finished();
                        }
                        .instrument(span),
                    );
                }
                Some(server_message::Kind::Cancel(cancel)) => {
                    if let Some(job) = cancel.lease.and_then(|lease| running.get(lease.job_id)) {
                        info!(job_id = job.lease.job_id, "cancel requested");
                        job.cancel.cancel();
                    }
                }
                None => {}
            }
        }
        if opened.elapsed() >= HEALTHY_SESSION {
            backoff.reset();
        }
        tokio::select! {
            () = backoff.wait() => {}
            () = stop.cancelled() => return Ok(()),
        }
    }
}

/// Renews the leases of running jobs every interval the coordinator asked for.
///
/// The coordinator gives a job up (and may retry it elsewhere) once its lease has not
/// been renewed for three intervals. So when renewals have failed for two intervals, the
/// agent stops its jobs itself: cut off from the coordinator, a job must not run on
/// beside its retry.
async fn heartbeat(mut client: Client, running: Running, interval_secs: Arc<AtomicU32>) {
    // The interval can change with each assignment: it is read at every tick, and the
    // first job's leases are renewed within a tick of their first interval.
    const TICK: Duration = Duration::from_secs(1);
    let (mut renewed_at, mut sent_at) = (Instant::now(), Instant::now());
    loop {
        tokio::time::sleep(TICK).await;
        let interval = Duration::from_secs(u64::from(interval_secs.load(Ordering::Relaxed)));
        let leases = running.leases();
        if leases.is_empty() {
            renewed_at = Instant::now();
            continue;
        }
        if sent_at.elapsed() + TICK / 2 < interval {
            continue;
        }
        sent_at = Instant::now();
        // A black-holed connection answers nothing: a renewal not back within an
        // interval has failed.
        let renewal = tokio::time::timeout(
            interval,
            client.heartbeat(HeartbeatRequest { running: leases }),
        )
        .await
        .unwrap_or_else(|_| {
            Err(tonic::Status::deadline_exceeded(
                "no answer within a heartbeat interval",
            ))
        });
        match renewal {
            Ok(response) => {
                renewed_at = Instant::now();
                let response = response.into_inner();
                for lease in response.abandon {
                    if let Some(job) = running
                        .get(lease.job_id)
                        .filter(|j| j.lease.epoch == lease.epoch)
                    {
                        job.abandon.cancel();
                    }
                }
                for lease in response.cancel {
                    if let Some(job) = running.get(lease.job_id) {
                        job.cancel.cancel();
                    }
                }
            }
            Err(status) => {
                warn!(error = %status.message(), "heartbeat not delivered");
                if renewed_at.elapsed() >= interval * 2 {
                    warn!(
                        jobs = running.leases().len(),
                        "no lease renewed for two heartbeat intervals: stopping the jobs \
                         before the coordinator gives them up"
                    );
                    running.abandon_all();
                }
            }
        }
    }
}
