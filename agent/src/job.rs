//! One job on this agent, from assignment to completion: tell the coordinator it started,
//! run it through the executor while its log ships, then report the outcome until the
//! coordinator has it.

use std::sync::Arc;

use esteira_executor::{
    Executor, Failure, FailureKind, JobResult as ExecutorResult, JobRun, Outcome,
};
use esteira_pipeline::PlannedJob;
use esteira_proto::v1::{CompleteJobRequest, JobAssignment, JobResult, Lease, StartJobRequest};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::artifacts;
use crate::backoff::Backoff;
use crate::client::Client;
use crate::log_shipper::{self, is_fenced};

/// Controls of a running job, kept by the agent for heartbeats and cancels.
#[derive(Clone)]
pub struct RunningJob {
    pub lease: Lease,
    /// Cancels the job (after_script runs; it completes as canceled).
    pub cancel: CancellationToken,
    /// The lease is gone: stop the job and report nothing more.
    pub abandon: CancellationToken,
}

/// Runs one assignment. `runner` holds the variables describing this agent.
pub async fn run(
    client: Client,
    executor: Arc<Executor>,
    assignment: JobAssignment,
    job: RunningJob,
    runner: &[(String, String)],
) {
    let lease = job.lease;
    let mut starter = client.clone();
    if let Err(status) = starter
        .start_job(StartJobRequest { lease: Some(lease) })
        .await
    {
        if is_fenced(&status) {
            warn!(job_id = lease.job_id, error = %status.message(), "assignment no longer valid");
            return;
        }
        // The coordinator may be restarting; the lease says who holds the job.
        warn!(job_id = lease.job_id, error = %status.message(), "could not confirm the start");
    }
    info!(job_id = lease.job_id, "job started");
    let (log, log_out) = mpsc::channel(256);
    let shipper = tokio::spawn(log_shipper::ship(client.clone(), lease, log_out));
    // The agent's own notes after the executor is done (artifact upload) use this end.
    let notes = log.clone();
    let incoming = executor
        .config()
        .work_dir
        .join("incoming")
        .join(lease.job_id.to_string());
    let outcome = match prepare(&client, lease, assignment, runner, &incoming).await {
        Ok(run) => {
            let cancel = job.cancel.clone();
            let abandon = job.abandon.clone();
            tokio::select! {
                outcome = executor.run(run, log, cancel) => Some(outcome),
                () = abandon.cancelled() => None,
            }
        }
        Err(message) => {
            let _ = log
                .send(format!("\x1b[31;1mERROR: {message}\x1b[0;m\n").into())
                .await;
            // This end would otherwise live to the end of the function, and the log
            // shipper, waiting for every end to close, would never finish.
            drop(log);
            Some(system_failure(message))
        }
    };
    let _ = tokio::fs::remove_dir_all(&incoming).await;
    let outcome = match outcome {
        Some(outcome) => Some(store_artifacts(&client, lease, outcome, &notes).await),
        None => None,
    };
    drop(notes);
    let Some(outcome) = outcome else {
        job.cancel.cancel();
        shipper.abort();
        warn!(
            job_id = lease.job_id,
            "job abandoned: its lease is no longer valid"
        );
        return;
    };
    let log_size = match shipper.await {
        Ok(Ok(size)) => size,
        Ok(Err(error)) => {
            warn!(job_id = lease.job_id, %error, "log delivery stopped; job abandoned");
            return;
        }
        Err(error) => {
            warn!(job_id = lease.job_id, %error, "log shipping task failed");
            return;
        }
    };
    complete(client, lease, &outcome, log_size, &job.abandon).await;
}

