//! Commit statuses back to the forge: each status change of a pipeline, and of each of its
//! jobs, becomes a status on the commit through GitLab's commit status API, GitHub's
//! statuses API or Gitea's and Forgejo's, with the pipeline's (or job's) page as target.
//!
//! One watcher follows the change events. It takes every event that has arrived at once,
//! and for each pipeline they touch reads the pipeline and its jobs and queues what
//! changed since its last look (jobs first, then the pipeline), so a status skipped by a
//! lagging event stream is caught up at the next one and a finished pipeline's status is
//! always queued after its jobs'. A pipeline whose project does not report (no forge API
//! or token when its first event came) is remembered as silent and costs no read after. One sender task per pipeline sends
//! its queue in order; each status is retried with backoff while the forge fails (5xx,
//! 429, no answer), the later ones waiting behind it. None of it blocks or fails the
//! pipeline.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tracing::{info, warn};

use crate::events::Event;
use crate::events::Events;
use crate::model::{JobId, JobStatus, PipelineId, PipelineStatus};
use crate::scheduler::latest_attempts;
use crate::store::Store;
use crate::store::StoreError;
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

/// What a status is about: the whole pipeline, or one of its jobs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Subject {
    Pipeline,
    Job { id: JobId, name: String },
}

impl Subject {
    /// The forge's key for the status: a later status with the same key replaces it.
    fn key(&self) -> String {
        match self {
            Subject::Pipeline => String::new(),
            Subject::Job { name, .. } => name.clone(),
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
    subject: Subject,
    status: PipelineStatus,
}

/// What the watcher knows of one pipeline: where its statuses go, and the last status
/// queued for each subject (by [`Subject::key`]).
struct Watch {
    sender: mpsc::UnboundedSender<Update>,
    queued: HashMap<String, PipelineStatus>,
    finished: bool,
}

/// Finished pipelines whose watch is kept, so that a late event (or a retried job)
/// queues only what changed, in order after what was queued before.
const KEPT_FINISHED: usize = 1000;

/// Silent pipelines remembered at most; past that the memory starts over (a pipeline
/// forgotten costs one read of its project at its next event).
const KEPT_SILENT: usize = 100_000;

/// What a look at a pipeline found.
enum Look {
    /// Its project does not report statuses.
    Silent,
    /// Its changes are queued; `now_finished` when it has just finished.
    Watched { now_finished: bool },
}

/// The pipelines the next events touch: the first one waited for, then every one that has
/// already arrived. After a lag, every pipeline watched and not finished.
async fn touched(
    events: &mut broadcast::Receiver<Event>,
    watches: &HashMap<PipelineId, Watch>,
) -> Option<BTreeSet<PipelineId>> {
    use broadcast::error::{RecvError, TryRecvError};
    let mut touched = BTreeSet::new();
    let mut next = events.recv().await;
    loop {
        match next {
            Ok(Event::Pipeline { pipeline } | Event::Job { pipeline, .. }) => {
                touched.insert(pipeline);
            }
            Ok(Event::Log { .. }) => {}
            Err(RecvError::Lagged(missed)) => {
                warn!(
                    missed,
                    "commit statuses fell behind the events; catching up"
                );
                touched.extend(
                    watches
                        .iter()
                        .filter(|(_, watch)| !watch.finished)
                        .map(|(id, _)| *id),
                );
            }
            Err(RecvError::Closed) => return None,
        }
        next = match events.try_recv() {
            Ok(event) => Ok(event),
            Err(TryRecvError::Lagged(missed)) => Err(RecvError::Lagged(missed)),
            Err(TryRecvError::Empty) => return Some(touched),
            Err(TryRecvError::Closed) => Err(RecvError::Closed),
        };
    }
}

/// Watches pipeline and job changes and reports them, until the process ends.
/// `server_url` is the coordinator's public address, the statuses' target links.
pub fn spawn(
    store: Store,
    events: &Events,
    server_url: &str,
    retry: Retry,
) -> tokio::task::JoinHandle<()> {
    let mut events = events.subscribe();
    let base = server_url.to_string();
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
        let sending = Sending {
            client,
            base,
            retry,
        };
        let mut watches: HashMap<PipelineId, Watch> = HashMap::new();
        let mut finished: VecDeque<PipelineId> = VecDeque::new();
        let mut silent: HashSet<PipelineId> = HashSet::new();
        while let Some(touched) = touched(&mut events, &watches).await {
            for pipeline in touched {
                if silent.contains(&pipeline) {
                    continue;
                }
                let look = queue_changes(&store, &sending, &mut watches, pipeline).await;
                let now_finished = match look {
                    Ok(Look::Watched { now_finished }) => now_finished,
                    Ok(Look::Silent) => {
                        if silent.len() >= KEPT_SILENT {
                            silent.clear();
                        }
                        silent.insert(pipeline);
                        continue;
                    }
                    Err(error) => {
                        warn!(pipeline_id = %pipeline, %error, "reading the pipeline for its statuses failed");
                        continue;
                    }
                };
                if now_finished {
                    finished.push_back(pipeline);
                    while finished.len() > KEPT_FINISHED {
                        // Dropping the sender lets that pipeline's task end once it has sent all.
                        if let Some(old) = finished.pop_front()
                            && watches.get(&old).is_some_and(|watch| watch.finished)
                        {
                            watches.remove(&old);
                        }
                    }
                }
            }
        }
    })
}

