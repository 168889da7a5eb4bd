//! Helpers of the executor's integration tests: real git repositories in temp dirs, an
//! executor per test with its own instance name, the log collected, and the check that
//! nothing labelled with the test's instance is left in Docker.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::{ListContainersOptions, ListNetworksOptions, ListVolumesOptions};
use esteira_executor::{Executor, ExecutorConfig, JobRun, Outcome};
use esteira_pipeline::PlannedJob;
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_util::sync::CancellationToken;

pub const IMAGE: &str = "esteira-test/busybox:latest";

/// At most two jobs with containers at once: the machine has two cores.
static SLOTS: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(2));

pub async fn slot() -> SemaphorePermit<'static> {
    SLOTS
        .acquire()
        .await
        .expect("the semaphore is never closed")
}

/// A git repository made by the test, with one commit of `files`.
pub struct Repo {
    pub dir: tempfile::TempDir,
    pub sha: String,
}

impl Repo {
    pub fn new(files: &[(&str, &[u8])]) -> Repo {
        let dir = tempfile::tempdir().expect("temp dir");
        git(dir.path(), &["init", "--quiet", "--initial-branch=main"]);
        let mut repo = Repo {
            dir,
            sha: String::new(),
        };
        repo.commit(files);
        repo
    }

    /// Adds a commit with these files; returns its sha.
    pub fn commit(&mut self, files: &[(&str, &[u8])]) -> String {
        for (path, content) in files {
            let path = self.dir.path().join(path);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
            std::fs::write(path, content).expect("write");
        }
        git(self.dir.path(), &["add", "--all"]);
        git(
            self.dir.path(),
            &["commit", "--quiet", "--allow-empty", "-m", "test commit"],
        );
        self.sha = git(self.dir.path(), &["rev-parse", "HEAD"]);
        self.sha.clone()
    }