/// The job as the executor takes it, with the artifacts of the jobs it depends on
/// downloaded into `incoming`; or why it cannot run.
async fn prepare(
    client: &Client,
    lease: Lease,
    assignment: JobAssignment,
    runner: &[(String, String)],
    incoming: &std::path::Path,
) -> Result<JobRun, String> {
    let spec = serde_json::from_str::<PlannedJob>(&assignment.spec_json)
        .map_err(|error| format!("the job's specification is invalid: {error}"))?;
    let artifacts_in = artifacts::download_all(client, lease, &assignment.artifact_jobs, incoming)
        .await
        .map_err(|error| error.to_string())?;
    Ok(JobRun {
        job_id: lease.job_id,
        project: assignment.project,
        repo_url: assignment.repo_url,
        fetch_url: Some(assignment.fetch_url).filter(|url| !url.is_empty()),
        ssh_key: Some(assignment.ssh_key).filter(|key| !key.is_empty()),
        sha: assignment.sha,
        git_ref: assignment.git_ref,
        spec,
        masked: assignment
            .variables
            .iter()
            .filter(|v| v.masked)
            .map(|v| v.value.clone())
            .collect(),
        file_variables: assignment
            .variables
            .iter()
            .filter(|v| v.file)
            .map(|v| v.key.clone())
            .collect(),
        env: runner
            .iter()
            .cloned()
            .chain(assignment.variables.into_iter().map(|v| (v.key, v.value)))
            .collect(),
        artifacts_in,
    })
}

fn system_failure(message: String) -> Outcome {
    Outcome {
        result: ExecutorResult::Failed,
        exit_code: None,
        failure: Some(Failure {
            kind: FailureKind::RunnerSystemFailure,
            message,
        }),
        artifacts: None,
        details: serde_json::Value::Null,
    }
}

/// Uploads the job's artifacts archive, if it made one; a refused or failed upload fails
/// the job with the reason.
async fn store_artifacts(
    client: &Client,
    lease: Lease,
    outcome: Outcome,
    notes: &mpsc::Sender<bytes::Bytes>,
) -> Outcome {
    let Some(archive) = outcome.artifacts.clone() else {
        return outcome;
    };
    let uploaded = artifacts::upload(client, lease, &archive).await;
    let _ = tokio::fs::remove_file(&archive).await;
    match uploaded {
        Ok(size) => {
            let _ = notes
                .send(format!("Uploaded artifacts: {size} bytes\n").into())
                .await;
            outcome
        }
        Err(error) => {
            let message = error.to_string();
            let _ = notes
                .send(format!("\x1b[31;1mERROR: {message}\x1b[0;m\n").into())
                .await;
            let kind = match error {
                artifacts::TransferError::Refused(_) => FailureKind::ArtifactTooLarge,
                _ => FailureKind::RunnerSystemFailure,
            };
            Outcome {
                result: ExecutorResult::Failed,
                failure: Some(Failure { kind, message }),
                ..outcome
            }
        }
    }
}

/// Reports the outcome until the coordinator accepts it or says the lease is gone.
async fn complete(
    mut client: Client,
    lease: Lease,
    outcome: &Outcome,
    log_size: u64,
    abandon: &CancellationToken,
) {
    let result = match outcome.result {
        ExecutorResult::Success => JobResult::Success,
        ExecutorResult::Failed => JobResult::Failed,
        ExecutorResult::Canceled => JobResult::Canceled,
    };
    let request = CompleteJobRequest {
        lease: Some(lease),
        result: result.into(),
        exit_code: outcome.exit_code,
        failure_kind: outcome
            .failure
            .as_ref()
            .map(|f| f.kind.as_str().to_string())
            .unwrap_or_default(),
        failure_message: outcome
            .failure
            .as_ref()
            .map(|f| f.message.clone())
            .unwrap_or_default(),
        log_size,
        details_json: if outcome.details.is_null() {
            String::new()
        } else {
            outcome.details.to_string()
        },
    };
    let mut backoff = Backoff::default();
    loop {
        match client.complete_job(request.clone()).await {
            Ok(_) => {
                info!(job_id = lease.job_id, result = ?result, "job completed");
                return;
            }
            Err(status) if is_fenced(&status) => {
                warn!(job_id = lease.job_id, error = %status.message(), "completion refused");
                return;
            }
            Err(status) => {
                warn!(job_id = lease.job_id, error = %status.message(), "completion not delivered; retrying");
            }
        }
        tokio::select! {
            () = backoff.wait() => {}
            () = abandon.cancelled() => return,
        }
    }
}
