//! How long an ephemeral agent lives: `--once` / `--max-jobs N` (N jobs taken, then no
//! more) and `--idle-exit DURATION` (no job for that long). When its lifetime is over the
//! agent closes its session, finishes what it runs and deregisters, so nothing of it stays
//! in the agent list; an agent with neither flag lives until it is stopped.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use esteira_proto::v1::DeregisterRequest;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::backoff::Backoff;
use crate::client::Client;
use crate::credentials;

/// How many deregistration attempts an agent makes before it gives up.
const DEREGISTER_ATTEMPTS: u32 = 20;

/// The limits of an agent's life and what it has done so far.
pub struct Lifetime {
    max_jobs: Option<u32>,
    idle_exit: Option<Duration>,
    progress: watch::Sender<Progress>,
}

#[derive(Debug, Clone, Copy)]
struct Progress {
    taken: u32,
    running: u32,
    idle_since: Instant,
}

/// Why an agent's life is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    /// It took the jobs it was started for.
    JobsTaken(u32),
    /// No job came for this long.
    Idle(Duration),
}

impl fmt::Display for Over {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Over::JobsTaken(jobs) => write!(f, "took the {jobs} job(s) it was started for"),
            Over::Idle(idle) => write!(f, "no job came for {}s", idle.as_secs()),
        }
    }
}

impl Lifetime {
    pub fn new(max_jobs: Option<u32>, idle_exit: Option<Duration>) -> Lifetime {
        let (progress, _) = watch::channel(Progress {
            taken: 0,
            running: 0,
            idle_since: Instant::now(),
        });
        Lifetime {
            max_jobs,
            idle_exit,
            progress,
        }
    }

    /// An ephemeral agent deregisters when it stops.
    pub fn is_ephemeral(&self) -> bool {
        self.max_jobs.is_some() || self.idle_exit.is_some()
    }

    /// A job was assigned to this agent.
    pub fn job_taken(&self) {
        self.progress.send_modify(|progress| {
            progress.taken += 1;
            progress.running += 1;
        });
    }

    /// A job of this agent ended.
    pub fn job_finished(&self) {
        self.progress.send_modify(|progress| {
            progress.running = progress.running.saturating_sub(1);
            if progress.running == 0 {
                progress.idle_since = Instant::now();
            }
        });
    }

    /// Resolves when the agent must take no more jobs; never for a long-lived agent.
    pub async fn over(&self) -> Over {
        let mut progress = self.progress.subscribe();
        loop {
            let now = *progress.borrow_and_update();
            if let Some(max_jobs) = self.max_jobs.filter(|max| now.taken >= *max) {
                return Over::JobsTaken(max_jobs);
            }
            match self.idle_exit.filter(|_| now.running == 0) {
                Some(idle) => tokio::select! {
                    _ = progress.changed() => {}
                    () = tokio::time::sleep_until(now.idle_since + idle) => return Over::Idle(idle),
                },
                // `self` holds the sender: `changed` cannot fail while it waits.
                None => {
                    let _ = progress.changed().await;
                }
            }
        }
    }
}

/// Leaves the coordinator for good and forgets the credential, retrying while the
/// coordinator is unreachable.
pub async fn deregister(client: &mut Client, work_dir: &Path) -> anyhow::Result<()> {
    let mut backoff = Backoff::default();
    for attempt in 1..=DEREGISTER_ATTEMPTS {
        match client.deregister(DeregisterRequest {}).await {
            Ok(_) => break,
            // Removed already (by an admin or an autoscaler): nothing left to undo.
            Err(status) if status.code() == tonic::Code::Unauthenticated => break,
            Err(status) if attempt == DEREGISTER_ATTEMPTS => {
                anyhow::bail!("could not deregister: {}", status.message())
            }
            Err(status) => {
                warn!(error = %status.message(), "deregistration not delivered; retrying");
                backoff.wait().await;
            }
        }
    }
    credentials::forget(work_dir).context("cannot remove the agent credential")?;
    info!("deregistered");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_agent_of_n_jobs_is_over_when_it_took_the_nth() {
        let lifetime = Lifetime::new(Some(2), None);
        lifetime.job_taken();
        let over = tokio::time::timeout(Duration::from_secs(3600), lifetime.over());
        let (over, ()) = tokio::join!(over, async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            lifetime.job_taken();
        });
        assert_eq!(over.ok(), Some(Over::JobsTaken(2)));
    }

    #[tokio::test(start_paused = true)]
    async fn idle_time_counts_from_the_last_job_end_and_never_while_a_job_runs() {
        let lifetime = Lifetime::new(None, Some(Duration::from_secs(60)));
        let started = Instant::now();
        let (over, ()) = tokio::join!(lifetime.over(), async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            lifetime.job_taken();
            tokio::time::sleep(Duration::from_secs(600)).await;
            lifetime.job_finished();
        });
        assert_eq!(over, Over::Idle(Duration::from_secs(60)));
        assert_eq!(started.elapsed(), Duration::from_secs(30 + 600 + 60));
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_lived_agent_is_never_over() {
        let lifetime = Lifetime::new(None, None);
        assert!(!lifetime.is_ephemeral());
        lifetime.job_taken();
        lifetime.job_finished();
        let over = tokio::time::timeout(Duration::from_secs(86_400), lifetime.over()).await;
        assert!(over.is_err());
    }
}
