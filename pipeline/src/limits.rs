//! The bounds on what one pipeline may make esteira build in memory, so that a hostile
//! file is refused quickly instead of taking the coordinator down.
//!
//! Everything that copies nodes or text is counted before (or as) it is materialised:
//! aliases and anchors (`yaml`), `extends` and `!reference` (`config`), `default:` and
//! global variables copied into every job (`pipeline`), `parallel` copies and `needs`
//! (`planner`), and variable expansion (`vars`). Each limit is far above what real
//! pipelines use (GitLab itself refuses a file over 1 MB, or over 2 MB after aliases) and
//! low enough that planning the worst file stays within a few hundred MB and a second.
//! `docs/pipeline-language.md` lists them.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde::Serialize;

use crate::yaml::{Map, Node, Value};

const MIB: usize = 1024 * 1024;

/// The largest pipeline file read (each file, includes too).
pub const MAX_FILE_BYTES: usize = 8 * MIB;
/// How many YAML nodes all the files of one pipeline may expand to.
pub const MAX_NODES: usize = 1_000_000;
/// How many bytes of text (scalars and keys) all the files of one pipeline may expand to,
/// through aliases, `extends` and `!reference`.
pub const MAX_TREE_BYTES: usize = 64 * MIB;
/// How many jobs a file may define, and a plan may hold once `parallel` is expanded.
pub const MAX_JOBS: usize = 5_000;
/// How large the jobs may be, as JSON: those a file defines (with what `default:` and
/// global variables copy into each), and those of one plan.
pub const MAX_PLAN_BYTES: usize = 64 * MIB;
/// How many bytes variable expansion may produce while one pipeline is planned.
pub const MAX_EXPANSION_BYTES: usize = 64 * MIB;
/// What one substitution costs of [`MAX_EXPANSION_BYTES`] besides the bytes it brings, so
/// that references to empty values are bounded too (a million substitutions per plan).
pub const SUBSTITUTION_COST: usize = 64;

/// A size in MiB for messages (`64 MiB`).
pub fn mib(bytes: usize) -> String {
    format!("{} MiB", bytes / MIB)
}

/// How much one YAML node holds: itself and its descendants, and the bytes of their text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Size {
    pub nodes: usize,
    pub bytes: usize,
}

impl Size {
    /// One node holding `bytes` of text.
    pub fn one(bytes: usize) -> Size {
        Size { nodes: 1, bytes }
    }

    pub fn add(&mut self, other: Size) {
        self.nodes = self.nodes.saturating_add(other.nodes);
        self.bytes = self.bytes.saturating_add(other.bytes);
    }

    /// The size of `node`, walked (for nodes already built, about to be copied).
    pub fn of(node: &Node) -> Size {
        let mut size = Size::one(0);
        match &node.value {
            Value::Str(text) | Value::Float(text) => size.bytes = text.len(),
            Value::Seq(items) | Value::Reference(items) => {
                items.iter().for_each(|item| size.add(Size::of(item)));
            }
            Value::Map(map) => size.add(Size::of_map(map)),
            Value::Null | Value::Bool(_) | Value::Int(_) => {}
        }
        size
    }

    /// The size of a mapping's entries: keys and values.
    pub fn of_map(map: &Map) -> Size {
        let mut size = Size::default();
        for entry in &map.entries {
            size.add(Size::one(entry.key.len()));
            size.add(Size::of(&entry.value));
        }
        size
    }
}

/// What the YAML trees of one pipeline (every file) hold so far, against
/// [`MAX_NODES`] and [`MAX_TREE_BYTES`].
#[derive(Debug, Default)]
pub struct TreeBudget {
    used: Size,
    exceeded: bool,
}

impl TreeBudget {
    /// Counts `size` more, made `through` something (`aliases`, `extends`…); the error
    /// names the limit passed.
    pub fn charge(&mut self, size: Size, through: &str) -> Result<(), String> {
        self.used.add(size);
        let message = if self.used.nodes > MAX_NODES {
            format!(
                "the pipeline expands to more than {MAX_NODES} nodes through {through} (an alias bomb?)"
            )
        } else if self.used.bytes > MAX_TREE_BYTES {
            format!(
                "the pipeline expands to more than {} through {through} (an alias bomb?)",
                mib(MAX_TREE_BYTES)
            )
        } else {
            return Ok(());
        };
        self.exceeded = true;
        Err(message)
    }

