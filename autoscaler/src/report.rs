//! A pool's state as the autoscaler publishes it (and `esteira pool list` shows it): how
//! many agents it wants and has, in which state, and why.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolReport {
    pub name: String,
    pub labels: Vec<String>,
    pub min: u32,
    pub max: u32,
    /// The agents the queue needs now, within `min` and `max`.
    pub desired: u32,
    /// Agents whose container runs, whatever their state.
    pub current: u32,
    /// Started, not (or not yet) online.
    pub starting: u32,
    pub idle: u32,
    pub busy: u32,
    /// Paused by the autoscaler: finishing their jobs before removal.
    pub draining: u32,
    /// Jobs waiting for this pool's labels.
    pub pending: u64,
    /// How long the oldest of them waits, in milliseconds.
    pub oldest_wait_ms: i64,
    /// The decision in words.
    pub reason: String,
}
