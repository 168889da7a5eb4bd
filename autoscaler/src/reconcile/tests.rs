use std::collections::BTreeSet;
use std::path::PathBuf;

use super::*;
use crate::pools::AgentTemplate;

const ME: &str = "as1";

fn pool(name: &str, labels: &[&str], min: u32, max: u32) -> Pool {
    Pool {
        name: name.to_string(),
        labels: labels.iter().map(|label| label.to_string()).collect(),
        concurrency: 1,
        min,
        max,
        idle_time: Duration::from_secs(30),
        cooldown: Duration::from_secs(10),
        agent: AgentTemplate {
            image: "esteira-agent".into(),
            network: None,
            work_root: PathBuf::from("/w"),
            env: Default::default(),
            args: Vec::new(),
            volumes: Vec::new(),
        },
    }
}

fn queued(tags: &[&str], pending: u64) -> QueueGroup {
    QueueGroup {
        tags: tags.iter().map(|tag| tag.to_string()).collect(),
        pending,
        longest_wait_ms: 4_000,
    }
}

fn name(serial: u32) -> String {
    agent_name("burst", &format!("{serial:06x}"), ME)
}

/// An instance of pool `burst`, and its agent when `status` is given.
fn member(observed: &mut Observed, serial: u32, status: Option<&str>, jobs: &[i64]) {
    observed.instances.push(Instance {
        name: name(serial),
        pool: "burst".into(),
        running: true,
    });
    if let Some(status) = status {
        observed.agents.push(AgentView {
            id: i64::from(serial),
            name: name(serial),
            status: status.to_string(),
            paused: status == "paused",
            running_jobs: jobs.to_vec(),
        });
    }
}

fn starts(plan: &Plan) -> usize {
    plan.actions
        .iter()
        .filter(|action| matches!(action, Action::Start { .. }))
        .count()
}

fn drained(plan: &Plan) -> BTreeSet<i64> {
    plan.actions
        .iter()
        .filter_map(|action| match action {
            Action::Drain { agent, .. } => Some(*agent),
            _ => None,
        })
        .collect()
}

fn removed(plan: &Plan) -> Vec<(String, Option<i64>, bool)> {
    plan.actions
        .iter()
        .filter_map(|action| match action {
            Action::Remove {
                name,
                agent,
                instance,
                ..
            } => Some((name.clone(), *agent, *instance)),
            _ => None,
        })
        .collect()
}

/// History where every idle agent of `observed` has been idle for `idle`, and the pool
/// last changed `since_change` ago.
fn history(observed: &Observed, now: Instant, idle: Duration, since_change: Duration) -> History {
    let mut history = History::default();
    history.observe(&observed.agents, now - idle);
    history.changed("burst", now - since_change);
    history
}

fn quiet(observed: &Observed, now: Instant) -> History {
    history(
        observed,
        now,
        Duration::from_secs(60),
        Duration::from_secs(60),
    )
}

#[test]
fn pending_jobs_of_the_pools_labels_start_agents_up_to_max() {
    let pools = [pool("burst", &["burst"], 0, 3)];
    let now = Instant::now();
    let mut observed = Observed {
        queue: vec![queued(&["burst"], 30), queued(&["gpu"], 5)],
        ..Observed::default()
    };
    let plan = reconcile(&pools, ME, &observed, &History::default(), now);
    assert_eq!(starts(&plan), 3);
    let report = &plan.reports[0];
    assert_eq!((report.desired, report.current, report.pending), (3, 0, 30));
    assert!(report.reason.contains("30 pending"), "{}", report.reason);

    // The agents started count, registered or not: nothing more is started.
    member(&mut observed, 1, None, &[]);
    member(&mut observed, 2, Some("busy"), &[7]);
    member(&mut observed, 3, Some("busy"), &[8]);
    let plan = reconcile(&pools, ME, &observed, &History::default(), now);
    assert_eq!(starts(&plan), 0, "{plan:?}");
    let report = &plan.reports[0];
    assert_eq!((report.starting, report.busy, report.current), (1, 2, 3));
}

#[test]
fn a_tag_set_belongs_to_the_first_pool_whose_labels_cover_it() {
    let pools = [
        pool("burst", &["burst", "linux"], 0, 5),
        pool("any", &["burst", "linux", "big"], 0, 5),
    ];
    let observed = Observed {
        queue: vec![
            queued(&["linux"], 2),
            queued(&["big"], 1),
            queued(&["windows"], 9),
        ],
        ..Observed::default()
    };
    let plan = reconcile(&pools, ME, &observed, &History::default(), Instant::now());
    let desired: Vec<u32> = plan.reports.iter().map(|r| r.desired).collect();
    assert_eq!(desired, [2, 1]);
}

#[test]
fn min_agents_stay_without_jobs_and_max_holds_against_any_queue() {
    let pools = [pool("burst", &["burst"], 2, 4)];
    let plan = reconcile(
        &pools,
        ME,
        &Observed::default(),
        &History::default(),
        Instant::now(),
    );
    assert_eq!(starts(&plan), 2);

    let now = Instant::now();
    let mut observed = Observed::default();
    member(&mut observed, 1, Some("idle"), &[]);
    member(&mut observed, 2, Some("idle"), &[]);
    member(&mut observed, 3, Some("idle"), &[]);
    let plan = reconcile(&pools, ME, &observed, &quiet(&observed, now), now);
    assert_eq!(drained(&plan).len(), 1, "never below min: {plan:?}");
}

