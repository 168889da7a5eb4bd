//! What the jobs of an agent leave in Docker when the agent is gone without removing it:
//! the containers, networks and volumes carrying the agent's name (`esteira.instance`).
//!
//! An agent never resumes a job across a restart: the jobs of its previous life end on
//! the coordinator's side when their leases expire (lost, and retried or failed by
//! policy). So whatever carries an agent's name while that agent is not running is an
//! orphan, and three things remove orphans, all through the executor's leftover removal:
//! - the agent's watchdog, the moment the agent dies ([`crate::watchdog`]);
//! - the agent itself at start, before it registers or takes work (for what the watchdog
//!   could not remove: a host that went down, a watchdog killed too);
//! - `esteira-agent prune`, for a host whose agent is gone for good ([`prune`]).

use std::path::Path;

use esteira_executor::{Executor, ExecutorConfig, ExecutorError};

use crate::watchdog;
use crate::work_dir_lock::WorkDirLock;

/// Removes every Docker object of the jobs of the agent named `name`, and their build
/// directories under `work_dir`; returns how many Docker objects went.
pub async fn remove(name: &str, work_dir: &Path) -> Result<usize, ExecutorError> {
    let executor = Executor::connect(ExecutorConfig {
        instance: name.to_string(),
        work_dir: work_dir.to_path_buf(),
        ..ExecutorConfig::default()
    })
    .await?;
    executor.remove_leftovers(&[]).await
}

/// `esteira-agent prune`: [`remove`] for an agent that is gone. Refused while an agent
/// runs on `work_dir` (it holds the work dir's lock); waits for the watchdog of the last
/// one to finish first.
pub async fn prune(name: &str, work_dir: &Path) -> anyhow::Result<usize> {
    let _agent = WorkDirLock::acquire(work_dir)?;
    let _watchdog = watchdog::Lock::take(work_dir).await?;
    Ok(remove(name, work_dir).await?)
}