    pub fn url(&self) -> String {
        format!("file://{}", self.dir.path().display())
    }
}

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(["-c", "user.name=test", "-c", "user.email=test@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(output.status.success(), "git {args:?}: {output:?}");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// An executor with its own work dir and instance name.
pub struct Harness {
    pub executor: Executor,
    pub work: tempfile::TempDir,
    pub instance: String,
}

impl Harness {
    pub async fn new(name: &str) -> Harness {
        Harness::with(name, |_| {}).await
    }

    pub async fn with(name: &str, adjust: impl FnOnce(&mut ExecutorConfig)) -> Harness {
        let work = tempfile::tempdir().expect("temp dir");
        let instance = format!("test-{name}-{}", std::process::id());
        let mut config = ExecutorConfig {
            instance: instance.clone(),
            work_dir: work.path().to_path_buf(),
            default_image: IMAGE.to_string(),
            stop_grace: Duration::from_secs(2),
            ..ExecutorConfig::default()
        };
        adjust(&mut config);
        let executor = Executor::connect(config)
            .await
            .expect("Docker is reachable");
        Harness {
            executor,
            work,
            instance,
        }
    }

    pub fn job(&self, repo: &Repo, job_id: i64, spec: PlannedJob) -> JobRun {
        JobRun {
            job_id,
            project: "demo".to_string(),
            repo_url: repo.url(),
            fetch_url: None,
            ssh_key: None,
            sha: repo.sha.clone(),
            git_ref: "main".to_string(),
            spec,
            env: vec![("CI_JOB_ID".to_string(), job_id.to_string())],
            masked: Vec::new(),
            file_variables: Vec::new(),
            artifacts_in: Vec::new(),
        }
    }

    /// Runs a job to its end; returns the outcome and the whole log.
    pub async fn run(&self, job: JobRun) -> (Outcome, Vec<u8>) {
        self.run_with_cancel(job, CancellationToken::new()).await
    }

    pub async fn run_with_cancel(
        &self,
        job: JobRun,
        cancel: CancellationToken,
    ) -> (Outcome, Vec<u8>) {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(64);
        let collector = tokio::spawn(async move {
            let mut log = Vec::new();
            while let Some(chunk) = rx.recv().await {
                log.extend_from_slice(&chunk);
            }
            log
        });
        let outcome = self.executor.run(job, tx, cancel).await;
        let log = collector.await.expect("collector");
        (outcome, log)
    }

    /// Runs a job and cancels it the moment its log holds `marker`; returns the outcome,
    /// the whole log and how long the job took to end after the cancel (`None` when the
    /// marker never came).
    pub async fn run_canceled_at(
        &self,
        job: JobRun,
        marker: &[u8],
    ) -> (Outcome, Vec<u8>, Option<Duration>) {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(64);
        let cancel = CancellationToken::new();
        let run = self.executor.run(job, tx, cancel.clone());
        let watch = async {
            let mut log = Vec::new();
            let mut canceled_at = None;
            while let Some(chunk) = rx.recv().await {
                log.extend_from_slice(&chunk);
                if canceled_at.is_none() && find(&log, marker).is_some() {
                    cancel.cancel();
                    canceled_at = Some(Instant::now());
                }
            }
            (log, canceled_at)
        };
        let (outcome, (log, canceled_at)) = tokio::join!(run, watch);
        (outcome, log, canceled_at.map(|at| at.elapsed()))
    }

    /// Asserts that Docker holds no container, network or volume of this instance once
    /// the finished jobs' cleanups are done.
    pub async fn assert_nothing_left(&self) {
        self.executor.wait_for_cleanups().await;
        assert_eq!(leftovers(&self.instance).await, Vec::<String>::new());
    }

    pub fn builds_dir(&self) -> PathBuf {
        self.work.path().join("builds")
    }
}

/// The Docker objects labelled with this instance.
pub async fn leftovers(instance: &str) -> Vec<String> {
    let docker = Docker::connect_with_local_defaults().expect("docker");
    let filters = HashMap::from([(
        "label".to_string(),
        vec![format!("esteira.instance={instance}")],
    )]);
    let mut found = Vec::new();
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters.clone()),
            ..Default::default()
        }))
        .await
        .expect("list containers");
    found.extend(
        containers
            .into_iter()
            .map(|c| format!("container {:?}", c.names)),
    );
    let networks = docker
        .list_networks(Some(ListNetworksOptions {
            filters: Some(filters.clone()),
        }))
        .await
        .expect("list networks");
    found.extend(
        networks
            .into_iter()
            .map(|n| format!("network {:?}", n.name)),
    );
    let volumes = docker
        .list_volumes(Some(ListVolumesOptions {
            filters: Some(filters),
        }))
        .await
        .expect("list volumes");
    found.extend(
        volumes
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| format!("volume {}", v.name)),
    );
    found
}

pub fn spec(script: &[&str]) -> PlannedJob {
    PlannedJob {
        name: "test".to_string(),
        stage: "test".to_string(),
        script: script.iter().map(|s| s.to_string()).collect(),
        ..PlannedJob::default()
    }
}

/// Where `needle` starts in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Builds an image from a Dockerfile and files given in memory (images can't be pulled
/// here, so tests make theirs `FROM` the busybox image).
pub async fn build_test_image(tag: &str, dockerfile: &str, files: &[(&str, &[u8])]) {
    use futures::StreamExt;
    let docker = Docker::connect_with_local_defaults().expect("docker");
    let mut tar = tar::Builder::new(Vec::new());
    let all = std::iter::once(("Dockerfile", dockerfile.as_bytes())).chain(files.iter().copied());
    for (path, content) in all {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o755);
        header.set_cksum();
        tar.append_data(&mut header, path, content).expect("tar");
    }
    let body = tar.into_inner().expect("tar");
    let options = bollard::query_parameters::BuildImageOptions {
        dockerfile: "Dockerfile".to_string(),
        t: Some(tag.to_string()),
        rm: true,
        forcerm: true,
        ..Default::default()
    };
    let mut progress = docker.build_image(options, None, Some(bollard::body_full(body.into())));
    while let Some(step) = progress.next().await {
        let step = step.expect("image builds");
        assert!(step.error_detail.is_none(), "{step:?}");
    }
}

/// Waits until `check` holds, or panics after `deadline`.
pub async fn wait_until<F, Fut>(what: &str, deadline: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + deadline;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < end,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
