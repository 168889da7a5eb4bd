//! The cache: per agent host on disk, `work_dir/cache/<project>/<key>/cache.tar.gz`.
//! Restored before the script (the key, then `fallback_keys`) when the `policy` pulls,
//! saved after it when the policy pushes and `when` matches. A save writes a temporary
//! file next to the archive and renames it over: jobs with the same key running at once
//! each see a whole archive, the last one saved wins.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use esteira_pipeline::Cache;
use sha2::{Digest, Sha256};

use crate::archive::{self, ArchiveError, Patterns};
use crate::expand::expand;
use crate::workspace::{self, WorkspaceError, sanitize};

const ARCHIVE: &str = "cache.tar.gz";

/// Cache problems are warnings in the job log, never a job's failure.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CacheError {
    #[error("cache archive {path}: {source}")]
    Archive {
        path: PathBuf,
        #[source]
        source: ArchiveError,
    },
    #[error("cannot list untracked files for the cache: {0}")]
    Untracked(#[from] WorkspaceError),
    #[error("cache task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// The caches of one project on this host.
pub(crate) struct CacheStore {
    /// `work_dir/cache/<project>`.
    pub root: PathBuf,
}

/// Whether the policy restores (`pull`, `pull-push`) or saves (`push`, `pull-push`).
pub(crate) fn pulls(cache: &Cache) -> bool {
    cache.policy != "push"
}

pub(crate) fn pushes(cache: &Cache) -> bool {
    cache.policy != "pull"
}

/// The cache's key: `key:files` hashed (with `prefix`), else the key expanded; `default`
/// when empty. Safe as a directory name.
pub(crate) async fn key(cache: &Cache, project_dir: &Path, vars: &[(String, String)]) -> String {
    let key = if cache.key_files.is_empty() {
        expand(&cache.key, vars)
    } else {
        let mut hasher = Sha256::new();
        let mut found = false;
        for file in &cache.key_files {
            let file = expand(file, vars);
            if let Ok(content) = tokio::fs::read(project_dir.join(&file)).await {
                hasher.update(file.as_bytes());
                hasher.update([0]);
                hasher.update(Sha256::digest(&content));
                found = true;
            }
        }
        if found {
            let digest = hex::encode(hasher.finalize());
            let digest = &digest[..40];
            match cache.key_prefix.as_deref().map(|p| expand(p, vars)) {
                Some(prefix) if !prefix.is_empty() => format!("{prefix}-{digest}"),
                _ => digest.to_string(),
            }
        } else {
            "default".to_string()
        }
    };
    if key.trim().is_empty() {
        "default".to_string()
    } else {
        sanitize(&key)
    }
}

impl CacheStore {
    fn archive(&self, key: &str) -> PathBuf {
        self.root.join(sanitize(key)).join(ARCHIVE)
    }

    /// Restores the first of `key` and the fallback keys that exists; returns it.
    pub(crate) async fn restore(
        &self,
        cache: &Cache,
        key: &str,
        project_dir: &Path,
        vars: &[(String, String)],
    ) -> Result<Option<String>, CacheError> {
        let candidates = std::iter::once(key.to_string()).chain(
            cache
                .fallback_keys
                .iter()
                .map(|k| sanitize(&expand(k, vars))),
        );
        for candidate in candidates {
            let path = self.archive(&candidate);
            if !path.exists() {
                continue;
            }
            let (from, dest) = (path.clone(), project_dir.to_path_buf());
            tokio::task::spawn_blocking(move || archive::unpack(&from, &dest))
                .await?
                .map_err(|source| CacheError::Archive { path, source })?;
            return Ok(Some(candidate));
        }
        Ok(None)
    }

    /// Saves the cache's paths under `key`; returns how many files went in (none: nothing
    /// saved).
    pub(crate) async fn save(
        &self,
        cache: &Cache,
        key: &str,
        project_dir: &Path,
        vars: &[(String, String)],
    ) -> Result<usize, CacheError> {
        let paths: Vec<String> = cache.paths.iter().map(|p| expand(p, vars)).collect();
        let extra: HashSet<PathBuf> = if cache.untracked {
            workspace::untracked(project_dir)
                .await?
                .into_iter()
                .collect()
        } else {
            HashSet::new()
        };
        let target = self.archive(key);
        let root = project_dir.to_path_buf();
        let destination = target.clone();
        tokio::task::spawn_blocking(move || -> Result<usize, ArchiveError> {
            let include = Patterns::new(&paths)?;
            let files = archive::select(&root, &include, &Patterns::new(&[])?, &extra)?;
            if files.is_empty() {
                return Ok(0);
            }
            let dir = destination.parent().unwrap_or(&root).to_path_buf();
            let io = |source| ArchiveError::Io {
                path: dir.clone(),
                source,
            };
            std::fs::create_dir_all(&dir).map_err(io)?;
            let temp = tempfile::Builder::new()
                .prefix(".saving-")
                .tempfile_in(&dir)
                .map_err(io)?;
            archive::pack(&root, &files, temp.path(), None)?;
            temp.persist(&destination)
                .map_err(|error| io(error.error))?;
            Ok(files.len())
        })
        .await?
        .map_err(|source| CacheError::Archive {
            path: target,
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(key: &str) -> Cache {
        Cache {
            key: key.to_string(),
            paths: vec!["deps/".to_string()],
            policy: "pull-push".to_string(),
            when: "on_success".to_string(),
            ..Cache::default()
        }
    }

    #[tokio::test]
    async fn keys_expand_hash_files_and_stay_one_path_component() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("Cargo.lock"), "v1").expect("write");
        let vars = vec![("CI_COMMIT_REF_SLUG".to_string(), "main".to_string())];
        assert_eq!(
            key(&cache("deps-$CI_COMMIT_REF_SLUG"), dir.path(), &vars).await,
            "deps-main"
        );
        assert_eq!(key(&cache(""), dir.path(), &vars).await, "default");
        assert_eq!(key(&cache("a/../b"), dir.path(), &vars).await, "a-..-b");

        let mut by_files = cache("");
        by_files.key_files = vec!["Cargo.lock".to_string()];
        by_files.key_prefix = Some("rust".to_string());
        let first = key(&by_files, dir.path(), &vars).await;
        assert!(first.starts_with("rust-"), "{first}");
        std::fs::write(dir.path().join("Cargo.lock"), "v2").expect("write");
        assert_ne!(key(&by_files, dir.path(), &vars).await, first);
        by_files.key_files = vec!["missing.lock".to_string()];
        assert_eq!(key(&by_files, dir.path(), &vars).await, "default");
    }

    #[tokio::test]
    async fn saves_then_restores_with_fallback_keys() {
        let store_dir = tempfile::tempdir().expect("temp dir");
        let store = CacheStore {
            root: store_dir.path().join("proj"),
        };
        let first = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(first.path().join("deps")).expect("mkdir");
        std::fs::write(first.path().join("deps/lib"), "cached").expect("write");
        let spec = cache("main");
        assert_eq!(
            store
                .save(&spec, "main", first.path(), &[])
                .await
                .expect("saved"),
            1
        );

        let second = tempfile::tempdir().expect("temp dir");
        let mut feature = cache("feature");
        feature.fallback_keys = vec!["main".to_string()];
        let used = store
            .restore(&feature, "feature", second.path(), &[])
            .await
            .expect("restored");
        assert_eq!(used.as_deref(), Some("main"));
        assert_eq!(
            std::fs::read_to_string(second.path().join("deps/lib")).expect("read"),
            "cached"
        );
        let none = store
            .restore(&cache("x"), "x", second.path(), &[])
            .await
            .expect("ok");
        assert_eq!(none, None);
    }
}