/// Reads the pipeline and its jobs and queues every status that changed since the last
/// look: the jobs' first (in creation order), then the pipeline's, so that a finished
/// pipeline's status is the last one the forge hears.
async fn queue_changes(
    store: &Store,
    sending: &Sending,
    watches: &mut HashMap<PipelineId, Watch>,
    pipeline: PipelineId,
) -> Result<Look, StoreError> {
    let Some(row) = store.pipeline(pipeline).await? else {
        return Ok(Look::Silent);
    };
    let Some(project) = store.project(row.project_id).await? else {
        return Ok(Look::Silent);
    };
    if !reports(&project) {
        return Ok(Look::Silent);
    }
    let jobs = latest_attempts(store.pipeline_jobs(pipeline).await?);
    let update = |subject: Subject, status: PipelineStatus| Update {
        project: project.clone(),
        pipeline,
        git_ref: row.git_ref.clone(),
        sha: row.sha.clone(),
        subject,
        status,
    };
    let watch = watches.entry(pipeline).or_insert_with(|| {
        let (sender, queue) = mpsc::unbounded_channel();
        tokio::spawn(sending.clone().send_all(queue));
        // The forge hears of the pipeline from its start, whatever it has become by now.
        let _ = sender.send(update(Subject::Pipeline, PipelineStatus::Pending));
        Watch {
            sender,
            queued: HashMap::from([(String::new(), PipelineStatus::Pending)]),
            finished: false,
        }
    });
    let subjects = jobs
        .iter()
        .filter(|job| job.status != JobStatus::Created)
        .map(|job| {
            let subject = Subject::Job {
                id: job.id,
                name: job.name.clone(),
            };
            (subject, job_status(job.status))
        })
        .chain([(Subject::Pipeline, pipeline_status(row.status))]);
    for (subject, status) in subjects {
        if watch.queued.get(&subject.key()) == Some(&status) {
            continue;
        }
        watch.queued.insert(subject.key(), status);
        let _ = watch.sender.send(update(subject, status));
    }
    let was_finished = watch.finished;
    watch.finished = row.status.is_finished();
    Ok(Look::Watched {
        now_finished: watch.finished && !was_finished,
    })
}

/// A pipeline's status as reported: a pipeline just created is already pending.
fn pipeline_status(status: PipelineStatus) -> PipelineStatus {
    match status {
        PipelineStatus::Created => PipelineStatus::Pending,
        other => other,
    }
}

