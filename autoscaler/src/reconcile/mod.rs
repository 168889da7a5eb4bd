//! The autoscaler's decisions, as a pure function of what it observes: the pools, the
//! coordinator's agents and queue, the provider's instances, and the little it remembers
//! between ticks ([`History`]: when each pool last changed, since when each agent is
//! idle). Every count is recomputed from those at every tick, so none can drift.
//!
//! Per pool:
//! - its jobs are the pending jobs whose tags its labels cover (a tag set several pools
//!   could take belongs to the first of them in the file); pending jobs are those no
//!   online agent could take, since an agent with room gets a job the moment it exists;
//! - it wants `ceil((pending + jobs running on its active agents) / concurrency)` agents,
//!   within `min` and `max`;
//! - it starts what it lacks, never past `max` containers counting the draining ones;
//! - above what it wants, out of its cool-down, it drains (pauses) the agents idle for
//!   its idle time, longest idle first; a paused agent takes no job, and is removed once
//!   it runs none, so a removed agent never had a job running;
//! - an instance that stopped is removed (with its agent, whose jobs are then lost and
//!   retried by their policy), and so is an offline agent named as the pool's that has no
//!   instance left.
//!
//! The instances of a pool no longer defined are retired: drained when idle, removed once
//! they run nothing (a busy one finishes its jobs first).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::observe::{AgentView, QueueGroup};
use crate::pools::Pool;
use crate::provider::Instance;
use crate::report::PoolReport;

#[cfg(test)]
mod tests;

/// What the autoscaler sees at a tick.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub agents: Vec<AgentView>,
    pub queue: Vec<QueueGroup>,
    /// The provider's instances of this autoscaler.
    pub instances: Vec<Instance>,
}

/// What the autoscaler remembers between ticks: never a count.
#[derive(Debug, Default)]
pub struct History {
    last_change: HashMap<String, Instant>,
    idle_since: HashMap<String, Instant>,
}

impl History {
    /// Notes which agents are idle at `now` (and forgets the idleness of the others).
    pub fn observe(&mut self, agents: &[AgentView], now: Instant) {
        self.idle_since
            .retain(|name, _| agents.iter().any(|a| &a.name == name && is_idle(a)));
        for agent in agents.iter().filter(|agent| is_idle(agent)) {
            self.idle_since.entry(agent.name.clone()).or_insert(now);
        }
    }

    /// The pool grew or shrank at `now`.
    pub fn changed(&mut self, pool: &str, now: Instant) {
        self.last_change.insert(pool.to_string(), now);
    }

    fn idle_for(&self, agent: &str, now: Instant) -> Duration {
        self.idle_since.get(agent).map_or(Duration::ZERO, |since| {
            now.saturating_duration_since(*since)
        })
    }

    fn cooldown_left(&self, pool: &Pool, now: Instant) -> Duration {
        self.last_change
            .get(&pool.name)
            .map_or(Duration::ZERO, |at| {
                pool.cooldown
                    .saturating_sub(now.saturating_duration_since(*at))
            })
    }
}

fn is_idle(agent: &AgentView) -> bool {
    agent.status == "idle" && !agent.paused && agent.running_jobs.is_empty()
}

/// One thing to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start a new agent in the pool.
    Start { pool: String },
    /// Pause the agent: no new job; removed once it runs none.
    Drain { pool: String, agent: i64 },
    /// Remove the agent from the coordinator (when listed) and its instance (when there
    /// is one).
    Remove {
        pool: String,
        name: String,
        agent: Option<i64>,
        instance: bool,
    },
}

/// The decisions of a tick and each pool's state.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub reports: Vec<PoolReport>,
}

/// The name of the `serial`-th (6 hex digits) agent of `pool` started by `autoscaler`.
pub fn agent_name(pool: &str, serial: &str, autoscaler: &str) -> String {
    format!("{pool}-{serial}-{autoscaler}")
}

