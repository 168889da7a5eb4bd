//! esteira's autoscaler: keeps, per runner pool, as many agents as the coordinator's own
//! queue needs for the pool's labels, and no more. It runs beside the coordinator
//! (`esteira autoscale`), reads the queue and the agents over the HTTP API, starts and
//! removes agents through a [`Provider`] (Docker here), and publishes each pool's state to
//! the coordinator, where `esteira pool list` reads it.
//!
//! # Layout
//! - [`pools`]: the pool definitions, read from a TOML file and checked.
//! - [`observe`]: the coordinator's API as the autoscaler uses it.
//! - [`reconcile`]: the decisions, a pure function of what is observed, tested alone.
//! - [`provider`]: the [`Provider`] trait and the Docker provider.
//! - [`report`]: a pool's state as published.
//! - [`run`](mod@run): the loop.
//!
//! Draining is the coordinator's pause: a paused agent takes no new job, and the
//! autoscaler removes it only once it runs none. So pausing an agent of a pool by hand
//! also hands it to the autoscaler for removal.

pub mod observe;
pub mod pools;
pub mod provider;
pub mod reconcile;
pub mod report;
pub mod run;

pub use provider::Provider;
pub use provider::docker::DockerProvider;
pub use run::{Settings, run};
