//! Moving artifacts between the coordinator and this host: the archives of earlier jobs
//! downloaded before a job, its own archive uploaded after it. Archives go through files
//! in chunks, never whole in memory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use esteira_proto::v1::{ArtifactChunk, DownloadArtifactsRequest, Lease};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::warn;

use crate::client::Client;

const CHUNK: usize = 1 << 20;
/// Attempts of an upload that fails for a transient reason.
const UPLOAD_ATTEMPTS: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("artifacts of job {job}: {message}")]
    Download { job: i64, message: String },
    #[error("uploading the artifacts failed: {0}")]
    Upload(String),
    #[error("the coordinator refused the artifacts: {0}")]
    Refused(String),
    #[error("artifacts I/O failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Downloads the archives of `jobs` into `dir`, in order; returns their paths.
pub async fn download_all(
    client: &Client,
    lease: Lease,
    jobs: &[i64],
    dir: &Path,
) -> Result<Vec<PathBuf>, TransferError> {
    tokio::fs::create_dir_all(dir).await?;
    let mut paths = Vec::new();
    for &job in jobs {
        let failed = |message: String| TransferError::Download { job, message };
        let request = DownloadArtifactsRequest {
            lease: Some(lease),
            from_job_id: job,
        };
        let mut stream = client
            .clone()
            .download_artifacts(request)
            .await
            .map_err(|status| failed(status.message().to_string()))?
            .into_inner();
        let path = dir.join(format!("{job}.tar.gz"));
        let mut file = tokio::fs::File::create(&path).await?;
        while let Some(chunk) = stream
            .message()
            .await
            .map_err(|s| failed(s.message().to_string()))?
        {
            file.write_all(&chunk.data).await?;
        }
        file.flush().await?;
        paths.push(path);
    }
    Ok(paths)
}

/// Uploads the archive at `path` for the job of `lease`; returns its size.
pub async fn upload(client: &Client, lease: Lease, path: &Path) -> Result<u64, TransferError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let chunks = read_chunks(path.to_path_buf(), lease).await?;
        match client.clone().upload_artifacts(chunks).await {
            Ok(response) => return Ok(response.into_inner().size),
            Err(status)
                if matches!(
                    status.code(),
                    tonic::Code::ResourceExhausted
                        | tonic::Code::FailedPrecondition
                        | tonic::Code::NotFound
                ) =>
            {
                return Err(TransferError::Refused(status.message().to_string()));
            }
            Err(status) if attempt < UPLOAD_ATTEMPTS => {
                warn!(job_id = lease.job_id, error = %status.message(), "artifact upload failed; retrying");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            }
            Err(status) => return Err(TransferError::Upload(status.message().to_string())),
        }
    }
}

/// The archive as upload chunks, read lazily from the file.
async fn read_chunks(
    path: PathBuf,
    lease: Lease,
) -> std::io::Result<impl futures::Stream<Item = ArtifactChunk> + Send + 'static> {
    let file = tokio::fs::File::open(&path).await?;
    Ok(futures::stream::unfold(
        Some(file),
        move |file| async move {
            let mut file = file?;
            let mut buffer = vec![0u8; CHUNK];
            let mut filled = 0;
            while filled < CHUNK {
                match file.read(&mut buffer[filled..]).await {
                    Ok(0) => break,
                    Ok(read) => filled += read,
                    Err(error) => {
                        warn!(%error, "reading the artifacts archive failed");
                        return None;
                    }
                }
            }
            if filled == 0 {
                return None;
            }
            buffer.truncate(filled);
            let next = (filled == CHUNK).then_some(file);
            Some((
                ArtifactChunk {
                    lease: Some(lease),
                    data: buffer,
                },
                next,
            ))
        },
    ))
}