/// A job's status in the pipeline's terms (a lost job failed).
fn job_status(status: JobStatus) -> PipelineStatus {
    match status {
        JobStatus::Created => PipelineStatus::Created,
        JobStatus::Pending => PipelineStatus::Pending,
        JobStatus::Running => PipelineStatus::Running,
        JobStatus::Manual => PipelineStatus::Manual,
        JobStatus::Success => PipelineStatus::Success,
        JobStatus::Failed | JobStatus::Lost => PipelineStatus::Failed,
        JobStatus::Canceled => PipelineStatus::Canceled,
        JobStatus::Skipped => PipelineStatus::Skipped,
    }
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

/// What every pipeline's sender shares.
#[derive(Clone)]
struct Sending {
    client: reqwest::Client,
    base: String,
    retry: Retry,
}

impl Sending {
    /// Sends one pipeline's statuses in the order they were queued, each retried until it
    /// is through (or given up). GitLab's answer names the pipeline it filed the status
    /// under; the later statuses go to that pipeline (`pipeline_id`), so that two esteira
    /// pipelines of one commit stay apart.
    async fn send_all(self, mut queue: mpsc::UnboundedReceiver<Update>) {
        let mut forge_pipeline = None;
        while let Some(update) = queue.recv().await {
            if let Some(id) = self.send_with_retry(&update, forge_pipeline).await {
                forge_pipeline = Some(id);
            }
        }
    }

    /// Sends one status; GitLab's pipeline id from the answer, when there is one.
    async fn send_with_retry(&self, update: &Update, forge_pipeline: Option<u64>) -> Option<u64> {
        let started = tokio::time::Instant::now();
        let mut wait = self.retry.first;
        let mut attempt = 1u32;
        let subject = update.subject.key();
        loop {
            match send(&self.client, &self.base, update, forge_pipeline).await {
                Ok(answered) => {
                    info!(pipeline_id = %update.pipeline, job = %subject, status = %update.status, attempt, "commit status sent");
                    return answered;
                }
                Err((error, retryable)) => {
                    if !retryable || started.elapsed() + wait > self.retry.give_up_after {
                        warn!(pipeline_id = %update.pipeline, job = %subject, status = %update.status, %error, attempt, "commit status not sent; giving up");
                        return None;
                    }
                    warn!(pipeline_id = %update.pipeline, job = %subject, status = %update.status, %error, attempt, "commit status failed; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(self.retry.max);
                    attempt += 1;
                }
            }
        }
    }
}

/// The request for one status, per forge: (URL, body, auth header). `forge_pipeline` is
/// the GitLab pipeline the earlier statuses of this pipeline went to.
fn request(
    base: &str,
    update: &Update,
    forge_pipeline: Option<u64>,
) -> (String, Value, (&'static str, String)) {
    let project = &update.project;
    let api = project
        .forge_api_url
        .as_deref()
        .unwrap_or_default()
        .trim_end_matches('/');
    let token = project.forge_token.clone().unwrap_or_default();
    let pipeline = update.pipeline;
    let status = update.status;
    let (target_url, description) = match &update.subject {
        Subject::Pipeline => (
            format!("{base}/pipelines/{pipeline}"),
            format!("esteira pipeline #{pipeline}: {status}"),
        ),
        Subject::Job { id, name } => (
            format!("{base}/jobs/{id}"),
            format!("esteira job {name} (pipeline #{pipeline}): {status}"),
        ),
    };
    let path = project.forge_path();
    let forge = project.forge();
    let state = forge_state(forge, &update.subject, status);
    match forge {
        Forge::Gitlab => {
            let name = match &update.subject {
                Subject::Pipeline => "esteira",
                Subject::Job { name, .. } => name.as_str(),
            };
            let mut body = json!({
                "state": state,
                "ref": update.git_ref,
                "name": name,
                "target_url": target_url,
                "description": description,
            });
            if let Some(id) = forge_pipeline {
                body["pipeline_id"] = json!(id);
            }
            (
                format!(
                    "{api}/projects/{}/statuses/{}",
                    encode_segment(&path),
                    update.sha
                ),
                body,
                ("PRIVATE-TOKEN", token),
            )
        }
        forge => {
            let context = match &update.subject {
                Subject::Pipeline => "esteira/pipeline".to_string(),
                Subject::Job { name, .. } => format!("esteira/{name}"),
            };
            let auth = if forge == Forge::Github {
                ("Authorization", format!("Bearer {token}"))
            } else {
                ("Authorization", format!("token {token}"))
            };
            (
                format!("{api}/repos/{path}/statuses/{}", update.sha),
                json!({
                    "state": state,
                    "target_url": target_url,
                    "description": description,
                    "context": context,
                }),
                auth,
            )
        }
    }
}

/// The forge's state for a status. GitLab has every state but `manual`: a manual job
/// shows as `skipped` until it is played (GitLab moves a skipped status on to pending
/// and running). GitHub, Gitea and Forgejo know pending, success, failure and error: a
/// running or manual job is `pending`, a skipped one `success` (the description says
/// which), a canceled one `error`.
fn forge_state(forge: Forge, subject: &Subject, status: PipelineStatus) -> &'static str {
    match forge {
        Forge::Gitlab => match status {
            PipelineStatus::Manual if matches!(subject, Subject::Job { .. }) => "skipped",
            PipelineStatus::Created | PipelineStatus::Pending | PipelineStatus::Manual => "pending",
            PipelineStatus::Running => "running",
            PipelineStatus::Success => "success",
            PipelineStatus::Failed => "failed",
            PipelineStatus::Canceled => "canceled",
            PipelineStatus::Skipped => "skipped",
        },
        _ => match status {
            PipelineStatus::Created
            | PipelineStatus::Pending
            | PipelineStatus::Manual
            | PipelineStatus::Running => "pending",
            PipelineStatus::Success | PipelineStatus::Skipped => "success",
            PipelineStatus::Failed => "failure",
            PipelineStatus::Canceled => "error",
        },
    }
}

/// Sends one status; the error says whether trying again may help. On success, the
/// GitLab pipeline the status was filed under, when the answer names one.
async fn send(
    client: &reqwest::Client,
    base: &str,
    update: &Update,
    forge_pipeline: Option<u64>,
) -> Result<Option<u64>, (String, bool)> {
    let (url, body, (auth_name, auth_value)) = request(base, update, forge_pipeline);
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
        if update.project.forge() != Forge::Gitlab {
            return Ok(None);
        }
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        return Ok(answer.get("pipeline_id").and_then(Value::as_u64));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ProjectId;

    fn update(forge: &str, subject: Subject, status: PipelineStatus) -> Update {
        Update {
            project: Project {
                id: ProjectId(1),
                name: "app".into(),
                repo_url: "https://forge.example/group/app.git".into(),
                pipeline_file: ".gitlab-ci.yml".into(),
                created_at: 0,
                forge: forge.into(),
                webhook_secret: None,
                forge_token: Some("t0ken".into()),
                repo_token: None,
                ssh_key: None,
                default_branch: "main".into(),
                forge_api_url: Some("https://forge.example/api/".into()),
                forge_project: None,
                poll_interval_secs: None,
                protected_branches_json: "[]".into(),
                removed_at: None,
            },
            pipeline: PipelineId(12),
            git_ref: "devel".into(),
            sha: "abc123".into(),
            subject,
            status,
        }
    }

    fn job(name: &str) -> Subject {
        Subject::Job {
            id: JobId(34),
            name: name.into(),
        }
    }

    #[test]
    fn gitlab_job_statuses_are_named_after_the_job_and_join_gitlabs_pipeline() {
        let base = "https://ci.example";
        let (url, body, auth) = request(
            base,
            &update("gitlab", job("unit tests"), PipelineStatus::Running),
            Some(777),
        );
        assert_eq!(
            url,
            "https://forge.example/api/projects/group%2Fapp/statuses/abc123"
        );
        assert_eq!(auth, ("PRIVATE-TOKEN", "t0ken".to_string()));
        assert_eq!(
            body,
            json!({
                "state": "running",
                "ref": "devel",
                "name": "unit tests",
                "target_url": "https://ci.example/jobs/34",
                "description": "esteira job unit tests (pipeline #12): running",
                "pipeline_id": 777,
            })
        );
        // The first status, before GitLab named its pipeline, goes without one.
        let (_, body, _) = request(
            base,
            &update("gitlab", Subject::Pipeline, PipelineStatus::Pending),
            None,
        );
        assert_eq!(body["name"], "esteira");
        assert_eq!(body["target_url"], "https://ci.example/pipelines/12");
        assert!(body.get("pipeline_id").is_none());
    }

    #[test]
    fn github_gitea_and_forgejo_job_statuses_have_an_esteira_context() {
        for (forge, auth) in [
            ("github", "Bearer t0ken"),
            ("gitea", "token t0ken"),
            ("forgejo", "token t0ken"),
        ] {
            let (url, body, (name, value)) = request(
                "https://ci.example",
                &update(forge, job("pep8"), PipelineStatus::Failed),
                None,
            );
            assert_eq!(
                url,
                "https://forge.example/api/repos/group/app/statuses/abc123"
            );
            assert_eq!((name, value.as_str()), ("Authorization", auth));
            assert_eq!(body["context"], "esteira/pep8");
            assert_eq!(body["state"], "failure");
            assert_eq!(body["target_url"], "https://ci.example/jobs/34");
        }
    }

    #[test]
    fn manual_and_skipped_jobs_map_per_forge() {
        let pipeline = Subject::Pipeline;
        let job = job("deploy");
        let cases = [
            (Forge::Gitlab, &job, PipelineStatus::Manual, "skipped"),
            (Forge::Gitlab, &pipeline, PipelineStatus::Manual, "pending"),
            (Forge::Gitlab, &job, PipelineStatus::Skipped, "skipped"),
            (Forge::Gitlab, &job, PipelineStatus::Canceled, "canceled"),
            (Forge::Github, &job, PipelineStatus::Manual, "pending"),
            (Forge::Github, &job, PipelineStatus::Skipped, "success"),
            (Forge::Gitea, &job, PipelineStatus::Running, "pending"),
            (Forge::Forgejo, &job, PipelineStatus::Canceled, "error"),
        ];
        for (forge, subject, status, state) in cases {
            assert_eq!(
                forge_state(forge, subject, status),
                state,
                "{forge:?} {subject:?} {status}"
            );
        }
        assert_eq!(job_status(JobStatus::Lost), PipelineStatus::Failed);
        assert_eq!(
            pipeline_status(PipelineStatus::Created),
            PipelineStatus::Pending
        );
    }
}