/// Whether `name` is one [`agent_name`] gives for `pool` and `autoscaler`.
fn named_as_member(name: &str, pool: &str, autoscaler: &str) -> bool {
    name.strip_prefix(pool)
        .and_then(|rest| rest.strip_prefix('-'))
        .and_then(|rest| rest.strip_suffix(autoscaler))
        .and_then(|rest| rest.strip_suffix('-'))
        .is_some_and(|serial| serial.len() == 6 && serial.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The decisions for `pools` given what `autoscaler` observes at `now`.
pub fn reconcile(
    pools: &[Pool],
    autoscaler: &str,
    observed: &Observed,
    history: &History,
    now: Instant,
) -> Plan {
    let owners: Vec<Option<usize>> = observed
        .queue
        .iter()
        .map(|group| {
            pools
                .iter()
                .position(|pool| group.tags.iter().all(|tag| pool.labels.contains(tag)))
        })
        .collect();
    let mut plan = Plan::default();
    for (index, pool) in pools.iter().enumerate() {
        let jobs: Vec<&QueueGroup> = observed
            .queue
            .iter()
            .zip(&owners)
            .filter(|(_, owner)| **owner == Some(index))
            .map(|(group, _)| group)
            .collect();
        let pool_plan = reconcile_pool(pool, autoscaler, &jobs, observed, history, now);
        plan.actions.extend(pool_plan.actions);
        plan.reports.extend(pool_plan.reports);
    }
    let retired = observed
        .instances
        .iter()
        .filter(|instance| !pools.iter().any(|pool| pool.name == instance.pool));
    plan.actions
        .extend(retired.filter_map(|instance| retire(instance, observed)));
    plan
}

/// The next step for an instance of a pool no longer defined.
fn retire(instance: &Instance, observed: &Observed) -> Option<Action> {
    let agent = observed.agents.iter().find(|a| a.name == instance.name);
    let remove = || Action::Remove {
        pool: instance.pool.clone(),
        name: instance.name.clone(),
        agent: agent.map(|agent| agent.id),
        instance: true,
    };
    match agent {
        _ if !instance.running => Some(remove()),
        // Never registered: no job can be on it.
        None => Some(remove()),
        Some(agent) if agent.paused && agent.running_jobs.is_empty() => Some(remove()),
        Some(agent) if is_idle(agent) => Some(Action::Drain {
            pool: instance.pool.clone(),
            agent: agent.id,
        }),
        Some(_) => None,
    }
}

fn reconcile_pool(
    pool: &Pool,
    autoscaler: &str,
    jobs: &[&QueueGroup],
    observed: &Observed,
    history: &History,
    now: Instant,
) -> Plan {
    let mut actions = Vec::new();
    let remove = |name: &str, agent: Option<&AgentView>, instance: bool| Action::Remove {
        pool: pool.name.clone(),
        name: name.to_string(),
        agent: agent.map(|agent| agent.id),
        instance,
    };
    let (mut starting, mut busy, mut draining, mut running_jobs) = (0u32, 0u32, 0u32, 0u64);
    let mut idle: Vec<(&AgentView, Duration)> = Vec::new();
    for instance in observed.instances.iter().filter(|i| i.pool == pool.name) {
        let agent = observed.agents.iter().find(|a| a.name == instance.name);
        if !instance.running {
            actions.push(remove(&instance.name, agent, true));
            continue;
        }
        match agent {
            None => starting += 1,
            Some(agent) if agent.paused => {
                draining += 1;
                if agent.running_jobs.is_empty() {
                    actions.push(remove(&instance.name, Some(agent), true));
                }
            }
            Some(agent) if is_idle(agent) => idle.push((agent, history.idle_for(&agent.name, now))),
            // Between sessions (reconnecting): there, but not online yet.
            Some(agent) if agent.status == "offline" => {
                starting += 1;
                running_jobs += agent.running_jobs.len() as u64;
            }
            Some(agent) => {
                busy += 1;
                running_jobs += agent.running_jobs.len() as u64;
            }
        }
    }
    for orphan in observed.agents.iter().filter(|agent| {
        agent.status == "offline"
            && named_as_member(&agent.name, &pool.name, autoscaler)
            && !observed.instances.iter().any(|i| i.name == agent.name)
    }) {
        actions.push(remove(&orphan.name, Some(orphan), false));
    }

    let pending: u64 = jobs.iter().map(|group| group.pending).sum();
    let oldest_wait_ms = jobs
        .iter()
        .map(|group| group.longest_wait_ms)
        .max()
        .unwrap_or(0);
    let idle_count = idle.len() as u32;
    let active = starting + busy + idle_count;
    let wanted = (pending + running_jobs).div_ceil(u64::from(pool.concurrency));
    let desired = u32::try_from(wanted)
        .unwrap_or(u32::MAX)
        .clamp(pool.min, pool.max);
    let mut reason = format!(
        "{pending} pending (oldest {:.1}s), {running_jobs} running: {wanted} agent(s) of {} wanted",
        oldest_wait_ms as f64 / 1000.0,
        pool.concurrency,
    );
    if u64::from(desired) != wanted {
        reason.push_str(&format!(", within min {} max {}", pool.min, pool.max));
    }
    if desired > active {
        let room = pool.max.saturating_sub(active + draining);
        let starts = (desired - active).min(room);
        for _ in 0..starts {
            actions.push(Action::Start {
                pool: pool.name.clone(),
            });
        }
        reason.push_str(&format!("; starting {starts}"));
        if starts < desired - active {
            reason.push_str(&format!(" ({draining} draining count against max)"));
        }
    } else if desired < active {
        let cooldown = history.cooldown_left(pool, now);
        if cooldown > Duration::ZERO {
            reason.push_str(&format!("; cool-down, {}s left", cooldown.as_secs()));
        } else {
            idle.sort_by_key(|(_, idle_for)| std::cmp::Reverse(*idle_for));
            let doomed: Vec<i64> = idle
                .iter()
                .filter(|(_, idle_for)| *idle_for >= pool.idle_time)
                .take((active - desired) as usize)
                .map(|(agent, _)| agent.id)
                .collect();
            reason.push_str(&format!(
                "; {} above it, draining {} idle for {}s",
                active - desired,
                doomed.len(),
                pool.idle_time.as_secs()
            ));
            actions.extend(doomed.into_iter().map(|agent| Action::Drain {
                pool: pool.name.clone(),
                agent,
            }));
        }
    }
    Plan {
        actions,
        reports: vec![PoolReport {
            name: pool.name.clone(),
            labels: pool.labels.iter().cloned().collect(),
            min: pool.min,
            max: pool.max,
            desired,
            current: active + draining,
            starting,
            idle: idle_count,
            busy,
            draining,
            pending,
            oldest_wait_ms,
            reason,
        }],
    }
}
