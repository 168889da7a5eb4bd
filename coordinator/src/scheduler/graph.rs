//! A pipeline's stage graph in memory, for the pipelines that have not finished: the
//! latest attempt of each planned job with its parsed spec, and the counts that make
//! "what may start now" and "what is the pipeline's status" cheap to answer.
//!
//! The store stays the truth; the scheduler changes a graph only under its decision lock,
//! after (or together with) the guarded write that made the change durable, and loads it
//! again from the store after a restart. [`PipelineGraph::advance`] looks only at the
//! jobs a change can affect: the jobs that `need` a changed one, and the lowest stage that
//! still has waiting jobs.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use esteira_pipeline::PlannedJob;

use super::rules::{self, Tally};
use crate::model::{JobId, JobStatus, PipelineStatus};
use crate::store::StoreError;
use crate::store::jobs::Job;
use crate::store::pipelines::{NewJob, Pipeline};

/// One planned job: its latest attempt.
#[derive(Debug, Clone)]
pub struct Slot {
    pub id: JobId,
    pub name: String,
    pub stage_index: i64,
    pub status: JobStatus,
    pub exit_code: Option<i64>,
    pub attempt: i64,
    pub spec: Arc<PlannedJob>,
    /// The spec as stored, sent to agents as it is.
    pub spec_json: Arc<str>,
}

impl Slot {
    pub fn of(job: &Job) -> Result<Slot, StoreError> {
        Ok(Slot {
            id: job.id,
            name: job.name.clone(),
            stage_index: job.stage_index,
            status: job.status,
            exit_code: job.exit_code,
            attempt: job.attempt,
            spec: Arc::new(serde_json::from_str(&job.spec_json)?),
            spec_json: job.spec_json.as_str().into(),
        })
    }

    /// A job just planned and stored as `id`, not started yet.
    pub fn planned(id: JobId, job: &NewJob) -> Result<Slot, StoreError> {
        Ok(Slot {
            id,
            name: job.name.clone(),
            stage_index: job.stage_index,
            status: JobStatus::Created,
            exit_code: None,
            attempt: 1,
            spec: Arc::new(serde_json::from_str(&job.spec_json)?),
            spec_json: job.spec_json.as_str().into(),
        })
    }
}

/// A status change the scheduler must store: `job` goes from `from` to `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub job: JobId,
    pub from: JobStatus,
    pub to: JobStatus,
}

pub struct PipelineGraph {
    pub pipeline: Pipeline,
    slots: Vec<Slot>,
    by_job: HashMap<JobId, usize>,
    /// For jobs with `needs`: the slots they wait for.
    upstream: Vec<Option<Vec<usize>>>,
    /// The slots whose `needs` name each slot.
    dependents: Vec<Vec<usize>>,
    /// Per stage, the jobs that hold the later stages back (not finished, and not an
    /// optional manual job).
    holding_by_stage: BTreeMap<i64, usize>,
    /// Per stage, the finished jobs that fail the pipeline's path.
    blocking_by_stage: BTreeMap<i64, usize>,
    /// `created` jobs without `needs`, by stage: they start together when every earlier
    /// stage is through.
    waiting_by_stage: BTreeMap<i64, BTreeSet<usize>>,
    tally: Tally,
}

fn bump(counts: &mut BTreeMap<i64, usize>, key: i64, add: bool) {
    if add {
        *counts.entry(key).or_default() += 1;
    } else if let Some(count) = counts.get_mut(&key) {
        *count -= 1;
        if *count == 0 {
            counts.remove(&key);
        }
    }
}

impl PipelineGraph {
    /// The graph of `pipeline` from every attempt of its jobs, in creation order.
    pub fn load(pipeline: Pipeline, jobs: &[Job]) -> Result<PipelineGraph, StoreError> {
        let slots = jobs
            .iter()
            .filter(|job| !job.retried)
            .map(Slot::of)
            .collect::<Result<_, _>>()?;
        Ok(PipelineGraph::new(pipeline, slots))
    }

    /// The graph of `pipeline` whose latest attempts are `slots`, in plan order.
    pub fn new(pipeline: Pipeline, slots: Vec<Slot>) -> PipelineGraph {
        let upstream: Vec<Option<Vec<usize>>> = slots
            .iter()
            .map(|slot| {
                slot.spec.needs.as_ref().map(|needs| {
                    (0..slots.len())
                        .filter(|&other| {
                            needs
                                .iter()
                                .any(|need| rules::is_needed_as(&slots[other].name, &need.job))
                        })
                        .collect()
                })
            })
            .collect();
        let mut dependents = vec![Vec::new(); slots.len()];
        for (index, needed) in upstream.iter().enumerate() {
            for &other in needed.iter().flatten() {
                dependents[other].push(index);
            }
        }
        let mut graph = PipelineGraph {
            pipeline,
            by_job: slots.iter().enumerate().map(|(i, s)| (s.id, i)).collect(),
            slots: Vec::new(),
            upstream,
            dependents,
            holding_by_stage: BTreeMap::new(),
            blocking_by_stage: BTreeMap::new(),
            waiting_by_stage: BTreeMap::new(),
            tally: Tally::default(),
        };
        for (index, slot) in slots.iter().enumerate() {
            graph.count(index, slot, true);
        }
        graph.slots = slots;
        graph
    }

