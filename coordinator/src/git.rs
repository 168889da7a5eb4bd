//! The coordinator's view of project repositories: a bare mirror per project in the data
//! dir, fetched on demand, from which refs are resolved and pipeline files read at the
//! exact commit. Git is the `git` command.
//!
//! A mirror is fetched with every ref (`+refs/*:refs/*`, so merge request refs such as
//! `refs/pull/N/head` and `refs/merge-requests/N/head` come too) from the URL given at
//! each fetch: credentials (the HTTPS token in the URL) are never written to the mirror's
//! config. A project with an SSH key is fetched with `GIT_SSH_COMMAND` naming a copy of
//! the key written for that fetch only (mode 0600, removed after) and a known-hosts file
//! of the data dir, where a host's key is recorded the first time it is seen.

use std::path::{Path, PathBuf};
use std::process::Command;

use esteira_gitssh::TemporaryKey;
use esteira_pipeline::{FileSource, RefKind};

use crate::locks::KeyedLocks;
use crate::store::projects::Project;
use crate::webhooks::event::is_merge_request_ref;

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("could not run git: {0}")]
    Spawn(#[from] std::io::Error),
    #[error("git {command} failed: {stderr}")]
    Failed { command: String, stderr: String },
    #[error("ref '{0}' does not exist in the repository")]
    UnknownRef(String),
    #[error("commit '{0}' does not exist in the repository")]
    UnknownCommit(String),
    #[error("git task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// The mirrors under `<data-dir>/repos`, one fetch at a time per mirror.
pub struct Mirrors {
    root: PathBuf,
    /// By project name, as the mirror's path is.
    fetching: KeyedLocks<String>,
}

impl Mirrors {
    pub fn new(root: PathBuf) -> Mirrors {
        Mirrors {
            root,
            fetching: KeyedLocks::default(),
        }
    }

    pub fn path(&self, project: &str) -> PathBuf {
        self.root.join(format!("{project}.git"))
    }

    /// Where SSH keys are written for a fetch, and hosts' keys remembered.
    fn ssh_dir(&self) -> PathBuf {
        self.root.join(".ssh")
    }

    /// Brings the project's mirror up to date with its repository.
    pub async fn fetch(&self, project: &Project) -> Result<PathBuf, GitError> {
        let _one_at_a_time = self.fetching.lock(project.name.clone()).await;
        let mirror = self.path(&project.name);
        let url = project.fetch_url();
        let ssh_key = project.ssh_key.clone();
        let ssh_dir = self.ssh_dir();
        let target = mirror.clone();
        tokio::task::spawn_blocking(move || {
            if !target.join("HEAD").exists() {
                let parent = target.parent().unwrap_or(Path::new("."));
                std::fs::create_dir_all(parent)?;
                let target_text = std::path::absolute(&target)?.to_string_lossy().into_owned();
                git(parent, &["init", "--bare", "--quiet", &target_text], &[])?;
            }
            let key = ssh_key
                .map(|key| TemporaryKey::write(&ssh_dir, &key))
                .transpose()?;
            let env: Vec<(&str, String)> = key
                .iter()
                .map(|key| {
                    let command = key.git_ssh_command(&ssh_dir.join("known_hosts"));
                    ("GIT_SSH_COMMAND", command)
                })
                .collect();
            git(
                &target,
                &["fetch", "--prune", "--quiet", &url, "+refs/*:refs/*"],
                &env,
            )
        })
        .await??;
        Ok(mirror)
    }
}

/// Resolves `git_ref` (a merge request's head ref, a branch, then a tag) and checks
/// `sha` when given.
pub async fn resolve(
    mirror: &Path,
    git_ref: &str,
    sha: Option<&str>,
) -> Result<(RefKind, String), GitError> {
    let mirror = mirror.to_path_buf();
    let git_ref = git_ref.to_string();
    let sha = sha.map(str::to_string);
    tokio::task::spawn_blocking(move || {
        let verify = |name: &str| git(&mirror, &["rev-parse", "--verify", "--quiet", name], &[]);
        let (kind, head) = if is_merge_request_ref(&git_ref)
            && let Ok(head) = verify(&format!("{git_ref}^{{commit}}"))
        {
            // A merge request from a fork: its pipeline's ref is the forge's ref.
            (RefKind::Branch(git_ref.clone()), head)
        } else if let Ok(head) = verify(&format!("refs/heads/{git_ref}^{{commit}}")) {
            (RefKind::Branch(git_ref.clone()), head)
        } else if let Ok(head) = verify(&format!("refs/tags/{git_ref}^{{commit}}")) {
            (RefKind::Tag(git_ref.clone()), head)
        } else {
            return Err(GitError::UnknownRef(git_ref));
        };
        let sha = match sha {
            None => head,
            Some(sha) => verify(&format!("{sha}^{{commit}}"))
                .map_err(|_| GitError::UnknownCommit(sha.clone()))?,
        };
        Ok((kind, sha))
    })
    .await?
}

/// Runs git in `dir` with `env` added, returning its trimmed stdout.
fn git(dir: &Path, args: &[&str], env: &[(&str, String)]) -> Result<String, GitError> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .envs(env.iter().map(|(key, value)| (key, value)))
        .output()?;
    if !output.status.success() {
        return Err(GitError::Failed {
            command: args.first().copied().unwrap_or_default().to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// The files of one commit of a mirror, for the pipeline library.
pub struct CommitFiles {
    pub mirror: PathBuf,
    pub sha: String,
}

impl FileSource for CommitFiles {
    fn read(&self, path: &str) -> std::io::Result<Option<Vec<u8>>> {
        let object = format!("{}:{}", self.sha, path.trim_start_matches("./"));
        let output = Command::new("git")
            .arg("-C")
            .arg(&self.mirror)
            .args(["cat-file", "blob", &object])
            .output()?;
        Ok(output.status.success().then_some(output.stdout))
    }

    fn list(&self) -> std::io::Result<Vec<String>> {
        let output = Command::new("git")
            .arg("-C")
            .arg(&self.mirror)
            .args(["ls-tree", "-r", "--name-only", "-z", &self.sha])
            .output()?;
        if !output.status.success() {
            return Err(std::io::Error::other(
                String::from_utf8_lossy(&output.stderr).trim().to_string(),
            ));
        }
        Ok(output
            .stdout
            .split(|byte| *byte == 0)
            .filter(|name| !name.is_empty())
            .map(|name| String::from_utf8_lossy(name).into_owned())
            .collect())
    }
}
