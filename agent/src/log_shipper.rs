//! Ships a job's log to the coordinator as chunks at byte offsets.
//!
//! Bytes stay buffered until the coordinator acknowledges them; after any failure the
//! unacknowledged part is sent again from the acknowledged offset, so a dropped connection
//! or a coordinator restart loses nothing and doubles nothing (the coordinator drops what
//! it already has).

use std::time::Duration;

use bytes::Bytes;
use esteira_proto::v1::{AppendLogRequest, Lease};
use tokio::sync::mpsc;
use tracing::warn;

use crate::client::Client;

/// The most bytes sent in one call.
const MAX_CHUNK: usize = 512 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    #[error("the coordinator refused the job's log: {0}")]
    Fenced(String),
    #[error(
        "the coordinator acknowledged offset {acknowledged} but bytes before {buffered} are no longer kept"
    )]
    Lost { acknowledged: u64, buffered: u64 },
}

/// Sends everything received on `log` and returns the log's total size once all of it is
/// acknowledged (after `log` closes).
pub async fn ship(
    mut client: Client,
    lease: Lease,
    mut log: mpsc::Receiver<Bytes>,
) -> Result<u64, ShipError> {
    let mut pending: Vec<u8> = Vec::new();
    let mut base: u64 = 0;
    let mut open = true;
    let mut backoff = Duration::from_millis(100);
    loop {
        if pending.is_empty() {
            match log.recv().await {
                Some(chunk) => pending.extend_from_slice(&chunk),
                None => return Ok(base),
            }
        }
        while open && pending.len() < MAX_CHUNK {
            match log.try_recv() {
                Ok(chunk) => pending.extend_from_slice(&chunk),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => open = false,
            }
        }
        let size = pending.len().min(MAX_CHUNK);
        let request = AppendLogRequest {
            lease: Some(lease),
            offset: base,
            data: pending[..size].to_vec(),
        };
        match client.append_log(request).await {
            Ok(response) => {
                backoff = Duration::from_millis(100);
                let acknowledged = response.into_inner().acknowledged;
                if acknowledged < base {
                    return Err(ShipError::Lost {
                        acknowledged,
                        buffered: base,
                    });
                }
                let done = usize::try_from(acknowledged - base)
                    .unwrap_or(usize::MAX)
                    .min(pending.len());
                pending.drain(..done);
                base += done as u64;
            }
            Err(status) if is_fenced(&status) => {
                return Err(ShipError::Fenced(status.message().to_string()));
            }
            Err(status) => {
                warn!(job_id = lease.job_id, error = %status.message(), "log not delivered; resending");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// Whether the coordinator says this agent no longer holds the job.
pub fn is_fenced(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::FailedPrecondition | tonic::Code::NotFound | tonic::Code::Unauthenticated
    )
}