    fn count(&mut self, index: usize, slot: &Slot, add: bool) {
        let spec = &slot.spec;
        if add {
            self.tally.add(spec, slot.status, slot.exit_code);
        } else {
            self.tally.remove(spec, slot.status, slot.exit_code);
        }
        if !rules::lets_later_jobs_start(spec, slot.status) {
            bump(&mut self.holding_by_stage, slot.stage_index, add);
        }
        if slot.status.is_finished() && rules::blocks_success(spec, slot.status, slot.exit_code) {
            bump(&mut self.blocking_by_stage, slot.stage_index, add);
        }
        if slot.status == JobStatus::Created && self.upstream[index].is_none() {
            let waiting = self.waiting_by_stage.entry(slot.stage_index).or_default();
            if add {
                waiting.insert(index);
            } else {
                waiting.remove(&index);
                if waiting.is_empty() {
                    self.waiting_by_stage.remove(&slot.stage_index);
                }
            }
        }
    }

    pub fn slot(&self, job: JobId) -> Option<&Slot> {
        self.by_job.get(&job).map(|&index| &self.slots[index])
    }

    /// The latest attempts, in plan order.
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// Records a job's new status (and exit code); false when the job is not the latest
    /// attempt of one of this pipeline's jobs.
    pub fn set_status(&mut self, job: JobId, status: JobStatus, exit_code: Option<i64>) -> bool {
        let Some(&index) = self.by_job.get(&job) else {
            return false;
        };
        let before = self.slots[index].clone();
        self.count(index, &before, false);
        let after = Slot {
            status,
            exit_code,
            ..before
        };
        self.count(index, &after, true);
        self.slots[index] = after;
        true
    }

    /// A retry of `old` was stored as `new` (status `created`): it takes the old attempt's
    /// place.
    pub fn replace(&mut self, old: JobId, new: JobId, attempt: i64) -> bool {
        let Some(index) = self.by_job.remove(&old) else {
            return false;
        };
        let before = self.slots[index].clone();
        self.count(index, &before, false);
        let after = Slot {
            id: new,
            status: JobStatus::Created,
            exit_code: None,
            attempt,
            ..before
        };
        self.count(index, &after, true);
        self.slots[index] = after;
        self.by_job.insert(new, index);
        true
    }

    /// The pipeline's status as its latest attempts make it.
    pub fn status(&self) -> PipelineStatus {
        self.tally.pipeline_status()
    }

    /// Moves waiting jobs on as far as their stages and needs allow, in memory, and
    /// returns the changes to store. `changed` are the jobs whose status just changed or
    /// that were just retried (they and their dependents are looked at); `everything`
    /// looks at every job with `needs` (a graph just loaded).
    pub fn advance(&mut self, changed: &[JobId], everything: bool) -> Vec<Change> {
        let mut candidates: Vec<usize> = if everything {
            (0..self.slots.len())
                .filter(|&index| self.upstream[index].is_some())
                .collect()
        } else {
            changed
                .iter()
                .filter_map(|job| self.by_job.get(job))
                .flat_map(|&index| {
                    std::iter::once(index).chain(self.dependents[index].iter().copied())
                })
                .collect()
        };
        let mut changes = Vec::new();
        loop {
            if let Some((&stage, waiting)) = self.waiting_by_stage.first_key_value()
                && self.holding_by_stage.range(..stage).next().is_none()
            {
                candidates.extend(waiting.iter().copied());
            }
            let mut moved = Vec::new();
            candidates.sort_unstable();
            candidates.dedup();
            for index in candidates.drain(..) {
                let slot = &self.slots[index];
                if slot.status != JobStatus::Created {
                    continue;
                }
                let Some(upstream_failed) = self.upstream_failed(index) else {
                    continue;
                };
                let to = rules::next_status(&slot.spec, upstream_failed);
                changes.push(Change {
                    job: slot.id,
                    from: JobStatus::Created,
                    to,
                });
                moved.push((slot.id, to));
            }
            if moved.is_empty() {
                return changes;
            }
            for (job, to) in moved {
                self.set_status(job, to, None);
                if let Some(&index) = self.by_job.get(&job) {
                    candidates.extend(self.dependents[index].iter().copied());
                }
            }
        }
    }

    /// `None` while something the job waits for holds it back; else whether one of them
    /// blocks the pipeline's success.
    fn upstream_failed(&self, index: usize) -> Option<bool> {
        let slot = &self.slots[index];
        match &self.upstream[index] {
            Some(needed) => {
                let mut failed = false;
                for &other in needed {
                    let other = &self.slots[other];
                    if !rules::lets_later_jobs_start(&other.spec, other.status) {
                        return None;
                    }
                    failed |= other.status.is_finished()
                        && rules::blocks_success(&other.spec, other.status, other.exit_code);
                }
                Some(failed)
            }
            None => {
                if self
                    .holding_by_stage
                    .range(..slot.stage_index)
                    .next()
                    .is_some()
                {
                    return None;
                }
                Some(
                    self.blocking_by_stage
                        .range(..slot.stage_index)
                        .next()
                        .is_some(),
                )
            }
        }
    }
}
