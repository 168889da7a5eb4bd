//! What a job keeps for later: its caches restored before the script and saved after it,
//! its artifacts collected and its JUnit reports read, each per its `policy` and `when`.

use crate::ExecutorError;
use crate::artifacts;
use crate::cache::{self, CacheStore};
use crate::log::LogSink;
use crate::outcome::{JobResult, Outcome};

use super::Runner;

impl Runner<'_> {
    fn cache_store(&self) -> CacheStore {
        CacheStore {
            root: self.exec.config.work_dir.join("cache").join(&self.project),
        }
    }

    /// Restores each cache whose policy pulls. A cache that cannot be restored is a
    /// warning, as in GitLab.
    pub(super) async fn restore_caches(&self, log: &mut LogSink) {
        let store = self.cache_store();
        let dir = self.project_dir();
        for spec in self.job.spec.cache.iter().filter(|spec| cache::pulls(spec)) {
            let key = cache::key(spec, &dir, &self.job.env).await;
            log.section(&format!("Restoring cache {key}")).await;
            match store.restore(spec, &key, &dir, &self.job.env).await {
                Ok(Some(used)) => log.note(&format!("Restored cache {used}")).await,
                Ok(None) => log.note(&format!("No cache for key {key}")).await,
                Err(error) => {
                    log.warning(&format!("cannot restore cache {key}: {error}"))
                        .await
                }
            }
        }
    }

    /// After the job: caches saved, artifacts collected, reports read, per their `when`.
    pub(super) async fn keep(&self, log: &mut LogSink, outcome: &mut Outcome) {
        let succeeded = outcome.result == JobResult::Success;
        let dir = self.project_dir();
        let vars = &self.job.env;
        let store = self.cache_store();
        let mut saved = Vec::new();
        for spec in &self.job.spec.cache {
            if !cache::pushes(spec) || !artifacts::wanted(&spec.when, succeeded) {
                continue;
            }
            let key = cache::key(spec, &dir, vars).await;
            log.section(&format!("Saving cache {key}")).await;
            match store.save(spec, &key, &dir, vars).await {
                Ok(0) => log.warning(&format!("cache {key}: no files to save")).await,
                Ok(files) => {
                    log.note(&format!("Saved {files} files in cache {key}"))
                        .await;
                    saved.push(serde_json::Value::from(key));
                }
                Err(error) => {
                    log.warning(&format!("cannot save cache {key}: {error}"))
                        .await
                }
            }
        }
        if !saved.is_empty() {
            outcome.detail("cache_saved", saved.into());
        }

        let Some(spec) = &self.job.spec.artifacts else {
            return;
        };
        if let Some(junit) = artifacts::junit_summary(spec, &dir, vars).await {
            outcome.detail("junit", junit);
        }
        if !artifacts::wanted(&spec.when, succeeded) || spec.paths.is_empty() && !spec.untracked {
            return;
        }
        log.section("Uploading artifacts...").await;
        let out = self
            .exec
            .config
            .work_dir
            .join("artifacts")
            .join(format!("{}.tar.gz", self.prefix));
        let limit = self.exec.config.max_artifacts_size;
        match artifacts::collect(spec, &dir, vars, out, limit).await {
            Ok(Some((path, size, files))) => {
                log.note(&format!("Collected {files} files ({size} bytes)"))
                    .await;
                outcome.artifacts = Some(path);
            }
            Ok(None) => log.warning("no files matched the artifacts paths").await,
            Err(error) => {
                let failure = ExecutorError::from(error).failure();
                if succeeded {
                    *outcome = Outcome::failed(failure);
                } else {
                    log.warning(&failure.message).await;
                }
            }
        }
    }
}
