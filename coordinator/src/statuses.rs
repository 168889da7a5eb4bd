//! Commit statuses back to the forge: each pipeline status change becomes a status on
//! the commit through GitLab's commit status API, GitHub's statuses API or Gitea's and
//! Forgejo's, with the pipeline's page as target. One sender per pipeline keeps them in
//! order; each is retried with backoff while the forge fails (5xx, 429, no answer), and
//! none of it blocks or fails the pipeline.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tracing::{info, warn};

use crate::events::Event;
use crate::model::{PipelineId, PipelineStatus};
use crate::scheduler::Scheduler;
use crate::store::projects::{Forge, Project};

/// Backoff between attempts: doubling from `first` up to `max`, for `give_up_after`.
#[derive(Debug, Clone)]
pub struct Retry {
    pub first: Duration,
    pub max: Duration,
    pub give_up_after: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            first: Duration::from_millis(250),
            max: Duration::from_secs(10),
            give_up_after: Duration::from_secs(3600),
        }
    }
}

/// One status to send.
#[derive(Debug, Clone)]
struct Update {
    project: Project,
    pipeline: PipelineId,
    git_ref: String,
    sha: String,
    status: PipelineStatus,
}

/// Watches pipeline changes and reports them, until the process ends.
pub fn spawn(scheduler: Arc<Scheduler>, retry: Retry) -> tokio::task::JoinHandle<()> {
    let mut events = scheduler.events().subscribe();
    tokio::spawn(async move {
        let client = match reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("esteira/", env!("CARGO_PKG_VERSION")))
            .build()
        {
            Ok(client) => client,
            Err(error) => {
                warn!(%error, "no HTTP client: commit statuses are off");
                return;
            }
        };
        let base = scheduler.config().server_url.clone();
        let mut senders: HashMap<PipelineId, (PipelineStatus, mpsc::UnboundedSender<Update>)> =
            HashMap::new();
        loop {
            let pipeline = match events.recv().await {
                Ok(Event::Pipeline { pipeline }) => pipeline,
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    warn!(
                        missed,
                        "commit statuses fell behind the events; some may be skipped"
                    );
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            let store = scheduler.store();
            let Ok(Some(row)) = store.pipeline(pipeline).await else {
                continue;
            };
            let Ok(Some(project)) = store.project(row.project_id).await else {
                continue;
            };
            if !reports(&project) {
                continue;
            }
            let update = Update {
                project,
                pipeline,
                git_ref: row.git_ref.clone(),
                sha: row.sha.clone(),
                status: row.status,
            };
            let finished = row.status.is_finished();
            match senders.get_mut(&pipeline) {
                Some((last, _)) if *last == row.status => {}
                Some((last, sender)) => {
                    *last = row.status;
                    let _ = sender.send(update);
                }
                None => {
                    let (sender, queue) = mpsc::unbounded_channel();
                    if row.status != PipelineStatus::Pending {
                        // The forge hears of the pipeline from its start, whatever it
                        // has become by now.
                        let _ = sender.send(Update {
                            status: PipelineStatus::Pending,
                            ..update.clone()
                        });
                    }
                    let _ = sender.send(update);
                    tokio::spawn(send_all(client.clone(), base.clone(), retry.clone(), queue));
                    senders.insert(pipeline, (row.status, sender));
                }
            }
            if finished {
                // Dropping the sender lets that pipeline's task end once it has sent all.
                senders.remove(&pipeline);
            }
        }
    })
}

/// Whether the project has what reporting needs.
fn reports(project: &Project) -> bool {
    project.forge() != Forge::Generic
        && project
            .forge_api_url
            .as_deref()
            .is_some_and(|u| !u.is_empty())
        && project
            .forge_token
            .as_deref()
            .is_some_and(|t| !t.is_empty())
}

async fn send_all(
    client: reqwest::Client,
    base: String,
    retry: Retry,
    mut queue: mpsc::UnboundedReceiver<Update>,
) {
    while let Some(update) = queue.recv().await {
        send_with_retry(&client, &base, &retry, &update).await;
    }
}

