//! Job artifacts: one tar.gz archive per job under `<data-dir>/artifacts/`, written as the
//! agent streams it (to a temporary file, renamed when complete, so a reader never sees a
//! partial archive) and read back in chunks for later jobs and downloads. Memory stays
//! flat whatever the archive's size; listing the files of an archive (for the job page)
//! streams it through the gzip decoder and reads only the tar headers. Expired archives
//! are removed by [`crate::expiry`].

use std::path::PathBuf;

use futures::{Stream, StreamExt};
use serde::Serialize;
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

/// One file of an archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArchivedFile {
    pub path: String,
    pub size: u64,
}

/// The files of an archive, the first [`MAX_LISTED`] of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listing {
    pub files: Vec<ArchivedFile>,
    /// How many files the archive holds (more than listed when `truncated`).
    pub count: u64,
    pub truncated: bool,
}

/// A page lists this many files at most; the archive download has them all.
pub const MAX_LISTED: usize = 1000;

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

    /// The regular files in `job`'s archive, in archive order; `None` when it has none.
    pub async fn list(&self, job: JobId) -> Result<Option<Listing>, ArtifactError> {
        let Some(file) = self.open(job).await? else {
            return Ok(None);
        };
        let file = file.into_std().await;
        let listing = tokio::task::spawn_blocking(move || -> std::io::Result<Listing> {
            let gzip = flate2::read::GzDecoder::new(std::io::BufReader::new(file));
            let mut archive = tar::Archive::new(gzip);
            let mut listing = Listing {
                files: Vec::new(),
                count: 0,
                truncated: false,
            };
            for entry in archive.entries()? {
                let entry = entry?;
                if !entry.header().entry_type().is_file() {
                    continue;
                }
                listing.count += 1;
                if listing.files.len() == MAX_LISTED {
                    listing.truncated = true;
                    continue;
                }
                listing.files.push(ArchivedFile {
                    path: entry.path()?.to_string_lossy().into_owned(),
                    size: entry.size(),
                });
            }
            Ok(listing)
        })
        .await
        .map_err(std::io::Error::other)??;
        Ok(Some(listing))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: Vec<&'static [u8]>) -> impl Stream<Item = Result<Vec<u8>, String>> + Unpin {
        futures::stream::iter(parts.into_iter().map(|part| Ok(part.to_vec())))
    }

    /// A tar.gz holding `files` (path, contents) and a directory entry.
    fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
        let gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut builder = tar::Builder::new(gzip);
        let mut dir = tar::Header::new_gnu();
        dir.set_entry_type(tar::EntryType::Directory);
        dir.set_size(0);
        dir.set_mode(0o755);
        builder.append_data(&mut dir, "out/", &[][..]).unwrap();
        for (path, data) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            builder.append_data(&mut header, path, *data).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[tokio::test]
    async fn listing_gives_the_files_with_their_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::new(dir.path().join("artifacts"), u64::MAX);
        assert_eq!(store.list(JobId(1)).await.unwrap(), None);
        let archive = tar_gz(&[("out/report.xml", b"<xml/>"), ("out/app.bin", &[7; 5000])]);
        store
            .receive(JobId(1), futures::stream::iter([Ok::<_, String>(archive)]))
            .await
            .unwrap();
        let listing = store.list(JobId(1)).await.unwrap().unwrap();
        assert_eq!(
            listing.files,
            vec![
                ArchivedFile {
                    path: "out/report.xml".into(),
                    size: 6
                },
                ArchivedFile {
                    path: "out/app.bin".into(),
                    size: 5000
                },
            ]
        );
        assert_eq!((listing.count, listing.truncated), (2, false));
    }

    #[tokio::test]
    async fn a_long_listing_is_cut_and_a_broken_archive_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::new(dir.path().join("artifacts"), u64::MAX);
        let names: Vec<String> = (0..MAX_LISTED + 5).map(|n| format!("f{n}")).collect();
        let files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
        store
            .receive(
                JobId(1),
                futures::stream::iter([Ok::<_, String>(tar_gz(&files))]),
            )
            .await
            .unwrap();
        let listing = store.list(JobId(1)).await.unwrap().unwrap();
        assert_eq!(listing.files.len(), MAX_LISTED);
        assert_eq!(listing.count, MAX_LISTED as u64 + 5);
        assert!(listing.truncated);

        store
            .receive(JobId(2), chunks(vec![b"not a gzip archive"]))
            .await
            .unwrap();
        assert!(matches!(
            store.list(JobId(2)).await,
            Err(ArtifactError::Io(_))
        ));
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
