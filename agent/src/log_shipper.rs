//! Ships a job's log to the coordinator as chunks at byte offsets.
//!
//! Bytes stay buffered until the coordinator acknowledges them; after any failure the
//! unacknowledged part is sent again from the acknowledged offset, so a dropped connection
//! or a coordinator restart loses nothing and doubles nothing (the coordinator drops what
//! it already has).
//!
//! Each line is stamped with the time its first byte reached the shipper (the executor
//! forwards output as it comes), and the stamps travel with the chunk holding that byte;
//! the log's bytes are not touched.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use esteira_proto::v1::{AppendLogRequest, Lease, LineStamp};
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
    let mut lines = LineStarts::default();
    let mut stamps: Vec<LineStamp> = Vec::new();
    let mut open = true;
    let mut backoff = Duration::from_millis(100);
    let mut receive =
        |pending: &mut Vec<u8>, stamps: &mut Vec<LineStamp>, base: u64, chunk: Bytes| {
            let at_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |since| {
                    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
                });
            lines.stamp(base + pending.len() as u64, &chunk, at_ms, stamps);
            pending.extend_from_slice(&chunk);
        };
    loop {
        if pending.is_empty() {
            match log.recv().await {
                Some(chunk) => receive(&mut pending, &mut stamps, base, chunk),
                None => return Ok(base),
            }
        }
        while open && pending.len() < MAX_CHUNK {
            match log.try_recv() {
                Ok(chunk) => receive(&mut pending, &mut stamps, base, chunk),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => open = false,
            }
        }
        let size = pending.len().min(MAX_CHUNK);
        let end = base + size as u64;
        let request = AppendLogRequest {
            lease: Some(lease),
            offset: base,
            data: pending[..size].to_vec(),
            stamps: stamps
                .iter()
                .take_while(|stamp| stamp.offset < end)
                .copied()
                .collect(),
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
                stamps.retain(|stamp| stamp.offset >= base);
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

/// Finds where the log's lines start as its bytes come, across chunks.
struct LineStarts {
    /// The next byte starts a line.
    at_start: bool,
}

impl Default for LineStarts {
    fn default() -> Self {
        LineStarts { at_start: true }
    }
}

impl LineStarts {
    /// Stamps with `at_ms` each line that starts in `chunk`, which begins at byte
    /// `offset` of the log.
    fn stamp(&mut self, offset: u64, chunk: &[u8], at_ms: i64, stamps: &mut Vec<LineStamp>) {
        for (index, byte) in chunk.iter().enumerate() {
            if self.at_start {
                stamps.push(LineStamp {
                    offset: offset + index as u64,
                    at_ms,
                });
            }
            self.at_start = *byte == b'\n';
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_line_is_stamped_where_it_starts_across_chunks() {
        let mut lines = LineStarts::default();
        let mut stamps = Vec::new();
        lines.stamp(0, b"one\ntw", 10, &mut stamps);
        lines.stamp(7, b"o\n", 20, &mut stamps);
        lines.stamp(9, b"\nthree", 30, &mut stamps);
        let found: Vec<(u64, i64)> = stamps.iter().map(|s| (s.offset, s.at_ms)).collect();
        assert_eq!(found, [(0, 10), (4, 10), (9, 30), (10, 30)]);
    }
}
