//! Artifacts: archives of earlier jobs extracted into the workspace before the script,
//! and this job's `artifacts:` (`paths`, `exclude`, `untracked`, `when`) collected after
//! it into `work_dir/artifacts/<job_id>.tar.gz` under a size limit, plus the counts of its
//! `reports: junit`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use esteira_pipeline::Artifacts;

use crate::archive::{self, ArchiveError, Patterns};
use crate::expand::expand;
use crate::junit;
use crate::workspace::{self, WorkspaceError};

#[derive(Debug, thiserror::Error)]
pub enum ArtifactsError {
    /// An archive of an earlier job is missing or unreadable.
    #[error("cannot extract artifacts {path}: {source}")]
    Extract {
        path: PathBuf,
        #[source]
        source: ArchiveError,
    },
    /// The job's artifacts went over the agent's limit.
    #[error("artifacts larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    /// Collecting the job's artifacts failed.
    #[error("cannot collect artifacts: {0}")]
    Collect(#[source] ArchiveError),
    /// `untracked: true` needs git's list of untracked files.
    #[error("cannot list untracked files: {0}")]
    Untracked(#[from] WorkspaceError),
    /// The blocking task died.
    #[error("artifacts task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Extracts each archive, in order, into the project directory.
pub(crate) async fn extract_all(
    archives: &[PathBuf],
    project_dir: &Path,
) -> Result<(), ArtifactsError> {
    for path in archives {
        let (archive_path, dest) = (path.clone(), project_dir.to_path_buf());
        tokio::task::spawn_blocking(move || archive::unpack(&archive_path, &dest))
            .await?
            .map_err(|source| ArtifactsError::Extract {
                path: path.clone(),
                source,
            })?;
    }
    Ok(())
}

/// Whether `when` (`on_success`, `on_failure`, `always`) asks for collection after a job
/// that succeeded or not.
pub(crate) fn wanted(when: &str, succeeded: bool) -> bool {
    match when {
        "always" => true,
        "on_failure" => !succeeded,
        _ => succeeded,
    }
}

/// Collects the job's artifacts into `out`. `Ok(None)` when nothing matched.
pub(crate) async fn collect(
    spec: &Artifacts,
    project_dir: &Path,
    vars: &[(String, String)],
    out: PathBuf,
    limit: u64,
) -> Result<Option<(PathBuf, u64, usize)>, ArtifactsError> {
    let paths: Vec<String> = spec.paths.iter().map(|p| expand(p, vars)).collect();
    let exclude: Vec<String> = spec.exclude.iter().map(|p| expand(p, vars)).collect();
    let extra: HashSet<PathBuf> = if spec.untracked {
        workspace::untracked(project_dir)
            .await?
            .into_iter()
            .collect()
    } else {
        HashSet::new()
    };
    let root = project_dir.to_path_buf();
    let packed = tokio::task::spawn_blocking(move || {
        let include = Patterns::new(&paths)?;
        let exclude = Patterns::new(&exclude)?;
        let files = archive::select(&root, &include, &exclude, &extra)?;
        if files.is_empty() {
            return Ok(None);
        }
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent).map_err(|source| ArchiveError::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let size = archive::pack(&root, &files, &out, Some(limit))?;
        Ok(Some((out, size, files.len())))
    })
    .await?;
    packed.map_err(|error| match error {
        ArchiveError::TooLarge { limit } => ArtifactsError::TooLarge { limit },
        other => ArtifactsError::Collect(other),
    })
}

/// Reads the JUnit reports matching `spec.junit`; `None` when there are none.
pub(crate) async fn junit_summary(
    spec: &Artifacts,
    project_dir: &Path,
    vars: &[(String, String)],
) -> Option<serde_json::Value> {
    if spec.junit.is_empty() {
        return None;
    }
    let patterns: Vec<String> = spec.junit.iter().map(|p| expand(p, vars)).collect();
    let root = project_dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let include = Patterns::new(&patterns).ok()?;
        let none = Patterns::new(&[]).ok()?;
        let files = archive::select(&root, &include, &none, &HashSet::new()).ok()?;
        if files.is_empty() {
            return None;
        }
        let mut summary = junit::Summary::default();
        for file in files {
            if let Ok(bytes) = std::fs::read(root.join(file)) {
                summary.add_report(&String::from_utf8_lossy(&bytes));
            }
        }
        serde_json::to_value(summary).ok()
    })
    .await
    .ok()
    .flatten()
}
