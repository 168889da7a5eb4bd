//! The job's source tree: a cached bare mirror per repository under `mirrors/`, fetched
//! before each job, and a checkout of the exact commit under `builds/<job_id>/<project>`.
//!
//! git is the command-line tool, run without a terminal so it never waits for a password.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use esteira_gitssh::TemporaryKey;
use sha2::{Digest, Sha256};
use tokio::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// git could not be started at all.
    #[error("cannot run git: {0}")]
    Spawn(#[source] std::io::Error),
    /// A git command exited non-zero.
    #[error("git {command} failed: {stderr}")]
    Git { command: String, stderr: String },
    /// The commit is not in the repository, even after fetching it by name.
    #[error("commit {sha} not found in {url}")]
    MissingCommit { sha: String, url: String },
    /// A directory could not be prepared.
    #[error("cannot prepare {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The mirror directory of a repository URL: stable, and unique per URL.
pub(crate) fn mirror_path(mirrors: &Path, url: &str) -> PathBuf {
    let digest = hex::encode(Sha256::digest(url.as_bytes()));
    let base = url
        .trim_end_matches('/')
        .rsplit(['/', ':'])
        .next()
        .unwrap_or("repo")
        .trim_end_matches(".git");
    mirrors.join(format!("{}-{}.git", sanitize(base), &digest[..16]))
}

/// A name safe as one path component: letters, digits, `.`, `_` and `-`.
pub(crate) fn sanitize(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    match cleaned.trim_matches('.') {
        "" => "_".to_string(),
        _ => cleaned,
    }
}

/// The password of a `scheme://user:password@host/…` URL, to mask wherever git may
/// print the URL.
pub(crate) fn url_password(url: &str) -> Option<String> {
    let (_, rest) = url.split_once("://")?;
    let (userinfo, _) = rest.split_once('@')?;
    let (_, password) = userinfo.split_once(':')?;
    (!password.is_empty() && !password.contains('/')).then(|| password.to_string())
}

/// Where a mirror fetches from.
pub(crate) struct Remote<'a> {
    /// The URL, with credentials when it needs them.
    pub url: &'a str,
    /// The deploy key of an `ssh://` repository.
    pub ssh_key: Option<&'a str>,
    /// Where a key is written for the fetch, and hosts' keys remembered.
    pub ssh_dir: &'a Path,
}

/// Brings the mirror up to date with `remote` and makes sure it holds `sha`. The caller
/// holds the mirror's lock.
pub(crate) async fn update_mirror(
    mirror: &Path,
    remote: &Remote<'_>,
    sha: &str,
) -> Result<(), WorkspaceError> {
    let url = remote.url;
    if !mirror.join("HEAD").exists() {
        tokio::fs::create_dir_all(mirror)
            .await
            .map_err(|source| WorkspaceError::Io {
                path: mirror.to_path_buf(),
                source,
            })?;
        git(mirror, &["init", "--quiet", "--bare"]).await?;
    } else if has_commit(mirror, sha).await {
        // A commit never changes: the mirror already has everything the job needs.
        return Ok(());
    }
    let key = remote
        .ssh_key
        .map(|key| TemporaryKey::write(remote.ssh_dir, key))
        .transpose()
        .map_err(|source| WorkspaceError::Io {
            path: remote.ssh_dir.to_path_buf(),
            source,
        })?;
    let env: Vec<(&str, String)> = key
        .iter()
        .map(|key| {
            let command = key.git_ssh_command(&remote.ssh_dir.join("known_hosts"));
            ("GIT_SSH_COMMAND", command)
        })
        .collect();
    git_with(
        mirror,
        &[
            "fetch",
            "--quiet",
            "--force",
            "--prune",
            "--tags",
            url,
            "+refs/heads/*:refs/heads/*",
        ],
        &env,
    )
    .await?;
    if has_commit(mirror, sha).await {
        return Ok(());
    }
    // Not reachable from a branch or tag (e.g. a merge request ref): ask for it by name.
    let _ = git_with(mirror, &["fetch", "--quiet", url, sha], &env).await;
    if has_commit(mirror, sha).await {
        Ok(())
    } else {
        Err(WorkspaceError::MissingCommit {
            sha: sha.to_string(),
            url: url.to_string(),
        })
    }
}

