//! Job artifacts: one tar.gz archive per job under `<data-dir>/artifacts/`, written as the
//! agent streams it (to a temporary file, renamed when complete, so a reader never sees a
//! partial archive) and read back in chunks for later jobs and downloads. Memory stays
//! flat whatever the archive's size. Expired archives are removed by [`crate::expiry`].

use std::path::PathBuf;

use futures::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;

use crate::model::JobId;

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("artifacts I/O failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the artifacts are larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the upload broke off: {0}")]
    Interrupted(String),
}

#[derive(Debug, Clone)]
pub struct ArtifactStore {
    root: PathBuf,
    limit: u64,
}

impl ArtifactStore {
    pub fn new(root: PathBuf, limit: u64) -> ArtifactStore {
        ArtifactStore { root, limit }
    }

    pub fn path(&self, job: JobId) -> PathBuf {
        self.root.join(format!("{job}.tar.gz"))
    }

    /// Writes the chunks of `job`'s archive; returns its size.
    pub async fn receive<S, E>(&self, job: JobId, mut chunks: S) -> Result<u64, ArtifactError>
    where
        S: Stream<Item = Result<Vec<u8>, E>> + Unpin,
        E: std::fmt::Display,
    {
        tokio::fs::create_dir_all(&self.root).await?;
        let partial = self.root.join(format!("{job}.tar.gz.partial"));
        let mut file = tokio::fs::File::create(&partial).await?;
        let mut size: u64 = 0;
        let written = async {
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk.map_err(|e| ArtifactError::Interrupted(e.to_string()))?;
                size += chunk.len() as u64;
                if size > self.limit {
                    return Err(ArtifactError::TooLarge { limit: self.limit });
                }
                file.write_all(&chunk).await?;
            }
            file.sync_all().await?;
            Ok(())
        }
        .await;
        if let Err(error) = written {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(error);
        }
        tokio::fs::rename(&partial, self.path(job)).await?;
        Ok(size)
    }

    /// Deletes the archive of `job`; one already gone is fine.
    pub async fn remove(&self, job: JobId) -> Result<(), ArtifactError> {
        match tokio::fs::remove_file(self.path(job)).await {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error.into()),
            _ => Ok(()),
        }
    }

    /// The archive of `job`, if it has one.
    pub async fn open(&self, job: JobId) -> Result<Option<tokio::fs::File>, ArtifactError> {
        match tokio::fs::File::open(self.path(job)).await {
            Ok(file) => Ok(Some(file)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: Vec<&'static [u8]>) -> impl Stream<Item = Result<Vec<u8>, String>> + Unpin {
        futures::stream::iter(parts.into_iter().map(|part| Ok(part.to_vec())))
    }

    #[tokio::test]
    async fn an_archive_is_stored_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::new(dir.path().join("artifacts"), 10);
        assert_eq!(
            store
                .receive(JobId(1), chunks(vec![b"abc", b"def"]))
                .await
                .unwrap(),
            6
        );
        assert_eq!(std::fs::read(store.path(JobId(1))).unwrap(), b"abcdef");
        let too_large = store
            .receive(JobId(2), chunks(vec![b"123456", b"789012"]))
            .await;
        assert!(matches!(
            too_large,
            Err(ArtifactError::TooLarge { limit: 10 })
        ));
        assert!(
            store.open(JobId(2)).await.unwrap().is_none(),
            "nothing half-written stays"
        );
        assert_eq!(
            std::fs::read_dir(dir.path().join("artifacts"))
                .unwrap()
                .count(),
            1
        );
    }
}
