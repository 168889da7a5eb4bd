//! The loop: at every tick observe the coordinator and the provider, [`reconcile`], carry
//! out the actions and publish the pools' state. A tick comes every interval, and also
//! as soon as the coordinator says a pipeline or job changed, so a job queued for an empty
//! pool does not wait for the interval. A tick whose observation fails acts on nothing;
//! the next one starts again from what is. Stopping the loop leaves the agents running: a
//! restarted autoscaler with the same id adopts them.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{info, warn};

use crate::observe::{Coordinator, CoordinatorError};
use crate::pools::Pool;
use crate::provider::{Enrollment, Provider, ProviderError};
use crate::reconcile::{Action, History, Observed, agent_name, reconcile};

/// What the loop works with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Tells this autoscaler's instances from any other's (and names its agents).
    pub id: String,
    pub pools: Vec<Pool>,
    /// The coordinator's HTTP API and its admin token.
    pub server: String,
    pub token: String,
    /// How the agents started reach the coordinator.
    pub enrollment: Enrollment,
    pub interval: Duration,
}

/// The least time between two ticks woken by changes: a burst of job events makes a few
/// ticks a second, not one per event.
const MIN_GAP: Duration = Duration::from_millis(200);

#[derive(Debug, thiserror::Error)]
pub enum AutoscalerError {
    #[error(transparent)]
    Coordinator(#[from] CoordinatorError),
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

/// Runs the pools until `shutdown` resolves.
pub async fn run<P: Provider>(settings: Settings, provider: P, shutdown: impl Future<Output = ()>) {
    let coordinator = Coordinator::new(&settings.server, &settings.token);
    let mut history = History::default();
    let mut ticker = tokio::time::interval(settings.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let changed = Arc::new(Notify::new());
    let changes = tokio::spawn(coordinator.clone().follow_changes(changed.clone()));
    tokio::pin!(shutdown);
    info!(autoscaler = %settings.id, pools = settings.pools.len(), "autoscaler running");
    let mut last_tick = Instant::now();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = changed.notified() => tokio::time::sleep_until(last_tick + MIN_GAP).await,
            () = &mut shutdown => break,
        }
        last_tick = Instant::now();
        if let Err(error) = tick(&settings, &coordinator, &provider, &mut history).await {
            warn!(%error, "tick skipped");
        }
    }
    changes.abort();
    info!("autoscaler stopped; its agents keep running");
}

async fn tick<P: Provider>(
    settings: &Settings,
    coordinator: &Coordinator,
    provider: &P,
    history: &mut History,
) -> Result<(), AutoscalerError> {
    let (agents, queue, instances) = tokio::try_join!(
        async { coordinator.agents().await.map_err(AutoscalerError::from) },
        async { coordinator.queue().await.map_err(AutoscalerError::from) },
        async { provider.instances().await.map_err(AutoscalerError::from) },
    )?;
    let now = Instant::now().into_std();
    history.observe(&agents, now);
    let observed = Observed {
        agents,
        queue,
        instances,
    };
    let plan = reconcile(&settings.pools, &settings.id, &observed, history, now);
    for action in plan.actions {
        if let Err(error) = apply(settings, coordinator, provider, &action).await {
            warn!(%error, ?action, "action failed; the next tick decides again");
        } else if let Action::Start { pool } | Action::Drain { pool, .. } = &action {
            history.changed(pool, now);
        }
    }
    coordinator.publish(&settings.id, &plan.reports).await?;
    Ok(())
}

async fn apply<P: Provider>(
    settings: &Settings,
    coordinator: &Coordinator,
    provider: &P,
    action: &Action,
) -> Result<(), AutoscalerError> {
    match action {
        Action::Start { pool } => {
            let Some(definition) = settings.pools.iter().find(|p| &p.name == pool) else {
                return Ok(());
            };
            let serial = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
            let name = agent_name(pool, &serial, &settings.id);
            provider
                .start(definition, &name, &settings.enrollment)
                .await?;
            info!(pool, agent = %name, "agent started");
        }
        Action::Drain { pool, agent } => {
            coordinator.drain(*agent).await?;
            info!(pool, agent_id = agent, "agent draining");
        }
        Action::Remove {
            pool,
            name,
            agent,
            instance,
        } => {
            if let Some(agent) = agent {
                match coordinator.remove(*agent).await {
                    Ok(()) | Err(CoordinatorError::Refused { status: 404, .. }) => {}
                    Err(error) => return Err(error.into()),
                }
            }
            if *instance {
                provider.remove(name).await?;
            }
            info!(pool, agent = %name, "agent removed");
        }
    }
    Ok(())
}