/// A fresh checkout of `sha` (detached) from the mirror into `dir`, its `origin`
/// pointing at the real repository.
pub(crate) async fn checkout(
    mirror: &Path,
    dir: &Path,
    url: &str,
    sha: &str,
) -> Result<(), WorkspaceError> {
    if dir.exists() {
        tokio::fs::remove_dir_all(dir)
            .await
            .map_err(|source| WorkspaceError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
    }
    let parent = dir.parent().unwrap_or(dir);
    tokio::fs::create_dir_all(parent)
        .await
        .map_err(|source| WorkspaceError::Io {
            path: parent.to_path_buf(),
            source,
        })?;
    let mirror = mirror.to_string_lossy();
    let target = dir.to_string_lossy();
    // A local clone hard-links the objects: fast, and self-contained inside the container.
    git(
        parent,
        &["clone", "--quiet", "--no-checkout", &mirror, &target],
    )
    .await?;
    git(dir, &["checkout", "--quiet", "--force", "--detach", sha]).await?;
    git(dir, &["remote", "set-url", "origin", url]).await?;
    Ok(())
}

/// The files git does not track in a checkout, ignored ones included (GitLab's
/// `untracked: true`), relative to it.
pub(crate) async fn untracked(dir: &Path) -> Result<Vec<PathBuf>, WorkspaceError> {
    let listed = git_output(dir, &["ls-files", "--others", "-z"], &[]).await?;
    Ok(listed
        .split(|b| *b == 0)
        .filter(|name| !name.is_empty())
        .map(|name| PathBuf::from(OsStr::from_bytes(name)))
        .collect())
}

async fn has_commit(repo: &Path, sha: &str) -> bool {
    git(repo, &["cat-file", "-e", &format!("{sha}^{{commit}}")])
        .await
        .is_ok()
}

async fn git(dir: &Path, args: &[&str]) -> Result<(), WorkspaceError> {
    git_output(dir, args, &[]).await.map(drop)
}

/// Runs git in `dir` with more environment variables.
async fn git_with(dir: &Path, args: &[&str], env: &[(&str, String)]) -> Result<(), WorkspaceError> {
    git_output(dir, args, env).await.map(drop)
}

/// Runs git in `dir`; returns its standard output.
async fn git_output(
    dir: &Path,
    args: &[&str],
    env: &[(&str, String)],
) -> Result<Vec<u8>, WorkspaceError> {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .envs(env.iter().map(|(key, value)| (key, value)))
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(WorkspaceError::Spawn)?;
    if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(WorkspaceError::Git {
            command: args.first().copied().unwrap_or_default().to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_paths_are_readable_and_distinct() {
        let root = Path::new("/m");
        let a = mirror_path(root, "https://example.com/group/app.git");
        let b = mirror_path(root, "file:///srv/other/app");
        assert!(a.to_string_lossy().starts_with("/m/app-"));
        assert!(b.to_string_lossy().starts_with("/m/app-"));
        assert_ne!(a, b);
    }

    #[test]
    fn url_passwords_are_found_for_masking() {
        assert_eq!(
            url_password("https://oauth2:glpat-secret@git.example.com/g/p.git").as_deref(),
            Some("glpat-secret")
        );
        assert_eq!(url_password("https://git.example.com/g/p.git"), None);
        assert_eq!(url_password("ssh://git@host/g/p.git"), None);
    }

    #[test]
    fn sanitize_keeps_safe_names() {
        assert_eq!(sanitize("my-app_1.0"), "my-app_1.0");
        assert_eq!(sanitize("../etc"), "..-etc");
        assert_eq!(sanitize(".."), "_");
        assert_eq!(sanitize("a b/c"), "a-b-c");
    }
}