    /// Whether a charge was refused: nothing more is worth reading.
    pub fn exceeded(&self) -> bool {
        self.exceeded
    }
}

/// Jobs and bytes of JSON counted against [`MAX_JOBS`] and [`MAX_PLAN_BYTES`], for the jobs
/// a file defines or for those of one plan (`what` names which in messages).
#[derive(Debug)]
pub struct JobBudget {
    what: &'static str,
    jobs: usize,
    bytes: usize,
}

impl JobBudget {
    pub fn new(what: &'static str) -> Self {
        JobBudget {
            what,
            jobs: 0,
            bytes: 0,
        }
    }

    /// Counts `copies` of `job`, before they are made.
    pub fn charge_jobs(&mut self, job: &impl Serialize, copies: usize) -> Result<(), String> {
        self.jobs = self.jobs.saturating_add(copies);
        if self.jobs > MAX_JOBS {
            return Err(format!(
                "{} more than {MAX_JOBS} jobs (parallel copies included)",
                self.what
            ));
        }
        self.charge_bytes(json_len(job).saturating_mul(copies))
    }

    /// Counts `value` as JSON, once made (for what one job adds: its `needs`).
    pub fn charge_json(&mut self, value: &impl Serialize) -> Result<(), String> {
        self.charge_bytes(json_len(value))
    }

    fn charge_bytes(&mut self, bytes: usize) -> Result<(), String> {
        self.bytes = self.bytes.saturating_add(bytes);
        if self.bytes > MAX_PLAN_BYTES {
            return Err(format!(
                "{} more than {} of jobs as JSON (default:, global variables and parallel copies counted in each job)",
                self.what,
                mib(MAX_PLAN_BYTES)
            ));
        }
        Ok(())
    }
}

/// The length of `value` as JSON, counted without building it.
fn json_len(value: &impl Serialize) -> usize {
    struct Counter(usize);
    impl io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Writing into a counter cannot fail, and plan types always serialise.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

/// Bytes variable expansion may still produce while one pipeline is planned, shared by
/// every scope derived from the pipeline's (see `vars::Scope`).
#[derive(Debug)]
pub struct ExpansionBudget {
    remaining: AtomicUsize,
    exceeded: AtomicBool,
}

impl Default for ExpansionBudget {
    fn default() -> Self {
        ExpansionBudget {
            remaining: AtomicUsize::new(MAX_EXPANSION_BYTES),
            exceeded: AtomicBool::new(false),
        }
    }
}

impl ExpansionBudget {
    /// Takes `bytes` from what remains; `false` (and exceeded from now on) when too few do.
    pub fn spend(&self, bytes: usize) -> bool {
        let taken = self
            .remaining
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(bytes)
            });
        if taken.is_err() {
            self.exceeded.store(true, Ordering::Relaxed);
        }
        taken.is_ok()
    }

    pub fn exceeded(&self) -> bool {
        self.exceeded.load(Ordering::Relaxed)
    }

    /// The diagnostic message for an exceeded budget.
    pub fn message() -> String {
        format!(
            "variables expand to more than {} while planning (a variable that refers to others many times?)",
            mib(MAX_EXPANSION_BYTES)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_budget_names_the_limit() {
        let mut budget = TreeBudget::default();
        assert!(budget.charge(Size::one(MAX_TREE_BYTES), "aliases").is_ok());
        let error = budget.charge(Size::one(1), "aliases").unwrap_err();
        assert!(
            error.contains("more than 64 MiB through aliases"),
            "{error}"
        );
        assert!(budget.exceeded());
    }

    #[test]
    fn job_budget_counts_copies_before_they_exist() {
        let mut budget = JobBudget::new("the plan has");
        let error = budget.charge_jobs(&"x", MAX_JOBS + 1).unwrap_err();
        assert!(error.contains("more than 5000 jobs"), "{error}");
        let mut budget = JobBudget::new("the plan has");
        let big = "x".repeat(MIB);
        assert!(budget.charge_jobs(&big, 60).is_ok());
        assert!(budget.charge_jobs(&big, 10).is_err());
    }

    #[test]
    fn expansion_budget_stays_exceeded() {
        let budget = ExpansionBudget::default();
        assert!(budget.spend(MAX_EXPANSION_BYTES));
        assert!(!budget.spend(1));
        assert!(budget.exceeded());
        assert!(budget.spend(0));
    }
}