async fn send_with_retry(client: &reqwest::Client, base: &str, retry: &Retry, update: &Update) {
    let started = tokio::time::Instant::now();
    let mut wait = retry.first;
    let mut attempt = 1u32;
    loop {
        match send(client, base, update).await {
            Ok(()) => {
                info!(pipeline_id = %update.pipeline, status = %update.status, attempt, "commit status sent");
                return;
            }
            Err((error, retryable)) => {
                if !retryable || started.elapsed() + wait > retry.give_up_after {
                    warn!(pipeline_id = %update.pipeline, status = %update.status, %error, attempt, "commit status not sent; giving up");
                    return;
                }
                warn!(pipeline_id = %update.pipeline, status = %update.status, %error, attempt, "commit status failed; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(retry.max);
                attempt += 1;
            }
        }
    }
}

/// The request for one status, per forge: (URL, body, auth header).
pub fn request(
    base: &str,
    update_project: &Project,
    pipeline: PipelineId,
    git_ref: &str,
    sha: &str,
    status: PipelineStatus,
) -> (String, Value, (&'static str, String)) {
    let project = update_project;
    let api = project
        .forge_api_url
        .as_deref()
        .unwrap_or_default()
        .trim_end_matches('/');
    let token = project.forge_token.clone().unwrap_or_default();
    let target_url = format!("{base}/pipelines/{pipeline}");
    let description = format!("esteira pipeline #{pipeline}: {status}");
    let path = project.forge_path();
    match project.forge() {
        Forge::Gitlab => {
            let state = match status {
                PipelineStatus::Created | PipelineStatus::Pending | PipelineStatus::Manual => {
                    "pending"
                }
                PipelineStatus::Running => "running",
                PipelineStatus::Success => "success",
                PipelineStatus::Failed => "failed",
                PipelineStatus::Canceled => "canceled",
                PipelineStatus::Skipped => "skipped",
            };
            (
                format!("{api}/projects/{}/statuses/{sha}", encode_segment(&path)),
                json!({
                    "state": state,
                    "ref": git_ref,
                    "name": "esteira",
                    "target_url": target_url,
                    "description": description,
                }),
                ("PRIVATE-TOKEN", token),
            )
        }
        forge => {
            // GitHub, Gitea and Forgejo: no running or canceled state.
            let state = match status {
                PipelineStatus::Created
                | PipelineStatus::Pending
                | PipelineStatus::Manual
                | PipelineStatus::Running => "pending",
                PipelineStatus::Success | PipelineStatus::Skipped => "success",
                PipelineStatus::Failed => "failure",
                PipelineStatus::Canceled => "error",
            };
            let auth = if forge == Forge::Github {
                ("Authorization", format!("Bearer {token}"))
            } else {
                ("Authorization", format!("token {token}"))
            };
            (
                format!("{api}/repos/{path}/statuses/{sha}"),
                json!({
                    "state": state,
                    "target_url": target_url,
                    "description": description,
                    "context": "esteira/pipeline",
                }),
                auth,
            )
        }
    }
}

/// Sends one status; the error says whether trying again may help.
async fn send(client: &reqwest::Client, base: &str, update: &Update) -> Result<(), (String, bool)> {
    let (url, body, (auth_name, auth_value)) = request(
        base,
        &update.project,
        update.pipeline,
        &update.git_ref,
        &update.sha,
        update.status,
    );
    let mut builder = client.post(&url).header(auth_name, auth_value).json(&body);
    if update.project.forge() == Forge::Github {
        builder = builder
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28");
    }
    let response = builder
        .send()
        .await
        .map_err(|e| (format!("{url}: {e}"), true))?;
    let code = response.status();
    if code.is_success() {
        return Ok(());
    }
    let retryable = code.is_server_error() || code.as_u16() == 429 || code.as_u16() == 408;
    Err((format!("{url}: HTTP {}", code.as_u16()), retryable))
}

/// A path segment with everything but unreserved characters percent-encoded
/// (GitLab's `group%2Fproject`).
fn encode_segment(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
