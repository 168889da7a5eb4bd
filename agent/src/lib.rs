//! esteira's agent: it dials out to the coordinator, keeps a session open on which jobs
//! arrive the moment they are runnable, runs each in Docker through the executor, ships
//! its log and reports its outcome.
//!
//! # Layout
//! - [`config`]: flags and environment, into a plain [`Config`].
//! - [`credentials`]: the agent's own credential in its work dir.
//! - [`client`]: the gRPC channel (TLS when `https`) with the credential on each call.
//! - [`session`]: registration, the session stream, heartbeats, reconnects, draining.
//! - [`job`]: one job from assignment to completion. [`log_shipper`]: its log.
//!   [`artifacts`]: its artifacts, in and out.
//! - [`backoff`]: the waits between attempts to reach the coordinator.
//! - [`lifetime`]: when an ephemeral agent (`--once`, `--max-jobs`, `--idle-exit`) stops
//!   and deregisters.
//! - [`work_dir_lock`]: one agent per work dir.
//! - [`watchdog`]: the process that stops the agent's jobs when the agent dies.
//!   [`orphans`]: what a gone agent's jobs left in Docker, and `esteira-agent prune`.

pub mod artifacts;
pub mod backoff;
pub mod client;
pub mod config;
pub mod credentials;
pub mod job;
pub mod lifetime;
pub mod log_shipper;
pub mod orphans;
pub mod session;
pub mod watchdog;
pub mod work_dir_lock;

pub use config::Config;
pub use session::run;
