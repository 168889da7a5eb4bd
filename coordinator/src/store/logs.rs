//! Job logs, stored as the agent's chunks keyed by byte offset.
//!
//! The stored log is exactly the bytes the job printed: a chunk is accepted only at the
//! current end of the log (the part of a resent chunk that is already stored is dropped),
//! so a reconnecting agent can resend freely without doubling anything. Past the size
//! limit the log ends with a visible marker and further bytes are acknowledged but dropped.
//!
//! Beside the bytes, the time each line started ([`LineStamp`], sent by the agent with
//! its chunk), kept apart so the log itself stays byte-exact: a stamp is kept only with
//! the bytes it stamps, when they are stored.

use async_trait::async_trait;
use serde::Serialize;

use super::StoreError;
use crate::model::{AgentId, JobId};

/// What an append did to the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Every byte before this offset is stored (or dropped past the limit).
    pub acknowledged: u64,
    /// True when this append stored something new.
    pub grew: bool,
}

/// A line of a job's log began at byte `offset` at `at_ms` (ms since the Unix epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LineStamp {
    pub offset: u64,
    pub at_ms: i64,
}

/// Job logs, exactly the bytes the job printed.
#[async_trait]
pub trait LogStore: Send + Sync {
    /// Appends `data`, which starts at byte `offset` of the job's log, to a running job that
    /// `agent` holds under `epoch`, with the `stamps` of the lines starting in the bytes
    /// it stores. `None` when the lease is no longer valid. One transaction, holding the
    /// write lock from its start.
    #[allow(clippy::too_many_arguments)]
    async fn append_log(
        &self,
        job: JobId,
        agent: AgentId,
        epoch: i64,
        offset: u64,
        data: &[u8],
        stamps: &[LineStamp],
        limit: u64,
    ) -> Result<Option<Appended>, StoreError>;

    /// The stamps of the job's lines starting at byte `from` or later, in offset order, at
    /// most `max` of them.
    async fn log_stamps(
        &self,
        job: JobId,
        from: u64,
        max: usize,
    ) -> Result<Vec<LineStamp>, StoreError>;

    /// The stored log from chunk offset `from` on, at most about `max` bytes; returns the
    /// bytes and the offset to ask for next.
    async fn read_log(
        &self,
        job: JobId,
        from: u64,
        max: usize,
    ) -> Result<(Vec<u8>, u64), StoreError>;
}
