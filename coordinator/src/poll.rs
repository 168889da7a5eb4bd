//! Polling, for projects without webhooks (`--poll SECONDS`): fetch the mirror, compare
//! its branches and tags with those of the last poll (kept in the store, so a restart
//! does not start everything again) and hand each update to the webhook path
//! ([`Deliveries::process`]) as the push it is. A project's first poll starts one pipeline,
//! for its default branch, and remembers every ref; a repository without its default
//! branch yet (new and empty) has each ref that appears built as a push would be.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use crate::deliveries::Deliveries;
use crate::git::Mirrors;
use crate::model::ProjectId;
use crate::store::Store;
use crate::store::projects::Project;
use crate::webhooks::{self, Parsed};

/// The pseudo ref remembered by every poll (no git ref has an empty name).
const POLLED_MARKER: &str = "";

/// How often the poller looks for projects that are due.
const TICK: Duration = Duration::from_millis(250);

/// What polling works with: the store (the polled projects, the refs of their last poll),
/// their mirrors, and the deliveries every update goes through.
#[derive(Clone)]
pub struct Poller {
    pub store: Store,
    pub mirrors: Arc<Mirrors>,
    pub deliveries: Deliveries,
}

/// Polls every polled project at its interval, until the process ends.
pub fn spawn(poller: Poller) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last: HashMap<ProjectId, Instant> = HashMap::new();
        let mut ticks = tokio::time::interval(TICK);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let projects = match poller.store.polled_projects().await {
                Ok(projects) => projects,
                Err(error) => {
                    warn!(%error, "listing polled projects failed");
                    continue;
                }
            };
            for project in projects {
                let every = Duration::from_secs(
                    u64::try_from(project.poll_interval_secs.unwrap_or(60)).unwrap_or(60),
                );
                if last.get(&project.id).is_some_and(|at| at.elapsed() < every) {
                    continue;
                }
                last.insert(project.id, Instant::now());
                if let Err(error) = poll_once(&poller, &project).await {
                    warn!(project = %project.name, %error, "poll failed");
                }
            }
        }
    })
}

/// One poll of one project; answers how many pipelines it started.
pub async fn poll_once(poller: &Poller, project: &Project) -> anyhow::Result<usize> {
    let store = &poller.store;
    let mirror = poller.mirrors.fetch(project).await?;
    let now = list_refs(&mirror).await?;
    let mut known: HashMap<String, String> =
        store.polled_refs(project.id).await?.into_iter().collect();
    // The first poll of a repository that has its default branch builds just that branch.
    // Before it exists (a new, empty repository), every ref that appears is a push; the
    // marker remembers that the repository was polled even when it had no refs.
    let default_ref = format!("refs/heads/{}", project.default_branch);
    let first = known.remove(POLLED_MARKER).is_none()
        && known.is_empty()
        && now.iter().any(|(name, _)| *name == default_ref);
    let mut remembered: Vec<(String, String)> = vec![(POLLED_MARKER.to_string(), String::new())];
    let mut started = 0;
    for (name, sha) in &now {
        let before = known.get(name);
        let wanted = if first {
            *name == default_ref
        } else {
            before != Some(sha)
        };
        if !wanted {
            remembered.push((name.clone(), sha.clone()));
            continue;
        }
        let parsed @ Parsed::Event(_) =
            webhooks::event::push("poll", name, sha, before.map(String::as_str), None)
        else {
            remembered.push((name.clone(), sha.clone()));
            continue;
        };
        let outcome = poller
            .deliveries
            .process(project, "poll", None, parsed)
            .await;
        debug!(project = %project.name, git_ref = %name, outcome = outcome.outcome, "polled update");
        if outcome.status >= 500 {
            // Try again at the next poll.
            if let Some(before) = before {
                remembered.push((name.clone(), before.clone()));
            }
            continue;
        }
        if outcome.outcome == "created" {
            started += 1;
        }
        remembered.push((name.clone(), sha.clone()));
    }
    store.set_polled_refs(project.id, &remembered).await?;
    if started > 0 {
        info!(project = %project.name, pipelines = started, "poll started pipelines");
    }
    Ok(started)
}

/// Branches and tags of the mirror with the commit each points at (tags peeled).
async fn list_refs(mirror: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let mirror = mirror.to_path_buf();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("git")
            .arg("-C")
            .arg(&mirror)
            .args([
                "for-each-ref",
                "--format=%(refname) %(objectname) %(*objectname)",
                "refs/heads",
                "refs/tags",
            ])
            .output()
    })
    .await??;
    if !output.status.success() {
        anyhow::bail!(
            "git for-each-ref failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let name = fields.next()?;
            let object = fields.next()?;
            let peeled = fields.next().filter(|p| !p.is_empty());
            Some((name.to_string(), peeled.unwrap_or(object).to_string()))
        })
        .collect())
}
