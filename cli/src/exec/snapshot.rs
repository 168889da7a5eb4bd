//! The local repository as `esteira exec` sees it: where its working tree is, what git
//! says about its branch and commit, and a snapshot of the working tree (uncommitted and
//! untracked files included, ignored ones left out) as a commit in a private repository
//! the executor checks out like any other. The user's repository is only read: the
//! snapshot's index and objects live in the private repository.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The commit GitLab names when there is none.
const NO_COMMIT: &str = "0000000000000000000000000000000000000000";

/// A git working tree.
pub struct WorkingTree {
    /// Its top-level directory.
    pub top: PathBuf,
}

/// What git says about the working tree's `HEAD`.
pub struct GitState {
    /// The branch checked out; `None` on a detached `HEAD`.
    pub branch: Option<String>,
    /// `HEAD`'s commit; `None` before the first commit.
    pub head: Option<String>,
    /// The remote's default branch (`origin/HEAD`), else `main`.
    pub default_branch: String,
    /// `CI_COMMIT_MESSAGE`, `CI_COMMIT_AUTHOR`... of `HEAD`, as the coordinator sets them.
    pub commit_variables: Vec<(String, String)>,
}

/// The working tree as one commit of a private bare repository.
pub struct Snapshot {
    /// The private repository's path.
    pub repository: PathBuf,
    pub sha: String,
}

impl WorkingTree {
    /// The working tree holding `dir`; an error when `dir` is not in one.
    pub fn discover(dir: &Path) -> Result<WorkingTree, String> {
        let top = git(dir, &["rev-parse", "--show-toplevel"], &[])
            .map_err(|_| format!("{} is not inside a git working tree", dir.display()))?;
        Ok(WorkingTree {
            top: PathBuf::from(top),
        })
    }

    /// The project's name: the working tree's directory name.
    pub fn project_name(&self) -> String {
        self.top
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "project".to_string())
    }

    pub fn state(&self) -> GitState {
        let ask = |args: &[&str]| git(&self.top, args, &[]).ok();
        let head = ask(&["rev-parse", "--verify", "--quiet", "HEAD^{commit}"]);
        let default_branch = ask(&["symbolic-ref", "--short", "refs/remotes/origin/HEAD"])
            .and_then(|name| name.split_once('/').map(|(_, branch)| branch.to_string()))
            .unwrap_or_else(|| "main".to_string());
        let mut commit_variables = Vec::new();
        if head.is_some() {
            let field = |format: &str| ask(&["log", "-1", &format!("--format={format}")]);
            let message = field("%B").unwrap_or_default();
            let (title, description) = match message.split_once('\n') {
                Some((title, rest)) => (title.to_string(), rest.trim_start().to_string()),
                None => (message.clone(), String::new()),
            };
            commit_variables.extend([
                ("CI_COMMIT_MESSAGE", message),
                ("CI_COMMIT_TITLE", title),
                ("CI_COMMIT_DESCRIPTION", description),
                ("CI_COMMIT_AUTHOR", field("%an <%ae>").unwrap_or_default()),
                ("CI_COMMIT_TIMESTAMP", field("%aI").unwrap_or_default()),
            ]);
        }
        commit_variables.push(("CI_COMMIT_BEFORE_SHA", NO_COMMIT.to_string()));
        GitState {
            branch: ask(&["symbolic-ref", "--quiet", "--short", "HEAD"]),
            head,
            default_branch,
            commit_variables: commit_variables
                .into_iter()
                .map(|(key, value)| (key.to_string(), value))
                .collect(),
        }
    }

    /// Commits the working tree as it is into a new bare repository at `repository`.
    pub fn snapshot(&self, repository: &Path) -> Result<Snapshot, String> {
        git(
            &self.top,
            &[
                OsStr::new("init"),
                OsStr::new("--quiet"),
                OsStr::new("--bare"),
                repository.as_os_str(),
            ],
            &[],
        )?;
        let index = repository.join("snapshot-index");
        let objects = repository.join("objects");
        // Everything git writes goes to the private repository, nothing to the user's.
        let private: [(&str, &OsStr); 8] = [
            ("GIT_INDEX_FILE", index.as_os_str()),
            ("GIT_OBJECT_DIRECTORY", objects.as_os_str()),
            ("GIT_ALTERNATE_OBJECT_DIRECTORIES", OsStr::new("")),
            ("GIT_AUTHOR_NAME", OsStr::new("esteira exec")),
            ("GIT_AUTHOR_EMAIL", OsStr::new("exec@esteira.invalid")),
            ("GIT_COMMITTER_NAME", OsStr::new("esteira exec")),
            ("GIT_COMMITTER_EMAIL", OsStr::new("exec@esteira.invalid")),
            ("GIT_OPTIONAL_LOCKS", OsStr::new("0")),
        ];
        git(&self.top, &["add", "--all", "--", "."], &private)?;
        let tree = git(&self.top, &["write-tree"], &private)?;
        let sha = git(
            &self.top,
            &["commit-tree", &tree, "-m", "esteira exec: the working tree"],
            &private,
        )?;
        let dir = format!("--git-dir={}", repository.display());
        git(
            &self.top,
            &[dir.as_str(), "update-ref", "refs/heads/snapshot", &sha],
            &[],
        )?;
        Ok(Snapshot {
            repository: repository.to_path_buf(),
            sha,
        })
    }
}

/// Runs git in `dir`; its trimmed standard output, or its error message.
fn git(dir: &Path, args: &[impl AsRef<OsStr>], env: &[(&str, &OsStr)]) -> Result<String, String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .envs(env.iter().copied())
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|error| format!("cannot run git: {error}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    } else {
        let command = args
            .first()
            .map(|arg| arg.as_ref().to_string_lossy().into_owned());
        Err(format!(
            "git {} failed: {}",
            command.unwrap_or_default(),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}