#[test]
fn scale_in_drains_only_agents_idle_past_the_idle_time_never_a_busy_one() {
    let pools = [pool("burst", &["burst"], 0, 3)];
    let now = Instant::now();
    let mut observed = Observed::default();
    member(&mut observed, 1, Some("busy"), &[11]);
    member(&mut observed, 2, Some("idle"), &[]);
    let mut history = quiet(&observed, now);
    // Agent 3 became idle only now.
    member(&mut observed, 3, Some("idle"), &[]);
    history.observe(&observed.agents, now);
    let plan = reconcile(&pools, ME, &observed, &history, now);
    assert_eq!(drained(&plan), BTreeSet::from([2]), "{plan:?}");
    assert!(removed(&plan).is_empty());
    assert_eq!(plan.reports[0].desired, 1);

    // Busy again: its idleness is forgotten.
    observed.agents[1].status = "busy".into();
    observed.agents[1].running_jobs = vec![12];
    history.observe(&observed.agents, now);
    observed.agents[1].status = "idle".into();
    observed.agents[1].running_jobs = Vec::new();
    history.observe(&observed.agents, now);
    let plan = reconcile(&pools, ME, &observed, &history, now);
    assert!(drained(&plan).is_empty(), "{plan:?}");
}

#[test]
fn a_drained_agent_is_removed_only_once_it_runs_no_job() {
    let pools = [pool("burst", &["burst"], 0, 3)];
    let now = Instant::now();
    let mut observed = Observed::default();
    // Paused with a job it got just before the pause: it stays.
    member(&mut observed, 1, Some("paused"), &[5]);
    let plan = reconcile(&pools, ME, &observed, &quiet(&observed, now), now);
    assert!(removed(&plan).is_empty(), "{plan:?}");
    assert_eq!(plan.reports[0].draining, 1);

    observed.agents[0].running_jobs.clear();
    let plan = reconcile(&pools, ME, &observed, &quiet(&observed, now), now);
    assert_eq!(removed(&plan), [(name(1), Some(1), true)]);
}

#[test]
fn no_scale_in_during_the_cool_down() {
    let pools = [pool("burst", &["burst"], 0, 3)];
    let now = Instant::now();
    let mut observed = Observed::default();
    member(&mut observed, 1, Some("idle"), &[]);
    let recent = history(
        &observed,
        now,
        Duration::from_secs(60),
        Duration::from_secs(4),
    );
    let plan = reconcile(&pools, ME, &observed, &recent, now);
    assert!(drained(&plan).is_empty());
    assert!(plan.reports[0].reason.contains("cool-down, 6s left"));
    let plan = reconcile(&pools, ME, &observed, &quiet(&observed, now), now);
    assert_eq!(drained(&plan), BTreeSet::from([1]));
}

#[test]
fn draining_agents_count_against_max() {
    let pools = [pool("burst", &["burst"], 0, 3)];
    let now = Instant::now();
    let mut observed = Observed {
        queue: vec![queued(&["burst"], 10)],
        ..Observed::default()
    };
    member(&mut observed, 1, Some("paused"), &[4]);
    member(&mut observed, 2, Some("busy"), &[5]);
    let plan = reconcile(&pools, ME, &observed, &quiet(&observed, now), now);
    assert_eq!(starts(&plan), 1, "three containers at most: {plan:?}");
}

#[test]
fn a_stopped_instance_is_removed_with_its_agent_and_replaced() {
    let pools = [pool("burst", &["burst"], 0, 3)];
    let now = Instant::now();
    let mut observed = Observed {
        queue: vec![queued(&["burst"], 1)],
        ..Observed::default()
    };
    member(&mut observed, 1, Some("offline"), &[9]);
    observed.instances[0].running = false;
    let plan = reconcile(&pools, ME, &observed, &quiet(&observed, now), now);
    assert_eq!(removed(&plan), [(name(1), Some(1), true)]);
    assert_eq!(starts(&plan), 1);
}

#[test]
fn an_offline_agent_of_ours_without_an_instance_is_removed_and_no_other() {
    let pools = [pool("burst", &["burst"], 0, 3)];
    let now = Instant::now();
    let offline = |id: i64, name: String| AgentView {
        id,
        name,
        status: "offline".into(),
        paused: false,
        running_jobs: Vec::new(),
    };
    let observed = Observed {
        agents: vec![
            offline(1, name(1)),
            offline(2, "burst-build-host".into()),
            offline(3, agent_name("burst", "00000a", "another")),
        ],
        ..Observed::default()
    };
    let plan = reconcile(&pools, ME, &observed, &quiet(&observed, now), now);
    assert_eq!(removed(&plan), [(name(1), Some(1), false)]);
}

#[test]
fn the_same_observation_gives_the_same_plan_every_tick() {
    let pools = [pool("burst", &["burst"], 0, 3)];
    let now = Instant::now();
    let mut observed = Observed {
        queue: vec![queued(&["burst"], 4)],
        ..Observed::default()
    };
    member(&mut observed, 1, None, &[]);
    let history = quiet(&observed, now);
    let first = reconcile(&pools, ME, &observed, &history, now);
    let again = reconcile(&pools, ME, &observed, &history, now);
    assert_eq!(first.actions, again.actions);
    assert_eq!(first.reports, again.reports);
    assert_eq!(starts(&first), 2);
}

#[test]
fn the_agents_of_a_pool_no_longer_defined_are_drained_then_removed_busy_ones_last() {
    let pools = [pool("other", &["other"], 0, 1)];
    let now = Instant::now();
    let mut observed = Observed::default();
    member(&mut observed, 1, Some("idle"), &[]);
    member(&mut observed, 2, Some("busy"), &[3]);
    member(&mut observed, 3, Some("paused"), &[]);
    member(&mut observed, 4, None, &[]);
    let plan = reconcile(&pools, ME, &observed, &quiet(&observed, now), now);
    assert_eq!(drained(&plan), BTreeSet::from([1]));
    assert_eq!(
        removed(&plan),
        [(name(3), Some(3), true), (name(4), None, true)]
    );
}
